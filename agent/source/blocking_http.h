#pragma once
// A small blocking HTTP client (one curl easy handle per request) for listings and metadata.
// It blocks the calling thread: use it on worker threads only, never on the loop thread.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/source/address_policy.h"
#include "agent/source/listing_budget.h"
#include "agent/source/source.h"

namespace modelcache {

struct HttpRange {
  uint64_t first = 0;
  uint64_t last = 0;  // inclusive, as in the Range header
};

struct HttpRequest {
  std::string method = "GET";     // "GET", "HEAD", "PUT" or "POST" (PUT and POST send `body`)
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::optional<HttpRange> range;
  HttpAuth auth;                     // SigV4 via CURLOPT_AWS_SIGV4 + CURLOPT_USERPWD, extra headers
  std::string body;                  // PUT only
  std::chrono::milliseconds timeout{60'000};  // whole request; 0: no limit
  // When non-zero, the request fails (UNAVAILABLE) once no byte arrived for this long.
  std::chrono::seconds stall_timeout{0};
  // When set, the body of a 2xx answer goes here as it arrives, instead of into the response
  // (other answers are kept in the response's body). An error it returns stops the transfer,
  // and PerformHttpRequest returns it. Called on the calling thread; may not throw.
  std::function<absl::Status(long status_code, std::string_view data)> body_sink;
  uint64_t max_body_bytes = 256ull << 20;     // larger responses fail with RESOURCE_EXHAUSTED
  // When set, every body byte is charged to this listing of the agent's ListingBudget; a
  // charge the budget refuses cuts the response: RESOURCE_EXHAUSTED (Listing::CutError).
  ListingBudget::Listing* listing = nullptr;
  bool follow_redirects = true;
  NetworkPolicy network;  // addresses it may connect to, every redirect hop included
};

struct HttpResponse {
  long status_code = 0;
  // Headers of the final response (after redirects), in arrival order, names as sent.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // The first header named `name`, compared case-insensitively; nullopt when absent.
  std::optional<std::string> Header(std::string_view name) const;
};

// Performs the request. Any HTTP status is a successful return (the caller decides what a
// 404 means); transport failures (DNS, connect, TLS, timeout) are UNAVAILABLE and name the
// method and URL. An address `network` refuses is PERMISSION_DENIED (curl_network_guard.h).
absl::StatusOr<HttpResponse> PerformHttpRequest(const HttpRequest& request);

// OK for 2xx; otherwise 404 -> NOT_FOUND, 401/403 -> PERMISSION_DENIED, anything else ->
// UNAVAILABLE. The message names the method, URL and status, plus `detail` when non-empty.
absl::Status HttpStatusToStatus(long status_code, std::string_view method, std::string_view url,
                                std::string_view detail = {});

// Percent-encodes everything outside RFC 3986's unreserved set, keeping '/' when `keep_slash`.
std::string PercentEncode(std::string_view text, bool keep_slash);

}  // namespace modelcache
