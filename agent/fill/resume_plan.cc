#include "agent/fill/resume_plan.h"

#include <algorithm>
#include <map>
#include <string>

namespace modelcache {

uint64_t FileResume::Bytes() const {
  uint64_t bytes = prefix;
  for (const ByteRange& range : written) bytes += range.length;
  return bytes;
}

std::vector<ByteRange> MergeRanges(std::vector<ByteRange> ranges) {
  std::erase_if(ranges, [](const ByteRange& range) { return range.length == 0; });
  std::sort(ranges.begin(), ranges.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  std::vector<ByteRange> merged;
  for (const ByteRange& range : ranges) {
    if (!merged.empty() && range.offset <= merged.back().end()) {
      const uint64_t end = std::max(merged.back().end(), range.end());
      merged.back().length = end - merged.back().offset;
    } else {
      merged.push_back(range);
    }
  }
  return merged;
}

std::vector<FileResume> PlanResume(std::span<const SourceFile> files,
                                   const v1::FillJournal* journal, std::string_view name,
                                   std::string_view version, std::string_view source_uri) {
  std::vector<FileResume> plan(files.size());
  if (journal == nullptr || journal->name() != name || journal->version() != version ||
      journal->source() != source_uri) {
    return plan;
  }
  std::map<std::string, const v1::FillJournal::File*, std::less<>> journaled;
  for (const v1::FillJournal::File& file : journal->files()) journaled[file.path()] = &file;
  for (size_t i = 0; i < files.size(); ++i) {
    const SourceFile& file = files[i];
    auto found = journaled.find(file.path);
    if (found == journaled.end()) continue;
    const v1::FillJournal::File& entry = *found->second;
    if (entry.size() != file.size || entry.etag() != file.etag) continue;  // changed: start over
    FileResume& resume = plan[i];
    resume.prefix = std::min(entry.committed_bytes(), file.size);
    std::vector<ByteRange> written;
    for (const v1::FillJournal::Range& range : entry.written()) {
      // Checked without overflow: a range must lie inside the file.
      if (range.offset() > file.size || range.length() > file.size - range.offset()) continue;
      ByteRange kept{range.offset(), range.length()};
      if (kept.end() <= resume.prefix) continue;
      if (kept.offset < resume.prefix) kept = {resume.prefix, kept.end() - resume.prefix};
      written.push_back(kept);
    }
    resume.written = MergeRanges(std::move(written));
  }
  return plan;
}

ResumeStart StartFrom(std::span<const SourceFile> files, std::span<const FileResume> resume,
                      std::string_view name, std::string_view version,
                      std::string_view source_uri) {
  ResumeStart start;
  start.journal.set_name(std::string(name));
  start.journal.set_version(std::string(version));
  start.journal.set_source(std::string(source_uri));
  for (size_t i = 0; i < files.size(); ++i) {
    const SourceFile& file = files[i];
    const FileResume& kept = resume[i];
    start.resume_from.push_back(kept.prefix);
    start.keep_past_prefix.push_back(!kept.written.empty());
    start.total_bytes += file.size;
    start.prefix_bytes += kept.prefix;
    start.written_bytes += kept.Bytes() - kept.prefix;
    v1::FillJournal::File* entry = start.journal.add_files();
    entry->set_path(file.path);
    entry->set_size(file.size);
    entry->set_etag(file.etag);
    entry->set_committed_bytes(kept.prefix);
    for (const ByteRange& range : kept.written) {
      v1::FillJournal::Range* written = entry->add_written();
      written->set_offset(range.offset);
      written->set_length(range.length);
    }
  }
  return start;
}

}  // namespace modelcache
