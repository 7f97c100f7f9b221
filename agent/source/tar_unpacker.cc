#include "agent/source/tar_unpacker.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <vector>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

#include "common/split.h"
#include "common/fs.h"
#include "common/names.h"
#include "common/sha256.h"
#include "common/split.h"
#include "common/status_macros.h"
#include "common/concat.h"

namespace modelcache {
namespace {

constexpr size_t kBlock = 512;
constexpr size_t kInflateBuffer = 256 * 1024;
constexpr size_t kMaxMetadataBytes = 1 << 20;  // a long name or pax header larger than this is refused
constexpr int kMaxLinkDepth = 16;

std::string CString(const char* field, size_t size) {
  return std::string(field, strnlen(field, size));
}

// A numeric header field: octal text, or base-256 (GNU) when the high bit of the first byte
// is set. nullopt when malformed.
std::optional<uint64_t> ParseNumber(const unsigned char* field, size_t size) {
  if (field[0] & 0x80) {
    uint64_t value = field[0] & 0x7f;
    for (size_t i = 1; i < size; ++i) {
      if (value >> 56) return std::nullopt;
      value = (value << 8) | field[i];
    }
    return value;
  }
  uint64_t value = 0;
  size_t i = 0;
  while (i < size && (field[i] == ' ' || field[i] == '\0')) ++i;
  bool digits = false;
  for (; i < size && field[i] >= '0' && field[i] <= '7'; ++i) {
    if (value >> 60) return std::nullopt;
    value = value * 8 + (field[i] - '0');
    digits = true;
  }
  for (; i < size; ++i) {
    if (field[i] != ' ' && field[i] != '\0') return std::nullopt;
  }
  return digits ? std::optional<uint64_t>(value) : std::optional<uint64_t>(0);
}

bool ChecksumMatches(const unsigned char* block) {
  std::optional<uint64_t> stored = ParseNumber(block + 148, 8);
  if (!stored) return false;
  uint64_t unsigned_sum = 0;
  int64_t signed_sum = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    const bool in_field = i >= 148 && i < 156;
    unsigned_sum += in_field ? ' ' : block[i];
    signed_sum += in_field ? ' ' : static_cast<signed char>(block[i]);
  }
  return *stored == unsigned_sum || static_cast<int64_t>(*stored) == signed_sum;
}

// The '/'-separated parts of a normalized archive path, or an error for an absolute path or
// one with "..". "./a//b/" is {"a", "b"}.
absl::StatusOr<std::vector<std::string>> ArchivePathParts(std::string_view name) {
  if (name.starts_with('/')) return absl::InvalidArgumentError("absolute path");
  std::vector<std::string> parts;
  for (std::string_view part : SplitOn(name, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") return absl::InvalidArgumentError("path holds \"..\"");
    parts.emplace_back(part);
  }
  return parts;
}

std::string Join(const std::vector<std::string>& parts, size_t begin = 0, size_t end = SIZE_MAX) {
  std::string out;
  for (size_t i = begin; i < std::min(end, parts.size()); ++i) out += Concat(i > begin ? "/" : "", parts[i]);
  return out;
}

bool IsBelow(std::string_view path, std::string_view folder) {
  return path.size() > folder.size() && path.starts_with(folder) && path[folder.size()] == '/';
}

}  // namespace

struct TarUnpacker::Impl {
  enum class State { kHeader, kData, kPadding, kMetadata, kEnd };
  enum class Metadata { kLongName, kLongLink, kPax, kIgnored };

  Impl(std::filesystem::path tree_in, UnpackOptions options_in)
      : tree(std::move(tree_in)), options(std::move(options_in)) {
    if (!options.folder.empty()) {
      auto parts = ArchivePathParts(options.folder);
      folder_parts = parts.ok() ? *parts : std::vector<std::string>{options.folder};
    }
  }
  ~Impl() {
    CloseFile();
    if (inflating) inflateEnd(&zlib);
  }

  absl::Status Fail(std::string_view entry, const absl::Status& status) {
    failed = true;
    return absl::Status(status.code(),
                        entry.empty() ? Concat(what, ": ", status.message())
                                      : Concat(what, ": entry ", entry, ": ", status.message()));
  }

  // The path below the selected folder: "" for the folder itself, nullopt outside it.
  std::optional<std::string> Relative(const std::vector<std::string>& parts) const {
    if (parts.size() < folder_parts.size()) return std::nullopt;
    if (!std::equal(folder_parts.begin(), folder_parts.end(), parts.begin())) return std::nullopt;
    return Join(parts, folder_parts.size());
  }

