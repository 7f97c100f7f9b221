// S3 source against a capture server (to prove SigV4 signatures with an independent
// implementation, since s3rver accepts any signature) and against a real s3rver.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <strings.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "agent/fill/blocking_http.h"
#include "agent/fill/s3_source.h"
#include "agent/fill/source.h"
#include "tests/testing/s3rver_server.h"
#include "tests/testing/sigv4_reference.h"
#include "tests/testing/source_access.h"

namespace modelcache {
namespace {

using testing::S3rverServer;
using testing::SigV4Authorization;
using testing::SigV4CanonicalRequest;
using testing::SigV4Key;
using testing::SigV4Request;

struct CapturedRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;

  std::string Header(std::string_view name) const {
    for (const auto& [header_name, value] : headers) {
      if (strcasecmp(header_name.c_str(), std::string(name).c_str()) == 0) return value;
    }
    return "";
  }
};

struct CannedResponse {
  CannedResponse(int status, std::string body, std::vector<std::pair<std::string, std::string>> headers = {})
      : status(status), body(std::move(body)), headers(std::move(headers)) {}
  int status;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra response headers
};

// A one-connection-at-a-time HTTP/1.1 server on 127.0.0.1 that records each request and
// answers with whatever `respond` returns. The listening socket is bound before the
// constructor returns, so there is no start-up race.
class CaptureServer {
 public:
  using Responder = std::function<CannedResponse(const CapturedRequest&)>;

  explicit CaptureServer(Responder respond) : respond_(std::move(respond)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listen_fd_, 16) != 0) {
      ADD_FAILURE() << "capture server: bind/listen failed";
      return;
    }
    socklen_t length = sizeof address;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }

  ~CaptureServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    ::close(listen_fd_);
  }

  uint16_t port() const { return port_; }
  std::string Endpoint() const { return fmt::format("http://127.0.0.1:{}", port_); }

  std::vector<CapturedRequest> Requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd waiting{listen_fd_, POLLIN, 0};
      if (::poll(&waiting, 1, 50) <= 0) continue;
      const int connection = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (connection < 0) continue;
      HandleConnection(connection);
      ::close(connection);
    }
  }

  void HandleConnection(int connection) {
    std::string received;
    char buffer[4096];
    while (received.find("\r\n\r\n") == std::string::npos) {
      pollfd readable{connection, POLLIN, 0};
      if (::poll(&readable, 1, 5000) <= 0) return;
      const ssize_t bytes = ::recv(connection, buffer, sizeof buffer, 0);
      if (bytes <= 0) return;
      received.append(buffer, static_cast<size_t>(bytes));
    }
    CapturedRequest request;
    std::string_view head(received.data(), received.find("\r\n\r\n"));
    const size_t line_end = std::min(head.find("\r\n"), head.size());
    const std::string_view request_line = head.substr(0, line_end);
    const size_t first_space = request_line.find(' ');
    const size_t second_space = request_line.rfind(' ');
    request.method = std::string(request_line.substr(0, first_space));
    request.target = std::string(request_line.substr(first_space + 1, second_space - first_space - 1));
    head.remove_prefix(std::min(line_end + 2, head.size()));
    while (!head.empty()) {
      const size_t end = std::min(head.find("\r\n"), head.size());
      const std::string_view line = head.substr(0, end);
      const size_t colon = line.find(':');
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      request.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
      head.remove_prefix(std::min(end + 2, head.size()));
    }
    const CannedResponse response = respond_(request);
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(request);
    }
    std::string extra_headers;
    for (const auto& [name, value] : response.headers) extra_headers += fmt::format("{}: {}\r\n", name, value);
    const std::string reply = fmt::format(
        "HTTP/1.1 {} Canned\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n{}"
        "Connection: close\r\n\r\n{}",
        response.status, response.body.size(), extra_headers, request.method == "HEAD" ? "" : response.body);
    ::send(connection, reply.data(), reply.size(), MSG_NOSIGNAL);
  }

  Responder respond_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<CapturedRequest> requests_;
};

