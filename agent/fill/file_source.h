#pragma once
// file:// sources: a local directory tree or a single local file, read through a FileTree
// (file_tree.h): beneath the folders the agent allows, without following links out of them.
#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "agent/fill/source.h"

namespace modelcache {

// List() resolves `root` (see FileTree::Open for `allowed_roots`, SourceOptions::file_roots)
// and walks it when it is a directory (regular files only, sorted by path; a symlink is
// followed only when it is relative and its target stays inside the directory, otherwise
// INVALID_ARGUMENT, or PERMISSION_DENIED when it leaves the allowed folders, names it) or
// returns the one file when it is a file. location = absolute path, etag =
// "<size>-<mtime_ns>". A missing root is NOT_FOUND; a root outside the allowed folders is
// PERMISSION_DENIED naming fileSources. Chunks are read through the same resolution.
std::unique_ptr<Source> MakeFileSource(std::filesystem::path root,
                                       std::optional<std::vector<std::filesystem::path>> allowed_roots);

}  // namespace modelcache
