#include "agent/fill/resume_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/fill/chunk_planner.h"

namespace modelcache {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

SourceFile File(std::string path, uint64_t size, std::string etag = "\"e1\"") {
  SourceFile file;
  file.path = std::move(path);
  file.size = size;
  file.etag = std::move(etag);
  return file;
}

v1::FillJournal Journal(std::string source = "http://origin/m/") {
  v1::FillJournal journal;
  journal.set_name("m");
  journal.set_version("v1");
  journal.set_source(std::move(source));
  return journal;
}

v1::FillJournal::File* Add(v1::FillJournal& journal, const std::string& path, uint64_t size,
                           uint64_t committed, std::vector<ByteRange> written,
                           std::string etag = "\"e1\"") {
  auto* file = journal.add_files();
  file->set_path(path);
  file->set_size(size);
  file->set_etag(std::move(etag));
  file->set_committed_bytes(committed);
  for (const ByteRange& range : written) {
    auto* entry = file->add_written();
    entry->set_offset(range.offset);
    entry->set_length(range.length);
  }
  return file;
}

std::vector<FileResume> Plan(const std::vector<SourceFile>& files, const v1::FillJournal* journal) {
  return PlanResume(files, journal, "m", "v1", "http://origin/m/");
}

TEST(ResumePlan, KeepsThePrefixAndTheChunksWrittenPastIt) {
  v1::FillJournal journal = Journal();
  Add(journal, "a.bin", 100, 20, {{40, 10}, {60, 20}});
  std::vector<FileResume> plan = Plan({File("a.bin", 100)}, &journal);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].prefix, 20u);
  EXPECT_THAT(plan[0].written, ElementsAre(ByteRange{40, 10}, ByteRange{60, 20}));
  EXPECT_EQ(plan[0].Bytes(), 50u);
}

TEST(ResumePlan, AnOldJournalWithoutWrittenChunksKeepsItsPrefix) {
  v1::FillJournal journal = Journal();
  Add(journal, "a.bin", 100, 30, {});
  std::vector<FileResume> plan = Plan({File("a.bin", 100)}, &journal);
  EXPECT_EQ(plan[0], (FileResume{30, {}}));
}

TEST(ResumePlan, NothingIsKeptWithoutAMatchingJournal) {
  v1::FillJournal other_source = Journal("http://elsewhere/m/");
  Add(other_source, "a.bin", 100, 20, {{40, 10}});
  EXPECT_EQ(Plan({File("a.bin", 100)}, &other_source)[0], FileResume{});
  EXPECT_EQ(Plan({File("a.bin", 100)}, nullptr)[0], FileResume{});
  v1::FillJournal other_model = Journal();
  other_model.set_version("v2");
  Add(other_model, "a.bin", 100, 20, {});
  EXPECT_EQ(Plan({File("a.bin", 100)}, &other_model)[0], FileResume{});
}

TEST(ResumePlan, AFileThatChangedAtTheSourceStartsOver) {
  v1::FillJournal journal = Journal();
  Add(journal, "size.bin", 100, 20, {{40, 10}});
  Add(journal, "etag.bin", 100, 20, {{40, 10}});
  Add(journal, "same.bin", 100, 20, {{40, 10}});
  std::vector<FileResume> plan = Plan(
      {File("size.bin", 101), File("etag.bin", 100, "\"e2\""), File("new.bin", 5), File("same.bin", 100)},
      &journal);
  EXPECT_EQ(plan[0], FileResume{});
  EXPECT_EQ(plan[1], FileResume{});
  EXPECT_EQ(plan[2], FileResume{});
  EXPECT_EQ(plan[3].Bytes(), 30u);
}

TEST(ResumePlan, BadRangesAreDroppedClippedOrMerged) {
  v1::FillJournal journal = Journal();
  Add(journal, "a.bin", 100, 20,
      {{90, 20},              // runs past the end: dropped
       {0, 10},               // inside the prefix: dropped
       {15, 10},              // overlaps the prefix: clipped to 20..25
       {50, 0},               // empty: dropped
       {40, 10}, {50, 5},     // touching: merged
       {60, 10}, {65, 10},    // overlapping: merged
       {UINT64_MAX - 1, 5}});  // wraps around: dropped
  std::vector<FileResume> plan = Plan({File("a.bin", 100)}, &journal);
  EXPECT_EQ(plan[0].prefix, 20u);
  EXPECT_THAT(plan[0].written, ElementsAre(ByteRange{20, 5}, ByteRange{40, 15}, ByteRange{60, 15}));
}

