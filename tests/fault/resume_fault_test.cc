// Fault cases of issue 11 about kill -9 in the middle of a fill and the restart after it:
//   - the restarted agent (same node) waited ~20 s on its own dead lock file;
//   - the resumed fill downloaded again the chunks written past the journal's contiguous
//     prefix (~89 MB in a 1.5 GiB fill).
// The real agent against nginx on 127.0.0.1. Each case checks the three promises.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include "agent/store/manifest.h"
#include "tests/testing/fault_case.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/random_model.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::CtlResult;
using testing::NginxLocation;
using testing::NginxServer;
using testing::PollUntil;

constexpr uint64_t kMiB = 1 << 20;

class FaultResume : public testing::FaultCase {
 protected:
  // The origin: <www>/<location>/<model>/ with one weights file of `size` bytes and its
  // listing, served by nginx with `location`'s directives.
  void StartOrigin(const NginxLocation& location, const std::string& model, uint64_t size) {
    const fs::path www = dir_.Path() / "www";
    const fs::path folder = www / location.prefix.substr(1) / model;
    files_ = testing::WriteRandomModel(folder, {{"weights.bin", size}});
    ASSERT_TRUE(testing::WriteTestFile(folder / "modelcache.json", testing::HttpListingJson(files_)));
    absl::StatusOr<std::unique_ptr<NginxServer>> origin =
        NginxServer::Start({.root = www.string(), .locations = {location}});
    ASSERT_TRUE(origin.ok()) << origin.status();
    origin_ = *std::move(origin);
    source_ = origin_->BaseUrl() + location.prefix + model + "/";
  }

  absl::StatusOr<v1::FillJournal> Journal(const std::string& model) const {
    return ReadJournal(cache_root_ / "staging" / (model + "@v1") / "journal.json");
  }

  // Starts `modelcachectl fetch` of `model` without waiting for it.
  std::unique_ptr<testing::CtlProcess> StartFetch(const std::string& model) {
    return testing::CtlProcess::Start(
        Ctl(), {"fetch", "--model", model, "--version", "v1", "--source", source_});
  }

  // kill -9 of the agent; the fetch that waited on it fails.
  void KillAgent(testing::CtlProcess& fetch) {
    ASSERT_TRUE(agent_->Kill(SIGKILL).ok());
    ASSERT_TRUE(agent_->WaitExit(std::chrono::seconds(10)).ok());
    CtlResult killed = fetch.Wait();
    EXPECT_NE(killed.exit_code, 0) << "the fill finished before the kill";
  }

  // Every file of the model is published with the origin's bytes.
  void ExpectPublished(const CtlResult& result, const std::string& model) {
    ASSERT_EQ(result.exit_code, 0) << result.err << agent_->Log();
    const fs::path published = cache_root_ / "models" / model / "v1";
    EXPECT_THAT(result.out, HasSubstr(published.string()));
    absl::StatusOr<v1::Manifest> manifest = ReadManifest(published / ".modelcache-manifest.json");
    ASSERT_TRUE(manifest.ok()) << manifest.status();
    ASSERT_EQ(manifest->files_size(), 1);
    EXPECT_EQ(manifest->files(0).sha256(), files_[0].sha256());
    ExpectNothingPartialAndBystanderUntouched();
  }

  // Body bytes nginx sent for the model's weights file.
  uint64_t ServedBytes() const {
    uint64_t bytes = 0;
    for (const testing::AccessRecord& record : origin_->AccessLog()) {
      if (record.uri.ends_with("/weights.bin")) bytes += record.bytes;
    }
    return bytes;
  }

  std::vector<v1::ManifestFile> files_;
  std::unique_ptr<NginxServer> origin_;
  std::string source_;
};

