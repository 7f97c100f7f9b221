#include "coordinator/webhook/certificate_authority.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <ctime>
#include <memory>

#include "common/status_macros.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::webhook {
namespace {

struct OpenSslFree {
  void operator()(X509* pointer) const { X509_free(pointer); }
  void operator()(EVP_PKEY* pointer) const { EVP_PKEY_free(pointer); }
  void operator()(BIO* pointer) const { BIO_free(pointer); }
  void operator()(BIGNUM* pointer) const { BN_free(pointer); }
  void operator()(GENERAL_NAMES* pointer) const { GENERAL_NAMES_free(pointer); }
  void operator()(BASIC_CONSTRAINTS* pointer) const { BASIC_CONSTRAINTS_free(pointer); }
};
template <class T>
using Owned = std::unique_ptr<T, OpenSslFree>;

// Clock skew between the coordinator and the API server must not make a new certificate "not
// yet valid" there.
constexpr std::chrono::minutes kBackdate{5};

// OpenSSL's queued reasons, oldest first, and an empty queue afterwards.
std::string OpenSslReason() {
  std::string reason;
  for (unsigned long code; (code = ERR_get_error()) != 0;) {
    char text[256];
    ERR_error_string_n(code, text, sizeof(text));
    if (!reason.empty()) reason += "; ";
    reason += text;
  }
  return reason.empty() ? "unknown OpenSSL error" : reason;
}

absl::Status OpenSslError(std::string_view what) {
  return absl::InternalError(fmt::format("webhook certificate: {}: {}", what, OpenSslReason()));
}

Owned<BIO> ReadBuffer(std::string_view text) {
  return Owned<BIO>(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

absl::StatusOr<Owned<X509>> ParseCertificate(std::string_view pem, std::string_view what) {
  Owned<BIO> bio = ReadBuffer(pem);
  Owned<X509> certificate(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!certificate) {
    ERR_clear_error();
    return absl::InvalidArgumentError(fmt::format("{}: no PEM certificate that parses", what));
  }
  return certificate;
}

absl::StatusOr<Owned<EVP_PKEY>> ParseKey(std::string_view pem, std::string_view what) {
  Owned<BIO> bio = ReadBuffer(pem);
  Owned<EVP_PKEY> key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) {
    ERR_clear_error();
    return absl::InvalidArgumentError(fmt::format("{}: no PEM private key that parses", what));
  }
  return key;
}

std::string MemoryText(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<size_t>(size)) : std::string();
}

absl::StatusOr<PemPair> ToPem(X509* certificate, EVP_PKEY* key) {
  Owned<BIO> certificate_bio(BIO_new(BIO_s_mem()));
  Owned<BIO> key_bio(BIO_new(BIO_s_mem()));
  if (!certificate_bio || !key_bio || PEM_write_bio_X509(certificate_bio.get(), certificate) != 1 ||
      PEM_write_bio_PrivateKey(key_bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("PEM encoding");
  }
  return PemPair{.certificate = MemoryText(certificate_bio.get()), .key = MemoryText(key_bio.get())};
}

absl::StatusOr<Owned<EVP_PKEY>> NewKey() {
  Owned<EVP_PKEY> key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("ECDSA P-256 key");
  return key;
}

Clock::TimePoint FromAsn1Time(const ASN1_TIME* time) {
  std::tm parts{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &parts) != 1) return Clock::TimePoint();
  return std::chrono::system_clock::from_time_t(timegm(&parts));
}

// A version 3 certificate for `public_key` with a random 127-bit serial, subject CN
// `common_name`, issued by `issuer_name`, valid from now minus kBackdate for `valid_for`.
absl::StatusOr<Owned<X509>> NewCertificate(std::string_view common_name, EVP_PKEY* public_key,
                                           const X509_NAME* issuer_name, Clock::TimePoint now,
                                           std::chrono::seconds valid_for) {
  Owned<X509> certificate(X509_new());
  Owned<BIGNUM> serial(BN_new());
  if (!certificate || !serial || X509_set_version(certificate.get(), 2) != 1 ||
      BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(certificate.get())) == nullptr) {
    return OpenSslError("new certificate");
  }
  const std::time_t from = std::chrono::system_clock::to_time_t(now - kBackdate);
  const std::time_t until = std::chrono::system_clock::to_time_t(now + valid_for);
  X509_NAME* subject = X509_get_subject_name(certificate.get());
  const std::string name(common_name);
  if (ASN1_TIME_set(X509_getm_notBefore(certificate.get()), from) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(certificate.get()), until) == nullptr ||
      X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(name.c_str()),
                                 -1, -1, 0) != 1 ||
      X509_set_issuer_name(certificate.get(), issuer_name == nullptr ? subject : issuer_name) != 1 ||
      X509_set_pubkey(certificate.get(), public_key) != 1) {
    return OpenSslError(fmt::format("certificate for \"{}\"", common_name));
  }
  return certificate;
}

absl::Status AddExtension(X509* certificate, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer, certificate, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
  if (extension == nullptr) return OpenSslError(fmt::format("extension {} = {}", OBJ_nid2sn(nid), value));
  const int added = X509_add_ext(certificate, extension, -1);
  X509_EXTENSION_free(extension);
  if (added != 1) return OpenSslError(fmt::format("extension {}", OBJ_nid2sn(nid)));
  return absl::OkStatus();
}

