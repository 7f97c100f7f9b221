#pragma once
// The admission webhook's HTTPS server: POST /mutate takes an admission.k8s.io/v1
// AdmissionReview and answers one (pod_injection.h's AdmissionAnswer). HTTPS only, since the
// API server calls webhooks over TLS, with the certificate and key from their own files (the
// layout of a kubernetes.io/tls Secret).
//
// Not civetweb: the system's civetweb 1.15 loads libssl at run time and crashes on the first
// TLS connection against OpenSSL 3 (a null function in its table). So this is a small
// OpenSSL server on one thread of its own: HTTP/1.1, one request per connection, a 5 s read and
// write timeout. The API server sends a handful of small requests per pod creation, one at a
// time per call, so one thread is enough; a client that stalls holds it for 5 s at most.
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "coordinator/webhook/certificate_authority.h"
#include "coordinator/webhook/pod_injection.h"

namespace modelcache::webhook {

struct WebhookServerOptions {
  std::string address;  // "host:port"; port 0 picks a free one
  // Both set: the certificate chain and key files. Both empty: no certificate until
  // SetCertificate, and until then every TLS handshake is refused.
  std::string tls_cert_file;
  std::string tls_key_file;
  InjectionSettings injection;
  // Called (on the server's thread) with the namespace of every admitted pod. May be empty.
  std::function<void(std::string_view namespace_name)> admitted;
};

class WebhookServer {
 public:
  // UNAVAILABLE when the address cannot be bound or the certificate files do not load (the
  // error names the files). Everything `admitted` uses must outlive the server.
  static absl::StatusOr<std::unique_ptr<WebhookServer>> Start(WebhookServerOptions options);
  ~WebhookServer();  // stops serving; returns once no handler runs

  int Port() const { return port_; }

  // Serves `serving` (certificate chain, leaf first, and key) from the next connection on.
  // INVALID_ARGUMENT when it does not load (the one served before stays). Thread-safe.
  absl::Status SetCertificate(const PemPair& serving);

 private:
  struct State;
  WebhookServer(std::unique_ptr<State> state, int port);
  std::unique_ptr<State> state_;
  int port_;
};

}  // namespace modelcache::webhook