// "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=a;b, Signature=..." -> {"a", "b"}.
std::vector<std::string> SignedHeadersOf(std::string_view authorization) {
  constexpr std::string_view kField = "SignedHeaders=";
  const size_t start = authorization.find(kField);
  if (start == std::string_view::npos) return {};
  std::string_view list = authorization.substr(start + kField.size());
  list = list.substr(0, std::min(list.find(','), list.size()));
  std::vector<std::string> names;
  while (!list.empty()) {
    const size_t semicolon = std::min(list.find(';'), list.size());
    names.emplace_back(list.substr(0, semicolon));
    list.remove_prefix(std::min(semicolon + 1, list.size()));
  }
  return names;
}

// Checks the request's Authorization against the reference signer using the same date,
// payload hash and signed-header list curl chose.
void ExpectValidSignature(const CapturedRequest& request, const SigV4Key& key) {
  const std::string authorization = request.Header("Authorization");
  ASSERT_FALSE(authorization.empty()) << "request " << request.target << " is not signed";
  const std::string amz_date = request.Header("x-amz-date");
  ASSERT_EQ(amz_date.size(), 16u) << amz_date;
  const std::string payload_hash = request.Header("x-amz-content-sha256");
  EXPECT_EQ(payload_hash, "UNSIGNED-PAYLOAD");
  const std::vector<std::string> signed_headers = SignedHeadersOf(authorization);
  for (const char* required : {"host", "x-amz-content-sha256", "x-amz-date"}) {
    EXPECT_NE(std::find(signed_headers.begin(), signed_headers.end(), required), signed_headers.end())
        << required << " not signed in " << authorization;
  }
  const SigV4Request reference_request{request.method, request.target, request.headers};
  EXPECT_EQ(authorization, SigV4Authorization(reference_request, signed_headers, payload_hash, amz_date, key))
      << "canonical request (reference):\n"
      << SigV4CanonicalRequest(reference_request, signed_headers, payload_hash);
}

std::string Md5Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_md5(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

// The reference signer itself, on the examples of AWS's "Signature Calculations for the
// Authorization Header" page (secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY).
TEST(SigV4Reference, MatchesAwsDocumentationExamples) {
  const SigV4Key key{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", "s3"};
  const std::string empty_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  const SigV4Request get_object{"GET", "/test.txt",
                                {{"Host", "examplebucket.s3.amazonaws.com"},
                                 {"Range", "bytes=0-9"},
                                 {"x-amz-content-sha256", empty_hash},
                                 {"x-amz-date", "20130524T000000Z"}}};
  EXPECT_EQ(SigV4Authorization(get_object, {"host", "range", "x-amz-content-sha256", "x-amz-date"},
                               empty_hash, "20130524T000000Z", key),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");

  const SigV4Request list_objects{"GET", "/?max-keys=2&prefix=J",
                                  {{"Host", "examplebucket.s3.amazonaws.com"},
                                   {"x-amz-content-sha256", empty_hash},
                                   {"x-amz-date", "20130524T000000Z"}}};
  EXPECT_EQ(SigV4Authorization(list_objects, {"host", "x-amz-content-sha256", "x-amz-date"}, empty_hash,
                               "20130524T000000Z", key),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
            "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

constexpr std::string_view kFirstPage = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>models</Name>
<Prefix>llama/v1/</Prefix><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
<NextContinuationToken>page/2+=</NextContinuationToken>
<Contents><Key>llama/v1/</Key><Size>0</Size><ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag></Contents>
<Contents><Key>llama/v1/config.json</Key><Size>17</Size><ETag>&quot;aaa&quot;</ETag></Contents>
</ListBucketResult>)";
constexpr std::string_view kSecondPage = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult><Name>models</Name><IsTruncated>false</IsTruncated>
<Contents><Key>llama/v1/weights/a &amp; b.bin</Key><Size>4096</Size><ETag>&quot;bbb-2&quot;</ETag></Contents>
</ListBucketResult>)";

TEST(S3SourceSigning, ListRequestsCarryValidSigV4AndFollowContinuation) {
  CaptureServer server([](const CapturedRequest& request) {
    const bool second = request.target.find("continuation-token=") != std::string::npos;
    return CannedResponse{200, std::string(second ? kSecondPage : kFirstPage)};
  });
  SourceOptions options = testing::LoopbackSourceOptions();
  options.s3_endpoint = server.Endpoint();
  options.s3_path_style = true;
  options.s3_region = "eu-central-1";
  options.s3_max_keys = 2;
  options.aws = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session/token+="};
  auto source = MakeSource("s3://models/llama/v1/", options);
  ASSERT_TRUE(source.ok()) << source.status();

  auto files = (*source)->List();
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 2u);  // the folder marker is skipped
  EXPECT_EQ((*files)[0].path, "config.json");
  EXPECT_EQ((*files)[0].size, 17u);
  EXPECT_EQ((*files)[0].etag, "\"aaa\"");
  EXPECT_EQ((*files)[0].location, server.Endpoint() + "/models/llama/v1/config.json");
  EXPECT_EQ((*files)[1].path, "weights/a & b.bin");
  EXPECT_EQ((*files)[1].size, 4096u);
  EXPECT_EQ((*files)[1].location, server.Endpoint() + "/models/llama/v1/weights/a%20%26%20b.bin");

  const std::vector<CapturedRequest> requests = server.Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].target, "/models/?list-type=2&max-keys=2&prefix=llama%2Fv1%2F");
  EXPECT_EQ(requests[1].target,
            "/models/?continuation-token=page%2F2%2B%3D&list-type=2&max-keys=2&prefix=llama%2Fv1%2F");
  const SigV4Key key{options.aws.access_key_id, options.aws.secret_access_key, "eu-central-1", "s3"};
  for (const CapturedRequest& request : requests) {
    EXPECT_EQ(request.Header("x-amz-security-token"), "session/token+=");
    EXPECT_NE(SignedHeadersOf(request.Header("Authorization")).size(), 0u);
    const auto signed_headers = SignedHeadersOf(request.Header("Authorization"));
    EXPECT_NE(std::find(signed_headers.begin(), signed_headers.end(), "x-amz-security-token"),
              signed_headers.end());
    ExpectValidSignature(request, key);
  }
}

