// FillJob against real sources: files on disk (file://) and a real nginx (http://).
#include "agent/fill/fill_job.h"

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/fill/range_fallback.h"
#include "agent/loop/event_loop.h"
#include "agent/store/layout.h"
#include "agent/store/manifest.h"
#include "agent/store/publish.h"
#include "agent/store/space.h"
#include "common/sha256.h"
#include "common/status_format.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/random_model.h"
#include "tests/testing/source_access.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

using ::testing::HasSubstr;
using testing::ModelFileSpec;

constexpr auto kFillTimeout = std::chrono::seconds(180);

struct FillOutcome {
  absl::StatusOr<v1::Manifest> result = absl::UnknownError("no result");
  std::vector<v1::EnsureProgress> progress;
};

class FillJobTest : public ::testing::Test {
 protected:
  FillJobTest() : layout_(cache_dir_.Path()) {}

  void SetUp() override {
    ASSERT_TRUE(layout_.CreateDirectories().ok());
    space_ = std::make_unique<SpaceReservations>(
        [root = layout_.Root()] { return ReadVolumeSpace(root); }, [] { return uint64_t{0}; },
        0);
    loop_.Start();
  }

  void TearDown() override {
    OnLoop([this] { job_.reset(); });
    loop_.Stop();
  }

  void OnLoop(std::function<void()> task) {
    std::promise<void> done;
    loop_.Post([&] {
      task();
      done.set_value();
    });
    done.get_future().wait();
  }

  // The origins: nginx on loopback, file:// sources in source_dir_ (fileSources).
  SourceOptions Sources() const { return testing::LoopbackSourceOptions({source_dir_.Path()}); }

  // Runs one fill to its end and returns its result and every progress it reported.
  FillOutcome Fill(const std::string& name, const std::string& version, const std::string& uri,
                   FillSettings settings) {
    auto outcome = std::make_shared<FillOutcome>();
    auto finished = std::make_shared<std::promise<void>>();
    OnLoop([&] {
      auto source = MakeSource(uri, Sources());
      if (!source.ok()) {
        outcome->result = source.status();
        finished->set_value();
        return;
      }
      FillRequest request{name, version, uri, std::move(source).value(), settings};
      job_ = std::make_unique<FillJob>(
          loop_, clock_, layout_, *space_, std::move(request),
          [outcome](const v1::EnsureProgress& progress) { outcome->progress.push_back(progress); },
          [outcome, finished](absl::StatusOr<v1::Manifest> result) {
            outcome->result = std::move(result);
            finished->set_value();
          });
      job_->Start();
    });
    if (finished->get_future().wait_for(kFillTimeout) != std::future_status::ready) {
      ADD_FAILURE() << "fill of " << name << "@" << version << " did not end";
      OnLoop([this] { job_.reset(); });
    }
    FillOutcome copy;
    OnLoop([&] { copy = *outcome; });
    return copy;
  }

  // The published model holds exactly `files`, with their digests, and its manifest says so.
  void ExpectPublished(const std::string& name, const std::string& version,
                       const std::vector<v1::ManifestFile>& files, const v1::Manifest& manifest) {
    EXPECT_EQ(manifest.name(), name);
    EXPECT_EQ(manifest.version(), version);
    uint64_t total = 0;
    std::map<std::string, std::string> digests;
    for (const auto& file : manifest.files()) digests[file.path()] = file.sha256();
    for (const auto& file : files) {
      total += file.size();
      std::filesystem::path published = layout_.ModelDir(name, version) / file.path();
      ASSERT_TRUE(std::filesystem::exists(published)) << published;
      EXPECT_EQ(std::filesystem::file_size(published), file.size()) << file.path();
      auto digest = Sha256OfFile(published);
      ASSERT_TRUE(digest.ok()) << digest.status();
      EXPECT_EQ(*digest, file.sha256()) << file.path();
      EXPECT_EQ(digests[file.path()], file.sha256()) << "manifest entry of " << file.path();
    }
    EXPECT_EQ(manifest.total_bytes(), total);
    EXPECT_EQ(manifest.files_size(), static_cast<int>(files.size()));

    auto on_disk = ReadManifest(layout_.ManifestPath(name, version));
    ASSERT_TRUE(on_disk.ok()) << on_disk.status();
    EXPECT_EQ(on_disk->SerializeAsString(), manifest.SerializeAsString());
    EXPECT_FALSE(std::filesystem::exists(layout_.StagingFor(name, version)));
  }

