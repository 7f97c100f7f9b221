#include "agent/source/curl_multi.h"

#include <exception>
#include <string>
#include <utility>

#include "agent/loop/event_loop.h"
#include "common/log_fields.h"
#include "spdlog/spdlog.h"

namespace modelcache {

// One socket curl asked us to watch. Its uv_poll_t is closed asynchronously, so the struct
// is freed by the close callback, never while curl or libuv may still refer to it.
struct CurlMulti::Socket {
  uv_poll_t poll;
  curl_socket_t fd = CURL_SOCKET_BAD;
  CurlMulti* owner = nullptr;
};

namespace {

template <typename Handle, typename Owner>
void CloseAndDelete(Handle* handle, Owner* owner) {
  auto* raw = reinterpret_cast<uv_handle_t*>(handle);
  if (uv_is_closing(raw)) {
    // Closed by EventLoop::Stop(), whose loop has finished: nothing refers to it any more.
    delete owner;
    return;
  }
  raw->data = owner;
  uv_close(raw, [](uv_handle_t* closed) { delete static_cast<Owner*>(closed->data); });
}

// An exception must not unwind through curl or libuv. `next` says what happens after it.
template <typename Fn>
void Guarded(const char* what, const char* next, Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& error) {
    spdlog::error("curl multi callback threw {}",
                  LogFields().Add("callback", what).Add("error", error.what()).Add("next", next));
  } catch (...) {
    spdlog::error("curl multi callback threw {}", LogFields()
                                                      .Add("callback", what)
                                                      .Add("error", "a non-std exception")
                                                      .Add("next", next));
  }
}

// After a throw in a socket, poll or timer callback curl has not been driven to the end; it
// is driven again at the next socket event or timeout, and a transfer left without one ends
// by its stall timeout.
constexpr char kDrivenAgain[] =
    "the transfers are driven again at the next socket event or timeout";

}  // namespace

CurlMulti::CurlMulti(EventLoop& loop, const CurlMultiOptions& options) : loop_(loop) {
  curl_global_init(CURL_GLOBAL_DEFAULT);  // reference counted; thread-safe in curl >= 7.84
  multi_ = curl_multi_init();
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlMulti::OnCurlSocket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlMulti::OnCurlTimer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  if (options.max_host_connections > 0) {
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, options.max_host_connections);
  }
  if (options.max_cached_connections > 0) {
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, options.max_cached_connections);
  }
  timer_ = new uv_timer_t;
  uv_timer_init(loop_.Raw(), timer_);
  timer_->data = this;
}

CurlMulti::~CurlMulti() {
  destroying_ = true;
  if (destroyed_ != nullptr) *destroyed_ = true;
  // Removing may make curl call OnCurlSocket(CURL_POLL_REMOVE), which closes the sockets.
  for (auto& [easy, done] : transfers_) curl_multi_remove_handle(multi_, easy);
  transfers_.clear();
  curl_multi_cleanup(multi_);
  for (Socket* socket : sockets_) {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&socket->poll))) uv_poll_stop(&socket->poll);
    CloseAndDelete(&socket->poll, socket);
  }
  sockets_.clear();
  CloseAndDelete(timer_, timer_);
  curl_global_cleanup();
}

absl::Status CurlMulti::Add(CURL* easy, DoneFn done) {
  if (destroying_) return absl::FailedPreconditionError("curl multi is shutting down");
  auto [it, inserted] = transfers_.emplace(easy, std::move(done));
  if (!inserted) return absl::InternalError("curl easy handle added twice");
  CURLMcode code = curl_multi_add_handle(multi_, easy);
  if (code != CURLM_OK) {
    transfers_.erase(easy);
    return absl::InternalError(std::string("curl_multi_add_handle: ") + curl_multi_strerror(code));
  }
  return absl::OkStatus();
}

void CurlMulti::Remove(CURL* easy) {
  auto it = transfers_.find(easy);
  if (it == transfers_.end()) return;
  DoneFn dropped = std::move(it->second);
  transfers_.erase(it);
  curl_multi_remove_handle(multi_, easy);
}

int CurlMulti::OnCurlSocket(CURL* /*easy*/, curl_socket_t fd, int what, void* self, void* socket) {
  auto* multi = static_cast<CurlMulti*>(self);
  Guarded("socket", kDrivenAgain,
          [&] { multi->WatchSocket(fd, what, static_cast<Socket*>(socket)); });
  return 0;
}