TEST(S3SourceSigning, RangeGetWithSourceAuthIsSigned) {
  CaptureServer server([](const CapturedRequest&) { return CannedResponse{206, "0123456789"}; });
  SourceOptions options = testing::LoopbackSourceOptions();
  options.s3_endpoint = server.Endpoint();
  options.s3_path_style = true;
  options.aws = {"AKIDEXAMPLE", "secret", ""};
  auto source = MakeSource("s3://models/llama/", options);
  ASSERT_TRUE(source.ok()) << source.status();

  HttpRequest request;
  request.url = S3ObjectUrl(options, "models", "llama/weights 1.bin");
  request.network = options.network;
  request.range = HttpRange{100, 109};
  request.auth = (*source)->Auth();
  auto response = PerformHttpRequest(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "0123456789");

  const auto requests = server.Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].target, "/models/llama/weights%201.bin");
  EXPECT_EQ(requests[0].Header("Range"), "bytes=100-109");
  EXPECT_EQ(requests[0].Header("x-amz-security-token"), "");
  ExpectValidSignature(requests[0], SigV4Key{"AKIDEXAMPLE", "secret", "us-east-1", "s3"});
}

// Kept from before the change: the reference signer checks the canonical path the way S3
// builds it (decoded, encoded once), so a character curl sent unencoded would fail here.
TEST(SigV4Reference, CanonicalPathIsTheKeyEncodedOnceAsS3BuildsIt) {
  const SigV4Key key{"AKIDEXAMPLE", "secret", "us-east-1", "s3"};
  const std::vector<std::pair<std::string, std::string>> headers{
      {"Host", "h"}, {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"}, {"x-amz-date", "20240101T000000Z"}};
  const std::vector<std::string> names{"host", "x-amz-content-sha256", "x-amz-date"};
  const SigV4Request encoded{"GET", "/models/a%2Bb%20c", headers};
  const SigV4Request raw_plus{"GET", "/models/a+b%20c", headers};
  EXPECT_EQ(SigV4CanonicalRequest(encoded, names, "UNSIGNED-PAYLOAD"),
            SigV4CanonicalRequest(raw_plus, names, "UNSIGNED-PAYLOAD"));
  EXPECT_NE(SigV4CanonicalRequest(raw_plus, names, "UNSIGNED-PAYLOAD").find("/models/a%2Bb%20c\n"),
            std::string::npos);
}

// `s3://models/llama 3/v1 ü/` as the AWS CLI takes it: the prefix is the key as written,
// encoded in the listing's prefix parameter and in each object's path, and every request
// carries a signature the independent reference accepts.
TEST(S3SourceSigning, APrefixWithASpaceAndUtf8IsListedAndFetchedWithValidSignatures) {
  const std::string prefix = "llama 3/v1 \u00fc/";
  const std::string page = "<ListBucketResult><IsTruncated>false</IsTruncated>"
                           "<Contents><Key>" + prefix + "w=1+2.bin</Key><Size>10</Size><ETag>&quot;e&quot;</ETag></Contents>"
                           "</ListBucketResult>";
  CaptureServer server([&](const CapturedRequest& request) {
    if (request.target.find("list-type=2") != std::string::npos) return CannedResponse{200, page};
    return CannedResponse{206, "0123456789", {{"Content-Range", "bytes 0-9/10"}}};
  });
  SourceOptions options = testing::LoopbackSourceOptions();
  options.s3_endpoint = server.Endpoint();
  options.s3_path_style = true;
  options.aws = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
  auto source = MakeSource("s3://models/" + prefix, options);
  ASSERT_TRUE(source.ok()) << source.status();
  auto files = (*source)->List();
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].path, "w=1+2.bin");
  EXPECT_EQ((*files)[0].location, server.Endpoint() + "/models/llama%203/v1%20%C3%BC/w%3D1%2B2.bin");

  HttpRequest get;
  get.url = (*files)[0].location;
  get.range = HttpRange{0, 9};
  get.auth = (*source)->Auth();
  get.network = options.network;
  auto response = PerformHttpRequest(get);
  ASSERT_TRUE(response.ok()) << response.status();

  const std::vector<CapturedRequest> requests = server.Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].target, "/models/?list-type=2&max-keys=1000&prefix=llama%203%2Fv1%20%C3%BC%2F");
  EXPECT_EQ(requests[1].target, "/models/llama%203/v1%20%C3%BC/w%3D1%2B2.bin");
  const SigV4Key key{options.aws.access_key_id, options.aws.secret_access_key, "us-east-1", "s3"};
  for (const CapturedRequest& request : requests) ExpectValidSignature(request, key);
}

