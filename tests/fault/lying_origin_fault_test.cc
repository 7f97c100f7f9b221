// Fault cases of issue 11 (§6) about origins whose listing lies: a digest that does not match
// the bytes, a size that is not the file's, a path that climbs out of the model, a file that
// answers 500. The real agent against nginx on 127.0.0.1. Each case checks the three
// promises: a clear error naming the file (or success), nothing partial under models/, the
// bystander untouched.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "tests/testing/fault_case.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/random_model.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::CtlResult;
using testing::NginxLocation;
using testing::NginxServer;

class FaultLyingOrigins : public testing::FaultCase {
 protected:
  // <www>/<model>/ with config.json (300 bytes) and weights.bin (3 MiB + 7), and a listing
  // changed by `lie` before it is written.
  void WriteModel(const std::string& model,
                  const std::function<void(std::vector<v1::ManifestFile>&)>& lie) {
    const fs::path folder = dir_.Path() / "www" / model;
    std::vector<v1::ManifestFile> files =
        testing::WriteRandomModel(folder, {{"config.json", 300}, {"weights.bin", (3u << 20) + 7}});
    lie(files);
    ASSERT_TRUE(testing::WriteTestFile(folder / "modelcache.json", testing::HttpListingJson(files)));
  }

  void StartOrigin(std::vector<NginxLocation> locations = {}) {
    absl::StatusOr<std::unique_ptr<NginxServer>> origin = NginxServer::Start(
        {.root = (dir_.Path() / "www").string(), .locations = std::move(locations)});
    ASSERT_TRUE(origin.ok()) << origin.status();
    origin_ = *std::move(origin);
  }

  std::string Source(const std::string& model) const {
    return origin_->BaseUrl() + "/" + model + "/";
  }

  // The fetch failed with `code` naming the model and `file`, printed nothing on stdout, and
  // `list` does not show the model.
  void ExpectRefused(const CtlResult& result, const std::string& model, const std::string& code,
                     const std::string& file) {
    EXPECT_NE(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.out, "");
    EXPECT_THAT(result.err, HasSubstr(code));
    EXPECT_THAT(result.err, HasSubstr("model " + model + "@v1"));
    EXPECT_THAT(result.err, HasSubstr(file));
    CtlResult list = RunCtl(Ctl(), {"list"});
    EXPECT_EQ(list.exit_code, 0) << list.err;
    EXPECT_THAT(list.out, Not(HasSubstr(model + " ")));
  }

  std::unique_ptr<NginxServer> origin_;
};

TEST_F(FaultLyingOrigins, ADigestThatDoesNotMatchTheBytesIsDataLossAndNothingIsPublished) {
  ASSERT_NO_FATAL_FAILURE(WriteModel("corrupt", [](std::vector<v1::ManifestFile>& files) {
    std::string& digest = *files[1].mutable_sha256();
    digest[0] = digest[0] == '0' ? '1' : '0';
  }));
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  CtlResult result = Fetch("corrupt", Source("corrupt"));
  EXPECT_EQ(result.exit_code, 4) << result.err;
  ExpectRefused(result, "corrupt", "DATA_LOSS", "weights.bin");
  EXPECT_THAT(result.err, HasSubstr("sha256 mismatch"));
  ExpectNothingPartialAndBystanderUntouched({"corrupt"});
}

TEST_F(FaultLyingOrigins, AListedSizeSmallerThanTheFileIsRefusedNamingTheFile) {
  ASSERT_NO_FATAL_FAILURE(WriteModel("shrunk", [](std::vector<v1::ManifestFile>& files) {
    files[1].set_size(files[1].size() - 4096);
    files[1].clear_sha256();  // no digest to catch it: the size check must
  }));
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  ASSERT_NO_FATAL_FAILURE(StartAgent({.extra_yaml = "fill: {maxAttempts: 2}\n"}));
  CtlResult result = Fetch("shrunk", Source("shrunk"));
  ExpectRefused(result, "shrunk", "ABORTED", "weights.bin");
  ExpectNothingPartialAndBystanderUntouched({"shrunk"});
}

