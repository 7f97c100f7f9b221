#pragma once
// The webhook's own certificates, made with OpenSSL 3: a CA, a serving certificate it signs
// for the webhook Service's DNS names, and what a certificate says (validity, names) so that
// certificate_plan.h can decide whether a stored one is still good. Keys are ECDSA P-256 (the
// API server's Go TLS client takes them, and one is made in a millisecond); signatures
// SHA-256. Pure functions apart from OpenSSL's random numbers: time comes in as an argument.
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"

namespace modelcache::webhook {

// A certificate and its private key, both PEM.
struct PemPair {
  std::string certificate;
  std::string key;
  bool operator==(const PemPair&) const = default;
};

// A CA: basicConstraints CA:TRUE (critical), keyUsage keyCertSign and cRLSign, valid from
// `now` minus five minutes (clock skew between the coordinator and the API server) for
// `valid_for`. INTERNAL with OpenSSL's reason when OpenSSL fails.
absl::StatusOr<PemPair> MakeCertificateAuthority(std::string_view common_name, Clock::TimePoint now,
                                                 std::chrono::seconds valid_for);

// A serving certificate signed by `authority`: subject CN the first DNS name, subjectAltName
// every name in `dns_names` (Go's TLS client reads only these), extendedKeyUsage serverAuth,
// valid as above. INVALID_ARGUMENT when `dns_names` is empty or `authority` does not parse.
absl::StatusOr<PemPair> MakeServingCertificate(const PemPair& authority, const std::vector<std::string>& dns_names,
                                               Clock::TimePoint now, std::chrono::seconds valid_for);

// What the first certificate of a PEM text says.
struct CertificateFacts {
  Clock::TimePoint not_before;
  Clock::TimePoint not_after;
  bool is_authority = false;            // basicConstraints CA:TRUE
  std::vector<std::string> dns_names;   // subjectAltName DNS entries
  std::string subject;                  // one line, for logs ("CN=...")
};

// INVALID_ARGUMENT when `pem` holds no certificate that parses.
absl::StatusOr<CertificateFacts> InspectCertificate(std::string_view pem);

// OK when `pair.key` is the private key of `pair.certificate`; INVALID_ARGUMENT saying which
// part does not parse or that they do not match.
absl::Status CheckKeyMatches(const PemPair& pair);

// OK when the first certificate of `certificate_pem` is signed by the first one of
// `authority_pem` (issuer name and signature); INVALID_ARGUMENT otherwise.
absl::Status CheckSignedBy(std::string_view certificate_pem, std::string_view authority_pem);

// The certificates of a PEM text, each as its own PEM block, in order (a bundle split up).
std::vector<std::string> SplitPemCertificates(std::string_view pem);

}  // namespace modelcache::webhook
