#include "kube/http_transport.h"

#include <curl/curl.h>

#include <algorithm>

#include "spdlog/fmt/fmt.h"

namespace modelcache::kube {
namespace {

constexpr size_t kMaxIdleHandles = 4;
constexpr long kPollMillis = 1000;
constexpr auto kConnectTimeout = std::chrono::seconds(10);

struct Transfer {
  const HttpCall* call = nullptr;
  HttpAnswer* answer = nullptr;
  CURL* easy = nullptr;
  bool stopped_by_sink = false;
  bool too_large = false;
};

size_t OnWrite(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  const size_t bytes = size * count;
  long status = 0;
  curl_easy_getinfo(transfer->easy, CURLINFO_RESPONSE_CODE, &status);
  if (transfer->call->on_body && status >= 200 && status < 300) {
    if (!transfer->call->on_body(std::string_view(data, bytes))) {
      transfer->stopped_by_sink = true;
      return 0;  // ends the transfer (CURLE_WRITE_ERROR)
    }
    return bytes;
  }
  if (transfer->answer->body.size() + bytes > transfer->call->max_body_bytes) {
    transfer->too_large = true;
    return 0;
  }
  transfer->answer->body.append(data, bytes);
  return bytes;
}

curl_blob Blob(const std::string& pem) {
  curl_blob blob{};
  blob.data = const_cast<char*>(pem.data());
  blob.len = pem.size();
  blob.flags = CURL_BLOB_COPY;
  return blob;
}

// URL, callbacks, keepalive, timeouts and the method with its body.
void SetCallOptions(CURL* easy, const HttpCall& call, Transfer& transfer) {
  curl_easy_setopt(easy, CURLOPT_URL, call.url.c_str());
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &OnWrite);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL, 10L);
  const auto connect_timeout = call.timeout.count() > 0 ? std::min<std::chrono::milliseconds>(call.timeout, kConnectTimeout)
                                                        : std::chrono::milliseconds(kConnectTimeout);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect_timeout.count()));
  if (call.timeout.count() > 0) curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(call.timeout.count()));
  if (call.method == "GET") {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, call.method.c_str());
    if (!call.body.empty() || call.method != "DELETE") {
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, call.body.data());
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call.body.size()));
    }
  }
}

// The server's CA (or no verification when the kubeconfig says so) and the client certificate.
// The blobs are copied by curl (CURL_BLOB_COPY).
void SetTlsOptions(CURL* easy, const TlsSettings& tls) {
  curl_blob ca = Blob(tls.certificate_authority_pem);
  curl_blob cert = Blob(tls.client_certificate_pem);
  curl_blob key = Blob(tls.client_key_pem);
  if (tls.insecure_skip_tls_verify) {
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!tls.certificate_authority_pem.empty()) {
    curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &ca);
  }
  if (!tls.client_certificate_pem.empty()) {
    curl_easy_setopt(easy, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(easy, CURLOPT_SSLKEY_BLOB, &key);
    curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
  }
}

struct MultiOutcome {
  CURLcode result = CURLE_OK;
  bool done = false;
  bool cancelled = false;
};

// Drives `easy` (already added to `multi`) until it finishes or `stop` is signalled.
MultiOutcome RunUntilDone(CURLM* multi, CURL* easy, StopSignal* stop) {
  MultiOutcome outcome;
  while (!outcome.done) {
    int running = 0;
    if (curl_multi_perform(multi, &running) != CURLM_OK) {
      outcome.result = CURLE_FAILED_INIT;
      return outcome;
    }
    int queued = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &queued)) {
      if (message->msg == CURLMSG_DONE && message->easy_handle == easy) {
        outcome.result = message->data.result;
        outcome.done = true;
      }
    }
    if (outcome.done) return outcome;
    if (stop != nullptr && stop->Stopped()) {
      outcome.cancelled = true;
      return outcome;
    }
    curl_multi_poll(multi, nullptr, 0, kPollMillis, nullptr);
  }
  return outcome;
}

}  // namespace

