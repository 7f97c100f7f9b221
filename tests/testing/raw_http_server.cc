#include "tests/testing/raw_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <regex>

#include "absl/strings/str_cat.h"

namespace modelcache::testing {

std::string RawHttpServer::Exchange::Target() const {
  size_t first_space = head_.find(' ');
  if (first_space == std::string::npos) return "";
  size_t second_space = head_.find(' ', first_space + 1);
  return head_.substr(first_space + 1, second_space - first_space - 1);
}

bool RawHttpServer::Exchange::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    if (server_.Stopping()) return false;
    ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(sent));
    std::lock_guard lock(server_.mutex_);
    server_.bytes_sent_ += static_cast<uint64_t>(sent);
  }
  return true;
}

bool RawHttpServer::Exchange::Wait(std::chrono::milliseconds duration) {
  std::unique_lock lock(server_.mutex_);
  return !server_.stopped_.wait_for(lock, duration, [this] { return server_.stopping_; });
}

absl::StatusOr<std::unique_ptr<RawHttpServer>> RawHttpServer::Start(Handler handler) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) return absl::InternalError("raw http server: socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(listener, 128) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(listener);
    return absl::InternalError("raw http server: cannot listen on 127.0.0.1");
  }
  return std::unique_ptr<RawHttpServer>(
      new RawHttpServer(listener, ntohs(address.sin_port), std::move(handler)));
}

RawHttpServer::RawHttpServer(int listener, uint16_t port, Handler handler)
    : listener_(listener), port_(port), handler_(std::move(handler)) {
  acceptor_ = std::thread([this] { Accept(); });
}

RawHttpServer::~RawHttpServer() {
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (int fd : connections_) ::shutdown(fd, SHUT_RDWR);  // blocked sends and reads end
  }
  stopped_.notify_all();
  ::shutdown(listener_, SHUT_RDWR);
  acceptor_.join();
  {
    std::lock_guard lock(mutex_);
    workers.swap(workers_);
  }
  for (std::thread& worker : workers) worker.join();
  ::close(listener_);
}

std::string RawHttpServer::BaseUrl() const { return absl::StrCat("http://127.0.0.1:", port_); }

size_t RawHttpServer::Requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

uint64_t RawHttpServer::BytesSent() const {
  std::lock_guard lock(mutex_);
  return bytes_sent_;
}

bool RawHttpServer::Stopping() const {
  std::lock_guard lock(mutex_);
  return stopping_;
}

void RawHttpServer::Accept() {
  while (true) {
    pollfd listening{listener_, POLLIN, 0};
    if (::poll(&listening, 1, 100) < 0 && errno != EINTR) return;
    if (Stopping()) return;
    if ((listening.revents & POLLIN) == 0) continue;
    int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard lock(mutex_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    connections_.push_back(fd);
    workers_.emplace_back([this, fd] { Serve(fd); });
  }
}

void RawHttpServer::Serve(int fd) {
  std::string head;
  char block[4096];
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < (64u << 10)) {
    ssize_t got = ::recv(fd, block, sizeof(block), 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    head.append(block, static_cast<size_t>(got));
  }
  if (head.find("\r\n\r\n") != std::string::npos) {
    {
      std::lock_guard lock(mutex_);
      ++requests_;
    }
    Exchange exchange(*this, fd, head.substr(0, head.find("\r\n\r\n")));
    handler_(exchange);
  }
  std::lock_guard lock(mutex_);
  connections_.erase(std::find(connections_.begin(), connections_.end(), fd));
  ::close(fd);
}

RawHttpServer::Handler RawHttpServer::Endless(std::string block) {
  return [block = std::move(block)](Exchange& exchange) {
    if (!exchange.Send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")) {
      return;
    }
    while (exchange.Send(block)) {
    }
  };
}

RawHttpServer::Handler RawHttpServer::Drip(uint64_t file_size, std::chrono::milliseconds tick,
                                           size_t bytes_per_tick) {
  return [file_size, tick, bytes_per_tick](Exchange& exchange) {
    const std::string head = exchange.RequestHead();
    if (head.rfind("HEAD ", 0) == 0) {
      exchange.Send(absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", file_size,
                                 "\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n"));
      return;
    }
    std::smatch match;
    if (!std::regex_search(head, match, std::regex(R"(Range: bytes=(\d+)-(\d+))", std::regex::icase))) {
      exchange.Send("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
      return;
    }
    // The range asked for, as a 206 whose body never completes in time.
    const uint64_t first = std::stoull(match[1]);
    const uint64_t last = std::stoull(match[2]);
    const uint64_t length = last - first + 1;
    if (!exchange.Send(absl::StrCat("HTTP/1.1 206 Partial Content\r\nContent-Range: bytes ", first,
                                    "-", last, "/", file_size, "\r\nContent-Length: ", length,
                                    "\r\nConnection: close\r\n\r\n"))) {
      return;
    }
    const std::string drop(bytes_per_tick, 'x');
    while (exchange.Wait(tick) && exchange.Send(drop)) {
    }
  };
}

}  // namespace modelcache::testing
