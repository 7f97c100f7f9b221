#include "coordinator/webhook/certificate_plan.h"

#include <algorithm>

#include "common/duration.h"
#include "common/status_macros.h"
#include "coordinator/webhook/certificate_authority.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::webhook {
namespace {

// A problem with one part, or the time it enters its renewal window.
struct PartCheck {
  std::string problem;  // empty: good
  Clock::TimePoint renew_at;
};

std::string Left(Clock::TimePoint not_after, Clock::TimePoint now) {
  if (not_after <= now) return "expired";
  return "expires in " + FormatDuration(std::chrono::duration_cast<std::chrono::seconds>(not_after - now));
}

PartCheck CheckAuthority(const StoredCertificates& stored, const CertificatePolicy& policy, Clock::TimePoint now) {
  if (stored.ca_certificate.empty() || stored.ca_key.empty()) return {"ca.crt or ca.key missing", {}};
  absl::StatusOr<CertificateFacts> facts = InspectCertificate(stored.ca_certificate);
  if (!facts.ok()) return {"ca.crt: " + std::string(facts.status().message()), {}};
  if (!facts->is_authority) return {"ca.crt: not a CA", {}};
  absl::Status matches = CheckKeyMatches({stored.ca_certificate, stored.ca_key});
  if (!matches.ok()) return {"ca.key: " + std::string(matches.message()), {}};
  const Clock::TimePoint renew_at = facts->not_after - policy.renew_before;
  if (renew_at <= now) {
    return {fmt::format("ca.crt: {}, renewBefore {}", Left(facts->not_after, now), FormatDuration(policy.renew_before)),
            {}};
  }
  return {"", renew_at};
}

PartCheck CheckServing(const StoredCertificates& stored, const CertificatePolicy& policy, Clock::TimePoint now) {
  if (stored.certificate.empty() || stored.key.empty()) return {"tls.crt or tls.key missing", {}};
  absl::StatusOr<CertificateFacts> facts = InspectCertificate(stored.certificate);
  if (!facts.ok()) return {"tls.crt: " + std::string(facts.status().message()), {}};
  absl::Status matches = CheckKeyMatches({stored.certificate, stored.key});
  if (!matches.ok()) return {"tls.key: " + std::string(matches.message()), {}};
  absl::Status signed_by = CheckSignedBy(stored.certificate, stored.ca_certificate);
  if (!signed_by.ok()) return {"tls.crt: " + std::string(signed_by.message()), {}};
  for (const std::string& name : policy.dns_names) {
    if (std::find(facts->dns_names.begin(), facts->dns_names.end(), name) == facts->dns_names.end()) {
      return {fmt::format("tls.crt: does not name {}", name), {}};
    }
  }
  const Clock::TimePoint renew_at = facts->not_after - policy.renew_before;
  if (renew_at <= now) {
    return {fmt::format("tls.crt: {}, renewBefore {}", Left(facts->not_after, now), FormatDuration(policy.renew_before)),
            {}};
  }
  return {"", renew_at};
}

}  // namespace

CertificatePlan PlanCertificates(const StoredCertificates* stored, const CertificatePolicy& policy,
                                 Clock::TimePoint now) {
  if (stored == nullptr) return {CertificateAction::kNewAuthority, "no Secret", {}};
  PartCheck authority = CheckAuthority(*stored, policy, now);
  if (!authority.problem.empty()) return {CertificateAction::kNewAuthority, authority.problem, {}};
  PartCheck serving = CheckServing(*stored, policy, now);
  if (!serving.problem.empty()) return {CertificateAction::kNewServing, serving.problem, {}};
  return {CertificateAction::kKeep, "valid", std::min(authority.renew_at, serving.renew_at)};
}

absl::StatusOr<StoredCertificates> CarryOut(const CertificatePlan& plan, const StoredCertificates* stored,
                                            const CertificatePolicy& policy, Clock::TimePoint now) {
  if (plan.action == CertificateAction::kKeep && stored != nullptr) return *stored;
  StoredCertificates renewed;
  if (plan.action == CertificateAction::kNewServing && stored != nullptr) {
    renewed.ca_certificate = stored->ca_certificate;
    renewed.ca_key = stored->ca_key;
    renewed.previous_ca = stored->previous_ca;
  } else {
    ASSIGN_OR_RETURN(PemPair authority,
                     MakeCertificateAuthority("modelcache webhook CA", now, policy.authority_valid_for));
    renewed.ca_certificate = std::move(authority.certificate);
    renewed.ca_key = std::move(authority.key);
    // The CA being replaced stays trusted while it is valid: the API server may see the new
    // caBundle before or after the new certificate is served.
    if (stored != nullptr) {
      absl::StatusOr<CertificateFacts> old = InspectCertificate(stored->ca_certificate);
      if (old.ok() && old->is_authority && old->not_after > now) renewed.previous_ca = SplitPemCertificates(stored->ca_certificate).front();
    }
  }
  ASSIGN_OR_RETURN(PemPair serving, MakeServingCertificate({renewed.ca_certificate, renewed.ca_key}, policy.dns_names,
                                                           now, policy.valid_for));
  renewed.certificate = std::move(serving.certificate);
  renewed.key = std::move(serving.key);
  return renewed;
}

std::string CaBundle(const StoredCertificates& stored, Clock::TimePoint now) {
  std::string bundle = stored.ca_certificate;
  if (!stored.previous_ca.empty()) {
    absl::StatusOr<CertificateFacts> previous = InspectCertificate(stored.previous_ca);
    if (previous.ok() && previous->not_after > now) bundle += stored.previous_ca;
  }
  return bundle;
}

}  // namespace modelcache::webhook