  absl::Status Feed(std::span<const std::byte> data);
  absl::Status Inflate(std::span<const std::byte> data);
  absl::Status ConsumeTar(const unsigned char* data, size_t size);
  absl::Status ProcessHeader();
  absl::Status BeginEntry(char type, std::string name, std::string link_name, uint64_t size);
  absl::Status CheckModelPath(const std::string& relative, const std::string& entry);
  absl::Status OpenFile(const std::string& relative, const std::string& entry, uint64_t size);
  absl::Status WriteData(const unsigned char* data, size_t size);
  absl::Status EndEntry();
  void CloseFile();
  absl::Status Whiteout(const std::string& relative_folder, const std::string& name, const std::string& entry);
  void Forget(const std::string& relative, bool include_self, bool only_earlier_layers);
  absl::Status ApplyPax(std::string_view records);

  std::filesystem::path tree;
  UnpackOptions options;
  std::vector<std::string> folder_parts;
  std::string what;
  bool failed = false;
  int layer = 0;

  bool gzip = false;
  bool inflating = false;
  bool gzip_member_ended = false;
  z_stream zlib{};
  std::vector<unsigned char> inflated = std::vector<unsigned char>(kInflateBuffer);

  State state = State::kHeader;
  std::array<unsigned char, kBlock> block{};
  size_t block_fill = 0;
  int zero_blocks = 0;
  uint64_t remaining = 0;  // data bytes of the current entry or metadata
  uint64_t padding = 0;
  Metadata metadata_kind = Metadata::kIgnored;
  std::string metadata;
  std::optional<std::string> long_name, long_link, pax_path, pax_link;
  std::optional<uint64_t> pax_size;

  // The regular file being written.
  int fd = -1;
  std::string file_path;   // relative
  std::string file_entry;  // as named in the archive
  Sha256 sha;
  uint64_t file_size = 0;
  bool skipping = false;  // data of an entry outside the folder

  uint64_t* output_bytes = nullptr;
  std::map<std::string, UnpackedFile> files;      // relative path -> file
  std::map<std::string, int> file_layers;         // relative path -> layer that wrote it
  std::map<std::string, std::string> links;       // relative path -> relative target
  std::map<std::string, std::string> link_entries;  // relative path -> entry name (messages)
};

absl::Status TarUnpacker::Impl::Feed(std::span<const std::byte> data) {
  if (failed) return absl::FailedPreconditionError(Concat(what, ": unpacker failed before"));
  if (gzip) return Inflate(data);
  return ConsumeTar(reinterpret_cast<const unsigned char*>(data.data()), data.size());
}

absl::Status TarUnpacker::Impl::Inflate(std::span<const std::byte> data) {
  zlib.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(data.data()));
  zlib.avail_in = static_cast<uInt>(data.size());
  while (zlib.avail_in > 0) {
    if (gzip_member_ended) {
      // Concatenated gzip members (pigz, some registries) make one stream.
      if (inflateReset(&zlib) != Z_OK) return Fail("", absl::InternalError("inflateReset failed"));
      gzip_member_ended = false;
    }
    zlib.next_out = inflated.data();
    zlib.avail_out = static_cast<uInt>(inflated.size());
    const int result = inflate(&zlib, Z_NO_FLUSH);
    if (result != Z_OK && result != Z_STREAM_END && result != Z_BUF_ERROR) {
      return Fail("", absl::InvalidArgumentError(Concat(
                          "not a valid gzip stream (", zlib.msg != nullptr ? zlib.msg : "zlib error", ")")));
    }
    const size_t produced = inflated.size() - zlib.avail_out;
    RETURN_IF_ERROR(ConsumeTar(inflated.data(), produced));
    if (result == Z_STREAM_END) gzip_member_ended = true;
    if (result == Z_BUF_ERROR && produced == 0) break;
  }
  return absl::OkStatus();
}

