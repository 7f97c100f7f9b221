#include "coordinator/webhook/webhook_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/log_fields.h"
#include "spdlog/fmt/fmt.h"
#include "spdlog/spdlog.h"

namespace modelcache::webhook {
namespace {

using json = nlohmann::json;

// An AdmissionReview of a pod is a few kB; a much larger body is not one.
constexpr size_t kMaxBody = 4 << 20;
constexpr size_t kMaxHeaders = 16 << 10;

std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

std::string Response(int status, std::string_view reason, std::string_view content_type, std::string_view body) {
  return fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                     status, reason, content_type, body.size(), body);
}

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

}  // namespace

struct WebhookServer::State {
  WebhookServerOptions options;
  SSL_CTX* tls = nullptr;
  int listen_fd = -1;
  int wake[2] = {-1, -1};
  std::thread thread;

  ~State() {
    if (listen_fd >= 0) close(listen_fd);
    if (wake[0] >= 0) close(wake[0]);
    if (wake[1] >= 0) close(wake[1]);
    if (tls != nullptr) SSL_CTX_free(tls);
  }

  void Run() {
    while (true) {
      pollfd fds[2] = {{listen_fd, POLLIN, 0}, {wake[0], POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[1].revents != 0) return;
      int fd = accept(listen_fd, nullptr, nullptr);
      if (fd < 0) continue;
      timeval timeout{5, 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
      Serve(fd);
      close(fd);
    }
  }

  void Serve(int fd) {
    SSL* ssl = SSL_new(tls);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      std::string answer = Answer(ssl);
      if (!answer.empty()) SSL_write(ssl, answer.data(), static_cast<int>(answer.size()));
      SSL_shutdown(ssl);
    } else {
      spdlog::debug("webhook TLS handshake failed {}", LogFields().Add("reason", OpenSslError()));
    }
    ERR_clear_error();
    SSL_free(ssl);
  }

  // The HTTP response to the one request on `ssl`; empty when the client went away.
  std::string Answer(SSL* ssl) {
    std::string data;
    char buffer[16384];
    size_t header_end = std::string::npos;
    while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
      if (data.size() > kMaxHeaders) return Response(431, "Request Header Fields Too Large", "text/plain", "headers too large\n");
      int n = SSL_read(ssl, buffer, sizeof(buffer));
      if (n <= 0) return "";
      data.append(buffer, static_cast<size_t>(n));
    }
    std::string head = data.substr(0, header_end);
    std::string request_line = head.substr(0, head.find("\r\n"));
    long long length = -1;
    size_t at = head.find("\r\n");
    while (at != std::string::npos) {
      size_t next = head.find("\r\n", at + 2);
      std::string line = head.substr(at + 2, next == std::string::npos ? std::string::npos : next - at - 2);
      size_t colon = line.find(':');
      if (colon != std::string::npos && Lower(line.substr(0, colon)) == "content-length") {
        length = std::atoll(line.c_str() + colon + 1);
      }
      at = next;
    }
    size_t space = request_line.find(' ');
    std::string method = request_line.substr(0, space);
    std::string target = space == std::string::npos ? "" : request_line.substr(space + 1, request_line.find(' ', space + 1) - space - 1);
    std::string path = target.substr(0, target.find('?'));
    if (path != "/mutate") return Response(404, "Not Found", "text/plain", "only /mutate\n");
    if (method != "POST") return Response(405, "Method Not Allowed", "text/plain", "POST an AdmissionReview\n");
    if (length < 0) return Response(411, "Length Required", "text/plain", "want a Content-Length\n");
    if (static_cast<size_t>(length) > kMaxBody) return Response(413, "Payload Too Large", "text/plain", "body over 4 MiB\n");
    std::string body = data.substr(header_end + 4);
    while (body.size() < static_cast<size_t>(length)) {
      int n = SSL_read(ssl, buffer, sizeof(buffer));
      if (n <= 0) return "";
      body.append(buffer, static_cast<size_t>(n));
    }
    body.resize(static_cast<size_t>(length));
    return Mutate(body);
  }

