#include "agent/source/blocking_http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include <fmt/format.h>

#include "agent/source/curl_network_guard.h"
#include "common/status_format.h"
#include "common/status_macros.h"

namespace modelcache {
namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

// State shared with curl's C callbacks; they must not throw, so they only append.
struct Transfer {
  HttpResponse response;
  uint64_t max_body_bytes = 0;
  bool body_too_large = false;
  ListingBudget::Listing* listing = nullptr;
  bool listing_cut = false;  // the agent's listing budget refused more
  uint64_t charged_capacity = 0;  // of response.body, charged to `listing`
  std::string_view upload;  // remaining PUT body
  CURL* easy = nullptr;
  const std::function<absl::Status(long, std::string_view)>* sink = nullptr;
  absl::Status sink_error;
};

// Makes room for `bytes` more in the body, charging the listing for the memory the body's
// buffer really takes: a grown buffer is charged in full before it is allocated, and the old
// one given back once freed, so the budget bounds the peak, not only the bytes received.
bool GrowChargedBody(Transfer& transfer, size_t bytes) {
  std::string& body = transfer.response.body;
  const uint64_t needed = body.size() + bytes;
  if (needed <= transfer.charged_capacity) return true;
  uint64_t grown = std::max<uint64_t>(needed, 2 * transfer.charged_capacity);
  if (!transfer.listing->Charge(grown)) {
    grown = needed;  // no room to double: just what this piece needs
    if (!transfer.listing->Charge(grown)) return false;
  }
  body.reserve(static_cast<size_t>(grown));
  transfer.listing->Refund(transfer.charged_capacity);
  transfer.charged_capacity = grown;
  return true;
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  if (transfer->sink != nullptr) {
    long code = 0;
    curl_easy_getinfo(transfer->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300) {
      transfer->sink_error = (*transfer->sink)(code, std::string_view(data, bytes));
      return transfer->sink_error.ok() ? bytes : 0;
    }
  }
  if (transfer->response.body.size() + bytes > transfer->max_body_bytes) {
    transfer->body_too_large = true;
    return 0;  // makes curl fail with CURLE_WRITE_ERROR
  }
  if (transfer->listing != nullptr && !GrowChargedBody(*transfer, bytes)) {
    transfer->listing_cut = true;
    return 0;
  }
  transfer->response.body.append(data, bytes);
  return bytes;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  std::string_view line(data, bytes);
  if (line.substr(0, 5) == "HTTP/") {
    // A new status line: a redirect or 100-continue came before; keep only the final headers.
    transfer->response.headers.clear();
    return bytes;
  }
  const size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    transfer->response.headers.emplace_back(std::string(Trim(line.substr(0, colon))),
                                            std::string(Trim(line.substr(colon + 1))));
  }
  return bytes;
}

size_t OnUpload(char* buffer, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t bytes = std::min(size * count, transfer->upload.size());
  std::copy_n(transfer->upload.data(), bytes, buffer);
  transfer->upload.remove_prefix(bytes);
  return bytes;
}

struct EasyDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

