#include "agent/fill/listing_check.h"

#include <set>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/names.h"
#include "common/status_macros.h"

namespace modelcache {

absl::StatusOr<uint64_t> ListedTotalBytes(std::span<const SourceFile> files) {
  uint64_t total = 0;
  for (const SourceFile& file : files) {
    if (file.size > UINT64_MAX - total) {
      return absl::InvalidArgumentError(absl::StrCat(
          "file ", file.path, ": listed size ", file.size, " makes the model's total pass 2^64-1 ",
          "bytes (", total, " bytes listed before it): the listing is wrong"));
    }
    total += file.size;
  }
  return total;
}

absl::Status CheckListing(std::span<const SourceFile> files, bool has_archives) {
  if (files.empty() && !has_archives) return absl::NotFoundError("the source lists no files");
  std::set<std::string_view> paths;
  for (const SourceFile& file : files) {
    RETURN_IF_ERROR(ValidateRelativeFilePath(file.path));
    if (!paths.insert(file.path).second) {
      return absl::InvalidArgumentError(absl::StrCat("file ", file.path, " is listed twice"));
    }
    if (file.size > kMaxListedFileBytes) {
      return absl::InvalidArgumentError(absl::StrCat("file ", file.path, ": listed size ", file.size,
                                                     " is larger than a file can be (",
                                                     kMaxListedFileBytes, " bytes)"));
    }
  }
  for (std::string_view path : paths) {
    for (size_t slash = path.find('/'); slash != std::string_view::npos;
         slash = path.find('/', slash + 1)) {
      if (paths.count(path.substr(0, slash)) != 0) {
        return absl::InvalidArgumentError(absl::StrCat("file ", std::string(path.substr(0, slash)),
                                                       " is also a folder of ", std::string(path)));
      }
    }
  }
  return ListedTotalBytes(files).status();
}

}  // namespace modelcache
