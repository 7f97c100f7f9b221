#pragma once
// The webhook's certificates without manual steps (webhook.certificates.managed): on a thread
// of its own, the keeper
//   1. reads the Secret (webhook.certificates.secret) and keeps what it holds while it is good
//      (certificate_plan.h); otherwise makes what is missing and writes the Secret (create, or
//      update at the resourceVersion read, so a concurrent writer makes it read again);
//   2. sets caBundle to the CA bundle on every webhook of the MutatingWebhookConfiguration
//      that calls the configured Service, when it differs (a merge patch at the
//      resourceVersion read, field manager modelcache);
//   3. hands the serving certificate to `install` (WebhookServer::SetCertificate) when it
//      differs from the one installed;
// in that order, so that the API server trusts a new CA before it is served. Then it sleeps
// until checkEvery has passed or a certificate enters its renewBefore window, whichever comes
// first; after a failure it tries again in 1 s, doubling up to a minute. It never blocks the
// coordinator's start: until the first pass succeeds the webhook refuses TLS handshakes and
// the API server fails labelled pods (failurePolicy Fail).
//
// API requests (RBAC in deploy/overlays/webhook/webhook-certificates-rbac.yaml): secrets get,
// create, update and delete (delete only to replace a Secret of another type, which is
// immutable), mutatingwebhookconfigurations get and patch.
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "common/clock.h"
#include "coordinator/webhook/certificate_authority.h"
#include "coordinator/webhook/webhook_config.h"
#include "kube/kube_client.h"

namespace modelcache::webhook {

class CertificateKeeper {
 public:
  // `install` runs on the keeper's thread; what it uses must outlive the keeper.
  CertificateKeeper(ManagedCertificatesConfig config, std::unique_ptr<kube::KubeClient> client, const Clock& clock,
                    std::function<absl::Status(const PemPair& serving)> install);
  ~CertificateKeeper();  // Stop()
  CertificateKeeper(const CertificateKeeper&) = delete;
  CertificateKeeper& operator=(const CertificateKeeper&) = delete;

  void Start();
  // Returns once the thread has ended (an API call in flight finishes first). Idempotent.
  void Stop();

  // One pass (steps 1-3) on the calling thread, for tests that run no thread. Returns when to
  // look again.
  absl::StatusOr<Clock::TimePoint> RunOnce();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelcache::webhook
