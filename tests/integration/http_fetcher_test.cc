// The HTTP chunk fetcher against a real nginx, and against a scripted raw TCP server for the
// misbehaviours nginx will not produce (stalls, short bodies, wrong Content-Range).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/fill/chunk_fetcher.h"
#include "agent/fill/event_loop.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/nginx_server.h"
#include "tests/testing/source_access.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using testing::NginxLocation;
using testing::NginxOptions;
using testing::NginxServer;
using testing::PollUntil;
using testing::TempDir;
using testing::WriteTestFile;

std::string RandomBytes(size_t size, uint32_t seed) {
  std::mt19937 engine(seed);
  std::string bytes(size, '\0');
  for (char& byte : bytes) byte = static_cast<char>(engine());
  return bytes;
}

std::string AsString(const std::vector<std::byte>& buffer) {
  return std::string(reinterpret_cast<const char*>(buffer.data()), buffer.size());
}

// nginx's ETag for a static file: "<mtime hex>-<size hex>".
std::string NginxEtag(const std::filesystem::path& path) {
  struct stat info {};
  ::stat(path.c_str(), &info);
  char etag[64];
  std::snprintf(etag, sizeof(etag), "\"%lx-%lx\"", static_cast<unsigned long>(info.st_mtime),
                static_cast<unsigned long>(info.st_size));
  return etag;
}

// A TCP server on 127.0.0.1 that answers every connection with one canned response (after
// reading the request head), then either closes it or keeps it open and silent.
class ScriptedServer {
 public:
  ScriptedServer(std::string response, bool close_after)
      : response_(std::move(response)), close_after_(close_after) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(::listen(listener_, 64), 0);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    stop_ = ::eventfd(0, EFD_CLOEXEC);
    thread_ = std::thread([this] { Serve(); });
  }

  ~ScriptedServer() {
    uint64_t one = 1;
    (void)::write(stop_, &one, sizeof(one));
    thread_.join();
    for (int fd : held_) ::close(fd);
    ::close(listener_);
    ::close(stop_);
  }

  std::string Url(const std::string& path) const { return absl::StrCat("http://127.0.0.1:", port_, path); }

  std::vector<std::string> Requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  size_t OpenConnectionsClosedByPeer() {
    std::lock_guard lock(mutex_);
    return closed_by_peer_;
  }

 private:
  void Serve() {
    while (true) {
      std::vector<pollfd> fds = {{stop_, POLLIN, 0}, {listener_, POLLIN, 0}};
      for (int fd : held_) fds.push_back({fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), -1) < 0) continue;
      if (fds[0].revents) return;
      for (size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        char byte;
        if (::recv(fds[i].fd, &byte, 1, MSG_DONTWAIT) <= 0) {  // the client hung up
          ::close(fds[i].fd);
          held_.erase(std::find(held_.begin(), held_.end(), fds[i].fd));
          std::lock_guard lock(mutex_);
          ++closed_by_peer_;
        }
      }
      if (fds[1].revents) Answer(::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC));
    }
  }

  void Answer(int fd) {
    if (fd < 0) return;
    std::string request;
    char block[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      ssize_t got = ::recv(fd, block, sizeof(block), 0);
      if (got <= 0) break;
      request.append(block, static_cast<size_t>(got));
    }
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(request);
    }
    (void)::send(fd, response_.data(), response_.size(), MSG_NOSIGNAL);
    if (close_after_) {
      ::close(fd);
    } else {
      held_.push_back(fd);
    }
  }

  const std::string response_;
  const bool close_after_;
  int listener_ = -1;
  int stop_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::vector<int> held_;  // server thread only
  std::mutex mutex_;
  std::vector<std::string> requests_;
  size_t closed_by_peer_ = 0;
};

class HttpFetcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(dir_.Path()) / "www";
    std::filesystem::create_directories(root_ / "forbidden");
    std::filesystem::create_directories(root_ / "norange");
    NginxOptions options;
    options.root = root_.string();
    options.locations.push_back(NginxLocation{.prefix = "/forbidden/", .return_status = 403});
    options.locations.push_back(NginxLocation{.prefix = "/norange/", .max_ranges = 0});
    options.locations.push_back(
        NginxLocation{.prefix = "/moved/", .extra_directives = "return 302 /m/target.bin;"});
    // Loopback, but not the 127.0.0.1/32 the fetcher allows.
    options.locations.push_back(NginxLocation{
        .prefix = "/to-other-loopback/", .extra_directives = "return 302 http://127.0.0.2:9/m/target.bin;"});
    auto server = NginxServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    nginx_ = *std::move(server);
    loop_.Start();
    MakeFetcher(FillSettings{}, HttpAuth{});
  }

  void TearDown() override {
    if (fetcher_) RunOnLoop([&] { fetcher_.reset(); });
    loop_.Stop();
  }

  void MakeFetcher(const FillSettings& settings, const HttpAuth& auth,
                   const NetworkPolicy& network = testing::AllowLoopback()) {
    RunOnLoop([&] { fetcher_ = MakeHttpChunkFetcher(loop_, auth, settings, network); });
  }

  void RunOnLoop(std::function<void()> task) {
    auto finished = std::make_shared<std::promise<void>>();
    loop_.Post([task, finished] {
      task();
      finished->set_value();
    });
    ASSERT_EQ(finished->get_future().wait_for(30s), std::future_status::ready);
  }

  // Writes `content` under the nginx root and describes it as a source would.
  SourceFile Publish(const std::string& relative, const std::string& content) {
    EXPECT_TRUE(WriteTestFile(root_ / relative, content));
    SourceFile file;
    file.path = relative;
    file.size = content.size();
    file.location = absl::StrCat(nginx_->BaseUrl(), "/", relative);
    return file;
  }

  absl::Status Fetch(const SourceFile& file, uint64_t offset, std::vector<std::byte>& buffer) {
    auto result = std::make_shared<std::promise<absl::Status>>();
    loop_.Post([&, result] {
      fetcher_->Fetch(ChunkRequest{&file, offset, buffer}, [result](absl::Status status) {
        result->set_value(std::move(status));
      });
    });
    auto future = result->get_future();
    if (future.wait_for(60s) != std::future_status::ready) {
      return absl::InternalError("test: the fetch did not finish within 60 s");
    }
    return future.get();
  }

  TempDir dir_;
  std::filesystem::path root_;
  std::unique_ptr<NginxServer> nginx_;
  EventLoop loop_;
  std::unique_ptr<ChunkFetcher> fetcher_;  // loop thread only
};

TEST_F(HttpFetcherTest, FetchesEveryRangeOfAFileByteForByte) {
  const std::string content = RandomBytes((3 << 20) + 123, 1);
  SourceFile file = Publish("m/a.bin", content);
  const uint64_t chunk = 1 << 20;
  for (uint64_t offset = 0; offset < content.size(); offset += chunk) {
    std::vector<std::byte> buffer(std::min<uint64_t>(chunk, content.size() - offset));
    absl::Status status = Fetch(file, offset, buffer);
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(AsString(buffer), content.substr(offset, buffer.size())) << "offset " << offset;
  }
  // The origin was asked for exactly these ranges and sent only them.
  ASSERT_TRUE(PollUntil([&] { return nginx_->AccessLog().size() >= 4; }, 5s));
  auto log = nginx_->AccessLog();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0].range, "bytes=0-1048575");
  EXPECT_EQ(log[3].range, absl::StrCat("bytes=3145728-", content.size() - 1));
  for (const auto& record : log) EXPECT_EQ(record.status, 206);
  EXPECT_EQ(log[3].bytes, 123u);
  // Sequential fetches reuse one kept-alive connection.
  EXPECT_EQ(log[0].connection, log[3].connection);
}