  static std::vector<v1::EnsureProgress::State> States(const FillOutcome& outcome) {
    std::vector<v1::EnsureProgress::State> states;
    for (const auto& progress : outcome.progress) {
      if (states.empty() || states.back() != progress.state()) states.push_back(progress.state());
    }
    return states;
  }

  static const v1::EnsureProgress* FirstFilling(const FillOutcome& outcome) {
    for (const auto& progress : outcome.progress) {
      if (progress.state() == v1::EnsureProgress::FILLING) return &progress;
    }
    return nullptr;
  }

  testing::TempDir cache_dir_;
  testing::TempDir source_dir_;
  CacheLayout layout_;
  SystemClock clock_;
  std::unique_ptr<SpaceReservations> space_;
  EventLoop loop_;
  std::unique_ptr<FillJob> job_;  // loop thread only
};

FillSettings SmallChunks(uint32_t concurrency) {
  FillSettings settings;
  settings.concurrency = concurrency;
  settings.chunk_size = 256 << 10;
  settings.journal_interval = std::chrono::milliseconds(50);
  settings.retry.initial_backoff = std::chrono::milliseconds(10);
  return settings;
}

TEST_F(FillJobTest, FillsSeveralFilesFromAFileSource) {
  auto files = testing::WriteRandomModel(source_dir_.Path(), {{"config.json", 1000},
                                                              {"weights/a.bin", (5 << 20) + 7},
                                                              {"weights/nested/b.bin", 3 << 20},
                                                              {"empty.txt", 0}});
  FillOutcome outcome = Fill("tiny", "1", "file://" + source_dir_.Path().string(), SmallChunks(4));

  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status();
  ExpectPublished("tiny", "1", files, *outcome.result);
  EXPECT_THAT(States(outcome),
              ::testing::ElementsAre(v1::EnsureProgress::QUEUED, v1::EnsureProgress::FILLING,
                                     v1::EnsureProgress::PUBLISHING));
  const auto& last = outcome.progress.back();
  EXPECT_EQ(last.bytes_done(), last.bytes_total());
  EXPECT_EQ(last.files_done(), 4u);
  EXPECT_EQ(last.files_total(), 4u);
  EXPECT_EQ(space_->ReservedBytes(), 0u) << "the reservation is returned after publishing";
}

TEST_F(FillJobTest, FillsALargeModelFromNginxFetchingEachRangeOnce) {
  const uint64_t big = 300ull << 20;
  auto files = testing::WriteRandomModel(
      source_dir_.Path(), {{"model.safetensors", big}, {"tokenizer.json", 123456}, {"README", 17}});
  ASSERT_TRUE(testing::WriteTestFile(source_dir_.Path() / "modelcache.json",
                                     testing::HttpListingJson(files)));
  auto nginx = testing::NginxServer::Start({.root = source_dir_.Path().string()});
  ASSERT_TRUE(nginx.ok()) << nginx.status();

  FillSettings settings;
  settings.concurrency = 8;
  settings.chunk_size = 8 << 20;
  FillOutcome outcome = Fill("big", "v2", (*nginx)->BaseUrl() + "/", settings);

  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status();
  ExpectPublished("big", "v2", files, *outcome.result);

  // Every byte of the big file came once, in ranges of at most chunk_size.
  uint64_t served = 0;
  std::set<std::string> ranges;
  for (const auto& record : (*nginx)->AccessLog()) {
    if (record.uri != "/model.safetensors") continue;
    EXPECT_EQ(record.status, 206) << record.range;
    EXPECT_LE(record.bytes, settings.chunk_size);
    EXPECT_TRUE(ranges.insert(record.range).second) << "range fetched twice: " << record.range;
    served += record.bytes;
  }
  EXPECT_EQ(served, big);
  EXPECT_EQ(ranges.size(), (big + settings.chunk_size - 1) / settings.chunk_size);
}