// Issue 11: after kill -9, the restarted agent of the same node waited about 20 s for its own
// dead lock file to expire. The lock names this node and a pid that is gone now: it is taken
// over at once.
TEST_F(FaultResume, ARestartedAgentTakesItsOwnDeadLockOverAtOnce) {
  // 1 MiB chunks at 256 KiB/s (nginx sends the first second's worth at once): about 3 s a
  // chunk, so the kill lands mid-fill.
  ASSERT_NO_FATAL_FAILURE(
      StartOrigin({.prefix = "/slow/", .extra_directives = "limit_rate 256k;"}, "locked", 8 * kMiB));
  // A lock ttl far above the deadline below: only the take-over can be that quick.
  const std::string yaml = "fill: {concurrency: 4, chunkSize: 1Mi}\nfillLease: {ttl: 120s}\n";
  ASSERT_NO_FATAL_FAILURE(StartAgent({.extra_yaml = yaml}));
  std::unique_ptr<testing::CtlProcess> fetch = StartFetch("locked");
  ASSERT_NE(fetch, nullptr);
  ASSERT_TRUE(PollUntil(
      [&] {
        absl::StatusOr<v1::FillJournal> journal = Journal("locked");
        return journal.ok() && journal->files_size() == 1 && journal->files(0).committed_bytes() > 0;
      },
      std::chrono::seconds(60)))
      << "the journal never showed progress:\n" << agent_->Log();
  ASSERT_NO_FATAL_FAILURE(KillAgent(*fetch));
  ASSERT_TRUE(fs::exists(cache_root_ / "locks" / "locked@v1.lock")) << "no dead lock to take over";

  ASSERT_TRUE(agent_->Restart().ok());
  std::unique_ptr<testing::CtlProcess> second = StartFetch("locked");
  ASSERT_NE(second, nullptr);
  // Promise 1, for a take-over: the log says whose lock it took and why, within seconds.
  EXPECT_TRUE(agent_->WaitForLogLine("fill lock taken over from a holder that is gone",
                                     std::chrono::seconds(15)))
      << agent_->Log();
  EXPECT_THAT(agent_->Log(), HasSubstr("is no longer running"));
  EXPECT_TRUE(agent_->WaitForLogLine("fill resuming from staging", std::chrono::seconds(15)))
      << agent_->Log();
  CtlResult resumed = second->Wait();
  ExpectPublished(resumed, "locked");
  // The lock goes once the fill gate saw the publish (just after the client heard READY).
  EXPECT_TRUE(PollUntil([&] { return !fs::exists(cache_root_ / "locks" / "locked@v1.lock"); },
                        std::chrono::seconds(10)))
      << "the lock was not released";
}

// Issue 11: the resumed fill fetched again every chunk written past the journal's committed
// prefix. The journal records those chunks now; the origin serves each byte about once.
TEST_F(FaultResume, AResumedFillFetchesOnlyTheChunksTheJournalDoesNotHave) {
  // The file's first chunk crawls (128 KiB/s): the chunks after it land and wait for it to be
  // hashed, past the committed prefix, when the agent is killed.
  constexpr uint64_t kSize = 16 * kMiB;
  constexpr uint64_t kChunk = kMiB;
  constexpr uint64_t kConcurrency = 2;
  ASSERT_NO_FATAL_FAILURE(StartOrigin(
      {.prefix = "/slowhead/",
       .extra_directives = R"(if ($http_range ~ "^bytes=0-") { set $limit_rate 128k; })"},
      "gappy", kSize));
  ASSERT_NO_FATAL_FAILURE(StartAgent({.extra_yaml = "fill: {concurrency: 2, chunkSize: 1Mi}\n"}));
  std::unique_ptr<testing::CtlProcess> fetch = StartFetch("gappy");
  ASSERT_NE(fetch, nullptr);
  // The fill has landed chunks past the first one (it holds concurrency + 4 chunk buffers:
  // five chunks wait for the first).
  auto written_past_prefix = [&] {
    absl::StatusOr<v1::FillJournal> journal = Journal("gappy");
    uint64_t bytes = 0;
    if (journal.ok() && journal->files_size() == 1) {
      for (const auto& range : journal->files(0).written()) bytes += range.length();
    }
    return bytes;
  };
  ASSERT_TRUE(PollUntil(
      [&] {
        uint64_t landed = 0;
        for (const testing::AccessRecord& record : origin_->AccessLog()) {
          if (record.status == 206 && !record.range.starts_with("bytes=0-")) landed += record.bytes;
        }
        return landed >= 5 * kChunk;
      },
      std::chrono::seconds(60)))
      << agent_->Log();
  // Promise of the fix: the journal records the chunks past the prefix (fsynced first).
  EXPECT_TRUE(PollUntil([&] { return written_past_prefix() >= 5 * kChunk; }, std::chrono::seconds(10)))
      << "the journal records " << written_past_prefix() << " bytes past its prefix";
  absl::StatusOr<v1::FillJournal> before_kill = Journal("gappy");
  ASSERT_TRUE(before_kill.ok()) << before_kill.status();
  EXPECT_EQ(before_kill->files(0).committed_bytes(), 0u) << "the first chunk came early";
  ASSERT_NO_FATAL_FAILURE(KillAgent(*fetch));

  ASSERT_TRUE(agent_->Restart().ok());
  CtlResult resumed = Fetch("gappy", source_);
  ExpectPublished(resumed, "gappy");
  EXPECT_THAT(agent_->Log(), HasSubstr("written_chunk_bytes="));
  // Everything the origin served for the file, both runs: the file once, plus at most what
  // was in flight at the kill (the crawling first chunk and one more).
  ASSERT_TRUE(PollUntil([&] { return ServedBytes() >= kSize; }, std::chrono::seconds(10)));
  EXPECT_LE(ServedBytes(), kSize + kConcurrency * kChunk)
      << "served " << ServedBytes() << " bytes for a file of " << kSize;
}

}  // namespace
}  // namespace modelcache
