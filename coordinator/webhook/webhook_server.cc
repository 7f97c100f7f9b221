#include "coordinator/webhook/webhook_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <fcntl.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "common/fs.h"
#include "common/log_fields.h"
#include "common/status_macros.h"
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

// A server context for `serving`: the first certificate is the leaf, the others its chain.
absl::StatusOr<SSL_CTX*> NewContext(const PemPair& serving) {
  SSL_CTX* context = SSL_CTX_new(TLS_server_method());
  if (context == nullptr) return absl::InternalError(fmt::format("webhook TLS: {}", OpenSslError()));
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  auto fail = [context](std::string_view what) {
    std::string reason = OpenSslError();
    SSL_CTX_free(context);
    return absl::InvalidArgumentError(fmt::format("webhook TLS: {}: {}", what, reason));
  };
  std::vector<std::string> chain = SplitPemCertificates(serving.certificate);
  if (chain.empty()) return fail("no PEM certificate");
  for (size_t i = 0; i < chain.size(); ++i) {
    BIO* bio = BIO_new_mem_buf(chain[i].data(), static_cast<int>(chain[i].size()));
    X509* certificate = bio == nullptr ? nullptr : PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (certificate == nullptr) return fail(fmt::format("certificate {} does not parse", i + 1));
    // use_certificate takes a reference of its own; add0_chain_cert takes ours.
    const bool added = i == 0 ? SSL_CTX_use_certificate(context, certificate) == 1
                              : SSL_CTX_add0_chain_cert(context, certificate) == 1;
    if (i == 0) X509_free(certificate);
    if (!added) {
      if (i != 0) X509_free(certificate);
      return fail(fmt::format("certificate {} is refused", i + 1));
    }
  }
  BIO* bio = BIO_new_mem_buf(serving.key.data(), static_cast<int>(serving.key.size()));
  EVP_PKEY* key = bio == nullptr ? nullptr : PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  const bool key_used = key != nullptr && SSL_CTX_use_PrivateKey(context, key) == 1;
  EVP_PKEY_free(key);
  if (!key_used || SSL_CTX_check_private_key(context) != 1) return fail("the key does not load or is not the certificate's");
  return context;
}

// What tells a changed file: a mounted Secret is updated by swapping a symlink, which stat
// follows.
struct FileStamp {
  timespec modified{};
  off_t size = -1;
  bool operator==(const FileStamp& other) const {
    return modified.tv_sec == other.modified.tv_sec && modified.tv_nsec == other.modified.tv_nsec &&
           size == other.size;
  }
};

FileStamp StampOf(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return {};
  return {info.st_mtim, info.st_size};
}

}  // namespace

struct WebhookServer::State {
  WebhookServerOptions options;
  int listen_fd = -1;
  int wake[2] = {-1, -1};
  std::thread thread;
  std::mutex mutex;
  SSL_CTX* tls = nullptr;  // guarded by mutex; null: no certificate yet
  // The serving thread's own (and Start's, before the thread runs): the certificate files as
  // last loaded.
  FileStamp cert_stamp;
  FileStamp key_stamp;
  bool tls_loaded_once = false;

  ~State() {
    if (listen_fd >= 0) close(listen_fd);
    if (wake[0] >= 0) close(wake[0]);
    if (wake[1] >= 0) close(wake[1]);
    if (tls != nullptr) SSL_CTX_free(tls);
  }

  void Install(SSL_CTX* context) {
    std::lock_guard lock(mutex);
    // A connection being served holds its own reference (SSL_new), so freeing here is safe.
    if (tls != nullptr) SSL_CTX_free(tls);
    tls = context;
  }

  // The context for the next connection, with a reference the caller frees; null when none.
  SSL_CTX* Context() {
    std::lock_guard lock(mutex);
    if (tls != nullptr) SSL_CTX_up_ref(tls);
    return tls;
  }

  bool FromFiles() const { return !options.tls_cert_file.empty(); }

  // Loads the certificate files when they changed since the last load (both stamps taken
  // before reading, so a change during the read is seen next time).
  absl::Status LoadFilesIfChanged() {
    const FileStamp cert = StampOf(options.tls_cert_file);
    const FileStamp key = StampOf(options.tls_key_file);
    if (tls_loaded_once && cert == cert_stamp && key == key_stamp) return absl::OkStatus();
    absl::StatusOr<std::string> certificate = ReadFileToString(options.tls_cert_file);
    if (!certificate.ok()) return absl::UnavailableError(fmt::format("webhook.tlsCert {}: {}", options.tls_cert_file, std::string(certificate.status().message())));
    absl::StatusOr<std::string> private_key = ReadFileToString(options.tls_key_file);
    if (!private_key.ok()) return absl::UnavailableError(fmt::format("webhook.tlsKey {}: {}", options.tls_key_file, std::string(private_key.status().message())));
    absl::StatusOr<SSL_CTX*> context = NewContext({*certificate, *private_key});
    if (!context.ok()) {
      return absl::UnavailableError(fmt::format("webhook.tlsCert {} / webhook.tlsKey {}: {}", options.tls_cert_file,
                                                options.tls_key_file, std::string(context.status().message())));
    }
    Install(*context);
    if (tls_loaded_once) {
      spdlog::info("webhook certificate files reloaded {}", LogFields().Add("tlsCert", options.tls_cert_file));
    }
    cert_stamp = cert;
    key_stamp = key;
    tls_loaded_once = true;
    return absl::OkStatus();
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
    if (FromFiles()) {
      absl::Status loaded = LoadFilesIfChanged();
      if (!loaded.ok()) {
        spdlog::warn("webhook certificate files not reloaded {}",
                     LogFields().Add("error", loaded).Add("next", "the certificate loaded before is served"));
        // The same files are not tried again until they change once more.
        cert_stamp = StampOf(options.tls_cert_file);
        key_stamp = StampOf(options.tls_key_file);
      }
    }
    SSL_CTX* context = Context();
    if (context == nullptr) {
      spdlog::debug("webhook connection refused {}", LogFields().Add("reason", "no certificate yet"));
      return;
    }
    SSL* ssl = SSL_new(context);
    SSL_CTX_free(context);  // the SSL holds its own reference
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

  if (state->options.tls_cert_file.empty() != state->options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("webhook: tlsCert and tlsKey go together");
  }
  if (state->FromFiles()) RETURN_IF_ERROR(state->LoadFilesIfChanged());

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

absl::Status WebhookServer::SetCertificate(const PemPair& serving) {
  ASSIGN_OR_RETURN(SSL_CTX* context, NewContext(serving));
  state_->Install(context);
  return absl::OkStatus();
}

WebhookServer::~WebhookServer() {
  // Wake the thread and join it, so no request is served after this returns.
  if (state_ && state_->thread.joinable()) {
    char byte = 0;
    (void)!write(state_->wake[1], &byte, 1);
    state_->thread.join();
  }
}

}  // namespace modelcache::webhook