// A literal "%20" in an s3 uri is three characters of the key, as the AWS CLI reads it.
TEST(S3SourceSigning, PercentInAnS3UriIsPartOfTheKey) {
  CaptureServer server([](const CapturedRequest&) {
    return CannedResponse{200, "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"};
  });
  SourceOptions options = testing::LoopbackSourceOptions();
  options.s3_endpoint = server.Endpoint();
  options.s3_path_style = true;
  auto files = (*MakeSource("s3://models/llama%203/", options))->List();
  EXPECT_EQ(files.status().code(), absl::StatusCode::kNotFound) << files.status();
  ASSERT_EQ(server.Requests().size(), 1u);
  EXPECT_EQ(server.Requests()[0].target, "/models/?list-type=2&max-keys=1000&prefix=llama%25203%2F");
}

TEST(S3SourceSigning, AnonymousRequestsAreUnsigned) {
  CaptureServer server([](const CapturedRequest&) {
    return CannedResponse{200, "<ListBucketResult><Contents><Key>m/f</Key><Size>1</Size></Contents></ListBucketResult>"};
  });
  SourceOptions options = testing::LoopbackSourceOptions();
  options.s3_endpoint = server.Endpoint();
  options.s3_path_style = true;
  auto source = MakeSource("s3://models/m/", options);
  ASSERT_TRUE(source.ok()) << source.status();
  auto files = (*source)->List();
  ASSERT_TRUE(files.ok()) << files.status();
  const auto requests = server.Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].Header("Authorization"), "");
  EXPECT_EQ(requests[0].Header("x-amz-content-sha256"), "");
}

