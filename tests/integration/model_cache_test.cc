// ModelCache as the gRPC service uses it: Ensure from other threads, single-flight fills,
// hits from the index, quota, restart and resume. Origins are a real nginx or local files.
#include "agent/model_cache.h"

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/fill/event_loop.h"
#include "agent/store/layout.h"
#include "agent/store/manifest.h"
#include "common/sha256.h"
#include "common/status_format.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/random_model.h"
#include "tests/testing/source_access.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// One Ensure call as a client sees it. Callbacks run on the loop thread, the test reads
// from its own, hence the mutex.
struct EnsureCall {
  uint64_t subscription = 0;
  std::mutex mutex;
  std::vector<v1::EnsureProgress> progress;
  std::optional<absl::StatusOr<v1::EnsureProgress>> result;
  std::promise<void> finished;

  bool SawState(v1::EnsureProgress::State state) {
    std::lock_guard lock(mutex);
    for (const auto& update : progress) {
      if (update.state() == state) return true;
    }
    return false;
  }
  bool HasResult() {
    std::lock_guard lock(mutex);
    return result.has_value();
  }
  std::optional<v1::EnsureProgress> FirstFilling() {
    std::lock_guard lock(mutex);
    for (const auto& update : progress) {
      if (update.state() == v1::EnsureProgress::FILLING) return update;
    }
    return std::nullopt;
  }
};

class ModelCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { loop_.Start(); }
  void TearDown() override {
    cache_.reset();
    loop_.Stop();
  }

  ModelCacheOptions Options(uint32_t concurrency = 4, uint64_t quota_bytes = 0,
                            uint64_t chunk_size = 256 << 10) {
    ModelCacheOptions options;
    options.cache_root = cache_dir_.Path();
    options.quota_bytes = quota_bytes;
    options.fill.concurrency = concurrency;
    options.fill.chunk_size = chunk_size;
    options.fill.journal_interval = 50ms;
    options.fill.retry.initial_backoff = 10ms;
    options.sources = testing::LoopbackSourceOptions({source_dir_.Path()});  // nginx and file://
    return options;
  }

  void Open(ModelCacheOptions options) {
    auto cache = ModelCache::Open(loop_, clock_, std::move(options));
    ASSERT_TRUE(cache.ok()) << cache.status();
    cache_ = std::move(cache).value();
  }

  std::shared_ptr<EnsureCall> StartEnsure(const std::string& name, const std::string& version,
                                          const std::string& source) {
    auto call = std::make_shared<EnsureCall>();
    v1::EnsureRequest request;
    request.set_name(name);
    request.set_version(version);
    request.set_source(source);
    call->subscription = cache_->Ensure(
        request,
        [call](const v1::EnsureProgress& progress) {
          std::lock_guard lock(call->mutex);
          call->progress.push_back(progress);
        },
        [call](absl::StatusOr<v1::EnsureProgress> result) {
          {
            std::lock_guard lock(call->mutex);
            call->result = std::move(result);
          }
          call->finished.set_value();
        });
    return call;
  }

  static absl::StatusOr<v1::EnsureProgress> Wait(EnsureCall& call) {
    if (call.finished.get_future().wait_for(180s) != std::future_status::ready) {
      return absl::DeadlineExceededError("Ensure did not finish");
    }
    std::lock_guard lock(call.mutex);
    return *call.result;
  }

  absl::StatusOr<v1::EnsureProgress> Ensure(const std::string& name, const std::string& version,
                                            const std::string& source) {
    return Wait(*StartEnsure(name, version, source));
  }

  // Serves `files` (written under source_dir_) from nginx with their listing.
  // nginx sends the first `limit_rate` bytes of a response at once and the rest at that
  // rate, so a test that needs a slow origin uses chunks of twice kSlowRate: about a
  // second each.
  static constexpr uint64_t kSlowRate = 32 << 10;
  static constexpr uint64_t kSlowChunk = 2 * kSlowRate;
  static std::string SlowOrigin() { return "limit_rate " + std::to_string(kSlowRate) + ";"; }

  std::unique_ptr<testing::NginxServer> Serve(const std::vector<v1::ManifestFile>& files,
                                              std::string extra_directives = "") {
    EXPECT_TRUE(testing::WriteTestFile(source_dir_.Path() / "modelcache.json",
                                       testing::HttpListingJson(files)));
    testing::NginxOptions options;
    options.root = source_dir_.Path().string();
    if (!extra_directives.empty()) {
      options.locations.push_back({.prefix = "/", .extra_directives = std::move(extra_directives)});
    }
    auto nginx = testing::NginxServer::Start(options);
    EXPECT_TRUE(nginx.ok()) << nginx.status();
    return nginx.ok() ? std::move(nginx).value() : nullptr;
  }

  static uint64_t BytesServed(const testing::NginxServer& nginx, const std::string& uri) {
    uint64_t bytes = 0;
    for (const auto& record : nginx.AccessLog()) {
      if (record.uri == uri) bytes += record.bytes;
    }
    return bytes;
  }

  void ExpectFilesMatch(const std::string& path, const std::vector<v1::ManifestFile>& files) {
    for (const auto& file : files) {
      auto digest = Sha256OfFile(std::filesystem::path(path) / file.path());
      ASSERT_TRUE(digest.ok()) << digest.status();
      EXPECT_EQ(*digest, file.sha256()) << file.path();
    }
  }

  testing::TempDir cache_dir_;
  testing::TempDir source_dir_;
  SystemClock clock_;
  EventLoop loop_;
  std::unique_ptr<ModelCache> cache_;
};

