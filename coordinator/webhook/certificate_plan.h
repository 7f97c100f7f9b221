#pragma once
// Whether the webhook's stored certificates are still good, as a pure function, and the
// certificates a plan calls for. The Secret holds (kubernetes.io/tls, plus the CA):
//
//   tls.crt  tls.key   the serving certificate and its key, for the Service's DNS names
//   ca.crt   ca.key    the CA that signs it; ca.crt is the MutatingWebhookConfiguration's caBundle
//   ca-previous.crt    the CA before the last renewal of the CA, kept in the caBundle until it
//                      expires, so that the API server trusts the served certificate whichever
//                      of the two moments (caBundle patched, certificate served) comes first
//
// The CA lives long (caValidFor, 10 years by default) and the serving certificate is renewed
// under it, so a renewal does not change the caBundle at all; only when the CA itself nears
// its end is a new one made.
#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"

namespace modelcache::webhook {

// The Secret's data, decoded; a missing key is "".
struct StoredCertificates {
  std::string certificate;     // tls.crt
  std::string key;             // tls.key
  std::string ca_certificate;  // ca.crt
  std::string ca_key;          // ca.key
  std::string previous_ca;     // ca-previous.crt
  bool operator==(const StoredCertificates&) const = default;
};

struct CertificatePolicy {
  std::vector<std::string> dns_names;  // the serving certificate must name every one
  std::chrono::seconds valid_for{365 * 24 * 3600};            // a new serving certificate
  std::chrono::seconds authority_valid_for{3650 * 24 * 3600};  // a new CA
  std::chrono::seconds renew_before{30 * 24 * 3600};          // renew when less is left
};

enum class CertificateAction {
  kKeep,          // both good for longer than renew_before
  kNewServing,    // the CA is good; a new serving certificate under it
  kNewAuthority,  // a new CA (the old one, if still valid, becomes ca-previous.crt) and certificate
};

struct CertificatePlan {
  CertificateAction action = CertificateAction::kNewAuthority;
  std::string reason;  // for the log: "no Secret", "tls.crt: expires in 20d, renewBefore 30d"
  // kKeep: when the first of the two enters its renewal window (look again then).
  Clock::TimePoint renew_at;
};

// The plan for `stored` (null: no Secret). A part that does not parse, a key that is not its
// certificate's, a serving certificate not signed by ca.crt or missing one of the DNS names,
// and a certificate with less than renew_before left each call for renewal: the CA's problems
// for kNewAuthority, the serving certificate's for kNewServing.
CertificatePlan PlanCertificates(const StoredCertificates* stored, const CertificatePolicy& policy,
                                 Clock::TimePoint now);

// What `plan` calls for: `stored` itself for kKeep, else new certificates (certificate_authority.h).
absl::StatusOr<StoredCertificates> CarryOut(const CertificatePlan& plan, const StoredCertificates* stored,
                                            const CertificatePolicy& policy, Clock::TimePoint now);

// The caBundle (PEM): ca.crt, then ca-previous.crt while it has not expired at `now`.
std::string CaBundle(const StoredCertificates& stored, Clock::TimePoint now);

}  // namespace modelcache::webhook
