#include "coordinator/webhook/certificate_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "coordinator/webhook/certificate_authority.h"

namespace modelcache::webhook {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

constexpr std::chrono::hours kDay{24};
const Clock::TimePoint kNow = std::chrono::system_clock::from_time_t(1'800'000'000);

CertificatePolicy Policy() {
  return {.dns_names = {"svc", "svc.ns", "svc.ns.svc", "svc.ns.svc.cluster.local"},
          .valid_for = 365 * kDay,
          .authority_valid_for = 3650 * kDay,
          .renew_before = 30 * kDay};
}

StoredCertificates Fresh(Clock::TimePoint now = kNow) {
  CertificatePlan plan = PlanCertificates(nullptr, Policy(), now);
  absl::StatusOr<StoredCertificates> made = CarryOut(plan, nullptr, Policy(), now);
  EXPECT_TRUE(made.ok()) << made.status();
  return made.ok() ? *made : StoredCertificates();
}

TEST(CertificateAuthority, MakesACaAndAServingCertificateItSigns) {
  auto authority = MakeCertificateAuthority("test CA", kNow, 3650 * kDay);
  ASSERT_TRUE(authority.ok()) << authority.status();
  auto ca_facts = InspectCertificate(authority->certificate);
  ASSERT_TRUE(ca_facts.ok()) << ca_facts.status();
  EXPECT_TRUE(ca_facts->is_authority);
  EXPECT_EQ(ca_facts->not_after, kNow + 3650 * kDay);
  EXPECT_EQ(ca_facts->not_before, kNow - 5min) << "backdated for clock skew";
  EXPECT_THAT(ca_facts->subject, HasSubstr("CN=test CA"));
  EXPECT_TRUE(CheckKeyMatches(*authority).ok());

  auto serving = MakeServingCertificate(*authority, Policy().dns_names, kNow, 365 * kDay);
  ASSERT_TRUE(serving.ok()) << serving.status();
  auto facts = InspectCertificate(serving->certificate);
  ASSERT_TRUE(facts.ok()) << facts.status();
  EXPECT_FALSE(facts->is_authority);
  EXPECT_THAT(facts->dns_names, UnorderedElementsAre("svc", "svc.ns", "svc.ns.svc", "svc.ns.svc.cluster.local"));
  EXPECT_EQ(facts->not_after, kNow + 365 * kDay);
  EXPECT_TRUE(CheckKeyMatches(*serving).ok());
  EXPECT_TRUE(CheckSignedBy(serving->certificate, authority->certificate).ok());

  auto other = MakeCertificateAuthority("other CA", kNow, kDay);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(CheckSignedBy(serving->certificate, other->certificate).ok());
  EXPECT_FALSE(CheckKeyMatches({serving->certificate, other->key}).ok());
  EXPECT_FALSE(InspectCertificate("not a certificate").ok());
  EXPECT_FALSE(MakeServingCertificate(*authority, {}, kNow, kDay).ok());
}

TEST(CertificateAuthority, SplitsABundleIntoItsCertificates) {
  StoredCertificates stored = Fresh();
  std::vector<std::string> parts = SplitPemCertificates(stored.ca_certificate + stored.certificate);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0], stored.ca_certificate);
  EXPECT_EQ(parts[1], stored.certificate);
  EXPECT_TRUE(SplitPemCertificates("nothing").empty());
}

TEST(CertificatePlan, NoSecretMeansANewCaAndCertificate) {
  CertificatePlan plan = PlanCertificates(nullptr, Policy(), kNow);
  EXPECT_EQ(plan.action, CertificateAction::kNewAuthority);
  EXPECT_EQ(plan.reason, "no Secret");
}

TEST(CertificatePlan, GoodCertificatesAreKeptUntilTheFirstEntersItsRenewalWindow) {
  StoredCertificates stored = Fresh();
  CertificatePlan plan = PlanCertificates(&stored, Policy(), kNow + kDay);
  EXPECT_EQ(plan.action, CertificateAction::kKeep) << plan.reason;
  EXPECT_EQ(plan.renew_at, kNow + 365 * kDay - 30 * kDay) << "the serving certificate's window comes first";
  auto kept = CarryOut(plan, &stored, Policy(), kNow + kDay);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(*kept, stored);
}

