// Range GETs on the loop thread through CurlMulti. The fetcher must be destroyed on the loop
// thread (or after the loop stopped), like every other loop-owned object.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstring>
#include <ctime>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <curl/curl.h>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "agent/fill/retry_after.h"
#include "agent/loop/event_loop.h"
#include "agent/source/chunk_fetcher.h"
#include "agent/source/curl_multi.h"
#include "agent/source/curl_network_guard.h"
#include "agent/source/stall_watch.h"
#include "common/status_macros.h"

namespace modelcache {
namespace {

constexpr long kReceiveBufferBytes = 512 * 1024;
constexpr size_t kErrorBodyBytes = 4096;  // enough for an S3 <Error> document
constexpr absl::string_view kRangeIgnoredPayload = "type.modelcache/range-ignored";

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && EqualsIgnoreCase(text.substr(0, prefix.size()), prefix);
}

// ETags compare without the weak prefix and the quotes: listings and responses differ there.
std::string_view BareEtag(std::string_view etag) {
  etag = Trim(etag);
  if (etag.size() >= 2 && (etag[0] == 'W' || etag[0] == 'w') && etag[1] == '/') etag.remove_prefix(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return etag;
}

bool ParseUint(std::string_view text, uint64_t* value) {
  if (text.empty()) return false;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && end == text.data() + text.size();
}

struct ContentRange {
  uint64_t first = 0;
  uint64_t last = 0;
  bool total_known = false;
  uint64_t total = 0;
};

// "bytes 0-99/1000" or "bytes 0-99/*".
bool ParseContentRange(std::string_view text, ContentRange* range) {
  text = Trim(text);
  constexpr std::string_view kUnit = "bytes ";
  if (text.size() < kUnit.size() || !EqualsIgnoreCase(text.substr(0, kUnit.size()), kUnit)) return false;
  text.remove_prefix(kUnit.size());
  size_t dash = text.find('-');
  size_t slash = text.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) return false;
  if (!ParseUint(Trim(text.substr(0, dash)), &range->first)) return false;
  if (!ParseUint(Trim(text.substr(dash + 1, slash - dash - 1)), &range->last)) return false;
  std::string_view total = Trim(text.substr(slash + 1));
  if (total == "*") return true;
  range->total_known = true;
  return ParseUint(total, &range->total);
}

// The <Code> of an S3 error document, if the body holds one.
std::string S3ErrorCode(std::string_view body) {
  size_t start = body.find("<Code>");
  if (start == std::string_view::npos) return "";
  start += 6;
  size_t end = body.find("</Code>", start);
  if (end == std::string_view::npos || end - start > 100) return "";
  return std::string(body.substr(start, end - start));
}

bool IsAcceptedStatus(long code) { return code == 206 || code == 200; }

// Failures that the same request meets again: retrying cannot help.
bool IsPermanentCurlError(CURLcode result) {
  switch (result) {
    case CURLE_URL_MALFORMAT:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_OUT_OF_MEMORY:
      return true;
    default:
      return false;
  }
}

class HttpChunkFetcher final : public ChunkFetcher {
 public:
  HttpChunkFetcher(EventLoop& loop, HttpAuth auth, const FillSettings& settings, NetworkPolicy network)
      : loop_(loop), auth_(std::move(auth)), settings_(settings), network_(std::move(network)) {}

  ~HttpChunkFetcher() override {
    *alive_ = false;
    multi_.reset();      // removes the easy handles still running, without callbacks
    transfers_.clear();  // then frees them
  }

  uint64_t Fetch(const ChunkRequest& request, DoneFn done) override;
  uint64_t Stream(const SourceFile& file, DataFn on_data, DoneFn done) override;
  void Resume(uint64_t fetch_id) override;
  void Cancel(uint64_t fetch_id) override;
  size_t InFlight() const override { return transfers_.size(); }

