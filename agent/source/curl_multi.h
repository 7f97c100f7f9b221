#pragma once
// libcurl's multi-socket API driven by the EventLoop: one uv_poll_t per socket curl asks to
// watch and one uv_timer_t for curl's timeout. Loop-thread only.
#include <cstddef>
#include <functional>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include <curl/curl.h>
#include <uv.h>

#include "absl/status/status.h"

namespace modelcache {

class EventLoop;

struct CurlMultiOptions {
  long max_host_connections = 16;   // parallel connections per host; more transfers queue in curl
  long max_cached_connections = 32;  // idle keep-alive connections kept for reuse
};

class CurlMulti {
 public:
  // Runs once on the loop thread when a transfer ends, with curl's result. The easy handle
  // has already been removed from the multi handle, so the callback may clean it up, Add()
  // it again, Add() or Remove() other transfers, or destroy this CurlMulti.
  using DoneFn = std::function<void(CURLcode result)>;

  // Call on the loop thread (or before the loop starts).
  CurlMulti(EventLoop& loop, const CurlMultiOptions& options);
  // Call on the loop thread, or after the loop stopped. Removes the transfers still running
  // without calling their callbacks; the caller still owns (and cleans up) their easy handles.
  ~CurlMulti();
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;

  // Starts `easy` (fully configured, not in any multi). INTERNAL if curl refuses it. Must not
  // be called from inside a curl callback (write, header, ...).
  absl::Status Add(CURL* easy, DoneFn done);
  // Stops `easy` if it runs here; its callback is never called. Unknown handles are ignored.
  // Must not be called from inside a curl callback.
  void Remove(CURL* easy);

  size_t Active() const { return transfers_.size(); }

 private:
  struct Socket;

  static int OnCurlSocket(CURL* easy, curl_socket_t fd, int what, void* self, void* socket);
  static int OnCurlTimer(CURLM* multi, long timeout_ms, void* self);
  static void OnPoll(uv_poll_t* poll, int status, int events);
  static void OnTimer(uv_timer_t* timer);

  void WatchSocket(curl_socket_t fd, int what, Socket* socket);
  void Act(curl_socket_t fd, int event_mask);
  void FinishDone();

  EventLoop& loop_;
  CURLM* multi_ = nullptr;
  uv_timer_t* timer_ = nullptr;  // heap: a closing handle must outlive this object
  std::unordered_map<CURL*, DoneFn> transfers_;
  std::unordered_set<Socket*> sockets_;  // watched now; closing ones are owned by libuv
  bool* destroyed_ = nullptr;  // set while callbacks run, so they notice `delete this`
  bool destroying_ = false;
};

}  // namespace modelcache