TEST_F(FillJobTest, Sha256MismatchIsDataLossAndPublishesNothing) {
  auto files = testing::WriteRandomModel(source_dir_.Path(),
                                         {{"config.json", 2000}, {"weights/a.bin", 3 << 20}});
  const std::string actual = files[1].sha256();
  files[1].set_sha256(std::string(64, 'f'));  // the listing claims another digest
  ASSERT_TRUE(testing::WriteTestFile(source_dir_.Path() / "modelcache.json",
                                     testing::HttpListingJson(files)));
  auto nginx = testing::NginxServer::Start({.root = source_dir_.Path().string()});
  ASSERT_TRUE(nginx.ok()) << nginx.status();

  FillOutcome outcome = Fill("x", "1", (*nginx)->BaseUrl() + "/", SmallChunks(4));

  ASSERT_FALSE(outcome.result.ok());
  EXPECT_EQ(outcome.result.status().code(), absl::StatusCode::kDataLoss) << outcome.result.status();
  EXPECT_THAT(std::string(outcome.result.status().message()),
              HasSubstr("model x@1: file weights/a.bin: sha256 mismatch (want " +
                        std::string(64, 'f') + ", got " + actual + ")"));
  EXPECT_FALSE(std::filesystem::exists(layout_.ModelDir("x", "1")));
  EXPECT_FALSE(std::filesystem::exists(layout_.StagingFor("x", "1")));
  EXPECT_EQ(space_->ReservedBytes(), 0u);
}

TEST_F(FillJobTest, FileMissingAtTheOriginFailsNamingItAndRemovesStaging) {
  auto files = testing::WriteRandomModel(source_dir_.Path(),
                                         {{"present.bin", 1 << 20}, {"missing.bin", 1 << 20}});
  std::filesystem::remove(source_dir_.Path() / "missing.bin");
  ASSERT_TRUE(testing::WriteTestFile(source_dir_.Path() / "modelcache.json",
                                     testing::HttpListingJson(files)));
  auto nginx = testing::NginxServer::Start({.root = source_dir_.Path().string()});
  ASSERT_TRUE(nginx.ok()) << nginx.status();

  FillOutcome outcome = Fill("gone", "1", (*nginx)->BaseUrl() + "/", SmallChunks(2));

  ASSERT_FALSE(outcome.result.ok());
  EXPECT_EQ(outcome.result.status().code(), absl::StatusCode::kNotFound) << outcome.result.status();
  EXPECT_THAT(std::string(outcome.result.status().message()),
              HasSubstr("model gone@1: file missing.bin: "));
  EXPECT_FALSE(std::filesystem::exists(layout_.ModelDir("gone", "1")));
  EXPECT_FALSE(std::filesystem::exists(layout_.StagingFor("gone", "1")));
}