 private:
  struct Transfer {
    uint64_t id = 0;
    CURL* easy = nullptr;
    curl_slist* headers = nullptr;
    ChunkRequest request;
    DoneFn done;
    std::string what;  // "GET <url> bytes=a-b", the prefix of every message
    size_t received = 0;
    bool body_started = false;
    bool overflow = false;
    long status_code = 0;       // at the first body byte
    absl::Status early_error;   // decided from the headers; the transfer was aborted
    std::string content_range;  // of the last response (redirects reset it)
    std::string etag;
    std::string retry_after;    // Retry-After and RateLimit of the last response (429, 503)
    std::string rate_limit;
    std::string error_body;     // first bytes of a non-2xx body
    char curl_error[CURL_ERROR_SIZE] = {};
    // A stream (Stream()): the whole body goes to on_data in order; `received` counts what
    // it took. Bytes curl handed over that on_data had no room for wait in `carry`.
    bool stream = false;
    DataFn on_data;
    std::string carry;
    bool paused = false;    // OnBody returned CURL_WRITEFUNC_PAUSE: curl holds the bytes
    bool finished = false;  // curl is done; `carry` still waits for on_data
    bool completion_posted = false;
    CURLcode finished_result = CURLE_OK;
    // Stall detection (stall_watch.h), from curl's progress callback; curl's own low-speed
    // check is only the backstop that keeps the callback coming.
    std::optional<StallWatch> stall_watch;
    bool stalled = false;
    std::string stall_detail;  // what was measured when it stalled
    CurlNetworkGuard guard;  // which addresses this transfer may connect to

    ~Transfer() {
      if (easy != nullptr) curl_easy_cleanup(easy);
      curl_slist_free_all(headers);
    }
  };

  static size_t OnHeader(char* data, size_t size, size_t count, void* user);
  static size_t OnBody(char* data, size_t size, size_t count, void* user);
  static int OnProgress(void* user, curl_off_t download_total, curl_off_t download_now,
                        curl_off_t upload_total, curl_off_t upload_now);
  static size_t OnStreamBody(Transfer& transfer, const char* data, size_t bytes);
  static void OfferCarry(Transfer& transfer);
  static absl::Status CheckResponse(Transfer& transfer);
  static absl::Status StatusForHttpError(const Transfer& transfer, long code);
  absl::Status Classify(Transfer& transfer, CURLcode result) const;
  absl::Status Configure(Transfer& transfer);
  uint64_t Start(std::unique_ptr<Transfer> transfer);
  void OnDone(uint64_t id, CURLcode result);
  void CompleteSoon(uint64_t id);
  void FailSoon(std::unique_ptr<Transfer> transfer, absl::Status status);