absl::Status TarUnpacker::Impl::ConsumeTar(const unsigned char* data, size_t size) {
  while (size > 0) {
    switch (state) {
      case State::kEnd:
        return absl::OkStatus();  // after the end-of-archive blocks: padding, read past
      case State::kHeader: {
        const size_t take = std::min(size, kBlock - block_fill);
        std::memcpy(block.data() + block_fill, data, take);
        block_fill += take;
        data += take;
        size -= take;
        if (block_fill == kBlock) {
          block_fill = 0;
          RETURN_IF_ERROR(ProcessHeader());
        }
        break;
      }
      case State::kData:
      case State::kMetadata: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(size, remaining));
        if (state == State::kData) {
          RETURN_IF_ERROR(WriteData(data, take));
        } else if (metadata_kind != Metadata::kIgnored) {
          metadata.append(reinterpret_cast<const char*>(data), take);
        }
        data += take;
        size -= take;
        remaining -= take;
        if (remaining == 0) {
          if (state == State::kData) {
            RETURN_IF_ERROR(EndEntry());
          } else {
            std::string text = metadata.substr(0, strnlen(metadata.data(), metadata.size()));
            if (metadata_kind == Metadata::kLongName) long_name = text;
            if (metadata_kind == Metadata::kLongLink) long_link = text;
            if (metadata_kind == Metadata::kPax) RETURN_IF_ERROR(ApplyPax(metadata));
            metadata.clear();
          }
          state = padding > 0 ? State::kPadding : State::kHeader;
        }
        break;
      }
      case State::kPadding: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(size, padding));
        data += take;
        size -= take;
        padding -= take;
        if (padding == 0) state = State::kHeader;
        break;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status TarUnpacker::Impl::ApplyPax(std::string_view records) {
  // "<length> <key>=<value>\n", the length counting the whole record.
  while (!records.empty()) {
    const size_t space = records.find(' ');
    uint64_t length = 0;
    if (space == std::string_view::npos || space == 0) break;
    for (char c : records.substr(0, space)) {
      if (c < '0' || c > '9') return Fail("", absl::InvalidArgumentError("malformed pax header"));
      length = length * 10 + (c - '0');
    }
    if (length <= space + 1 || length > records.size()) {
      return Fail("", absl::InvalidArgumentError("malformed pax header"));
    }
    std::string_view record = records.substr(space + 1, length - space - 1);
    records.remove_prefix(length);
    if (record.ends_with('\n')) record.remove_suffix(1);
    const size_t equals = record.find('=');
    if (equals == std::string_view::npos) continue;
    const std::string_view key = record.substr(0, equals);
    const std::string value(record.substr(equals + 1));
    if (key == "path") pax_path = value;
    if (key == "linkpath") pax_link = value;
    if (key == "size") {
      uint64_t number = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return Fail("", absl::InvalidArgumentError("malformed pax size"));
        number = number * 10 + (c - '0');
      }
      pax_size = number;
    }
    if (key.starts_with("GNU.sparse")) {
      return Fail(pax_path.value_or(""), absl::InvalidArgumentError("sparse files are not supported"));
    }
  }
  return absl::OkStatus();
}

absl::Status TarUnpacker::Impl::ProcessHeader() {
  if (std::all_of(block.begin(), block.end(), [](unsigned char c) { return c == 0; })) {
    if (++zero_blocks == 2) state = State::kEnd;
    return absl::OkStatus();
  }
  zero_blocks = 0;
  if (!ChecksumMatches(block.data())) {
    return Fail("", absl::InvalidArgumentError("not a tar archive (bad header checksum)"));
  }
  const char* header = reinterpret_cast<const char*>(block.data());
  std::string name = CString(header, 100);
  const bool posix = std::memcmp(header + 257, "ustar\0", 6) == 0;
  if (posix) {
    std::string prefix = CString(header + 345, 155);
    if (!prefix.empty()) name = Concat(prefix, "/", name);
  }
  std::optional<uint64_t> size = ParseNumber(block.data() + 124, 12);
  if (!size) return Fail(name, absl::InvalidArgumentError("bad size field"));
  const char type = header[156];
  std::string link_name = CString(header + 157, 100);

  if (type == 'L' || type == 'K' || type == 'x' || type == 'g') {
    if (*size > kMaxMetadataBytes) {
      return Fail(name, absl::InvalidArgumentError("long name or pax header too large"));
    }
    metadata_kind = type == 'L'   ? Metadata::kLongName
                    : type == 'K' ? Metadata::kLongLink
                    : type == 'x' ? Metadata::kPax
                                  : Metadata::kIgnored;
    metadata.clear();
    remaining = *size;
    padding = (kBlock - *size % kBlock) % kBlock;
    state = *size > 0 ? State::kMetadata : State::kHeader;
    return absl::OkStatus();
  }
  if (long_name) name = *std::exchange(long_name, std::nullopt);
  if (pax_path) name = *std::exchange(pax_path, std::nullopt);
  if (long_link) link_name = *std::exchange(long_link, std::nullopt);
  if (pax_link) link_name = *std::exchange(pax_link, std::nullopt);
  if (pax_size) size = *std::exchange(pax_size, std::nullopt);
  return BeginEntry(type, std::move(name), std::move(link_name), *size);
}

