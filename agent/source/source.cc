#include "agent/source/source.h"

#include <fmt/format.h>

#include "absl/status/status.h"
#include "agent/source/file_source.h"
#include "agent/source/hf_source.h"
#include "agent/source/http_source.h"
#include "agent/source/oci_source.h"
#include "agent/source/s3_source.h"
#include "common/hf_uri.h"
#include "common/oci_uri.h"
#include "common/status_macros.h"
#include "common/uri.h"

namespace modelcache {

absl::StatusOr<std::unique_ptr<Source>> MakeSource(std::string_view uri, const SourceOptions& options) {
  ASSIGN_OR_RETURN(const SourceUri parsed, ParseSourceUri(uri));
  if (parsed.scheme == "s3") return MakeS3Source(parsed.authority, parsed.path, options);
  if (parsed.scheme == "http" || parsed.scheme == "https") {
    const std::string path = parsed.path.starts_with('/') ? parsed.path : "/" + parsed.path;
    return MakeHttpSource(fmt::format("{}://{}{}", parsed.scheme, parsed.authority, path), options);
  }
  if (parsed.scheme == "file") return MakeFileSource(parsed.path, options.file_roots);
  if (parsed.scheme == "hf") {
    ASSIGN_OR_RETURN(HfUri hf, ParseHfUri(uri));
    return MakeHfSource(std::move(hf), options);
  }
  if (parsed.scheme == "oci") {
    ASSIGN_OR_RETURN(OciUri oci, ParseOciUri(uri));
    return MakeOciSource(std::move(oci), options);
  }
  return absl::InvalidArgumentError(fmt::format(
      "source {}: unknown scheme '{}' (accepted: s3, http, https, file, hf, oci)", uri, parsed.scheme));
}

absl::StatusOr<std::vector<UnpackedFile>> Source::UnpackArchives(const ArchiveJob& /*job*/) const {
  return absl::UnimplementedError("this source has no archives");
}

}  // namespace modelcache