TEST_F(HttpFetcherTest, OriginTheNetworkPolicyRefusesIsPermissionDeniedAndNeverContacted) {
  RunOnLoop([&] { fetcher_.reset(); });
  MakeFetcher(FillSettings{}, HttpAuth{}, NetworkPolicy{});  // the agent's default: no loopback
  SourceFile file = Publish("m/a.bin", RandomBytes(1000, 7));
  std::vector<std::byte> buffer(100);
  absl::Status status = Fetch(file, 0, buffer);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(absl::StrCat("GET ", file.location, " bytes=0-99: ")));
  EXPECT_THAT(std::string(status.message()), HasSubstr("host 127.0.0.1 is 127.0.0.0/8 (loopback)"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("network.allow"));
  EXPECT_TRUE(nginx_->AccessLog().empty());
}

TEST_F(HttpFetcherTest, RedirectToARefusedAddressIsPermissionDeniedAtTheHop) {
  SourceFile file = Publish("m/target.bin", RandomBytes(1000, 8));
  file.location = nginx_->BaseUrl() + "/to-other-loopback/a.bin";
  std::vector<std::byte> buffer(100);
  absl::Status status = Fetch(file, 0, buffer);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("host 127.0.0.2 is 127.0.0.0/8 (loopback)"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("http://127.0.0.2:9/m/target.bin"));
  // The allowed origin answered the first hop.
  ASSERT_TRUE(PollUntil([&] { return !nginx_->AccessLog().empty(); }, 5s));
  EXPECT_EQ(nginx_->AccessLog()[0].status, 302);
}

TEST_F(HttpFetcherTest, MissingFileIsNotFoundAndTheMessageNamesUrlAndRange) {
  SourceFile file;
  file.path = "a.bin";
  file.size = 100;
  file.location = nginx_->BaseUrl() + "/m/missing.bin";
  std::vector<std::byte> buffer(50);
  absl::Status status = Fetch(file, 10, buffer);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_EQ(status.message(), absl::StrCat("GET ", file.location, " bytes=10-59: HTTP 404"));
}

TEST_F(HttpFetcherTest, ForbiddenIsPermissionDenied) {
  SourceFile file = Publish("forbidden/a.bin", RandomBytes(1000, 2));
  std::vector<std::byte> buffer(100);
  absl::Status status = Fetch(file, 0, buffer);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("HTTP 403"));
}

TEST_F(HttpFetcherTest, SixtyFourFetchesWithSixteenInFlightAllComplete) {
  constexpr size_t kChunks = 64;
  constexpr size_t kInFlight = 16;
  constexpr size_t kChunkBytes = 256 << 10;
  const std::string content = RandomBytes(kChunks * kChunkBytes, 3);
  SourceFile file = Publish("m/big.bin", content);
  FillSettings settings;
  settings.concurrency = kInFlight;
  MakeFetcher(settings, HttpAuth{});

  std::vector<std::vector<std::byte>> buffers(kChunks, std::vector<std::byte>(kChunkBytes));
  // Loop thread only: a driver that keeps kInFlight fetches running.
  size_t next = 0, finished = 0, max_in_flight = 0;
  std::vector<absl::Status> results(kChunks);
  auto all_done = std::make_shared<std::promise<void>>();
  std::function<void()> start_next = [&] {
    while (next < kChunks && fetcher_->InFlight() < kInFlight) {
      const size_t index = next++;
      fetcher_->Fetch(ChunkRequest{&file, index * kChunkBytes, buffers[index]}, [&, index](absl::Status status) {
        results[index] = std::move(status);
        if (++finished == kChunks) all_done->set_value();
        start_next();
      });
      max_in_flight = std::max(max_in_flight, fetcher_->InFlight());
    }
  };
  loop_.Post(start_next);
  ASSERT_EQ(all_done->get_future().wait_for(60s), std::future_status::ready);
  size_t max_seen = 0;
  RunOnLoop([&] { max_seen = max_in_flight; });
  EXPECT_EQ(max_seen, kInFlight);
  for (size_t i = 0; i < kChunks; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i];
    ASSERT_EQ(AsString(buffers[i]), content.substr(i * kChunkBytes, kChunkBytes)) << "chunk " << i;
  }
  ASSERT_TRUE(PollUntil([&] { return nginx_->AccessLog().size() >= kChunks; }, 5s));
  std::set<uint64_t> connections;
  uint64_t served = 0;
  for (const auto& record : nginx_->AccessLog()) {
    connections.insert(record.connection);
    served += record.bytes;
  }
  EXPECT_EQ(served, content.size());  // no range was fetched twice
  EXPECT_LE(connections.size(), kInFlight);  // connections are kept alive and reused
}

