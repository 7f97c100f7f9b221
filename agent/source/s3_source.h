#pragma once
// s3:// sources: every object under a key prefix, listed with ListObjectsV2.
#include <memory>
#include <string>
#include <string_view>

#include "agent/source/source.h"

namespace modelcache {

// A prefix that is empty or ends in '/' is a directory. Otherwise "<prefix>/" is listed as a
// directory first; when nothing is under it and an object named exactly `prefix` exists,
// the model is that one object. An empty result is NOT_FOUND. Folder markers (keys ending in
// '/') are skipped. Requests are signed with SigV4 unless options.aws is anonymous.
std::unique_ptr<Source> MakeS3Source(std::string bucket, std::string prefix, const SourceOptions& options);

// The URL of `key` in `bucket`: options.s3_endpoint (default https://s3.<region>.amazonaws.com)
// with the bucket in the host name, or in the path when options.s3_path_style or the bucket
// name has a dot. The key is percent-encoded except for '/'.
std::string S3ObjectUrl(const SourceOptions& options, std::string_view bucket, std::string_view key);

}  // namespace modelcache