absl::Status TarUnpacker::Impl::CheckModelPath(const std::string& relative, const std::string& entry) {
  if (absl::Status valid = ValidateRelativeFilePath(relative); !valid.ok()) return Fail(entry, valid);
  for (const std::string& reserved : options.reserved) {
    if (relative == reserved || IsBelow(relative, reserved) || IsBelow(reserved, relative)) {
      return Fail(entry, absl::InvalidArgumentError(
                             Concat("takes the place of ", reserved, ", which another layer holds")));
    }
  }
  for (size_t slash = relative.find('/'); slash != std::string::npos; slash = relative.find('/', slash + 1)) {
    const std::string parent = relative.substr(0, slash);
    if (links.count(parent) != 0) {
      return Fail(entry, absl::InvalidArgumentError(Concat("goes through the link ", parent)));
    }
    if (files.count(parent) != 0) {
      // A later layer turns a file into a folder: the file goes.
      Forget(parent, /*include_self=*/true, /*only_earlier_layers=*/false);
    }
  }
  return absl::OkStatus();
}

absl::Status TarUnpacker::Impl::BeginEntry(char type, std::string name, std::string link_name, uint64_t size) {
  const bool has_data = type == '0' || type == '\0' || type == '7';
  auto skip_data = [&] {
    skipping = true;
    remaining = has_data ? size : 0;
    padding = (kBlock - remaining % kBlock) % kBlock;
    state = remaining > 0 ? State::kData : (padding > 0 ? State::kPadding : State::kHeader);
    return absl::OkStatus();
  };
  absl::StatusOr<std::vector<std::string>> parts = ArchivePathParts(name);
  if (!parts.ok()) return Fail(name, parts.status());
  if (type == '3' || type == '4') return Fail(name, absl::InvalidArgumentError("device files are not allowed"));
  if (type == '6') return Fail(name, absl::InvalidArgumentError("FIFOs are not allowed"));
  if (type == 'S') return Fail(name, absl::InvalidArgumentError("sparse files are not supported"));
  if (!has_data && type != '1' && type != '2' && type != '5') {
    return Fail(name, absl::InvalidArgumentError(Concat("unsupported entry type '", std::string(1, type), "'")));
  }

  std::optional<std::string> relative = Relative(*parts);
  // Whiteouts name what an earlier layer unpacked.
  if (!parts->empty() && parts->back().starts_with(".wh.")) {
    std::vector<std::string> folder(parts->begin(), parts->end() - 1);
    std::optional<std::string> relative_folder = Relative(folder);
    if (relative_folder) RETURN_IF_ERROR(Whiteout(*relative_folder, parts->back().substr(4), name));
    return skip_data();
  }
  if (!relative || relative->empty()) return skip_data();

  if (type == '5') {
    RETURN_IF_ERROR(CheckModelPath(*relative, name));
    if (files.count(*relative) != 0 || links.count(*relative) != 0) {
      Forget(*relative, /*include_self=*/true, /*only_earlier_layers=*/false);
    }
    if (absl::Status made = CreateDirectories(tree / *relative); !made.ok()) return Fail(name, made);
    return skip_data();
  }
  if (type == '1' || type == '2') {
    RETURN_IF_ERROR(CheckModelPath(*relative, name));
    // A symlink's target is relative to its folder (or to the image's root when absolute); a
    // hard link's names another entry of the archive.
    std::vector<std::string> target;
    std::string_view text = link_name;
    if (type == '2' && !text.starts_with('/')) target.assign(parts->begin(), parts->end() - 1);
    bool outside = false;
    for (std::string_view part : SplitOn(text, '/')) {
      if (part.empty() || part == ".") continue;
      if (part == "..") {
        if (target.empty()) {
          outside = true;
          break;
        }
        target.pop_back();
      } else {
        target.emplace_back(part);
      }
    }
    std::optional<std::string> target_relative = outside ? std::nullopt : Relative(target);
    if (!target_relative || target_relative->empty()) {
      return Fail(name, absl::InvalidArgumentError(Concat(
                            type == '2' ? "symlink" : "hard link", " to ", link_name,
                            " points outside the model folder")));
    }
    Forget(*relative, /*include_self=*/true, /*only_earlier_layers=*/false);
    links[*relative] = *target_relative;
    link_entries[*relative] = name;
    return skip_data();
  }
  RETURN_IF_ERROR(CheckModelPath(*relative, name));
  RETURN_IF_ERROR(OpenFile(*relative, name, size));
  skipping = false;
  remaining = size;
  padding = (kBlock - size % kBlock) % kBlock;
  if (size == 0) {
    RETURN_IF_ERROR(EndEntry());
    state = State::kHeader;
    return absl::OkStatus();
  }
  state = State::kData;
  return absl::OkStatus();
}