TEST(ResumePlan, AJournalPrefixPastTheSizeIsClipped) {
  v1::FillJournal journal = Journal();
  Add(journal, "a.bin", 100, 500, {});
  EXPECT_EQ(Plan({File("a.bin", 100)}, &journal)[0].prefix, 100u);
}

TEST(ResumePlan, OnlyTheGapsAreFetched) {
  std::vector<uint64_t> sizes = {100, 10, 30};
  std::vector<FileResume> present = {FileResume{20, {{40, 10}, {60, 40}}},  // gaps 20..40, 50..60
                                     FileResume{10, {}},                     // complete
                                     FileResume{0, {{0, 5}}}};              // gap 5..30
  absl::StatusOr<std::vector<PlannedChunk>> chunks = PlanChunks(sizes, present, 16);
  ASSERT_TRUE(chunks.ok()) << chunks.status();
  EXPECT_THAT(*chunks, ElementsAre(PlannedChunk{0, 20, 16}, PlannedChunk{0, 36, 4},
                                   PlannedChunk{0, 50, 10}, PlannedChunk{2, 5, 16},
                                   PlannedChunk{2, 21, 9}));
}

TEST(ResumePlan, PresentBytesThatDoNotFitTheFileAreRefused) {
  std::vector<uint64_t> sizes = {100};
  std::vector<FileResume> past_end = {FileResume{0, {{90, 20}}}};
  EXPECT_EQ(PlanChunks(sizes, past_end, 16).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<FileResume> unsorted = {FileResume{0, {{50, 10}, {10, 10}}}};
  EXPECT_EQ(PlanChunks(sizes, unsorted, 16).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<FileResume> into_prefix = {FileResume{30, {{10, 10}}}};
  EXPECT_EQ(PlanChunks(sizes, into_prefix, 16).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ResumePlan, MergeRangesSortsAndJoins) {
  EXPECT_THAT(MergeRanges({{30, 5}, {10, 10}, {20, 5}, {0, 0}}),
              ElementsAre(ByteRange{10, 15}, ByteRange{30, 5}));
  EXPECT_THAT(MergeRanges({}), IsEmpty());
}

// The journal a resumed fill starts with keeps exactly what the plan keeps, and the byte
// counts split the kept bytes into prefixes and written chunks.
TEST(ResumePlan, StartingJournalKeepsWhatThePlanKeeps) {
  v1::FillJournal journal = Journal();
  Add(journal, "a.bin", 100, 20, {{40, 10}});
  std::vector<SourceFile> files = {File("a.bin", 100), File("b.bin", 30)};
  std::vector<FileResume> plan = Plan(files, &journal);
  ResumeStart start = StartFrom(files, plan, "m", "v1", "http://origin/m/");
  EXPECT_EQ(start.journal.name(), "m");
  EXPECT_EQ(start.journal.source(), "http://origin/m/");
  ASSERT_EQ(start.journal.files_size(), 2);
  EXPECT_EQ(start.journal.files(0).path(), "a.bin");
  EXPECT_EQ(start.journal.files(0).committed_bytes(), 20u);
  ASSERT_EQ(start.journal.files(0).written_size(), 1);
  EXPECT_EQ(start.journal.files(0).written(0).offset(), 40u);
  EXPECT_EQ(start.journal.files(1).committed_bytes(), 0u);
  EXPECT_EQ(start.journal.files(1).etag(), "\"e1\"");
  EXPECT_THAT(start.resume_from, ElementsAre(20u, 0u));
  EXPECT_THAT(start.keep_past_prefix, ElementsAre(true, false));
  EXPECT_EQ(start.total_bytes, 130u);
  EXPECT_EQ(start.prefix_bytes, 20u);
  EXPECT_EQ(start.written_bytes, 10u);
}

}  // namespace
}  // namespace modelcache