TEST_F(ModelCacheTest, FillsOnceThenAnswersHitsWithoutTheOrigin) {
  auto files = testing::WriteRandomModel(source_dir_.Path(),
                                         {{"weights.bin", 1 << 20}, {"config.json", 100'000}});
  auto nginx = Serve(files);
  ASSERT_NE(nginx, nullptr);
  const std::string source = nginx->BaseUrl() + "/";
  Open(Options());

  auto filled = Ensure("llama", "v1", source);
  ASSERT_TRUE(filled.ok()) << filled.status();
  EXPECT_EQ(filled->state(), v1::EnsureProgress::READY);
  EXPECT_FALSE(filled->hit());
  EXPECT_EQ(filled->path(), CacheLayout(cache_dir_.Path()).ModelDir("llama", "v1").string());
  EXPECT_EQ(filled->bytes_total(), (1u << 20) + 100'000u);
  ExpectFilesMatch(filled->path(), files);
  ASSERT_TRUE(testing::PollUntil([&] { return nginx->AccessLog().size() >= 3; }, 5s));
  const size_t requests_after_fill = nginx->AccessLog().size();

  auto hit = Ensure("llama", "v1", source);
  ASSERT_TRUE(hit.ok()) << hit.status();
  EXPECT_TRUE(hit->hit());
  EXPECT_EQ(hit->path(), filled->path());

  auto model = cache_->Stat("llama", "v1");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->size_bytes(), (1u << 20) + 100'000u);
  EXPECT_EQ(model->file_count(), 2u);
  EXPECT_EQ(model->source(), source);
  EXPECT_GE(model->last_access_unix_ms(), model->fetched_unix_ms());
  ASSERT_EQ(cache_->List().size(), 1u);

  // A new agent on the same volume finds the model by its manifest.
  cache_.reset();
  Open(Options());
  auto after_restart = Ensure("llama", "v1", source);
  ASSERT_TRUE(after_restart.ok()) << after_restart.status();
  EXPECT_TRUE(after_restart->hit());
  EXPECT_EQ(nginx->AccessLog().size(), requests_after_fill) << "a hit must not touch the origin";
}

TEST_F(ModelCacheTest, ConcurrentEnsuresShareOneFill) {
  auto files = testing::WriteRandomModel(
      source_dir_.Path(), {{"a.bin", 5 * kSlowChunk}, {"b.bin", 2 * kSlowChunk + 3}});
  auto nginx = Serve(files, SlowOrigin());  // slow enough for the second caller to join
  ASSERT_NE(nginx, nullptr);
  const std::string source = nginx->BaseUrl() + "/";
  Open(Options(/*concurrency=*/4, 0, kSlowChunk));

  auto first = StartEnsure("shared", "1", source);
  ASSERT_TRUE(testing::PollUntil([&] { return first->SawState(v1::EnsureProgress::FILLING); }, 30s));
  auto second = StartEnsure("shared", "1", source);

  auto first_result = Wait(*first);
  auto second_result = Wait(*second);
  ASSERT_TRUE(first_result.ok()) << first_result.status();
  ASSERT_TRUE(second_result.ok()) << second_result.status();
  EXPECT_FALSE(second_result->hit()) << "the second caller should have joined the fill";
  EXPECT_EQ(second_result->path(), first_result->path());
  EXPECT_TRUE(second->SawState(v1::EnsureProgress::FILLING));
  ExpectFilesMatch(first_result->path(), files);

  std::map<std::pair<std::string, std::string>, int> requests;
  for (const auto& record : nginx->AccessLog()) ++requests[{record.uri, record.range}];
  int listings = 0;
  for (const auto& [request, count] : requests) {
    EXPECT_EQ(count, 1) << request.first << " " << request.second << " requested " << count << " times";
    if (request.first == "/modelcache.json") listings += count;
  }
  EXPECT_EQ(listings, 1);
}

TEST_F(ModelCacheTest, UnsubscribedCallerHearsNothingButTheFillGoesOn) {
  auto files = testing::WriteRandomModel(source_dir_.Path(), {{"w.bin", 2 << 20}});
  Open(Options());
  const std::string source = "file://" + source_dir_.Path().string();

  auto leaving = StartEnsure("m", "1", source);
  cache_->Unsubscribe(leaving->subscription);
  auto staying = Ensure("m", "1", source);

  ASSERT_TRUE(staying.ok()) << staying.status();
  ExpectFilesMatch(staying->path(), files);
  EXPECT_TRUE(cache_->Stat("m", "1").ok());
  EXPECT_FALSE(leaving->HasResult());
}

TEST_F(ModelCacheTest, QuotaTooSmallIsResourceExhaustedAndWritesNothing) {
  testing::WriteRandomModel(source_dir_.Path(), {{"w.bin", 4 << 20}});
  Open(Options(4, /*quota_bytes=*/1 << 20));

  auto result = Ensure("huge", "1", "file://" + source_dir_.Path().string());

  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kResourceExhausted) << result.status();
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("model huge@1"));
  EXPECT_THAT(std::string(result.status().message()), HasSubstr(std::to_string(4 << 20)));
  CacheLayout layout(cache_dir_.Path());
  EXPECT_TRUE(std::filesystem::is_empty(layout.ModelsDir()));
  EXPECT_TRUE(std::filesystem::is_empty(layout.StagingDir()));
  EXPECT_FALSE(cache_->Stat("huge", "1").ok());
}

TEST_F(ModelCacheTest, InvalidRequestsAreRejected) {
  Open(Options());
  const std::string source = "file://" + source_dir_.Path().string();
  auto bad_name = Ensure("../etc", "1", source);
  EXPECT_EQ(bad_name.status().code(), absl::StatusCode::kInvalidArgument) << bad_name.status();
  auto bad_version = Ensure("m", "", source);
  EXPECT_EQ(bad_version.status().code(), absl::StatusCode::kInvalidArgument) << bad_version.status();
  auto bad_source = Ensure("m", "1", "gopher://example.com/m");
  EXPECT_EQ(bad_source.status().code(), absl::StatusCode::kInvalidArgument) << bad_source.status();
  EXPECT_EQ(cache_->Stat("m", "1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(cache_->List().empty());
}

TEST_F(ModelCacheTest, RestartResumesFromCommittedBytes) {
  const uint64_t chunk_size = kSlowChunk;
  const uint64_t model_size = 16 * chunk_size + 1000;
  auto files = testing::WriteRandomModel(source_dir_.Path(), {{"weights.bin", model_size}});
  auto nginx = Serve(files, SlowOrigin());
  ASSERT_NE(nginx, nullptr);
  const std::string source = nginx->BaseUrl() + "/";
  CacheLayout layout(cache_dir_.Path());

  // First agent: one slow connection, stopped once a few chunks are committed.
  Open(Options(/*concurrency=*/1, 0, chunk_size));
  auto interrupted = StartEnsure("resumed", "1", source);
  auto committed = [&]() -> uint64_t {
    auto journal = ReadJournal(layout.JournalPath("resumed", "1"));
    return journal.ok() && journal->files_size() == 1 ? journal->files(0).committed_bytes() : 0;
  };
  ASSERT_TRUE(testing::PollUntil([&] { return committed() >= 2 * chunk_size; }, 60s));
  cache_.reset();
  const uint64_t resumable = committed();
  ASSERT_LT(resumable, model_size);
  ASSERT_TRUE(interrupted->HasResult());
  EXPECT_EQ(interrupted->result->status().code(), absl::StatusCode::kCancelled);
  const uint64_t served_before_restart = BytesServed(*nginx, "/weights.bin");

  // Second agent on the same volume: resumes instead of starting over.
  Open(Options(/*concurrency=*/8, 0, chunk_size));
  auto resumed = StartEnsure("resumed", "1", source);
  auto result = Wait(*resumed);
  ASSERT_TRUE(result.ok()) << result.status();
  ExpectFilesMatch(result->path(), files);
  auto filling = resumed->FirstFilling();
  ASSERT_TRUE(filling.has_value());
  EXPECT_EQ(filling->bytes_done(), resumable);

  // Requests logged after the restart: the second agent's, plus at most the first agent's
  // one request that was cut off.
  const uint64_t served_after_restart = BytesServed(*nginx, "/weights.bin") - served_before_restart;
  EXPECT_LT(served_after_restart, model_size);
  EXPECT_LE(served_after_restart, model_size - resumable + chunk_size);
}

}  // namespace
}  // namespace modelcache

namespace modelcache {
namespace {

TEST_F(ModelCacheTest, PurgeRefusesARunningFillThenRemovesThePublishedModel) {
  auto files = testing::WriteRandomModel(source_dir_.Path(), {{"a.bin", 3 * kSlowChunk}});
  auto nginx = Serve(files, SlowOrigin());
  ASSERT_NE(nginx, nullptr);
  const std::string source = nginx->BaseUrl() + "/";
  Open(Options(/*concurrency=*/1, 0, kSlowChunk));

  auto filling = StartEnsure("doomed", "1", source);
  ASSERT_TRUE(testing::PollUntil([&] { return filling->SawState(v1::EnsureProgress::FILLING); }, 30s));
  absl::StatusOr<uint64_t> refused = cache_->Purge("doomed", "1");
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  auto filled = Wait(*filling);
  ASSERT_TRUE(filled.ok()) << filled.status();

  absl::StatusOr<uint64_t> freed = cache_->Purge("doomed", "1");
  ASSERT_TRUE(freed.ok()) << freed.status();
  EXPECT_EQ(*freed, files[0].size());
  EXPECT_FALSE(std::filesystem::exists(filled->path()));
  EXPECT_TRUE(absl::IsNotFound(cache_->Stat("doomed", "1").status()));
  EXPECT_TRUE(std::filesystem::is_empty(cache_dir_.Path() / "trash"));
  absl::StatusOr<uint64_t> again = cache_->Purge("doomed", "1");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 0u);

  // The next Ensure fills it again instead of answering from a stale index.
  auto refilled = Ensure("doomed", "1", "file://" + source_dir_.Path().string());
  ASSERT_TRUE(refilled.ok()) << refilled.status();
  EXPECT_FALSE(refilled->hit());
  ExpectFilesMatch(refilled->path(), files);
}

TEST_F(ModelCacheTest, StatShowsEachFilesIdentityAtTheSource) {
  auto files = testing::WriteRandomModel(source_dir_.Path(), {{"w.bin", 300'000}});
  auto nginx = Serve(files);
  ASSERT_NE(nginx, nullptr);
  Open(Options());
  // A directory: its listing states each file's sha256 (no per-file request, so no ETag).
  ASSERT_TRUE(Ensure("m", "1", nginx->BaseUrl() + "/").ok());
  // A single file: its HEAD gives the ETag.
  ASSERT_TRUE(Ensure("single", "1", nginx->BaseUrl() + "/w.bin").ok());

  absl::StatusOr<v1::CachedModel> listed = cache_->Stat("m", "1");
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->files_size(), 1);
  EXPECT_EQ(listed->files(0).path(), "w.bin");
  EXPECT_EQ(listed->files(0).sha256(), files[0].sha256());
  EXPECT_EQ(listed->files(0).source_sha256(), files[0].sha256());
  EXPECT_FALSE(listed->has_source_revision());

  absl::StatusOr<v1::CachedModel> single = cache_->Stat("single", "1");
  ASSERT_TRUE(single.ok()) << single.status();
  ASSERT_EQ(single->files_size(), 1);
  // nginx's ETag: "<mtime hex>-<size hex>", quoted.
  EXPECT_THAT(single->files(0).etag(), ::testing::MatchesRegex("\"[0-9a-f]+-[0-9a-f]+\""));
  EXPECT_EQ(single->files(0).source_sha256(), "") << "no .sha256 sidecar";
  // The same in the manifest on the volume; List leaves the files out.
  absl::StatusOr<v1::Manifest> manifest =
      ReadManifest(CacheLayout(cache_dir_.Path()).ManifestPath("single", "1"));
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->files(0).etag(), single->files(0).etag());
  ASSERT_EQ(cache_->List().size(), 2u);
  EXPECT_EQ(cache_->List()[0].files_size(), 0);
}

TEST_F(ModelCacheTest, AHitWhoseFolderIsGoneFillsAgainAndIsNotListedMeanwhile) {
  auto files = testing::WriteRandomModel(source_dir_.Path(), {{"w.bin", 300'000}});
  auto nginx = Serve(files);
  ASSERT_NE(nginx, nullptr);
  const std::string source = nginx->BaseUrl() + "/";
  Open(Options());
  auto filled = Ensure("m", "1", source);
  ASSERT_TRUE(filled.ok()) << filled.status();
  std::filesystem::remove_all(filled->path());

  // Two callers at once, the index still remembering the model: one fill again (single
  // flight), both READY at a folder that is there.
  auto first = StartEnsure("m", "1", source);
  auto second = StartEnsure("m", "1", source);
  auto first_result = Wait(*first);
  auto second_result = Wait(*second);
  ASSERT_TRUE(first_result.ok()) << first_result.status();
  ASSERT_TRUE(second_result.ok()) << second_result.status();
  EXPECT_FALSE(first_result->hit());
  ExpectFilesMatch(first_result->path(), files);
  ASSERT_TRUE(testing::PollUntil(
      [&] { return BytesServed(*nginx, "/w.bin") >= 2 * files[0].size(); }, 5s));
  EXPECT_EQ(BytesServed(*nginx, "/w.bin"), 2 * files[0].size()) << "filled once more, not twice";
  EXPECT_EQ(cache_->List().size(), 1u);

  // Removed again: list and stat forget it at once.
  std::filesystem::remove_all(first_result->path());
  EXPECT_TRUE(cache_->List().empty());
  EXPECT_TRUE(absl::IsNotFound(cache_->Stat("m", "1").status()));
}

TEST_F(ModelCacheTest, AnotherSourceIsRefusedWhetherPublishedOrBeingFilled) {
  auto files = testing::WriteRandomModel(source_dir_.Path(), {{"a.bin", 3 * kSlowChunk}});
  auto nginx = Serve(files, SlowOrigin());
  ASSERT_NE(nginx, nullptr);
  const std::string source = nginx->BaseUrl() + "/";
  const std::string other = "http://127.0.0.1:1/elsewhere/";
  Open(Options(/*concurrency=*/1, 0, kSlowChunk));

  auto filling = StartEnsure("m", "1", source);
  ASSERT_TRUE(testing::PollUntil([&] { return filling->SawState(v1::EnsureProgress::FILLING); }, 30s));
  auto joiner = Ensure("m", "1", other);
  EXPECT_TRUE(absl::IsFailedPrecondition(joiner.status())) << joiner.status();
  EXPECT_THAT(std::string(joiner.status().message()), HasSubstr("being filled by this agent"));
  EXPECT_FALSE(filling->HasResult()) << "refused at once, not after the fill";
  auto filled = Wait(*filling);
  ASSERT_TRUE(filled.ok()) << filled.status();

  auto refused = Ensure("m", "1", other);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr(source));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr(other));
  auto hit = Ensure("m", "1", source);
  ASSERT_TRUE(hit.ok()) << hit.status();
  EXPECT_TRUE(hit->hit());
}

}  // namespace
}  // namespace modelcache
