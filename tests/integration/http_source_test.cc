// http(s) sources against a real nginx on 127.0.0.1.
#include <gtest/gtest.h>

#include <map>

#include "agent/fill/blocking_http.h"
#include "agent/fill/source.h"
#include "common/sha256.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/ports.h"
#include "tests/testing/source_access.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

using testing::NginxServer;
using testing::TempDir;
using testing::WriteTestFile;

std::string Sha256Hex(std::string_view data) {
  Sha256 hash;
  hash.Update(std::as_bytes(std::span(data.data(), data.size())));
  return hash.FinishHex();
}

class HttpSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string config = R"({"layers": 32})";
    const std::string weights(50000, 'w');
    const std::string tokenizer(1234, 't');
    files_ = {{"config.json", config}, {"weights/part 1+1.bin", weights}, {"tokenizer.model", tokenizer}};
    for (const auto& [path, body] : files_) {
      ASSERT_TRUE(WriteTestFile(root_.Path() / "models/llama" / path, body));
    }
    // The tokenizer's size is left out, as a hand-written listing might: the source asks
    // the server. Upper-case hex is accepted.
    std::string sha = Sha256Hex(config);
    for (char& c : sha) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    ASSERT_TRUE(WriteTestFile(root_.Path() / "models/llama/modelcache.json",
                              R"({"files": [
          {"path": "config.json", "size": )" + std::to_string(config.size()) + R"(, "sha256": ")" + sha + R"("},
          {"path": "weights/part 1+1.bin", "size": "50000"},
          {"path": "tokenizer.model"}]})"));
    ASSERT_TRUE(WriteTestFile(root_.Path() / "models/broken/modelcache.json", R"({"files": [ {"path": )"));
    ASSERT_TRUE(WriteTestFile(root_.Path() / "models/escape/modelcache.json",
                              R"({"files": [{"path": "../llama/config.json", "size": 14}]})"));

    ASSERT_TRUE(WriteTestFile(root_.Path() / "single/model.gguf", "GGUF single file"));
    ASSERT_TRUE(WriteTestFile(root_.Path() / "single/model.gguf.sha256",
                              Sha256Hex("GGUF single file") + "  model.gguf\n"));
    ASSERT_TRUE(WriteTestFile(root_.Path() / "single/nosidecar.bin", "no sidecar"));
    ASSERT_TRUE(WriteTestFile(root_.Path() / "single/badsidecar.bin", "x"));
    ASSERT_TRUE(WriteTestFile(root_.Path() / "single/badsidecar.bin.sha256", "<html>oops</html>\n"));

    testing::NginxOptions options;
    options.root = root_.Path().string();
    ASSERT_TRUE(WriteTestFile(root_.Path() / "nohead/model.bin", std::string(777, 'n')));
    options.locations = {{"/forbidden/", 403},
                         {"/broken-server/", 500},
                         {"/nohead/", 0, std::nullopt, "if ($request_method = HEAD) { return 405; }"}};
    auto server = NginxServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  absl::StatusOr<std::vector<SourceFile>> List(const std::string& path) {
    auto source = MakeSource(server_->BaseUrl() + path, testing::LoopbackSourceOptions());
    if (!source.ok()) return source.status();
    EXPECT_FALSE((*source)->IsLocal());
    return (*source)->List();
  }

  TempDir root_;
  std::unique_ptr<NginxServer> server_;
  std::map<std::string, std::string> files_;
};

TEST_F(HttpSourceTest, DirectoryListingGivesFilesWithWorkingLocations) {
  auto files = List("/models/llama/");
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 3u);
  std::map<std::string, SourceFile> by_path;
  for (const SourceFile& file : *files) by_path[file.path] = file;

  ASSERT_EQ(by_path.count("config.json"), 1u);
  EXPECT_EQ(by_path["config.json"].expected_sha256, Sha256Hex(files_["config.json"]));
  EXPECT_EQ(by_path["weights/part 1+1.bin"].location,
            server_->BaseUrl() + "/models/llama/weights/part%201%2B1.bin");
  EXPECT_EQ(by_path["weights/part 1+1.bin"].expected_sha256, "");
  EXPECT_EQ(by_path["tokenizer.model"].size, 1234u);  // from a HEAD, not the listing
  EXPECT_FALSE(by_path["tokenizer.model"].etag.empty());

  for (const auto& [path, body] : files_) {
    EXPECT_EQ(by_path[path].size, body.size()) << path;
    HttpRequest get;
    get.url = by_path[path].location;
    get.network = testing::AllowLoopback();
    auto response = PerformHttpRequest(get);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status_code, 200) << get.url;
    EXPECT_EQ(response->body, body) << get.url;
  }
}