  EventLoop& loop_;
  const HttpAuth auth_;
  const FillSettings settings_;
  const NetworkPolicy network_;
  std::unique_ptr<CurlMulti> multi_;  // created on the first Fetch, on the loop thread
  std::unordered_map<uint64_t, std::unique_ptr<Transfer>> transfers_;
  uint64_t next_id_ = 1;
  // Posted completions check this, as the fetcher may be gone by the time they run.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

uint64_t HttpChunkFetcher::Fetch(const ChunkRequest& request, DoneFn done) {
  auto transfer = std::make_unique<Transfer>();
  transfer->request = request;
  transfer->done = std::move(done);
  const uint64_t first = request.offset;
  const uint64_t last = request.offset + request.buffer.size() - 1;
  transfer->what = absl::StrCat("GET ", request.file->location, " bytes=", first, "-", last);
  if (request.buffer.empty()) {
    transfer->id = next_id_++;
    uint64_t id = transfer->id;
    absl::Status status = absl::InvalidArgumentError(transfer->what + ": empty chunk");
    FailSoon(std::move(transfer), std::move(status));
    return id;
  }
  return Start(std::move(transfer));
}

uint64_t HttpChunkFetcher::Stream(const SourceFile& file, DataFn on_data, DoneFn done) {
  auto transfer = std::make_unique<Transfer>();
  transfer->request.file = &file;
  transfer->stream = true;
  transfer->on_data = std::move(on_data);
  transfer->done = std::move(done);
  transfer->what = absl::StrCat("GET ", file.location, " (whole file, no Range)");
  return Start(std::move(transfer));
}

uint64_t HttpChunkFetcher::Start(std::unique_ptr<Transfer> transfer) {
  transfer->id = next_id_++;
  uint64_t id = transfer->id;
  const std::string& url = transfer->request.file->location;
  if (!StartsWithIgnoreCase(url, "http://") && !StartsWithIgnoreCase(url, "https://")) {
    // Checked here: curl's "unsupported protocol" also means garbage on the wire (retryable).
    absl::Status status = absl::InvalidArgumentError(transfer->what + ": not an http(s) URL");
    FailSoon(std::move(transfer), std::move(status));
    return id;
  }
  if (absl::Status status = Configure(*transfer); !status.ok()) {
    FailSoon(std::move(transfer), std::move(status));
    return id;
  }
  if (!multi_) {
    CurlMultiOptions options;
    options.max_host_connections = std::max<long>(1, settings_.concurrency);
    options.max_cached_connections = std::max<long>(4, 2 * static_cast<long>(settings_.concurrency));
    multi_ = std::make_unique<CurlMulti>(loop_, options);
  }
  CURL* easy = transfer->easy;
  Transfer* raw = transfer.get();
  transfers_.emplace(id, std::move(transfer));
  absl::Status added = multi_->Add(easy, [this, id](CURLcode result) { OnDone(id, result); });
  if (!added.ok()) {
    auto node = transfers_.extract(id);
    FailSoon(std::move(node.mapped()), absl::InternalError(absl::StrCat(raw->what, ": ", added.message())));
  }
  return id;
}

absl::Status HttpChunkFetcher::Configure(Transfer& transfer) {
  transfer.easy = curl_easy_init();
  if (transfer.easy == nullptr) return absl::InternalError(transfer.what + ": curl_easy_init failed");
  CURL* easy = transfer.easy;
  const long stall_seconds = std::max<long>(1, static_cast<long>(settings_.stall_timeout.count()));

  curl_easy_setopt(easy, CURLOPT_URL, transfer.request.file->location.c_str());
  if (!transfer.stream) {
    const uint64_t first = transfer.request.offset;
    const uint64_t last = first + transfer.request.buffer.size() - 1;
    const std::string range = absl::StrCat(first, "-", last);
    curl_easy_setopt(easy, CURLOPT_RANGE, range.c_str());  // curl copies strings
  }
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 5L);
  // Parallel HTTP/1.1 connections outrun one multiplexed HTTP/2 connection for bulk ranges.
  curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, kReceiveBufferBytes);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, stall_seconds);
  // OnProgress ends a transfer that received less than 1 byte/s over stall_timeout. The
  // low-speed check is the backstop (a little later, so OnProgress decides and says what it
  // measured), and it makes curl wake up every second even when no data comes.
  transfer.stall_watch.emplace(settings_.stall_timeout);
  transfer.stall_watch->Start(std::chrono::steady_clock::now());
  curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, &HttpChunkFetcher::OnProgress);
  curl_easy_setopt(easy, CURLOPT_XFERINFODATA, &transfer);
  curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, stall_seconds + 2);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "modelcache/0.1");
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer.curl_error);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &HttpChunkFetcher::OnHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &HttpChunkFetcher::OnBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
  if (!auth_.aws_sigv4.empty()) {
    curl_easy_setopt(easy, CURLOPT_AWS_SIGV4, auth_.aws_sigv4.c_str());
    curl_easy_setopt(easy, CURLOPT_USERPWD, auth_.user_password.c_str());
  }
  for (const std::string& header : auth_.headers) {
    curl_slist* grown = curl_slist_append(transfer.headers, header.c_str());
    if (grown == nullptr) return absl::InternalError(transfer.what + ": out of memory for headers");
    transfer.headers = grown;
  }
  if (transfer.headers != nullptr) curl_easy_setopt(easy, CURLOPT_HTTPHEADER, transfer.headers);
  if (absl::Status installed = transfer.guard.Install(easy, network_); !installed.ok()) {
    return absl::InternalError(absl::StrCat(transfer.what, ": ", installed.message()));
  }
  return absl::OkStatus();
}

void HttpChunkFetcher::FailSoon(std::unique_ptr<Transfer> transfer, absl::Status status) {
  // `done` never runs inside Fetch(): the caller may not be ready for re-entry.
  uint64_t id = transfer->id;
  transfers_.emplace(id, std::move(transfer));
  loop_.Post([this, alive = alive_, id, status = std::move(status)] {
    if (!*alive) return;
    auto it = transfers_.find(id);
    if (it == transfers_.end()) return;  // cancelled
    DoneFn done = std::move(it->second->done);
    transfers_.erase(it);
    done(status);
  });
}

void HttpChunkFetcher::Cancel(uint64_t fetch_id) {
  auto it = transfers_.find(fetch_id);
  if (it == transfers_.end()) return;
  if (multi_ && it->second->easy != nullptr) multi_->Remove(it->second->easy);
  transfers_.erase(it);
}

