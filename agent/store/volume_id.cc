#include "agent/store/volume_id.h"

#include "agent/store/exclusive_file.h"
#include "agent/store/key_value_text.h"
#include "common/fs.h"
#include "common/random_id.h"
#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache {

absl::StatusOr<VolumeIdRecord> ReadVolumeId(const CacheLayout& layout) {
  std::filesystem::path path = layout.VolumeIdPath();
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  ASSIGN_OR_RETURN(KeyValues values, ParseKeyValues(text, path));
  VolumeIdRecord record;
  ASSIGN_OR_RETURN(record.id, RequiredValue(values, "id", path));
  if (!IsHexId128(record.id)) {
    return absl::DataLossError(
        fmt::format("{}: id '{}' is not 32 lowercase hex digits", path.string(), record.id));
  }
  ASSIGN_OR_RETURN(int64_t created_ms, RequiredInt(values, "created_unix_ms", path));
  record.created = FromUnixMillis(created_ms);
  ASSIGN_OR_RETURN(record.creator_node, RequiredValue(values, "creator_node", path));
  return record;
}

absl::StatusOr<VolumeIdRecord> EnsureVolumeIdRecord(const CacheLayout& layout,
                                                    std::string_view node_name,
                                                    const Clock& clock) {
  RETURN_IF_ERROR(ValidateValue("node name", node_name));
  absl::StatusOr<VolumeIdRecord> existing = ReadVolumeId(layout);
  if (!absl::IsNotFound(existing.status())) return existing;

  RETURN_IF_ERROR(CreateDirectories(layout.Root()));
  VolumeIdRecord record;
  record.id = RandomHexId128();
  record.created = clock.Now();
  record.creator_node = std::string(node_name);
  std::string text = FormatKeyValues({
      {"id", record.id},
      {"created_unix_ms", std::to_string(ToUnixMillis(record.created))},
      {"creator_node", record.creator_node},
  });
  absl::Status created = CreateFileExclusive(layout.VolumeIdPath(), text);
  if (created.ok()) {
    // Millisecond precision is what the file keeps; return what a reader would see.
    record.created = FromUnixMillis(ToUnixMillis(record.created));
    return record;
  }
  if (!absl::IsAlreadyExists(created)) return created;
  // Another agent won the race; its file is complete because it was linked in whole.
  return ReadVolumeId(layout);
}

absl::StatusOr<std::string> EnsureVolumeId(const CacheLayout& layout, std::string_view node_name) {
  SystemClock clock;
  ASSIGN_OR_RETURN(VolumeIdRecord record, EnsureVolumeIdRecord(layout, node_name, clock));
  return record.id;
}

}  // namespace modelcache