TEST_F(HttpSourceTest, SingleFileUsesHeadAndSha256Sidecar) {
  auto files = List("/single/model.gguf");
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 1u);
  const SourceFile& file = (*files)[0];
  EXPECT_EQ(file.path, "model.gguf");
  EXPECT_EQ(file.size, std::string("GGUF single file").size());
  EXPECT_EQ(file.location, server_->BaseUrl() + "/single/model.gguf");
  EXPECT_EQ(file.expected_sha256, Sha256Hex("GGUF single file"));

  HttpRequest head;
  head.method = "HEAD";
  head.url = file.location;
  head.network = testing::AllowLoopback();
  auto response = PerformHttpRequest(head);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_TRUE(response->Header("etag").has_value());
  EXPECT_EQ(file.etag, *response->Header("ETag"));
}

TEST_F(HttpSourceTest, ServerRefusingHeadIsAskedForFirstByte) {
  auto files = List("/nohead/model.bin");
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].size, 777u);
  EXPECT_FALSE((*files)[0].etag.empty());
  // nginx writes its access log after answering: poll for the line.
  EXPECT_TRUE(testing::PollUntil(
      [&] {
        for (const auto& record : server_->AccessLog()) {
          if (record.uri == "/nohead/model.bin" && record.range == "bytes=0-0" && record.status == 206) {
            return true;
          }
        }
        return false;
      },
      std::chrono::seconds(5)));
}

TEST_F(HttpSourceTest, MissingSidecarMeansNoExpectedHash) {
  auto files = List("/single/nosidecar.bin");
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].size, 10u);
  EXPECT_EQ((*files)[0].expected_sha256, "");
}

TEST_F(HttpSourceTest, GarbageSidecarIsRejected) {
  auto files = List("/single/badsidecar.bin");
  EXPECT_EQ(files.status().code(), absl::StatusCode::kInvalidArgument) << files.status();
  EXPECT_NE(files.status().message().find("badsidecar.bin.sha256"), absl::string_view::npos);
}

TEST_F(HttpSourceTest, MissingFileOrListingIsNotFoundNamingUrl) {
  auto file = List("/single/nope.bin");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound) << file.status();
  EXPECT_NE(file.status().message().find(server_->BaseUrl() + "/single/nope.bin"), absl::string_view::npos);

  auto directory = List("/models/nope/");
  EXPECT_EQ(directory.status().code(), absl::StatusCode::kNotFound) << directory.status();
  EXPECT_NE(directory.status().message().find("/models/nope/modelcache.json"), absl::string_view::npos);
}

TEST_F(HttpSourceTest, ForbiddenIsPermissionDeniedAndServerErrorUnavailable) {
  EXPECT_EQ(List("/forbidden/model.bin").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(List("/forbidden/dir/").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(List("/broken-server/dir/").status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(HttpSourceTest, MalformedOrEscapingListingIsInvalidArgument) {
  auto broken = List("/models/broken/");
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kInvalidArgument) << broken.status();
  EXPECT_NE(broken.status().message().find("modelcache.json"), absl::string_view::npos);
  EXPECT_EQ(List("/models/escape/").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HttpSource, ConnectionRefusedIsUnavailable) {
  const uint16_t port = testing::FreeTcpPort();  // nothing listens there
  ASSERT_NE(port, 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/model.bin";
  auto source = MakeSource(url, testing::LoopbackSourceOptions());
  ASSERT_TRUE(source.ok()) << source.status();
  auto files = (*source)->List();
  EXPECT_EQ(files.status().code(), absl::StatusCode::kUnavailable) << files.status();
  EXPECT_NE(files.status().message().find(url), absl::string_view::npos);
}

TEST(HttpSource, LoopbackIsRefusedByDefaultNamingHostAddressAndKey) {
  const uint16_t port = testing::FreeTcpPort();  // refused before any connection is tried
  ASSERT_NE(port, 0);
  for (const std::string& url : {"http://127.0.0.1:" + std::to_string(port) + "/m/",
                                 "http://127.0.0.1:" + std::to_string(port) + "/model.bin",
                                 "http://[::1]:" + std::to_string(port) + "/model.bin"}) {
    auto source = MakeSource(url, SourceOptions{});
    ASSERT_TRUE(source.ok()) << source.status();
    auto files = (*source)->List();
    EXPECT_EQ(files.status().code(), absl::StatusCode::kPermissionDenied) << files.status();
    const std::string message(files.status().message());
    EXPECT_NE(message.find("(loopback)"), std::string::npos) << message;
    EXPECT_NE(message.find("network.allow"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace modelcache