void HttpChunkFetcher::OnDone(uint64_t id, CURLcode result) {
  auto it = transfers_.find(id);
  if (it == transfers_.end()) return;
  Transfer& transfer = *it->second;
  if (transfer.stream && !transfer.carry.empty() && result == CURLE_OK && transfer.early_error.ok()) {
    // The body is all here, but its end waits in `carry` for room: Resume completes it.
    transfer.finished = true;
    transfer.finished_result = result;
    return;
  }
  absl::Status status = Classify(transfer, result);
  DoneFn done = std::move(it->second->done);
  transfers_.erase(it);
  done(std::move(status));  // may destroy this fetcher: nothing after it
}

size_t HttpChunkFetcher::OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  try {
    std::string_view line(data, bytes);
    if (line.size() >= 5 && line.substr(0, 5) == "HTTP/") {
      // A new response (after a redirect or a 100 Continue): forget the previous one.
      transfer->content_range.clear();
      transfer->etag.clear();
      transfer->retry_after.clear();
      transfer->rate_limit.clear();
      transfer->body_started = false;
      transfer->status_code = 0;
      transfer->error_body.clear();
      return bytes;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return bytes;
    std::string_view name = Trim(line.substr(0, colon));
    std::string_view value = Trim(line.substr(colon + 1));
    if (EqualsIgnoreCase(name, "Content-Range")) transfer->content_range = std::string(value);
    if (EqualsIgnoreCase(name, "ETag")) transfer->etag = std::string(value);
    if (EqualsIgnoreCase(name, "Retry-After")) transfer->retry_after = std::string(value);
    if (EqualsIgnoreCase(name, "RateLimit")) transfer->rate_limit = std::string(value);
    return bytes;
  } catch (...) {
    return 0;  // aborts the transfer; no exception may cross into curl
  }
}

int HttpChunkFetcher::OnProgress(void* user, curl_off_t /*download_total*/, curl_off_t download_now,
                                 curl_off_t /*upload_total*/, curl_off_t /*upload_now*/) {
  auto* transfer = static_cast<Transfer*>(user);
  if (!transfer->stall_watch) return 0;
  const auto now = std::chrono::steady_clock::now();
  const uint64_t total = static_cast<uint64_t>(std::max<curl_off_t>(download_now, 0));
  transfer->stall_watch->Observe(now, total);
  if (transfer->paused || !transfer->carry.empty()) {
    // Waiting for room on our side (the disk), not for the origin.
    transfer->stall_watch->Restart(now);
    return 0;
  }
  if (!transfer->stall_watch->Stalled(now)) return 0;
  transfer->stalled = true;
  transfer->stall_detail = transfer->stall_watch->Describe(now);
  return 1;  // ends the transfer with CURLE_ABORTED_BY_CALLBACK
}

size_t HttpChunkFetcher::OnBody(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  try {
    if (!transfer->body_started) {
      transfer->body_started = true;
      curl_easy_getinfo(transfer->easy, CURLINFO_RESPONSE_CODE, &transfer->status_code);
      if (IsAcceptedStatus(transfer->status_code)) {
        transfer->early_error = CheckResponse(*transfer);
        if (!transfer->early_error.ok()) return 0;
      }
    }
    if (!IsAcceptedStatus(transfer->status_code)) {
      // An error page: keep its start for the message, never copy it into the chunk.
      if (transfer->error_body.size() >= kErrorBodyBytes) return 0;
      transfer->error_body.append(data, std::min(bytes, kErrorBodyBytes - transfer->error_body.size()));
      return bytes;
    }
    if (transfer->stream) return OnStreamBody(*transfer, data, bytes);
    std::span<std::byte> buffer = transfer->request.buffer;
    if (bytes > buffer.size() - transfer->received) {
      transfer->overflow = true;
      return 0;
    }
    std::memcpy(buffer.data() + transfer->received, data, bytes);
    transfer->received += bytes;
    return bytes;
  } catch (...) {
    return 0;
  }
}

size_t HttpChunkFetcher::OnStreamBody(Transfer& transfer, const char* data, size_t bytes) {
  if (!transfer.carry.empty()) {
    OfferCarry(transfer);
    if (!transfer.carry.empty()) {
      transfer.paused = true;
      return CURL_WRITEFUNC_PAUSE;  // curl keeps `data` and hands it over again after Resume
    }
  }
  if (transfer.received + bytes > transfer.request.file->size) {
    transfer.overflow = true;
    return 0;
  }
  const size_t taken = std::min(
      bytes, transfer.on_data(transfer.received, std::as_bytes(std::span<const char>(data, bytes))));
  transfer.received += taken;
  if (taken == bytes) return bytes;
  if (taken == 0) {
    transfer.paused = true;
    return CURL_WRITEFUNC_PAUSE;
  }
  // Part was taken: curl cannot hold back the rest of this call, so we do.
  transfer.carry.assign(data + taken, bytes - taken);
  return bytes;
}