  std::string Mutate(const std::string& body) {
    json review = json::parse(body, nullptr, /*allow_exceptions=*/false);
    absl::StatusOr<json> answer = AdmissionAnswer(review, options.injection);
    if (!answer.ok()) return Response(400, "Bad Request", "text/plain", std::string(answer.status().message()) + "\n");
    const json& response = (*answer)["response"];
    std::string namespace_name = review["request"].value("namespace", "");
    if (response.value("allowed", false)) {
      if (options.admitted) options.admitted(namespace_name);
    } else {
      spdlog::info("pod refused at admission {}",
                   LogFields().Add("namespace", namespace_name).Add("reason", response["status"].value("message", "")));
    }
    return Response(200, "OK", "application/json", answer->dump());
  }
};

absl::StatusOr<std::unique_ptr<WebhookServer>> WebhookServer::Start(WebhookServerOptions options) {
  auto state = std::make_unique<State>();
  state->options = std::move(options);
  const std::string& address = state->options.address;
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(fmt::format("webhook.listen: invalid value \"{}\": want host:port", address));
  }
  std::string host = address.substr(0, colon);
  int port = std::atoi(address.c_str() + colon + 1);
  sockaddr_in socket_address{};
  socket_address.sin_family = AF_INET;
  socket_address.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &socket_address.sin_addr) != 1) {
    return absl::InvalidArgumentError(fmt::format("webhook.listen: invalid value \"{}\": want an IPv4 address and a port", address));
  }

  state->tls = SSL_CTX_new(TLS_server_method());
  if (state->tls == nullptr) return absl::InternalError(fmt::format("webhook TLS: {}", OpenSslError()));
  SSL_CTX_set_min_proto_version(state->tls, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(state->tls, state->options.tls_cert_file.c_str()) != 1) {
    return absl::UnavailableError(fmt::format("webhook.tlsCert {}: {}", state->options.tls_cert_file, OpenSslError()));
  }
  if (SSL_CTX_use_PrivateKey_file(state->tls, state->options.tls_key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(state->tls) != 1) {
    return absl::UnavailableError(fmt::format("webhook.tlsKey {}: {}", state->options.tls_key_file, OpenSslError()));
  }

  state->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int yes = 1;
  setsockopt(state->listen_fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  if (state->listen_fd < 0 ||
      bind(state->listen_fd, reinterpret_cast<sockaddr*>(&socket_address), sizeof(socket_address)) != 0 ||
      listen(state->listen_fd, 64) != 0) {
    return absl::UnavailableError(fmt::format("webhook.listen {}: {}", address, std::strerror(errno)));
  }
  socklen_t size = sizeof(socket_address);
  getsockname(state->listen_fd, reinterpret_cast<sockaddr*>(&socket_address), &size);
  int bound = ntohs(socket_address.sin_port);
  if (pipe2(state->wake, O_CLOEXEC) != 0) {
    return absl::InternalError(fmt::format("webhook: pipe: {}", std::strerror(errno)));
  }
  State* raw = state.get();
  state->thread = std::thread([raw] { raw->Run(); });
  spdlog::info("admission webhook listening {}", LogFields().Add("listen", address).Add("port", bound));
  return std::unique_ptr<WebhookServer>(new WebhookServer(std::move(state), bound));
}

WebhookServer::WebhookServer(std::unique_ptr<State> state, int port) : state_(std::move(state)), port_(port) {}

WebhookServer::~WebhookServer() {
  // Wake the thread and join it, so no request is served after this returns.
  if (state_ && state_->thread.joinable()) {
    char byte = 0;
    (void)!write(state_->wake[1], &byte, 1);
    state_->thread.join();
  }
}

}  // namespace modelcache::webhook