absl::Status TarUnpacker::Impl::OpenFile(const std::string& relative, const std::string& entry, uint64_t size) {
  if (*output_bytes + size > options.max_output_bytes) {
    return Fail(entry, absl::ResourceExhaustedError(Concat(
                           "unpacks to more than ", options.max_output_bytes, " bytes")));
  }
  Forget(relative, /*include_self=*/true, /*only_earlier_layers=*/false);
  const std::filesystem::path target = tree / relative;
  if (IsDirectory(target)) {
    if (absl::Status removed = RemoveTree(target); !removed.ok()) return Fail(entry, removed);
  }
  if (absl::Status made = CreateDirectories(target.parent_path()); !made.ok()) return Fail(entry, made);
  fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return Fail(entry, ErrnoStatus(errno, "create", target));
  file_path = relative;
  file_entry = entry;
  file_size = size;
  sha = Sha256();
  *output_bytes += size;
  return absl::OkStatus();
}

absl::Status TarUnpacker::Impl::WriteData(const unsigned char* data, size_t size) {
  if (skipping) return absl::OkStatus();
  sha.Update(std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size));
  while (size > 0) {
    const ssize_t written = ::write(fd, data, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      return Fail(file_entry, ErrnoStatus(errno, "write", tree / file_path));
    }
    data += written;
    size -= static_cast<size_t>(written);
  }
  return absl::OkStatus();
}

absl::Status TarUnpacker::Impl::EndEntry() {
  if (skipping) {
    skipping = false;
    return absl::OkStatus();
  }
  const int closing = std::exchange(fd, -1);
  const bool synced = ::fdatasync(closing) == 0;
  const int sync_errno = errno;
  ::close(closing);
  if (!synced) return Fail(file_entry, ErrnoStatus(sync_errno, "fdatasync", tree / file_path));
  files[file_path] = UnpackedFile{file_path, file_size, sha.FinishHex()};
  file_layers[file_path] = layer;
  return absl::OkStatus();
}

void TarUnpacker::Impl::CloseFile() {
  if (fd >= 0) ::close(std::exchange(fd, -1));
}

void TarUnpacker::Impl::Forget(const std::string& relative, bool include_self, bool only_earlier_layers) {
  auto drop = [&](auto& map, bool check_layer) {
    for (auto it = map.begin(); it != map.end();) {
      const bool match = (include_self && it->first == relative) || IsBelow(it->first, relative);
      const bool earlier = !check_layer || !only_earlier_layers || file_layers[it->first] < layer;
      it = match && earlier ? map.erase(it) : std::next(it);
    }
  };
  drop(files, true);
  drop(links, false);
}

absl::Status TarUnpacker::Impl::Whiteout(const std::string& relative_folder, const std::string& name,
                                        const std::string& entry) {
  if (name == ".wh..opq") {
    // Opaque folder: what earlier layers put there is hidden.
    std::vector<std::string> gone;
    for (const auto& [path, file] : files) {
      if ((relative_folder.empty() || IsBelow(path, relative_folder)) && file_layers[path] < layer) {
        gone.push_back(path);
      }
    }
    for (const std::string& path : gone) {
      files.erase(path);
      if (absl::Status removed = RemoveTree(tree / path); !removed.ok()) return Fail(entry, removed);
    }
    for (auto it = links.begin(); it != links.end();) {
      it = relative_folder.empty() || IsBelow(it->first, relative_folder) ? links.erase(it) : std::next(it);
    }
    return absl::OkStatus();
  }
  const std::string relative = relative_folder.empty() ? name : Concat(relative_folder, "/", name);
  if (absl::Status valid = ValidateRelativeFilePath(relative); !valid.ok()) return Fail(entry, valid);
  Forget(relative, /*include_self=*/true, /*only_earlier_layers=*/false);
  if (absl::Status removed = RemoveTree(tree / relative); !removed.ok()) return Fail(entry, removed);
  return absl::OkStatus();
}

