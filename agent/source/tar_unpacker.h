#pragma once
// Unpacks tar archives (plain or gzip) into a model folder as their bytes stream in: OCI
// "modelcar" image layers and ModelPack tar layers. Nothing is buffered beyond one tar block
// and zlib's window, so a layer of any size streams through fixed memory.
//
// Every entry is checked before anything is written, as every other source's paths are:
//   - a name that is absolute or holds ".." is refused (INVALID_ARGUMENT), wherever it is;
//   - below the selected folder (UnpackOptions::folder), each path must pass
//     ValidateRelativeFilePath, and must not take the place of a file another layer
//     delivers raw (UnpackOptions::reserved);
//   - device files, FIFOs and sparse files are refused;
//   - a symbolic or hard link must point to a file inside the selected folder: it becomes a
//     copy of that file (the cache holds regular files only), and a link out is refused;
//   - OCI whiteouts (".wh.<name>", ".wh..wh..opq") remove what earlier layers unpacked.
// Entries outside the selected folder are read past (an image's operating system files).
// The tree is written through plain paths: the unpacker never creates a link, so no path
// below it can lead out of it.
//
// Blocking file I/O: use on a worker thread. Not thread-safe.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/source/source.h"  // UnpackedFile

namespace modelcache {

struct UnpackOptions {
  // Only entries below this folder of the archive are unpacked, at paths relative to it
  // ("models" for a KServe modelcar image). Empty: the whole archive.
  std::string folder;
  // Paths of files that other layers deliver (ModelPack raw layers): an entry at one of
  // them, above or below one, is refused.
  std::set<std::string> reserved;
  // More unpacked bytes than this fail with RESOURCE_EXHAUSTED (a decompression bomb).
  uint64_t max_output_bytes = UINT64_MAX;
};

class TarUnpacker {
 public:
  // `tree` exists; files are created below it.
  TarUnpacker(std::filesystem::path tree, UnpackOptions options);
  ~TarUnpacker();
  TarUnpacker(const TarUnpacker&) = delete;
  TarUnpacker& operator=(const TarUnpacker&) = delete;

  // Starts the next archive (layers apply in order). `what` names it in errors
  // ("layer sha256:ab12..").
  void StartArchive(bool gzip, std::string what);
  // The archive's next bytes, as fetched (compressed when gzip). Errors name the archive and
  // the entry; after one the unpacker is unusable.
  absl::Status Write(std::span<const std::byte> data);
  // After the archive's last byte: INVALID_ARGUMENT when it ended inside an entry or inside
  // the gzip stream.
  absl::Status FinishArchive();

  // After the last archive: links become copies of their targets, and the files every
  // archive left, sorted by path.
  absl::StatusOr<std::vector<UnpackedFile>> Finish();

  uint64_t output_bytes() const { return output_bytes_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint64_t output_bytes_ = 0;
};

}  // namespace modelcache