void HttpChunkFetcher::OfferCarry(Transfer& transfer) {
  const size_t taken = std::min(
      transfer.carry.size(),
      transfer.on_data(transfer.received, std::as_bytes(std::span<const char>(transfer.carry))));
  transfer.received += taken;
  transfer.carry.erase(0, taken);
}

void HttpChunkFetcher::Resume(uint64_t fetch_id) {
  auto it = transfers_.find(fetch_id);
  if (it == transfers_.end() || !it->second->stream) return;
  Transfer& transfer = *it->second;
  // The pause was ours (no room yet), not the origin's stall.
  if (transfer.stall_watch) transfer.stall_watch->Restart(std::chrono::steady_clock::now());
  if (!transfer.carry.empty()) {
    OfferCarry(transfer);
    if (!transfer.carry.empty()) return;
  }
  if (transfer.finished) return CompleteSoon(fetch_id);
  if (transfer.paused) {
    transfer.paused = false;
    // May hand the held bytes to OnBody (and so to on_data) before it returns.
    curl_easy_pause(transfer.easy, CURLPAUSE_CONT);
  }
}

void HttpChunkFetcher::CompleteSoon(uint64_t id) {
  Transfer& transfer = *transfers_.at(id);
  if (transfer.completion_posted) return;
  transfer.completion_posted = true;
  // Not from inside Resume: the caller may not be ready for re-entry.
  loop_.Post([this, alive = alive_, id] {
    if (!*alive) return;
    auto it = transfers_.find(id);
    if (it == transfers_.end()) return;  // cancelled
    absl::Status status = Classify(*it->second, it->second->finished_result);
    DoneFn done = std::move(it->second->done);
    transfers_.erase(it);
    done(std::move(status));
  });
}

// For a 200 or 206 response: do the headers describe the bytes we asked for?
absl::Status HttpChunkFetcher::CheckResponse(Transfer& transfer) {
  const SourceFile& file = *transfer.request.file;
  const uint64_t first = transfer.request.offset;
  const uint64_t length = transfer.request.buffer.size();
  const uint64_t last = first + length - 1;
  if (!file.etag.empty() && !transfer.etag.empty() && BareEtag(file.etag) != BareEtag(transfer.etag)) {
    return absl::AbortedError(absl::StrCat(transfer.what, ": file changed at the source (ETag ",
                                           transfer.etag, ", listing had ", file.etag, ")"));
  }
  if (transfer.status_code == 200) {
    if (!transfer.stream && (first != 0 || length != file.size)) {
      // A CDN edge or proxy that dropped the Range header on this request; aborting the
      // body drops the connection, and the chunk is asked for again.
      return RangeIgnoredError(absl::StrCat(
          transfer.what, ": origin answered HTTP 200 with the whole file to a range request"));
    }
    curl_off_t content_length = -1;
    curl_easy_getinfo(transfer.easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &content_length);
    if (content_length >= 0 && static_cast<uint64_t>(content_length) != file.size) {
      return absl::AbortedError(absl::StrCat(transfer.what, ": file changed at the source (size ",
                                             content_length, ", listing had ", file.size, ")"));
    }
    return absl::OkStatus();
  }
  if (transfer.stream) {
    return absl::UnavailableError(absl::StrCat(transfer.what, ": HTTP 206 to a request without Range"));
  }
  ContentRange range;
  if (transfer.content_range.empty()) {
    return absl::UnavailableError(absl::StrCat(transfer.what, ": HTTP 206 without Content-Range"));
  }
  if (!ParseContentRange(transfer.content_range, &range)) {
    return absl::UnavailableError(
        absl::StrCat(transfer.what, ": unreadable Content-Range \"", transfer.content_range, "\""));
  }
  if (range.total_known && range.total != file.size) {
    return absl::AbortedError(absl::StrCat(transfer.what, ": file changed at the source (size ",
                                           range.total, ", listing had ", file.size, ")"));
  }
  if (range.first != first || range.last != last) {
    return absl::UnavailableError(absl::StrCat(transfer.what, ": wrong Content-Range \"",
                                               transfer.content_range, "\""));
  }
  return absl::OkStatus();
}