TarUnpacker::TarUnpacker(std::filesystem::path tree, UnpackOptions options)
    : impl_(std::make_unique<Impl>(std::move(tree), std::move(options))) {
  impl_->output_bytes = &output_bytes_;
}

TarUnpacker::~TarUnpacker() = default;

void TarUnpacker::StartArchive(bool gzip, std::string what) {
  Impl& impl = *impl_;
  impl.CloseFile();
  if (impl.inflating) inflateEnd(&impl.zlib);
  impl.inflating = false;
  impl.what = std::move(what);
  impl.gzip = gzip;
  impl.gzip_member_ended = false;
  impl.state = Impl::State::kHeader;
  impl.block_fill = 0;
  impl.zero_blocks = 0;
  impl.remaining = impl.padding = 0;
  impl.long_name = impl.long_link = impl.pax_path = impl.pax_link = std::nullopt;
  impl.pax_size = std::nullopt;
  ++impl.layer;
  if (gzip) {
    impl.zlib = z_stream{};
    // 16 + MAX_WBITS: a gzip wrapper, not raw zlib.
    if (inflateInit2(&impl.zlib, 16 + MAX_WBITS) == Z_OK) {
      impl.inflating = true;
    } else {
      impl.failed = true;
    }
  }
}

absl::Status TarUnpacker::Write(std::span<const std::byte> data) { return impl_->Feed(data); }

absl::Status TarUnpacker::FinishArchive() {
  Impl& impl = *impl_;
  if (impl.failed) return absl::FailedPreconditionError(Concat(impl.what, ": unpacker failed before"));
  if (impl.gzip && !impl.gzip_member_ended) {
    return impl.Fail("", absl::InvalidArgumentError("the gzip stream ends early"));
  }
  const bool between_entries =
      (impl.state == Impl::State::kHeader && impl.block_fill == 0) || impl.state == Impl::State::kEnd;
  if (!between_entries) return impl.Fail("", absl::InvalidArgumentError("the archive ends inside an entry"));
  if (impl.inflating) inflateEnd(&impl.zlib);
  impl.inflating = false;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<UnpackedFile>> TarUnpacker::Finish() {
  Impl& impl = *impl_;
  if (impl.failed) return absl::FailedPreconditionError(Concat(impl.what, ": unpacker failed before"));
  for (const auto& [link, first_target] : impl.links) {
    const std::string& entry = impl.link_entries[link];
    std::string target = first_target;
    for (int depth = 0; depth < kMaxLinkDepth && impl.links.count(target) != 0; ++depth) {
      target = impl.links[target];
    }
    auto file = impl.files.find(target);
    if (file == impl.files.end()) {
      return impl.Fail(entry, absl::InvalidArgumentError(Concat(
                                  "link to ", first_target, ": not a file of the model (links to folders, ",
                                  "missing files and link loops are not supported)")));
    }
    if (output_bytes_ + file->second.size > impl.options.max_output_bytes) {
      return impl.Fail(entry, absl::ResourceExhaustedError(Concat(
                                  "unpacks to more than ", impl.options.max_output_bytes, " bytes")));
    }
    const std::filesystem::path from = impl.tree / target;
    const std::filesystem::path to = impl.tree / link;
    if (absl::Status made = CreateDirectories(to.parent_path()); !made.ok()) return impl.Fail(entry, made);
    std::error_code error;
    std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing, error);
    if (error) return impl.Fail(entry, ErrnoStatus(error.value(), "copy to", to));
    if (absl::Status synced = FsyncFile(to); !synced.ok()) return impl.Fail(entry, synced);
    output_bytes_ += file->second.size;
    impl.files[link] = UnpackedFile{link, file->second.size, file->second.sha256};
  }
  impl.links.clear();
  std::vector<UnpackedFile> out;
  for (const auto& [path, file] : impl.files) out.push_back(file);
  return out;
}

}  // namespace modelcache