TEST_F(FaultLyingOrigins, AListedSizeLargerThanTheFileIsRefusedNamingTheFile) {
  ASSERT_NO_FATAL_FAILURE(WriteModel("grown", [](std::vector<v1::ManifestFile>& files) {
    files[1].set_size(files[1].size() + (1u << 20));
    files[1].clear_sha256();
  }));
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  ASSERT_NO_FATAL_FAILURE(StartAgent({.extra_yaml = "fill: {maxAttempts: 2}\n"}));
  CtlResult result = Fetch("grown", Source("grown"));
  ExpectRefused(result, "grown", "ABORTED", "weights.bin");
  ExpectNothingPartialAndBystanderUntouched({"grown"});
}

TEST_F(FaultLyingOrigins, AListingPathOutsideTheModelIsInvalidArgumentNamingThePath) {
  for (const std::string path : {"../bystander/v1/config.json", "/etc/passwd", "a/../../b"}) {
    SCOPED_TRACE(path);
    const std::string model = "escape" + std::to_string(path.size());
    ASSERT_NO_FATAL_FAILURE(WriteModel(model, [&](std::vector<v1::ManifestFile>& files) {
      files[0].set_path(path);
    }));
  }
  ASSERT_NO_FATAL_FAILURE(StartOrigin());
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  std::vector<std::string> failed;
  for (const std::string path : {"../bystander/v1/config.json", "/etc/passwd", "a/../../b"}) {
    SCOPED_TRACE(path);
    const std::string model = "escape" + std::to_string(path.size());
    CtlResult result = Fetch(model, Source(model));
    EXPECT_EQ(result.exit_code, 4) << result.err;
    ExpectRefused(result, model, "INVALID_ARGUMENT", path);
    failed.push_back(model);
  }
  ExpectNothingPartialAndBystanderUntouched(failed);
}

TEST_F(FaultLyingOrigins, AFileAnswering500IsUnavailableNamingItsUrlAfterTheRetries) {
  ASSERT_NO_FATAL_FAILURE(WriteModel("broken", [](std::vector<v1::ManifestFile>&) {}));
  ASSERT_NO_FATAL_FAILURE(
      StartOrigin({NginxLocation{.prefix = "/broken/weights.bin", .return_status = 500}}));
  ASSERT_NO_FATAL_FAILURE(StartAgent({.extra_yaml = "fill: {maxAttempts: 3}\n"}));
  CtlResult result = Fetch("broken", Source("broken"));
  EXPECT_EQ(result.exit_code, 4) << result.err;
  EXPECT_EQ(result.out, "");
  EXPECT_THAT(result.err, HasSubstr("UNAVAILABLE"));
  EXPECT_THAT(result.err, HasSubstr("model broken@v1: file weights.bin: GET " + Source("broken") +
                                    "weights.bin"));
  EXPECT_THAT(result.err, HasSubstr("500"));
  // Its one chunk (3 MiB, below fill.chunkSize) was tried maxAttempts times, no more (nginx
  // logs a request after answering it).
  auto gets = [&] {
    size_t count = 0;
    for (const testing::AccessRecord& record : origin_->AccessLog()) {
      if (record.uri == "/broken/weights.bin") ++count;
    }
    return count;
  };
  EXPECT_TRUE(testing::PollUntil([&] { return gets() >= 3; }, std::chrono::seconds(10)));
  EXPECT_EQ(gets(), 3u);
  // Promises 2 and 3; the staging may stay for a resume (the origin's trouble, not the model's).
  EXPECT_FALSE(fs::exists(cache_root_ / "models" / "broken"));
  ExpectNothingPartialAndBystanderUntouched();
}

}  // namespace
}  // namespace modelcache
