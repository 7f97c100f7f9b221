#include "agent/store/manifest.h"

#include <google/protobuf/util/json_util.h>

#include <string>

#include "common/fs.h"
#include "common/names.h"
#include "common/status_format.h"
#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {
namespace {

absl::Status DataLoss(const std::filesystem::path& path, std::string_view why) {
  return absl::DataLossError(fmt::format("{}: {}", path.string(), why));
}

absl::StatusOr<std::string> ToJson(const google::protobuf::Message& message,
                                   const std::filesystem::path& path) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = false;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return absl::InternalError(
        fmt::format("{}: cannot encode as JSON: {}", path.string(), status.ToString()));
  }
  return json;
}

// NOT_FOUND when missing; DATA_LOSS when the file is not JSON of the message type.
absl::Status FromJsonFile(const std::filesystem::path& path, google::protobuf::Message& message) {
  ASSIGN_OR_RETURN(std::string json, ReadFileToString(path));
  google::protobuf::util::JsonParseOptions options;
  // A newer agent on the same volume may add fields; older agents must still read the file.
  options.ignore_unknown_fields = true;
  auto status = google::protobuf::util::JsonStringToMessage(json, &message, options);
  if (!status.ok()) return DataLoss(path, fmt::format("invalid JSON: {}", status.ToString()));
  return absl::OkStatus();
}

absl::Status ValidateIdentity(const std::filesystem::path& path, std::string_view name,
                              std::string_view version) {
  if (absl::Status status = ValidateModelName(name); !status.ok()) {
    return DataLoss(path, std::string(status.message()));
  }
  if (absl::Status status = ValidateModelVersion(version); !status.ok()) {
    return DataLoss(path, std::string(status.message()));
  }
  return absl::OkStatus();
}

absl::Status ValidateFilePath(const std::filesystem::path& path, std::string_view file_path) {
  if (absl::Status status = ValidateRelativeFilePath(file_path); !status.ok()) {
    return DataLoss(path, std::string(status.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::Manifest> ReadManifest(const std::filesystem::path& path) {
  v1::Manifest manifest;
  RETURN_IF_ERROR(FromJsonFile(path, manifest));
  RETURN_IF_ERROR(ValidateIdentity(path, manifest.name(), manifest.version()));
  for (const v1::ManifestFile& file : manifest.files()) {
    RETURN_IF_ERROR(ValidateFilePath(path, file.path()));
  }
  return manifest;
}

absl::Status WriteManifest(const std::filesystem::path& path, const v1::Manifest& manifest) {
  ASSIGN_OR_RETURN(std::string json, ToJson(manifest, path));
  return WriteFileAtomic(path, json);
}

absl::StatusOr<v1::FillJournal> ReadJournal(const std::filesystem::path& path) {
  v1::FillJournal journal;
  RETURN_IF_ERROR(FromJsonFile(path, journal));
  RETURN_IF_ERROR(ValidateIdentity(path, journal.name(), journal.version()));
  for (const v1::FillJournal::File& file : journal.files()) {
    RETURN_IF_ERROR(ValidateFilePath(path, file.path()));
    if (file.committed_bytes() > file.size()) {
      return DataLoss(path, fmt::format("file {}: committed_bytes {} > size {}", file.path(),
                                        file.committed_bytes(), file.size()));
    }
  }
  return journal;
}

absl::Status WriteJournal(const std::filesystem::path& path, const v1::FillJournal& journal) {
  ASSIGN_OR_RETURN(std::string json, ToJson(journal, path));
  return WriteFileAtomic(path, json);
}

}  // namespace modelcache