TEST_F(HttpFetcherTest, FileReplacedWithADifferentSizeIsAborted) {
  SourceFile file = Publish("m/a.bin", RandomBytes(4096, 4));
  ASSERT_TRUE(WriteTestFile(root_ / "m/a.bin", RandomBytes(5000, 5)));
  std::vector<std::byte> buffer(1024);
  absl::Status status = Fetch(file, 1024, buffer);
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("file changed at the source"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("5000"));
}

TEST_F(HttpFetcherTest, DifferentEtagIsAbortedAndTheListedEtagIsAccepted) {
  const std::string content = RandomBytes(4096, 6);
  SourceFile file = Publish("m/a.bin", content);
  std::vector<std::byte> buffer(1000);
  file.etag = "\"5f0c-1000\"";
  absl::Status status = Fetch(file, 0, buffer);
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("ETag"));

  file.etag = NginxEtag(root_ / "m/a.bin");
  status = Fetch(file, 0, buffer);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(AsString(buffer), content.substr(0, 1000));
}

// A CDN edge or proxy that drops Range now and then: the whole file for a range request is
// a fault of that request, retryable, and its connection is not used again.
TEST_F(HttpFetcherTest, WholeFileForARangeIsARetryableFaultAndDropsTheConnection) {
  const std::string content = RandomBytes(300 << 10, 7);
  SourceFile file = Publish("norange/a.bin", content);
  SourceFile served = Publish("m/a.bin", content);
  std::vector<std::byte> part(100 << 10);
  absl::Status status = Fetch(file, 100 << 10, part);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_TRUE(IsRangeIgnored(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("HTTP 200 with the whole file to a range request"));
  EXPECT_THAT(std::string(status.message()), HasSubstr(file.location));
  EXPECT_FALSE(IsRangeIgnored(absl::UnavailableError("HTTP 503")));

  status = Fetch(served, 100 << 10, part);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(AsString(part), content.substr(100 << 10, 100 << 10));
  std::vector<std::byte> whole(content.size());
  status = Fetch(file, 0, whole);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(AsString(whole), content);
  ASSERT_TRUE(PollUntil([&] { return nginx_->AccessLog().size() >= 3; }, 5s));
  auto log = nginx_->AccessLog();
  EXPECT_EQ(log[0].status, 200);
  EXPECT_EQ(log[1].status, 206);
  EXPECT_EQ(log[2].status, 200);
  // The aborted body's connection was closed, not reused with the rest of the file unread.
  EXPECT_NE(log[0].connection, log[1].connection);
}

TEST_F(HttpFetcherTest, StreamHandsTheWholeBodyOverInOrderAndPausesWhenTheTakerIsFull) {
  const std::string content = RandomBytes((2 << 20) + 777, 21);
  SourceFile file = Publish("norange/big.bin", content);
  std::string received;
  int calls = 0;
  bool ordered = true;
  auto done = std::make_shared<std::promise<absl::Status>>();
  uint64_t stream_id = 0;
  loop_.Post([&, done] {
    stream_id = fetcher_->Stream(
        file,
        [&](uint64_t offset, std::span<const std::byte> data) -> size_t {
          ordered = ordered && offset == received.size();
          // Every third offer finds no room at all, the others room for 10000 bytes: the
          // transfer pauses, and the test resumes it from the loop, as a fill does.
          size_t take = ++calls % 3 == 0 ? 0 : std::min<size_t>(data.size(), 10000);
          received.append(reinterpret_cast<const char*>(data.data()), take);
          if (take < data.size()) loop_.Post([&] { fetcher_->Resume(stream_id); });
          return take;
        },
        [done](absl::Status status) { done->set_value(std::move(status)); });
  });
  auto future = done->get_future();
  ASSERT_EQ(future.wait_for(60s), std::future_status::ready);
  absl::Status status = future.get();
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_TRUE(ordered);
  EXPECT_EQ(received.size(), content.size());
  EXPECT_TRUE(received == content);
  EXPECT_GT(calls, 200);
  ASSERT_TRUE(PollUntil([&] { return nginx_->AccessLog().size() >= 1; }, 5s));
  EXPECT_EQ(nginx_->AccessLog()[0].range, "");  // no Range header at all
  EXPECT_EQ(nginx_->AccessLog()[0].status, 200);
}

TEST_F(HttpFetcherTest, StreamOfAFileThatGrewIsAbortedAndAMissingOneIsNotFound) {
  const std::string content = RandomBytes(50000, 22);
  SourceFile file = Publish("norange/grew.bin", content);
  file.size = 40000;  // the listing said less
  auto stream = [&](const SourceFile& source) {
    auto done = std::make_shared<std::promise<absl::Status>>();
    loop_.Post([&, done] {
      fetcher_->Stream(
          source, [](uint64_t, std::span<const std::byte> data) { return data.size(); },
          [done](absl::Status status) { done->set_value(std::move(status)); });
    });
    auto future = done->get_future();
    EXPECT_EQ(future.wait_for(60s), std::future_status::ready);
    return future.get();
  };
  absl::Status grew = stream(file);
  EXPECT_EQ(grew.code(), absl::StatusCode::kAborted) << grew;
  EXPECT_THAT(std::string(grew.message()), HasSubstr("file changed at the source"));
  file.location = nginx_->BaseUrl() + "/norange/missing.bin";
  absl::Status missing = stream(file);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;
  EXPECT_THAT(std::string(missing.message()), HasSubstr("(whole file, no Range)"));
}

TEST_F(HttpFetcherTest, FollowsARedirectToTheRange) {
  const std::string content = RandomBytes(10000, 9);
  SourceFile target = Publish("m/target.bin", content);
  SourceFile file = target;
  file.location = nginx_->BaseUrl() + "/moved/a.bin";
  std::vector<std::byte> buffer(3000);
  absl::Status status = Fetch(file, 5000, buffer);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(AsString(buffer), content.substr(5000, 3000));
  ASSERT_TRUE(PollUntil([&] { return nginx_->AccessLog().size() >= 2; }, 5s));
  auto log = nginx_->AccessLog();
  EXPECT_EQ(log[0].status, 302);
  EXPECT_EQ(log[1].uri, "/m/target.bin");
  EXPECT_EQ(log[1].range, "bytes=5000-7999");
}

TEST_F(HttpFetcherTest, UnsupportedSchemeIsNotRetryable) {
  SourceFile file;
  file.size = 10;
  file.location = "gopher://127.0.0.1:1/a.bin";
  std::vector<std::byte> buffer(10);
  absl::Status status = Fetch(file, 0, buffer);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("gopher://127.0.0.1:1/a.bin bytes=0-9"));
}