absl::Status HttpChunkFetcher::StatusForHttpError(const Transfer& transfer, long code) {
  std::string message = absl::StrCat(transfer.what, ": HTTP ", code);
  if (std::string s3_code = S3ErrorCode(transfer.error_body); !s3_code.empty()) {
    absl::StrAppend(&message, " (", s3_code, ")");
  }
  if (code == 404 || code == 410) return absl::NotFoundError(message);
  if (code == 401 || code == 403) return absl::PermissionDeniedError(message);
  if (code == 408 || code == 429 || code >= 500) {
    absl::Status status = absl::UnavailableError(message);
    // The retry waits at least as long as a rate-limiting origin asks (retry_policy.h).
    if (code == 429 || code == 503) {
      if (auto wait = ParseRetryAfter(transfer.retry_after, transfer.rate_limit,
                                      static_cast<int64_t>(std::time(nullptr)))) {
        SetRetryAfter(status, *wait);
      }
    }
    return status;
  }
  if (code == 416) {
    return absl::AbortedError(absl::StrCat(message, ": file changed at the source (range beyond its end)"));
  }
  return absl::InternalError(absl::StrCat(message, ": unexpected status"));
}

absl::Status HttpChunkFetcher::Classify(Transfer& transfer, CURLcode result) const {
  const uint64_t expected = transfer.stream ? transfer.request.file->size : transfer.request.buffer.size();
  if (!transfer.early_error.ok()) return transfer.early_error;
  if (result != CURLE_OK && !transfer.guard.Refusal().ok()) {
    return absl::PermissionDeniedError(absl::StrCat(transfer.what, ": ", transfer.guard.Refusal().message()));
  }
  if (transfer.stalled) {
    return absl::DeadlineExceededError(absl::StrCat(
        transfer.what, ": stalled (fill.stallTimeout): ", transfer.stall_detail, " (",
        transfer.received, " of ", expected, " bytes received)"));
  }
  if (transfer.overflow && transfer.stream) {
    return absl::AbortedError(absl::StrCat(transfer.what, ": file changed at the source (body longer than the ",
                                           expected, " bytes listed)"));
  }
  if (result == CURLE_OPERATION_TIMEDOUT) {
    // curl's connect timeout or its low-speed backstop: its own words say which.
    const char* detail = transfer.curl_error[0] != '\0' ? transfer.curl_error : curl_easy_strerror(result);
    return absl::DeadlineExceededError(absl::StrCat(
        transfer.what, ": timed out: ", detail, " (", transfer.received, " of ", expected,
        " bytes received)"));
  }
  if (transfer.overflow) {
    return absl::UnavailableError(absl::StrCat(transfer.what, ": wrong length: origin sent more than ",
                                               transfer.request.buffer.size(), " bytes"));
  }
  long code = transfer.status_code;
  if (!transfer.body_started) curl_easy_getinfo(transfer.easy, CURLINFO_RESPONSE_CODE, &code);
  if (code != 0 && !IsAcceptedStatus(code)) return StatusForHttpError(transfer, code);
  if (result != CURLE_OK) {
    const char* detail = transfer.curl_error[0] != '\0' ? transfer.curl_error : curl_easy_strerror(result);
    if (IsPermanentCurlError(result)) return absl::InternalError(absl::StrCat(transfer.what, ": ", detail));
    return absl::UnavailableError(absl::StrCat(transfer.what, ": ", detail));
  }
  if (!transfer.body_started) {
    transfer.status_code = code;
    RETURN_IF_ERROR(CheckResponse(transfer));  // e.g. a 206 with an empty body
  }
  if (transfer.received != expected) {
    return absl::UnavailableError(absl::StrCat(transfer.what, ": short body: got ", transfer.received,
                                               " of ", expected, " bytes"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RangeIgnoredError(std::string message) {
  absl::Status status = absl::UnavailableError(std::move(message));
  status.SetPayload(kRangeIgnoredPayload, absl::Cord());
  return status;
}

bool IsRangeIgnored(const absl::Status& status) {
  return status.GetPayload(kRangeIgnoredPayload).has_value();
}

std::unique_ptr<ChunkFetcher> MakeHttpChunkFetcher(EventLoop& loop, HttpAuth auth,
                                                   const FillSettings& settings, NetworkPolicy network) {
  return std::make_unique<HttpChunkFetcher>(loop, std::move(auth), settings, std::move(network));
}

}  // namespace modelcache