absl::Status Sign(X509* certificate, EVP_PKEY* key) {
  if (X509_sign(certificate, key, EVP_sha256()) <= 0) return OpenSslError("signature");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PemPair> MakeCertificateAuthority(std::string_view common_name, Clock::TimePoint now,
                                                 std::chrono::seconds valid_for) {
  ASSIGN_OR_RETURN(Owned<EVP_PKEY> key, NewKey());
  ASSIGN_OR_RETURN(Owned<X509> certificate, NewCertificate(common_name, key.get(), nullptr, now, valid_for));
  RETURN_IF_ERROR(AddExtension(certificate.get(), certificate.get(), NID_basic_constraints, "critical,CA:TRUE"));
  RETURN_IF_ERROR(AddExtension(certificate.get(), certificate.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  RETURN_IF_ERROR(AddExtension(certificate.get(), certificate.get(), NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(Sign(certificate.get(), key.get()));
  return ToPem(certificate.get(), key.get());
}

absl::StatusOr<PemPair> MakeServingCertificate(const PemPair& authority, const std::vector<std::string>& dns_names,
                                               Clock::TimePoint now, std::chrono::seconds valid_for) {
  if (dns_names.empty()) return absl::InvalidArgumentError("webhook certificate: no DNS name to serve");
  ASSIGN_OR_RETURN(Owned<X509> authority_certificate, ParseCertificate(authority.certificate, "the CA certificate"));
  ASSIGN_OR_RETURN(Owned<EVP_PKEY> authority_key, ParseKey(authority.key, "the CA key"));
  ASSIGN_OR_RETURN(Owned<EVP_PKEY> key, NewKey());
  // A CN is at most 64 characters; the names that count are the subjectAltName's.
  const std::string common_name = dns_names.front().size() <= 64 ? dns_names.front() : "modelcache-webhook";
  ASSIGN_OR_RETURN(Owned<X509> certificate,
                   NewCertificate(common_name, key.get(), X509_get_subject_name(authority_certificate.get()), now,
                                  valid_for));
  std::string alt_names;
  for (const std::string& name : dns_names) alt_names += (alt_names.empty() ? "DNS:" : ",DNS:") + name;
  X509* issuer = authority_certificate.get();
  RETURN_IF_ERROR(AddExtension(certificate.get(), issuer, NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(AddExtension(certificate.get(), issuer, NID_key_usage, "critical,digitalSignature"));
  RETURN_IF_ERROR(AddExtension(certificate.get(), issuer, NID_ext_key_usage, "serverAuth"));
  RETURN_IF_ERROR(AddExtension(certificate.get(), issuer, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddExtension(certificate.get(), issuer, NID_authority_key_identifier, "keyid:always"));
  RETURN_IF_ERROR(AddExtension(certificate.get(), issuer, NID_subject_alt_name, alt_names));
  RETURN_IF_ERROR(Sign(certificate.get(), authority_key.get()));
  return ToPem(certificate.get(), key.get());
}

absl::StatusOr<CertificateFacts> InspectCertificate(std::string_view pem) {
  ASSIGN_OR_RETURN(Owned<X509> certificate, ParseCertificate(pem, "certificate"));
  CertificateFacts facts;
  facts.not_before = FromAsn1Time(X509_get0_notBefore(certificate.get()));
  facts.not_after = FromAsn1Time(X509_get0_notAfter(certificate.get()));
  Owned<BASIC_CONSTRAINTS> constraints(static_cast<BASIC_CONSTRAINTS*>(
      X509_get_ext_d2i(certificate.get(), NID_basic_constraints, nullptr, nullptr)));
  facts.is_authority = constraints && constraints->ca != 0;
  Owned<GENERAL_NAMES> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(certificate.get(), NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_DNS) continue;
    const ASN1_IA5STRING* text = name->d.dNSName;
    facts.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                                 static_cast<size_t>(ASN1_STRING_length(text)));
  }
  char subject[512];
  X509_NAME_oneline(X509_get_subject_name(certificate.get()), subject, sizeof(subject));
  facts.subject = subject;
  ERR_clear_error();
  return facts;
}

absl::Status CheckKeyMatches(const PemPair& pair) {
  ASSIGN_OR_RETURN(Owned<X509> certificate, ParseCertificate(pair.certificate, "certificate"));
  ASSIGN_OR_RETURN(Owned<EVP_PKEY> key, ParseKey(pair.key, "key"));
  if (X509_check_private_key(certificate.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the key is not the certificate's");
  }
  return absl::OkStatus();
}

absl::Status CheckSignedBy(std::string_view certificate_pem, std::string_view authority_pem) {
  ASSIGN_OR_RETURN(Owned<X509> certificate, ParseCertificate(certificate_pem, "certificate"));
  ASSIGN_OR_RETURN(Owned<X509> authority, ParseCertificate(authority_pem, "CA certificate"));
  EVP_PKEY* authority_key = X509_get0_pubkey(authority.get());
  if (X509_check_issued(authority.get(), certificate.get()) != X509_V_OK || authority_key == nullptr ||
      X509_verify(certificate.get(), authority_key) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the certificate is not signed by the CA");
  }
  return absl::OkStatus();
}

std::vector<std::string> SplitPemCertificates(std::string_view pem) {
  constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  std::vector<std::string> blocks;
  for (size_t begin = pem.find(kBegin); begin != std::string_view::npos; begin = pem.find(kBegin, begin)) {
    const size_t end = pem.find(kEnd, begin);
    if (end == std::string_view::npos) break;
    blocks.push_back(std::string(pem.substr(begin, end + kEnd.size() - begin)) + "\n");
    begin = end + kEnd.size();
  }
  return blocks;
}

}  // namespace modelcache::webhook