struct HttpTransport::Handles {
  CURLM* multi = nullptr;
  CURL* easy = nullptr;
  ~Handles() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (multi != nullptr) curl_multi_cleanup(multi);
  }
};

void StopSignal::Stop() {
  std::lock_guard lock(mutex_);
  stopped_ = true;
  if (multi_ != nullptr) curl_multi_wakeup(static_cast<CURLM*>(multi_));
  changed_.notify_all();
}

bool StopSignal::Stopped() const {
  std::lock_guard lock(mutex_);
  return stopped_;
}

bool StopSignal::WaitFor(std::chrono::milliseconds duration) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, duration, [&] { return stopped_; });
}

bool StopSignal::Attach(void* multi) {
  std::lock_guard lock(mutex_);
  if (stopped_) return false;
  multi_ = multi;
  return true;
}

void StopSignal::Detach() {
  std::lock_guard lock(mutex_);
  multi_ = nullptr;
}

HttpTransport::HttpTransport(TlsSettings tls) : tls_(std::move(tls)) {}

HttpTransport::~HttpTransport() = default;

std::unique_ptr<HttpTransport::Handles> HttpTransport::Take() {
  {
    std::lock_guard lock(pool_mutex_);
    if (!idle_.empty()) {
      auto handles = std::move(idle_.back());
      idle_.pop_back();
      return handles;
    }
  }
  auto handles = std::make_unique<Handles>();
  handles->multi = curl_multi_init();
  handles->easy = curl_easy_init();
  if (handles->multi == nullptr || handles->easy == nullptr) return nullptr;
  return handles;
}

void HttpTransport::Give(std::unique_ptr<Handles> handles) {
  std::lock_guard lock(pool_mutex_);
  if (idle_.size() < kMaxIdleHandles) idle_.push_back(std::move(handles));
}

absl::StatusOr<HttpAnswer> HttpTransport::Perform(const HttpCall& call, StopSignal* stop) {
  std::unique_ptr<Handles> handles = Take();
  if (handles == nullptr) return absl::InternalError("kubernetes: curl could not make a handle");
  CURL* easy = handles->easy;
  curl_easy_reset(easy);  // keeps the live connections

  HttpAnswer answer;
  Transfer transfer{&call, &answer, easy};
  SetCallOptions(easy, call, transfer);
  SetTlsOptions(easy, tls_);
  struct curl_slist* headers = nullptr;
  for (const std::string& header : call.headers) headers = curl_slist_append(headers, header.c_str());
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  char error_text[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error_text);

  curl_multi_add_handle(handles->multi, easy);
  MultiOutcome outcome;
  if (stop != nullptr && !stop->Attach(handles->multi)) {
    outcome.cancelled = true;
  } else {
    outcome = RunUntilDone(handles->multi, easy, stop);
  }
  if (stop != nullptr) stop->Detach();
  curl_multi_remove_handle(handles->multi, easy);
  curl_slist_free_all(headers);
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &answer.status);

  if (outcome.cancelled || !outcome.done || outcome.result != CURLE_OK) {
    // A handle whose transfer was interrupted may hold a half-used connection: drop it.
    handles.reset();
  } else {
    Give(std::move(handles));
  }
  if (outcome.cancelled || transfer.stopped_by_sink) {
    return absl::CancelledError(fmt::format("kubernetes: {} {}: stopped", call.method, call.url));
  }
  if (transfer.too_large) {
    return absl::ResourceExhaustedError(fmt::format("kubernetes: {} {}: answer larger than {} bytes", call.method,
                                                    call.url, call.max_body_bytes));
  }
  if (!outcome.done || outcome.result != CURLE_OK) {
    return absl::UnavailableError(
        fmt::format("kubernetes: {} {}: {}", call.method, call.url,
                    error_text[0] != '\0' ? error_text : curl_easy_strerror(outcome.result)));
  }
  return answer;
}

}  // namespace modelcache::kube