TEST_F(HttpFetcherTest, ConnectionRefusedIsUnavailable) {
  SourceFile file;
  file.size = 100;
  {
    ScriptedServer closed("", true);
    file.location = closed.Url("/a.bin");
  }  // its port is now closed
  std::vector<std::byte> buffer(100);
  absl::Status status = Fetch(file, 0, buffer);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(file.location));
}

struct ScriptedCase {
  std::string name;
  std::string response;
  absl::StatusCode code;
  std::string message_part;
};

// gtest prints the parameter in test listings (which ctest shows) and in failures; without
// this it dumps the struct's raw bytes.
void PrintTo(const ScriptedCase& scripted, std::ostream* out) { *out << scripted.name; }

class HttpFetcherScriptedTest : public HttpFetcherTest,
                                public ::testing::WithParamInterface<ScriptedCase> {};

TEST_P(HttpFetcherScriptedTest, MisbehavingOriginIsClassified) {
  ScriptedServer server(GetParam().response, /*close_after=*/true);
  SourceFile file;
  file.size = 1000;
  file.location = server.Url("/m/a.bin");
  std::vector<std::byte> buffer(100);
  absl::Status status = Fetch(file, 0, buffer);
  EXPECT_EQ(status.code(), GetParam().code) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(GetParam().message_part));
  EXPECT_THAT(std::string(status.message()), HasSubstr("bytes=0-99"));
}

