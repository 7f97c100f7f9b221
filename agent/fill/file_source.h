#pragma once
// file:// sources: a local directory tree or a single local file.
#include <filesystem>
#include <memory>

#include "agent/fill/source.h"

namespace modelcache {

// List() walks `root` when it is a directory (regular files only, sorted by path; a symlink
// is followed only when its target stays inside the directory, otherwise INVALID_ARGUMENT
// names it) or returns the one file when it is a file. location = absolute path, etag =
// "<size>-<mtime_ns>". A missing root is NOT_FOUND.
std::unique_ptr<Source> MakeFileSource(std::filesystem::path root);

}  // namespace modelcache
