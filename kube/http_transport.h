#pragma once
// HTTP(S) to one API server over libcurl, blocking the calling thread, with a StopSignal that
// ends a request in flight at once (curl_multi_poll + curl_multi_wakeup, so a watch that
// waits for events stops promptly). Connections are kept alive in a small pool of handles.
// Thread-safe: several threads may Perform at the same time.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace modelcache::kube {

// How to trust the server and who we are at the TLS level (PEM in memory).
struct TlsSettings {
  std::string certificate_authority_pem;  // empty: the system's CAs
  bool insecure_skip_tls_verify = false;
  std::string client_certificate_pem;
  std::string client_key_pem;
};

// Ends waits and requests in flight when Stop() is called, from any thread.
class StopSignal {
 public:
  void Stop();
  bool Stopped() const;
  // Sleeps up to `duration`. True (at once) when stopped before or during the wait.
  bool WaitFor(std::chrono::milliseconds duration);

 private:
  friend class HttpTransport;
  bool Attach(void* multi);  // a curl multi handle to wake on Stop(); false if stopped
  void Detach();

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool stopped_ = false;
  void* multi_ = nullptr;  // CURLM*, while a request runs
};

struct HttpCall {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // sent for POST, PUT, PATCH and DELETE when non-empty
  std::chrono::milliseconds timeout{30'000};  // the whole request; zero: no limit (watches)
  // Streaming: each piece of a 2xx answer's body as it arrives, instead of collecting it.
  // Return false to end the transfer (Perform then returns CANCELLED). Must not throw.
  std::function<bool(std::string_view)> on_body;
  uint64_t max_body_bytes = 64ull << 20;  // a larger collected body is RESOURCE_EXHAUSTED
};

struct HttpAnswer {
  long status = 0;
  std::string body;  // collected unless streamed (then only a non-2xx body)
};

class HttpTransport {
 public:
  explicit HttpTransport(TlsSettings tls);
  ~HttpTransport();
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  // Any HTTP status is a successful return. Transport failures (connect, TLS, timeout, a
  // stream cut short) are UNAVAILABLE naming the method and URL; CANCELLED when `stop` was
  // stopped or `on_body` returned false.
  absl::StatusOr<HttpAnswer> Perform(const HttpCall& call, StopSignal* stop = nullptr);

 private:
  struct Handles;
  std::unique_ptr<Handles> Take();
  void Give(std::unique_ptr<Handles> handles);

  const TlsSettings tls_;
  std::mutex pool_mutex_;
  std::vector<std::unique_ptr<Handles>> idle_;
};

}  // namespace modelcache::kube