std::string Response(const std::string& status_line, const std::string& headers, const std::string& body) {
  return absl::StrCat("HTTP/1.1 ", status_line, "\r\n", headers, "Connection: close\r\n\r\n", body);
}

INSTANTIATE_TEST_SUITE_P(
    Origins, HttpFetcherScriptedTest,
    ::testing::Values(
        ScriptedCase{"ServiceUnavailable", Response("503 Slow Down", "Content-Length: 0\r\n", ""),
                     absl::StatusCode::kUnavailable, "HTTP 503"},
        ScriptedCase{"TooManyRequests", Response("429 Too Many", "Content-Length: 2\r\n", "no"),
                     absl::StatusCode::kUnavailable, "HTTP 429"},
        ScriptedCase{"Unauthorized", Response("401 Unauthorized", "Content-Length: 0\r\n", ""),
                     absl::StatusCode::kPermissionDenied, "HTTP 401"},
        ScriptedCase{"S3ErrorCodeIsQuoted",
                     Response("403 Forbidden", "Content-Length: 65\r\n",
                              "<Error><Code>SignatureDoesNotMatch</Code><Message/></Error>      "),
                     absl::StatusCode::kPermissionDenied, "HTTP 403 (SignatureDoesNotMatch)"},
        ScriptedCase{"ShortBody",
                     Response("206 Partial Content", "Content-Range: bytes 0-99/1000\r\nContent-Length: 100\r\n",
                              std::string(60, 'x')),
                     absl::StatusCode::kUnavailable, "bytes=0-99: "},
        ScriptedCase{"ShortBodyWithHonestLength",
                     Response("206 Partial Content", "Content-Range: bytes 0-99/1000\r\nContent-Length: 60\r\n",
                              std::string(60, 'x')),
                     absl::StatusCode::kUnavailable, "short body: got 60 of 100 bytes"},
        ScriptedCase{"LongerBodyThanAsked",
                     Response("206 Partial Content", "Content-Range: bytes 0-99/1000\r\nContent-Length: 150\r\n",
                              std::string(150, 'x')),
                     absl::StatusCode::kUnavailable, "wrong length"},
        ScriptedCase{"WrongContentRange",
                     Response("206 Partial Content", "Content-Range: bytes 100-199/1000\r\nContent-Length: 100\r\n",
                              std::string(100, 'x')),
                     absl::StatusCode::kUnavailable, "wrong Content-Range \"bytes 100-199/1000\""},
        ScriptedCase{"MissingContentRange",
                     Response("206 Partial Content", "Content-Length: 100\r\n", std::string(100, 'x')),
                     absl::StatusCode::kUnavailable, "without Content-Range"},
        ScriptedCase{"TotalSizeDiffersFromListing",
                     Response("206 Partial Content", "Content-Range: bytes 0-99/2000\r\nContent-Length: 100\r\n",
                              std::string(100, 'x')),
                     absl::StatusCode::kAborted, "file changed at the source (size 2000, listing had 1000)"},
        ScriptedCase{"RangeNotSatisfiable", Response("416 Range Not Satisfiable", "Content-Length: 0\r\n", ""),
                     absl::StatusCode::kAborted, "HTTP 416"},
        ScriptedCase{"GarbageIsUnavailable", "this is not HTTP\r\n\r\n", absl::StatusCode::kUnavailable,
                     "GET "}),
    [](const ::testing::TestParamInfo<ScriptedCase>& info) { return info.param.name; });