TEST(S3SourceSigning, HttpErrorsMapToStatusCodesNamingUrlAndS3Code) {
  CaptureServer server([](const CapturedRequest&) {
    return CannedResponse{403, "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"};
  });
  SourceOptions options = testing::LoopbackSourceOptions();
  options.s3_endpoint = server.Endpoint();
  options.s3_path_style = true;
  auto files = (*MakeSource("s3://models/m/", options))->List();
  EXPECT_EQ(files.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(files.status().message().find(server.Endpoint() + "/models/"), absl::string_view::npos)
      << files.status();
  EXPECT_NE(files.status().message().find("AccessDenied"), absl::string_view::npos) << files.status();
}

TEST(S3SourceSigning, EndpointTheNetworkPolicyRefusesIsPermissionDeniedAndNeverAsked) {
  CaptureServer server([](const CapturedRequest&) { return CannedResponse{200, ""}; });
  SourceOptions options;  // the agent's default network policy: no loopback
  options.s3_endpoint = server.Endpoint();
  options.s3_path_style = true;
  auto files = (*MakeSource("s3://models/m/", options))->List();
  EXPECT_EQ(files.status().code(), absl::StatusCode::kPermissionDenied) << files.status();
  EXPECT_NE(files.status().message().find("network.allow"), absl::string_view::npos) << files.status();
  EXPECT_TRUE(server.Requests().empty());
}

TEST(S3SourceSigning, ServerErrorIsUnavailable) {
  CaptureServer server([](const CapturedRequest&) { return CannedResponse{503, "<Error><Code>SlowDown</Code></Error>"}; });
  SourceOptions options = testing::LoopbackSourceOptions();
  options.s3_endpoint = server.Endpoint();
  options.s3_path_style = true;
  auto files = (*MakeSource("s3://models/m/", options))->List();
  EXPECT_EQ(files.status().code(), absl::StatusCode::kUnavailable) << files.status();
}

// One object uploaded with a SHA-256 checksum (listed with <ChecksumAlgorithm>), one without.
constexpr std::string_view kChecksumPage = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult><Name>models</Name><IsTruncated>false</IsTruncated>
<Contents><Key>m/a.bin</Key><Size>3</Size><ETag>&quot;e1&quot;</ETag><ChecksumAlgorithm>SHA256</ChecksumAlgorithm></Contents>
<Contents><Key>m/b.bin</Key><Size>3</Size><ETag>&quot;e2&quot;</ETag></Contents>
</ListBucketResult>)";
// SHA-256 of "abc", base64 and hex.
constexpr std::string_view kAbcSha256Base64 = "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";
constexpr std::string_view kAbcSha256Hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

std::vector<CapturedRequest> HeadRequests(const std::vector<CapturedRequest>& requests) {
  std::vector<CapturedRequest> heads;
  for (const CapturedRequest& request : requests) {
    if (request.method == "HEAD") heads.push_back(request);
  }
  return heads;
}

TEST(S3SourceChecksums, UploadedSha256IsReadWithASignedHeadOnlyForObjectsListedWithIt) {
  CaptureServer server([](const CapturedRequest& request) {
    if (request.method == "HEAD") {
      return CannedResponse{200, "", {{"ETag", "\"e1\""}, {"x-amz-checksum-sha256", std::string(kAbcSha256Base64)},
                                      {"x-amz-checksum-type", "FULL_OBJECT"}}};
    }
    return CannedResponse{200, std::string(kChecksumPage)};
  });
  SourceOptions options = testing::LoopbackSourceOptions();
  options.s3_endpoint = server.Endpoint();
  options.s3_path_style = true;
  options.aws = {"AKIDEXAMPLE", "secret", ""};
  auto files = (*MakeSource("s3://models/m/", options))->List();
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].expected_sha256, kAbcSha256Hex);
  EXPECT_EQ((*files)[1].expected_sha256, "");  // no checksum uploaded: hashed, not checked

  const std::vector<CapturedRequest> heads = HeadRequests(server.Requests());
  ASSERT_EQ(heads.size(), 1u);
  EXPECT_EQ(heads[0].target, "/models/m/a.bin");
  EXPECT_EQ(heads[0].Header("x-amz-checksum-mode"), "ENABLED");
  ExpectValidSignature(heads[0], SigV4Key{"AKIDEXAMPLE", "secret", "us-east-1", "s3"});
}