TEST(CertificatePlan, AServingCertificateNearItsEndIsRenewedUnderTheSameCa) {
  StoredCertificates stored = Fresh();
  const Clock::TimePoint later = kNow + 340 * kDay;  // 25 days left, renewBefore 30
  CertificatePlan plan = PlanCertificates(&stored, Policy(), later);
  EXPECT_EQ(plan.action, CertificateAction::kNewServing);
  EXPECT_THAT(plan.reason, HasSubstr("tls.crt: expires in"));
  auto renewed = CarryOut(plan, &stored, Policy(), later);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(renewed->ca_certificate, stored.ca_certificate);
  EXPECT_EQ(renewed->ca_key, stored.ca_key);
  EXPECT_NE(renewed->certificate, stored.certificate);
  EXPECT_NE(renewed->key, stored.key);
  EXPECT_EQ(CaBundle(*renewed, later), CaBundle(stored, later)) << "the caBundle does not change";
  EXPECT_EQ(PlanCertificates(&*renewed, Policy(), later).action, CertificateAction::kKeep);
}

TEST(CertificatePlan, ServingProblemsCallForANewServingCertificate) {
  StoredCertificates base = Fresh();
  StoredCertificates other = Fresh();
  struct Case {
    const char* what;
    StoredCertificates stored;
    const char* reason;
  };
  StoredCertificates wrong_key = base;
  wrong_key.key = other.key;
  StoredCertificates other_ca = base;
  other_ca.certificate = other.certificate;
  other_ca.key = other.key;
  StoredCertificates garbage = base;
  garbage.certificate = "garbage";
  StoredCertificates missing = base;
  missing.key.clear();
  for (const Case& c : {Case{"wrong key", wrong_key, "tls.key"}, Case{"signed by another CA", other_ca, "not signed"},
                        Case{"garbage", garbage, "tls.crt"}, Case{"missing key", missing, "missing"}}) {
    CertificatePlan plan = PlanCertificates(&c.stored, Policy(), kNow);
    EXPECT_EQ(plan.action, CertificateAction::kNewServing) << c.what;
    EXPECT_THAT(plan.reason, HasSubstr(c.reason)) << c.what;
  }
  CertificatePolicy more_names = Policy();
  more_names.dns_names.push_back("webhook.example.org");
  CertificatePlan plan = PlanCertificates(&base, more_names, kNow);
  EXPECT_EQ(plan.action, CertificateAction::kNewServing);
  EXPECT_THAT(plan.reason, HasSubstr("does not name webhook.example.org"));
}

TEST(CertificatePlan, ACaNearItsEndIsReplacedAndStaysInTheBundleWhileValid) {
  StoredCertificates stored = Fresh();
  const Clock::TimePoint later = kNow + 3640 * kDay;  // the CA has 10 days left
  CertificatePlan plan = PlanCertificates(&stored, Policy(), later);
  EXPECT_EQ(plan.action, CertificateAction::kNewAuthority);
  EXPECT_THAT(plan.reason, HasSubstr("ca.crt: expires in"));
  auto renewed = CarryOut(plan, &stored, Policy(), later);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_NE(renewed->ca_certificate, stored.ca_certificate);
  EXPECT_EQ(renewed->previous_ca, stored.ca_certificate);
  EXPECT_TRUE(CheckSignedBy(renewed->certificate, renewed->ca_certificate).ok());
  // Both CAs are trusted until the old one expires, then only the new one.
  EXPECT_EQ(CaBundle(*renewed, later), renewed->ca_certificate + stored.ca_certificate);
  EXPECT_EQ(CaBundle(*renewed, kNow + 3651 * kDay), renewed->ca_certificate);
}

TEST(CertificatePlan, CaProblemsCallForANewCa) {
  StoredCertificates base = Fresh();
  StoredCertificates other = Fresh();
  StoredCertificates wrong_key = base;
  wrong_key.ca_key = other.ca_key;
  StoredCertificates not_a_ca = base;
  not_a_ca.ca_certificate = base.certificate;
  not_a_ca.ca_key = base.key;
  StoredCertificates missing = base;
  missing.ca_key.clear();
  for (const auto& [what, stored] : {std::pair{"wrong key", wrong_key}, std::pair{"not a CA", not_a_ca},
                                     std::pair{"missing key", missing}}) {
    EXPECT_EQ(PlanCertificates(&stored, Policy(), kNow).action, CertificateAction::kNewAuthority) << what;
  }
}

}  // namespace
}  // namespace modelcache::webhook