// The method's options; true when it sends a body (POST, PUT). INVALID_ARGUMENT for a method
// other than GET, HEAD, POST and PUT.
absl::StatusOr<bool> SetMethod(CURL* handle, const HttpRequest& request, Transfer& transfer) {
  if (request.method == "GET") return false;
  if (request.method == "HEAD") {
    curl_easy_setopt(handle, CURLOPT_NOBODY, 1L);
    return false;
  }
  if (request.method == "POST") {
    curl_easy_setopt(handle, CURLOPT_POST, 1L);
    curl_easy_setopt(handle, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(handle, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    return true;
  }
  if (request.method == "PUT") {
    curl_easy_setopt(handle, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(handle, CURLOPT_READFUNCTION, OnUpload);
    curl_easy_setopt(handle, CURLOPT_READDATA, &transfer);
    curl_easy_setopt(handle, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    return true;
  }
  return absl::InvalidArgumentError(fmt::format("unsupported HTTP method {}", request.method));
}

// Why the transfer failed, if it did: a listing over its budget, the body sink's error, a body
// over max_body_bytes, an address the network policy refused, or curl's error.
absl::Status TransferError(const HttpRequest& request, const Transfer& transfer, CURLcode result,
                           const absl::Status& refusal, const char* error_buffer) {
  if (transfer.listing_cut) {
    return request.listing->CutError(fmt::format("{} {}", request.method, request.url));
  }
  if (!transfer.sink_error.ok()) return transfer.sink_error;
  if (transfer.body_too_large) {
    return absl::ResourceExhaustedError(fmt::format("{} {}: response body larger than {} bytes",
                                                    request.method, request.url,
                                                    request.max_body_bytes));
  }
  if (result != CURLE_OK && !refusal.ok()) {
    return absl::PermissionDeniedError(
        fmt::format("{} {}: {}", request.method, request.url, refusal.message()));
  }
  if (result != CURLE_OK) {
    const char* reason = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(result);
    return absl::UnavailableError(fmt::format("{} {}: {}", request.method, request.url, reason));
  }
  return absl::OkStatus();
}

}  // namespace

std::optional<std::string> HttpResponse::Header(std::string_view name) const {
  for (const auto& [header_name, value] : headers) {
    if (EqualsIgnoreCase(header_name, name)) return value;
  }
  return std::nullopt;
}

absl::StatusOr<HttpResponse> PerformHttpRequest(const HttpRequest& request) {
  std::unique_ptr<CURL, EasyDeleter> easy(curl_easy_init());
  if (!easy) return absl::InternalError(fmt::format("{} {}: curl_easy_init failed", request.method, request.url));
  CURL* handle = easy.get();

  Transfer transfer;
  transfer.max_body_bytes = request.max_body_bytes;
  transfer.listing = request.listing;
  transfer.upload = request.body;
  transfer.easy = handle;
  if (request.body_sink) transfer.sink = &request.body_sink;

  std::unique_ptr<curl_slist, SlistDeleter> header_list;
  auto add_header = [&header_list](const std::string& header) {
    curl_slist* appended = curl_slist_append(header_list.get(), header.c_str());
    if (appended != nullptr) {
      header_list.release();
      header_list.reset(appended);
    }
  };
  for (const auto& header : request.headers) add_header(header);
  for (const auto& header : request.auth.headers) add_header(header);

  char error_buffer[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(handle, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  if (request.stall_timeout.count() > 0) {
    curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(handle, CURLOPT_LOW_SPEED_TIME, static_cast<long>(request.stall_timeout.count()));
  }
  curl_easy_setopt(handle, CURLOPT_FOLLOWLOCATION, request.follow_redirects ? 1L : 0L);
  curl_easy_setopt(handle, CURLOPT_MAXREDIRS, 5L);
  // A listing URL must never turn into file:// or another protocol, even through a redirect.
  curl_easy_setopt(handle, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(handle, CURLOPT_HEADERDATA, &transfer);
  ASSIGN_OR_RETURN(const bool sends_body, SetMethod(handle, request, transfer));
  if (sends_body) add_header("Expect:");  // no 100-continue round trip
  std::string range;
  if (request.range) {
    range = fmt::format("{}-{}", request.range->first, request.range->last);
    curl_easy_setopt(handle, CURLOPT_RANGE, range.c_str());
  }
  if (!request.auth.aws_sigv4.empty()) {
    curl_easy_setopt(handle, CURLOPT_AWS_SIGV4, request.auth.aws_sigv4.c_str());
  }
  if (!request.auth.user_password.empty()) {
    curl_easy_setopt(handle, CURLOPT_USERPWD, request.auth.user_password.c_str());
  }
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, header_list.get());
  CurlNetworkGuard guard;
  if (absl::Status installed = guard.Install(handle, request.network); !installed.ok()) {
    return absl::InternalError(fmt::format("{} {}: {}", request.method, request.url, installed.message()));
  }

  const CURLcode result = curl_easy_perform(handle);
  RETURN_IF_ERROR(TransferError(request, transfer, result, guard.Refusal(), error_buffer));
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &transfer.response.status_code);
  return std::move(transfer.response);
}

absl::Status HttpStatusToStatus(long status_code, std::string_view method, std::string_view url,
                                std::string_view detail) {
  if (status_code >= 200 && status_code < 300) return absl::OkStatus();
  std::string message = fmt::format("{} {}: HTTP {}", method, url, status_code);
  if (!detail.empty()) message += fmt::format(" ({})", detail);
  switch (status_code) {
    case 404:
      return absl::NotFoundError(message);
    case 401:
    case 403:
      return absl::PermissionDeniedError(message);
    default:
      return absl::UnavailableError(message);
  }
}

std::string PercentEncode(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const bool alphanumeric = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (alphanumeric || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0x0f]);
    }
  }
  return out;
}

}  // namespace modelcache