TEST(S3SourceChecksums, CompositeChecksumOfAMultipartUploadIsNotUsed) {
  CaptureServer server([](const CapturedRequest& request) {
    if (request.method == "HEAD") {
      return CannedResponse{200, "", {{"ETag", "\"e1\""}, {"x-amz-checksum-sha256", std::string(kAbcSha256Base64) + "-4"}}};
    }
    return CannedResponse{200, std::string(kChecksumPage)};
  });
  SourceOptions options = testing::LoopbackSourceOptions();
  options.s3_endpoint = server.Endpoint();
  options.s3_path_style = true;
  auto files = (*MakeSource("s3://models/m/", options))->List();
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ((*files)[0].expected_sha256, "");
  EXPECT_EQ(HeadRequests(server.Requests()).size(), 1u);
}

TEST(S3SourceChecksums, ObjectReplacedBetweenListAndHeadIsUnavailable) {
  CaptureServer server([](const CapturedRequest& request) {
    if (request.method == "HEAD") {
      return CannedResponse{200, "", {{"ETag", "\"newer\""}, {"x-amz-checksum-sha256", std::string(kAbcSha256Base64)}}};
    }
    return CannedResponse{200, std::string(kChecksumPage)};
  });
  SourceOptions options = testing::LoopbackSourceOptions();
  options.s3_endpoint = server.Endpoint();
  options.s3_path_style = true;
  auto files = (*MakeSource("s3://models/m/", options))->List();
  EXPECT_EQ(files.status().code(), absl::StatusCode::kUnavailable) << files.status();
  EXPECT_NE(files.status().message().find("changed while listing"), absl::string_view::npos) << files.status();
}

TEST(S3SourceChecksums, HeadRefusedIsPermissionDenied) {
  CaptureServer server([](const CapturedRequest& request) {
    if (request.method == "HEAD") return CannedResponse{403, ""};
    return CannedResponse{200, std::string(kChecksumPage)};
  });
  SourceOptions options = testing::LoopbackSourceOptions();
  options.s3_endpoint = server.Endpoint();
  options.s3_path_style = true;
  auto files = (*MakeSource("s3://models/m/", options))->List();
  EXPECT_EQ(files.status().code(), absl::StatusCode::kPermissionDenied) << files.status();
  EXPECT_NE(files.status().message().find("HEAD " + server.Endpoint() + "/models/m/a.bin"), absl::string_view::npos)
      << files.status();
}

class S3SourceOnS3rver : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto started = S3rverServer::Start("models");
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = started->release();
    for (const auto& [key, body] : Objects()) {
      ASSERT_TRUE(server_->PutObject("models", key, body).ok()) << key;
    }
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(server_, nullptr) << "s3rver did not start"; }

  static std::vector<std::pair<std::string, std::string>> Objects() {
    return {
        {"llama/v2/config.json", R"({"layers": 32})"},
        {"llama/v2/tokenizer.model", std::string(3000, 't')},
        {"llama/v2/weights/", ""},  // folder marker
        {"llama/v2/weights/00001-of-00002.safetensors", std::string(70000, 'a')},
        {"llama/v2/weights/00002-of-00002.safetensors", std::string(12345, 'b')},
        {"llama/v2/extra dir/notes+1.txt", "plus & space"},
        {"llama/v2-draft/x.bin", "not part of llama/v2"},
        {"single/model.gguf", "GGUF single file"},
        {"llama 3/v1 \u00fc/config.json", "{\"spaced\": true}"},
        {"llama 3/v1 \u00fc/\u6a21\u578b/weights+1=2.bin", std::string(20000, 'w')},
        {"llama 3/v1 \u00fcber/other.bin", "a sibling prefix, not part of the model"},
    };
  }

  static SourceOptions PagedOptions() {
    SourceOptions options = server_->Options();
    options.s3_max_keys = 2;
    return options;
  }

  static S3rverServer* server_;
};
S3rverServer* S3SourceOnS3rver::server_ = nullptr;

