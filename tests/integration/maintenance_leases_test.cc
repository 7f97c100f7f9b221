// Maintenance over an in-process ModelCache: the injected lease predicate keeps leased models
// (and their fills' staging) out of a cleanup unless it is forced. File sources, no server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <set>

#include "agent/loop/event_loop.h"
#include "agent/maintenance/maintenance.h"
#include "agent/model_cache.h"
#include "agent/store/layout.h"
#include "tests/testing/random_model.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class MaintenanceLeasesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loop_.Start();
    testing::WriteRandomModel(source_.Path(), {{"a.bin", 100'000}, {"b.bin", 50'000}});
    ModelCacheOptions options;
    options.cache_root = cache_.Path();
    options.sources.file_roots = std::vector<std::filesystem::path>{source_.Path()};  // fileSources: the test's model
    absl::StatusOr<std::unique_ptr<ModelCache>> cache = ModelCache::Open(loop_, clock_, options);
    ASSERT_TRUE(cache.ok()) << cache.status();
    model_cache_ = *std::move(cache);
    StartMaintenance(nullptr);
  }

  // `volume_leases`: what the coordinator answers for the volume's leases on every node
  // (null: no coordinator).
  void StartMaintenance(std::function<absl::StatusOr<std::set<std::pair<std::string, std::string>>>(
                            std::string_view)>
                            volume_leases) {
    MaintenanceOptions maintenance;
    maintenance.serving = {"0123456789abcdef0123456789abcdef", cache_.Path()};
    maintenance.is_leased = [this](std::string_view name, std::string_view version) {
      return leased_.count({std::string(name), std::string(version)}) > 0;
    };
    maintenance.volume_leases = std::move(volume_leases);
    maintenance_ = std::make_unique<Maintenance>(*model_cache_, clock_, std::move(maintenance));
  }
  void TearDown() override {
    maintenance_.reset();
    model_cache_.reset();
    loop_.Stop();
  }

  void Fill(const std::string& name) {
    v1::EnsureRequest request;
    request.set_name(name);
    request.set_version("1");
    request.set_source("file://" + source_.Path().string());
    std::promise<absl::Status> done;
    model_cache_->Ensure(request, nullptr, [&done](absl::StatusOr<v1::EnsureProgress> result) {
      done.set_value(result.status());
    });
    absl::Status status = done.get_future().get();
    ASSERT_TRUE(status.ok()) << status;
  }

  v1::CleanupRequest RemoveEverything(bool force) {
    v1::CleanupRequest request;
    request.set_volume_id("0123456789abcdef0123456789abcdef");
    request.set_all_models(true);
    request.set_staging(true);  // age 0: every staging folder
    request.set_force(force);
    return request;
  }

  testing::TempDir source_;
  testing::TempDir cache_;
  SystemClock clock_;
  EventLoop loop_;
  std::set<std::pair<std::string, std::string>> leased_;
  std::unique_ptr<ModelCache> model_cache_;
  std::unique_ptr<Maintenance> maintenance_;
};

TEST_F(MaintenanceLeasesTest, LeasedModelsAndTheirStagingSurviveCleanupUnlessForced) {
  ASSERT_NO_FATAL_FAILURE(Fill("held"));
  ASSERT_NO_FATAL_FAILURE(Fill("free"));
  CacheLayout layout(cache_.Path());
  testing::WriteRandomFile(layout.StagingTree("held", "2") / "x", 1000, 3);
  leased_ = {{"held", "1"}, {"held", "2"}};

  absl::StatusOr<v1::CleanupResponse> kept = maintenance_->Cleanup(RemoveEverything(false));
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_TRUE(fs::exists(layout.ModelDir("held", "1")));
  EXPECT_TRUE(fs::exists(layout.StagingFor("held", "2")));
  EXPECT_FALSE(fs::exists(layout.ModelDir("free", "1")));
  EXPECT_TRUE(model_cache_->Stat("held", "1").ok());
  EXPECT_FALSE(model_cache_->Stat("free", "1").ok()) << "the index must forget a removed model";
  ASSERT_EQ(kept->kept_size(), 2);
  EXPECT_THAT(kept->kept(0), HasSubstr("live lease (use --force)"));
  bool noted = false;
  for (const v1::CleanupEntry& entry : kept->entries()) {
    if (entry.path() == "models/held/1") noted = !entry.selected() && !entry.note().empty();
  }
  EXPECT_TRUE(noted);

  absl::StatusOr<v1::CleanupResponse> forced = maintenance_->Cleanup(RemoveEverything(true));
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_FALSE(fs::exists(layout.ModelDir("held", "1")));
  EXPECT_FALSE(fs::exists(layout.StagingFor("held", "2")));
  EXPECT_FALSE(model_cache_->Stat("held", "1").ok());
}

TEST_F(MaintenanceLeasesTest, ModelsLeasedOnAnotherNodeOfTheVolumeSurviveCleanupUnlessForced) {
  ASSERT_NO_FATAL_FAILURE(Fill("held"));
  ASSERT_NO_FATAL_FAILURE(Fill("free"));
  std::string asked_for;
  StartMaintenance([&asked_for](std::string_view volume)
                       -> absl::StatusOr<std::set<std::pair<std::string, std::string>>> {
    asked_for = std::string(volume);
    return std::set<std::pair<std::string, std::string>>{{"held", "1"}};
  });
  CacheLayout layout(cache_.Path());
  absl::StatusOr<v1::CleanupResponse> kept = maintenance_->Cleanup(RemoveEverything(false));
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(asked_for, "0123456789abcdef0123456789abcdef");
  EXPECT_TRUE(fs::exists(layout.ModelDir("held", "1")));
  EXPECT_FALSE(fs::exists(layout.ModelDir("free", "1")));
  absl::StatusOr<v1::CleanupResponse> forced = maintenance_->Cleanup(RemoveEverything(true));
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_FALSE(fs::exists(layout.ModelDir("held", "1")));
}

TEST_F(MaintenanceLeasesTest, CleanupRefusesWhenTheVolumesLeasesCannotBeAskedForUnlessForced) {
  ASSERT_NO_FATAL_FAILURE(Fill("free"));
  StartMaintenance([](std::string_view)
                       -> absl::StatusOr<std::set<std::pair<std::string, std::string>>> {
    return absl::UnavailableError("coordinator: connection refused");
  });
  CacheLayout layout(cache_.Path());
  absl::StatusOr<v1::CleanupResponse> refused = maintenance_->Cleanup(RemoveEverything(false));
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("connection refused"));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("--force"));
  EXPECT_TRUE(fs::exists(layout.ModelDir("free", "1")));
  // Trash alone needs no leases.
  v1::CleanupRequest trash;
  trash.set_volume_id("0123456789abcdef0123456789abcdef");
  trash.set_trash(true);
  EXPECT_TRUE(maintenance_->Cleanup(trash).ok());
  absl::StatusOr<v1::CleanupResponse> forced = maintenance_->Cleanup(RemoveEverything(true));
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_FALSE(fs::exists(layout.ModelDir("free", "1")));
}

TEST_F(MaintenanceLeasesTest, AnUnknownVolumeIdIsNotFoundAndNamesTheMountedOnes) {
  v1::CleanupRequest request;
  request.set_volume_id("ffffffffffffffffffffffffffffffff");
  absl::StatusOr<v1::CleanupResponse> response = maintenance_->Cleanup(request);
  ASSERT_EQ(response.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(response.status().message()), HasSubstr(cache_.Path().string()));
}

}  // namespace
}  // namespace modelcache
