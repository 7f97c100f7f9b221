#pragma once
// A tiny HTTP/1.1 server on 127.0.0.1 for origins nginx will not play: an answer that never
// ends, a body that drips a byte now and then. The test's handler writes each answer itself,
// on a thread of its own per connection (one request per connection). Destroying the server
// stops it: sends fail and waits end, so a handler that loops "until the client goes away"
// ends too.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace modelcache::testing {

class RawHttpServer {
 public:
  // One request and its answer.
  class Exchange {
   public:
    // The request line and headers ("GET /x HTTP/1.1\r\nHost: ...").
    const std::string& RequestHead() const { return head_; }
    // The request target of the request line ("/m/modelcache.json").
    std::string Target() const;
    // Sends all of `bytes`; false once the client went away or the server stops.
    bool Send(std::string_view bytes);
    // Waits up to `duration`; false when the server stops meanwhile.
    bool Wait(std::chrono::milliseconds duration);

   private:
    friend class RawHttpServer;
    Exchange(RawHttpServer& server, int fd, std::string head)
        : server_(server), fd_(fd), head_(std::move(head)) {}
    RawHttpServer& server_;
    int fd_;
    std::string head_;
  };
  using Handler = std::function<void(Exchange&)>;

  // Listens on a free port of 127.0.0.1. INTERNAL when no socket could be bound.
  static absl::StatusOr<std::unique_ptr<RawHttpServer>> Start(Handler handler);
  ~RawHttpServer();
  RawHttpServer(const RawHttpServer&) = delete;
  RawHttpServer& operator=(const RawHttpServer&) = delete;

  std::string BaseUrl() const;  // "http://127.0.0.1:<port>"
  // Requests seen so far, and body and header bytes sent to all clients.
  size_t Requests() const;
  uint64_t BytesSent() const;

  // Handlers for the usual misbehaviours.
  // 200 with no length, then `block` again and again until the client goes away.
  static Handler Endless(std::string block);
  // A single file of `file_size` bytes that drips: HEAD says its size, a range GET is
  // answered 206 with `bytes_per_tick` bytes every `tick`, forever; anything else (a
  // .sha256 sidecar) is 404.
  static Handler Drip(uint64_t file_size, std::chrono::milliseconds tick, size_t bytes_per_tick);

 private:
  RawHttpServer(int listener, uint16_t port, Handler handler);
  void Accept();
  void Serve(int fd);
  bool Stopping() const;

  const int listener_;
  const uint16_t port_;
  const Handler handler_;
  std::thread acceptor_;
  mutable std::mutex mutex_;
  std::condition_variable stopped_;
  bool stopping_ = false;           // guarded by mutex_
  std::vector<int> connections_;    // guarded by mutex_: open client sockets
  std::vector<std::thread> workers_;  // guarded by mutex_
  size_t requests_ = 0;             // guarded by mutex_
  uint64_t bytes_sent_ = 0;         // guarded by mutex_
};

}  // namespace modelcache::testing