TEST_F(HttpFetcherTest, AcceptedRangeFromScriptedOriginFillsTheBuffer) {
  const std::string body = RandomBytes(100, 8);
  ScriptedServer server(
      Response("206 Partial Content", "Content-Range: bytes 200-299/1000\r\nContent-Length: 100\r\n", body), true);
  SourceFile file;
  file.size = 1000;
  file.location = server.Url("/m/a.bin");
  std::vector<std::byte> buffer(100);
  absl::Status status = Fetch(file, 200, buffer);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(AsString(buffer), body);
}

TEST_F(HttpFetcherTest, AuthHeadersAndSigV4AreSentWithTheRange) {
  ScriptedServer server(Response("206 Partial Content",
                                 "Content-Range: bytes 0-9/10\r\nContent-Length: 10\r\n", "0123456789"),
                        true);
  HttpAuth auth;
  auth.aws_sigv4 = "aws:amz:us-east-1:s3";
  auth.user_password = "AKIDEXAMPLE:secret";
  auth.headers = {"x-amz-content-sha256: UNSIGNED-PAYLOAD", "x-amz-security-token: token123"};
  MakeFetcher(FillSettings{}, auth);
  SourceFile file;
  file.size = 10;
  file.location = server.Url("/bucket/a.bin");
  std::vector<std::byte> buffer(10);
  absl::Status status = Fetch(file, 0, buffer);
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(server.Requests().size(), 1u);
  const std::string request = server.Requests()[0];
  EXPECT_THAT(request, HasSubstr("GET /bucket/a.bin HTTP/1.1\r\n"));
  EXPECT_THAT(request, HasSubstr("Range: bytes=0-9\r\n"));
  EXPECT_THAT(request, HasSubstr("x-amz-content-sha256: UNSIGNED-PAYLOAD\r\n"));
  EXPECT_THAT(request, HasSubstr("x-amz-security-token: token123\r\n"));
  EXPECT_THAT(request, HasSubstr("Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
}

TEST_F(HttpFetcherTest, StalledOriginIsDeadlineExceeded) {
  // Headers, then silence with the connection open.
  ScriptedServer server(
      "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-99/1000\r\nContent-Length: 100\r\n\r\n", false);
  FillSettings settings;
  settings.stall_timeout = 1s;
  MakeFetcher(settings, HttpAuth{});
  SourceFile file;
  file.size = 1000;
  file.location = server.Url("/m/a.bin");
  std::vector<std::byte> buffer(100);
  const auto start = std::chrono::steady_clock::now();
  absl::Status status = Fetch(file, 0, buffer);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("bytes=0-99"));
  EXPECT_GE(took, 1s);
  EXPECT_LT(took, 4s);
}

TEST_F(HttpFetcherTest, StallInTheMiddleOfTheBodyIsDeadlineExceeded) {
  ScriptedServer server(absl::StrCat("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-99999/100000\r\n",
                                     "Content-Length: 100000\r\n\r\n", std::string(50000, 'x')),
                        false);
  FillSettings settings;
  settings.stall_timeout = 1s;
  MakeFetcher(settings, HttpAuth{});
  SourceFile file;
  file.size = 100000;
  file.location = server.Url("/m/a.bin");
  std::vector<std::byte> buffer(100000);
  const auto start = std::chrono::steady_clock::now();
  absl::Status status = Fetch(file, 0, buffer);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("50000 of 100000 bytes received"));
  // Detected about stall_timeout after the last byte, not after a long averaging window.
  EXPECT_GE(took, 1s);
  EXPECT_LT(took, 4s);
}