void CurlMulti::WatchSocket(curl_socket_t fd, int what, Socket* socket) {
  if (what == CURL_POLL_REMOVE) {
    if (socket == nullptr) return;
    curl_multi_assign(multi_, fd, nullptr);
    sockets_.erase(socket);
    // uv_poll_stop takes the fd out of epoll now; curl may close it right after we return.
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&socket->poll))) uv_poll_stop(&socket->poll);
    CloseAndDelete(&socket->poll, socket);
    return;
  }
  if (socket == nullptr) {
    if (destroying_) return;
    auto fresh = std::make_unique<Socket>();
    fresh->fd = fd;
    fresh->owner = this;
    int error = uv_poll_init_socket(loop_.Raw(), &fresh->poll, fd);
    if (error != 0) {
      // The transfer then makes no progress and ends by its stall timeout.
      spdlog::error("curl multi cannot watch a socket {}",
                    LogFields()
                        .Add("fd", fd)
                        .Add("error", uv_strerror(error))
                        .Add("next", "the transfer ends by its stall timeout"));
      return;
    }
    fresh->poll.data = fresh.get();
    socket = fresh.release();
    sockets_.insert(socket);
    curl_multi_assign(multi_, fd, socket);
  }
  if (uv_is_closing(reinterpret_cast<uv_handle_t*>(&socket->poll))) return;
  int events = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= UV_READABLE;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= UV_WRITABLE;
  uv_poll_start(&socket->poll, events, &CurlMulti::OnPoll);
}

int CurlMulti::OnCurlTimer(CURLM* /*multi*/, long timeout_ms, void* self) {
  auto* multi = static_cast<CurlMulti*>(self);
  uv_handle_t* timer = reinterpret_cast<uv_handle_t*>(multi->timer_);
  if (multi->destroying_ || uv_is_closing(timer)) return 0;
  if (timeout_ms < 0) {
    uv_timer_stop(multi->timer_);
  } else {
    // Even a 0 ms timeout goes through the loop: curl forbids socket_action from here.
    uv_timer_start(multi->timer_, &CurlMulti::OnTimer, static_cast<uint64_t>(timeout_ms), 0);
  }
  return 0;
}

void CurlMulti::OnPoll(uv_poll_t* poll, int status, int events) {
  auto* socket = static_cast<Socket*>(poll->data);
  int mask = 0;
  if (status < 0) {
    mask = CURL_CSELECT_ERR;
  } else {
    if (events & UV_READABLE) mask |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) mask |= CURL_CSELECT_OUT;
  }
  CurlMulti* multi = socket->owner;
  curl_socket_t fd = socket->fd;  // `socket` may be closed during Act()
  Guarded("poll", kDrivenAgain, [&] { multi->Act(fd, mask); });
}

void CurlMulti::OnTimer(uv_timer_t* timer) {
  auto* multi = static_cast<CurlMulti*>(timer->data);
  Guarded("timer", kDrivenAgain, [&] { multi->Act(CURL_SOCKET_TIMEOUT, 0); });
}

void CurlMulti::Act(curl_socket_t fd, int event_mask) {
  int running = 0;
  curl_multi_socket_action(multi_, fd, event_mask, &running);
  FinishDone();
}

void CurlMulti::FinishDone() {
  bool destroyed = false;
  bool* outer = destroyed_;
  destroyed_ = &destroyed;
  int left = 0;
  while (CURLMsg* message = curl_multi_info_read(multi_, &left)) {
    if (message->msg != CURLMSG_DONE) continue;
    CURL* easy = message->easy_handle;
    CURLcode result = message->data.result;  // `message` dies with remove_handle
    auto it = transfers_.find(easy);
    if (it == transfers_.end()) continue;  // not ours any more: do not touch it
    curl_multi_remove_handle(multi_, easy);
    DoneFn done = std::move(it->second);
    transfers_.erase(it);
    Guarded("transfer done", "the transfer is forgotten; the other transfers go on",
            [&] { done(result); });
    if (destroyed) {
      if (outer != nullptr) *outer = true;
      return;  // `this` is gone
    }
  }
  destroyed_ = outer;
}

}  // namespace modelcache
