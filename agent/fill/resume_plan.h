#pragma once
// Resuming an interrupted fill: what of each listed file an earlier run left on disk, as its
// journal (staging/<name>@<version>/journal.json) records it. Pure: no I/O.
//
// The journal names, per file, a prefix that is written, fsynced and hashed, and the chunks
// past it that are written and fsynced but wait for an earlier chunk to be hashed. A resumed
// fill re-hashes the prefix from disk, hashes the written chunks from disk when their turn
// comes (the digest still sees every byte in order), and fetches only the rest
// (chunk_planner.h).
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "agent/source/source.h"
#include "modelcache/v1/manifest.pb.h"

namespace modelcache {

// Bytes [offset, offset + length) of one file.
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t end() const { return offset + length; }
  friend bool operator==(const ByteRange&, const ByteRange&) = default;
};

// What of one file is on disk already.
struct FileResume {
  uint64_t prefix = 0;             // [0, prefix): written, fsynced and hashed
  std::vector<ByteRange> written;  // past the prefix: sorted, disjoint, none touching another
  // prefix plus the bytes of `written`.
  uint64_t Bytes() const;
  friend bool operator==(const FileResume&, const FileResume&) = default;
};

// For each of `files` (the new listing, in its order): what the journal says is on disk. A
// file keeps nothing unless `journal` (null: none could be read) is for name@version from
// `source_uri` and lists the file with the same path, size and etag. Of the written ranges,
// empty ones, ones that run past the file's end and the parts inside the prefix are dropped,
// and overlapping or touching ones are merged.
std::vector<FileResume> PlanResume(std::span<const SourceFile> files,
                                   const v1::FillJournal* journal, std::string_view name,
                                   std::string_view version, std::string_view source_uri);

// How a fill starts from `resume` (PlanResume's answer for `files`): the journal it writes
// first (every listed file with what is kept of it), where each file's writer resumes and
// whether it keeps the chunks written past its prefix, and byte counts for the space it
// reserves and its log line.
struct ResumeStart {
  v1::FillJournal journal;
  std::vector<uint64_t> resume_from;   // per file: the prefix kept
  std::vector<bool> keep_past_prefix;  // per file: written chunks past the prefix are kept
  uint64_t total_bytes = 0;            // every listed file
  uint64_t prefix_bytes = 0;           // kept as prefixes
  uint64_t written_bytes = 0;          // kept past the prefixes
};
ResumeStart StartFrom(std::span<const SourceFile> files, std::span<const FileResume> resume,
                      std::string_view name, std::string_view version,
                      std::string_view source_uri);

// Sorted, disjoint ranges with touching ones merged; empty ones dropped.
std::vector<ByteRange> MergeRanges(std::vector<ByteRange> ranges);

}  // namespace modelcache