TEST_F(HttpFetcherTest, CancelledFetchNeverCallsDoneAndClosesItsConnection) {
  ScriptedServer server(
      "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-99/1000\r\nContent-Length: 100\r\n\r\n", false);
  FillSettings settings;
  settings.stall_timeout = 1s;
  MakeFetcher(settings, HttpAuth{});
  SourceFile file;
  file.size = 1000;
  file.location = server.Url("/m/a.bin");
  std::vector<std::byte> buffer(100);
  std::atomic<bool> cancelled_done_called{false};
  uint64_t id = 0;
  RunOnLoop([&] { id = fetcher_->Fetch(ChunkRequest{&file, 0, buffer}, [&](absl::Status) { cancelled_done_called = true; }); });
  // Once the server has answered the request, the transfer is surely in flight.
  ASSERT_TRUE(PollUntil([&] { return server.Requests().size() == 1; }, 10s));
  size_t in_flight_after_cancel = 99;
  RunOnLoop([&] {
    fetcher_->Cancel(id);
    fetcher_->Cancel(id + 1000);  // unknown ids are ignored
    in_flight_after_cancel = fetcher_->InFlight();
  });
  EXPECT_EQ(in_flight_after_cancel, 0u);
  ASSERT_TRUE(PollUntil([&] { return server.OpenConnectionsClosedByPeer() == 1; }, 10s));
  // A second fetch with the same stall timeout ends after the first one would have.
  std::vector<std::byte> other(100);
  EXPECT_EQ(Fetch(file, 0, other).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_FALSE(cancelled_done_called);
}

TEST_F(HttpFetcherTest, DoneMayCancelOthersAndDestroyTheFetcher) {
  const std::string content = RandomBytes(1 << 20, 10);
  SourceFile file = Publish("m/a.bin", content);
  std::vector<std::vector<std::byte>> buffers(8, std::vector<std::byte>(128 << 10));
  auto first_done = std::make_shared<std::promise<absl::Status>>();
  std::atomic<int> done_calls{0};
  loop_.Post([&, first_done] {
    auto ids = std::make_shared<std::vector<uint64_t>>();
    for (size_t i = 0; i < buffers.size(); ++i) {
      ids->push_back(fetcher_->Fetch(ChunkRequest{&file, i * buffers[i].size(), buffers[i]},
                                     [&, ids, first_done](absl::Status status) {
                                       ++done_calls;
                                       for (uint64_t id : *ids) fetcher_->Cancel(id);
                                       fetcher_.reset();  // as a fill that gives up would
                                       first_done->set_value(std::move(status));
                                     }));
    }
  });
  auto status = first_done->get_future();
  ASSERT_EQ(status.wait_for(30s), std::future_status::ready);
  EXPECT_TRUE(status.get().ok());
  RunOnLoop([] {});
  EXPECT_EQ(done_calls, 1);
}

TEST_F(HttpFetcherTest, FetcherOutlivingItsLoopIsDestroyedSafely) {
  ScriptedServer server(
      "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-99/1000\r\nContent-Length: 100\r\n\r\n", false);
  SourceFile file;
  file.size = 1000;
  file.location = server.Url("/m/a.bin");
  std::vector<std::byte> buffer(100);
  bool done_called = false;
  RunOnLoop([&] { fetcher_->Fetch(ChunkRequest{&file, 0, buffer}, [&](absl::Status) { done_called = true; }); });
  ASSERT_TRUE(PollUntil([&] { return server.Requests().size() == 1; }, 10s));
  loop_.Stop();  // closes the fetcher's sockets and timer under it
  fetcher_.reset();
  EXPECT_FALSE(done_called);
}

}  // namespace
}  // namespace modelcache