TEST_F(FillJobTest, OriginErrorsExhaustRetriesAndKeepStagingForResume) {
  auto files = testing::WriteRandomModel(source_dir_.Path(),
                                         {{"fine.bin", 100'000}, {"broken.bin", 100'000}});
  ASSERT_TRUE(testing::WriteTestFile(source_dir_.Path() / "modelcache.json",
                                     testing::HttpListingJson(files)));
  testing::NginxOptions options;
  options.root = source_dir_.Path().string();
  options.locations.push_back({.prefix = "= /broken.bin", .return_status = 503});
  auto nginx = testing::NginxServer::Start(options);
  ASSERT_TRUE(nginx.ok()) << nginx.status();

  // One fetch at a time: fine.bin has arrived before broken.bin is first asked for.
  FillSettings settings = SmallChunks(1);
  settings.retry.max_attempts = 3;
  FillOutcome outcome = Fill("flaky", "1", (*nginx)->BaseUrl() + "/", settings);

  ASSERT_FALSE(outcome.result.ok());
  EXPECT_EQ(outcome.result.status().code(), absl::StatusCode::kUnavailable) << outcome.result.status();
  EXPECT_THAT(std::string(outcome.result.status().message()),
              HasSubstr("model flaky@1: file broken.bin: "));
  int attempts = 0;
  for (const auto& record : (*nginx)->AccessLog()) attempts += record.uri == "/broken.bin";
  EXPECT_EQ(attempts, 3);
  EXPECT_FALSE(std::filesystem::exists(layout_.ModelDir("flaky", "1")));
  auto journal = ReadJournal(layout_.JournalPath("flaky", "1"));
  ASSERT_TRUE(journal.ok()) << "staging and journal stay for a resume: " << journal.status();
  EXPECT_EQ(journal->source(), (*nginx)->BaseUrl() + "/");
  ASSERT_EQ(journal->files_size(), 2);
  EXPECT_EQ(journal->files(0).path(), "fine.bin");
  // Kept means hashed (committed) or written and waiting for its hash (written ranges, hashed
  // on resume): on a loaded machine the job may fail before fine.bin's hash step has run.
  uint64_t kept = journal->files(0).committed_bytes();
  for (const auto& range : journal->files(0).written()) kept += range.length();
  EXPECT_EQ(kept, 100'000u) << "the file that arrived is kept: " << journal->DebugString();
  EXPECT_EQ(journal->files(1).committed_bytes(), 0u);
  EXPECT_EQ(space_->ReservedBytes(), 0u);
}

// The model of the range tests: two files of many chunks and a small one, under `folder` of
// the source dir, with its listing.
std::vector<v1::ManifestFile> WriteRangeTestModel(const std::filesystem::path& folder) {
  auto files = testing::WriteRandomModel(
      folder, {{"model.bin", (6 << 20) + 1234}, {"extra.bin", (1 << 20) + 3}, {"config.json", 500}});
  EXPECT_TRUE(testing::WriteTestFile(folder / "modelcache.json", testing::HttpListingJson(files)));
  return files;
}

// A CDN edge or proxy that answers a range request with the whole file now and then (every
// 5th request on a connection here): each such answer is retried as a range, and the model
// arrives byte-exact, fetched as ranges only.
TEST_F(FillJobTest, StrayWholeFileAnswersAreRetriedAsRangesAndTheModelIsByteExact) {
  auto files = WriteRangeTestModel(source_dir_.Path() / "stray");
  testing::NginxOptions options;
  options.root = source_dir_.Path().string();
  options.locations.push_back({.prefix = "/stray/", .whole_file_every = 5});
  auto nginx = testing::NginxServer::Start(options);
  ASSERT_TRUE(nginx.ok()) << nginx.status();

  FillOutcome outcome = Fill("stray", "1", (*nginx)->BaseUrl() + "/stray/", SmallChunks(4));

  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status();
  ExpectPublished("stray", "1", files, *outcome.result);
  FillJob::Counters counters;
  OnLoop([&] { counters = job_->GetCounters(); });
  int stray = 0;
  for (const auto& record : (*nginx)->AccessLog()) {
    if (record.uri == "/stray/modelcache.json") continue;
    EXPECT_NE(record.range, "") << "no file was streamed: " << record.uri;
    stray += record.status == 200 && record.uri != "/stray/config.json";
  }
  EXPECT_GT(stray, 3);
  EXPECT_EQ(counters.ranges_ignored, static_cast<uint32_t>(stray));
  EXPECT_EQ(counters.whole_file_streams, 0u);
  EXPECT_GE(counters.chunk_retries, counters.ranges_ignored);
}

// An origin that ignores Range every time: after a few tries each file is taken as one
// stream (a GET without Range), as curl -o would, and the model arrives byte-exact.
TEST_F(FillJobTest, AnOriginThatAlwaysIgnoresRangeIsStreamedFileByFile) {
  auto files = WriteRangeTestModel(source_dir_.Path() / "norange");
  testing::NginxOptions options;
  options.root = source_dir_.Path().string();
  options.locations.push_back({.prefix = "/norange/", .max_ranges = 0});
  auto nginx = testing::NginxServer::Start(options);
  ASSERT_TRUE(nginx.ok()) << nginx.status();

  FillSettings settings = SmallChunks(4);
  FillOutcome outcome = Fill("norange", "1", (*nginx)->BaseUrl() + "/norange/", settings);

  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status();
  ExpectPublished("norange", "1", files, *outcome.result);
  FillJob::Counters counters;
  OnLoop([&] { counters = job_->GetCounters(); });
  EXPECT_GE(counters.whole_file_streams, 2u);
  EXPECT_GE(counters.ranges_ignored, 3u);
  // The big file: a few range requests answered with the whole file (aborted: those in
  // flight at the start, and retries sent before the third answer came), then exactly one
  // GET without Range.
  int requests = 0;
  int streams = 0;
  for (const auto& record : (*nginx)->AccessLog()) {
    if (record.uri != "/norange/model.bin") continue;
    ++requests;
    EXPECT_EQ(record.status, 200);
    streams += record.range.empty();
  }
  EXPECT_EQ(streams, 1);
  EXPECT_LE(requests, static_cast<int>(settings.concurrency + kIgnoredRangesBeforeStream));
}

// Out of attempts on a whole-file answer, the chunk's file is streamed instead of failing.
TEST_F(FillJobTest, WithOneAttemptPerChunkAStrayWholeFileAnswerStreamsTheFileInsteadOfFailing) {
  auto files = WriteRangeTestModel(source_dir_.Path() / "stray");
  testing::NginxOptions options;
  options.root = source_dir_.Path().string();
  options.locations.push_back({.prefix = "/stray/", .whole_file_every = 2});
  auto nginx = testing::NginxServer::Start(options);
  ASSERT_TRUE(nginx.ok()) << nginx.status();

  FillSettings settings = SmallChunks(2);
  settings.retry.max_attempts = 1;
  FillOutcome outcome = Fill("once", "1", (*nginx)->BaseUrl() + "/stray/", settings);

  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status();
  ExpectPublished("once", "1", files, *outcome.result);
  FillJob::Counters counters;
  OnLoop([&] { counters = job_->GetCounters(); });
  EXPECT_GE(counters.whole_file_streams, 1u);
}

TEST_F(FillJobTest, ModelPublishedMeanwhileIsTakenWithoutFetching) {
  // Another agent of the shared volume published the model after our index was built.
  ASSERT_TRUE(testing::WriteTestFile(layout_.StagingTree("shared", "1") / "w.bin", "weights"));
  v1::Manifest theirs;
  theirs.set_name("shared");
  theirs.set_version("1");
  theirs.set_source("file:///their/source");
  theirs.set_total_bytes(7);
  auto* file = theirs.add_files();
  file->set_path("w.bin");
  file->set_size(7);
  file->set_sha256(std::string(64, 'a'));
  ASSERT_TRUE(Publish(layout_, theirs).ok());

  // Our source does not exist: listing it would fail.
  FillOutcome outcome = Fill("shared", "1", "file://" + source_dir_.Path().string() + "/nothing",
                             SmallChunks(2));

  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status();
  EXPECT_EQ(outcome.result->source(), "file:///their/source");
  EXPECT_EQ(space_->ReservedBytes(), 0u);
}

// Puts the first `prefix` bytes of the source file into staging with a journal that says
// they are committed, as an interrupted fill leaves them.
void StageInterruptedFill(const CacheLayout& layout, const std::string& name,
                          const std::string& version, const std::string& uri,
                          const SourceFile& file, const std::filesystem::path& source_path,
                          uint64_t prefix) {
  std::string contents = testing::ReadTestFile(source_path);
  ASSERT_TRUE(testing::WriteTestFile(layout.StagingTree(name, version) / file.path,
                                     contents.substr(0, prefix)));
  v1::FillJournal journal;
  journal.set_name(name);
  journal.set_version(version);
  journal.set_source(uri);
  auto* entry = journal.add_files();
  entry->set_path(file.path);
  entry->set_size(file.size);
  entry->set_etag(file.etag);
  entry->set_committed_bytes(prefix);
  ASSERT_TRUE(WriteJournal(layout.JournalPath(name, version), journal).ok());
}

TEST_F(FillJobTest, ResumesFromTheJournalsCommittedPrefix) {
  auto files = testing::WriteRandomModel(source_dir_.Path(), {{"weights.bin", 4 << 20}});
  const std::string uri = "file://" + source_dir_.Path().string();
  auto source = MakeSource(uri, Sources());
  ASSERT_TRUE(source.ok()) << source.status();
  auto listed = (*source)->List();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  const uint64_t prefix = 3 << 20;
  StageInterruptedFill(layout_, "r", "1", uri, listed->front(), source_dir_.Path() / "weights.bin",
                       prefix);

  FillOutcome outcome = Fill("r", "1", uri, SmallChunks(2));

  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status();
  ExpectPublished("r", "1", files, *outcome.result);
  const v1::EnsureProgress* filling = FirstFilling(outcome);
  ASSERT_NE(filling, nullptr);
  EXPECT_EQ(filling->bytes_done(), prefix) << "the committed prefix counts as done at once";
}

// A resumed file whose origin ignores Range: the stream skips the committed prefix (it is
// on disk and hashed already) and writes the rest in place.
TEST_F(FillJobTest, AStreamedFileKeepsItsResumedPrefix) {
  auto files = testing::WriteRandomModel(source_dir_.Path() / "norange", {{"weights.bin", (3 << 20) + 99}});
  ASSERT_TRUE(testing::WriteTestFile(source_dir_.Path() / "norange" / "modelcache.json",
                                     testing::HttpListingJson(files)));
  testing::NginxOptions options;
  options.root = source_dir_.Path().string();
  options.locations.push_back({.prefix = "/norange/", .max_ranges = 0});
  auto nginx = testing::NginxServer::Start(options);
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  const std::string uri = (*nginx)->BaseUrl() + "/norange/";
  auto source = MakeSource(uri, Sources());
  ASSERT_TRUE(source.ok()) << source.status();
  auto listed = (*source)->List();
  ASSERT_TRUE(listed.ok()) << listed.status();
  const uint64_t prefix = 1 << 20;
  StageInterruptedFill(layout_, "r", "1", uri, listed->front(),
                       source_dir_.Path() / "norange" / "weights.bin", prefix);

  FillOutcome outcome = Fill("r", "1", uri, SmallChunks(2));

  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status();
  ExpectPublished("r", "1", files, *outcome.result);
  FillJob::Counters counters;
  OnLoop([&] { counters = job_->GetCounters(); });
  EXPECT_EQ(counters.whole_file_streams, 1u);
  EXPECT_EQ(counters.bytes_fetched, files[0].size() - prefix);
}

TEST_F(FillJobTest, JournalOfAnotherSourceIsNotResumed) {
  auto files = testing::WriteRandomModel(source_dir_.Path(), {{"weights.bin", 2 << 20}});
  const std::string uri = "file://" + source_dir_.Path().string();
  auto source = MakeSource(uri, Sources());
  ASSERT_TRUE(source.ok()) << source.status();
  auto listed = (*source)->List();
  ASSERT_TRUE(listed.ok()) << listed.status();
  StageInterruptedFill(layout_, "r", "1", "file:///somewhere/else", listed->front(),
                       source_dir_.Path() / "weights.bin", 1 << 20);

  FillOutcome outcome = Fill("r", "1", uri, SmallChunks(2));

  ASSERT_TRUE(outcome.result.ok()) << outcome.result.status();
  ExpectPublished("r", "1", files, *outcome.result);
  const v1::EnsureProgress* filling = FirstFilling(outcome);
  ASSERT_NE(filling, nullptr);
  EXPECT_EQ(filling->bytes_done(), 0u);
}

TEST_F(FillJobTest, ListingWithAPathOutsideTheModelIsRejected) {
  ASSERT_TRUE(testing::WriteTestFile(
      source_dir_.Path() / "modelcache.json",
      R"({"files": [{"path": "../escape.bin", "size": "10"}]})"));
  auto nginx = testing::NginxServer::Start({.root = source_dir_.Path().string()});
  ASSERT_TRUE(nginx.ok()) << nginx.status();

  FillOutcome outcome = Fill("bad", "1", (*nginx)->BaseUrl() + "/", SmallChunks(2));

  ASSERT_FALSE(outcome.result.ok());
  EXPECT_EQ(outcome.result.status().code(), absl::StatusCode::kInvalidArgument)
      << outcome.result.status();
  EXPECT_THAT(std::string(outcome.result.status().message()), HasSubstr("model bad@1: "));
  EXPECT_FALSE(std::filesystem::exists(cache_dir_.Path() / "escape.bin"));
  EXPECT_FALSE(std::filesystem::exists(layout_.StagingFor("bad", "1")));
}

}  // namespace
}  // namespace modelcache