TEST_F(S3SourceOnS3rver, ListsNestedKeysAcrossPagesWithSizesAndEtags) {
  auto source = MakeSource("s3://models/llama/v2", PagedOptions());  // no trailing slash
  ASSERT_TRUE(source.ok()) << source.status();
  auto files = (*source)->List();
  ASSERT_TRUE(files.ok()) << files.status();

  std::map<std::string, std::string> expected;
  for (const auto& [key, body] : Objects()) {
    if (key.starts_with("llama/v2/") && !key.ends_with('/')) expected[key.substr(9)] = body;
  }
  ASSERT_EQ(files->size(), expected.size());  // 5 files over 3 pages of 2 keys
  for (const SourceFile& file : *files) {
    ASSERT_EQ(expected.count(file.path), 1u) << file.path;
    const std::string& body = expected[file.path];
    EXPECT_EQ(file.size, body.size()) << file.path;
    EXPECT_EQ(file.etag, "\"" + Md5Hex(body) + "\"") << file.path;

    // The location is a working object URL for a signed range GET.
    HttpRequest get;
    get.url = file.location;
    get.network = testing::AllowLoopback();
    get.auth = (*source)->Auth();
    if (!body.empty()) get.range = HttpRange{0, std::min<uint64_t>(body.size(), 100) - 1};
    auto response = PerformHttpRequest(get);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->body, body.substr(0, 100)) << file.location;
  }
  EXPECT_EQ(files->front().path, "config.json");  // sorted by path
}

TEST_F(S3SourceOnS3rver, APrefixWithASpaceAndUtf8ListsItsObjectsAndFetchesTheirBytes) {
  auto source = MakeSource("s3://models/llama 3/v1 \u00fc/", PagedOptions());
  ASSERT_TRUE(source.ok()) << source.status();
  auto files = (*source)->List();
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].path, "config.json");
  EXPECT_EQ((*files)[1].path, "\u6a21\u578b/weights+1=2.bin");
  for (const SourceFile& file : *files) {
    HttpRequest get;
    get.url = file.location;
    get.auth = (*source)->Auth();
    get.network = testing::AllowLoopback();
    get.range = HttpRange{0, file.size - 1};
    auto response = PerformHttpRequest(get);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->body, file.path == "config.json" ? "{\"spaced\": true}" : std::string(20000, 'w'))
        << file.location;
  }
}

TEST_F(S3SourceOnS3rver, PrefixNamingOneObjectIsASingleFileModel) {
  auto files = (*MakeSource("s3://models/single/model.gguf", PagedOptions()))->List();
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].path, "model.gguf");
  EXPECT_EQ((*files)[0].size, std::string("GGUF single file").size());
  EXPECT_EQ((*files)[0].location, server_->Endpoint() + "/models/single/model.gguf");
}

TEST_F(S3SourceOnS3rver, AnonymousListingWorks) {
  SourceOptions options = PagedOptions();
  options.aws = AwsCredentials{};
  auto source = MakeSource("s3://models/llama/v2/", options);
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_TRUE((*source)->Auth().aws_sigv4.empty());
  auto files = (*source)->List();
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ(files->size(), 5u);
}

TEST_F(S3SourceOnS3rver, MissingBucketIsNotFound) {
  auto files = (*MakeSource("s3://no-such-bucket/llama/", PagedOptions()))->List();
  EXPECT_EQ(files.status().code(), absl::StatusCode::kNotFound) << files.status();
  EXPECT_NE(files.status().message().find("no-such-bucket"), absl::string_view::npos) << files.status();
}

TEST_F(S3SourceOnS3rver, EmptyPrefixIsNotFound) {
  auto files = (*MakeSource("s3://models/llama/v3/", PagedOptions()))->List();
  EXPECT_EQ(files.status().code(), absl::StatusCode::kNotFound) << files.status();
  EXPECT_NE(files.status().message().find("s3://models/llama/v3/"), absl::string_view::npos);
}

}  // namespace
}  // namespace modelcache
