// The webhook's certificates without manual steps (issue 14), against the real coordinator and
// the test API server: the MutatingWebhookConfiguration comes from `kubectl kustomize
// deploy/overlays/webhook` (created with the real kubectl), the coordinator makes its CA and
// serving certificate into the Secret, patches the caBundle, and serves a certificate that real
// TLS clients (curl, openssl s_client) verify against that caBundle for the Service's DNS name.
// A restart reuses the Secret; a certificate near its end is renewed under the same CA; a
// Secret that is no good is replaced. Every API request the coordinator made is checked
// against the RBAC rules overlays/webhook renders, and every rule of its certificates' roles
// is used.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "kube/kube_client.h"
#include "kube/resource.h"
#include "spdlog/fmt/fmt.h"
#include "tests/testing/coordinator_process.h"
#include "tests/testing/kube_api_server.h"
#include "tests/testing/rbac_rules.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_certificates.h"
#include "tests/testing/wait.h"

namespace modelcache {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kDeadline = 30s;
constexpr char kNamespace[] = "modelcache";
constexpr char kSecret[] = "modelcache-webhook-tls";
constexpr char kConfiguration[] = "modelcache";
constexpr char kHost[] = "modelcache-coordinator.modelcache.svc";
constexpr char kCoordinatorToken[] = "coordinator-token";
constexpr char kCoordinatorUser[] = "system:serviceaccount:modelcache:modelcache-coordinator";
const std::string kOverlay = std::string(MODELCACHE_SOURCE_DIR) + "/deploy/overlays/webhook";

const absl::StatusOr<std::vector<testing::RbacRule>>& OverlayRules() {
  static const absl::StatusOr<std::vector<testing::RbacRule>> rules =
      testing::RenderedRules(kOverlay, kNamespace, "modelcache-coordinator");
  return rules;
}

std::string Str(const json& object, std::initializer_list<const char*> path) {
  const json* node = &object;
  for (const char* key : path) {
    if (!node->is_object() || !node->contains(key)) return "";
    node = &(*node)[key];
  }
  return node->is_string() ? node->get<std::string>() : "";
}

std::string Decoded(const std::string& base64) {
  std::string text;
  return absl::Base64Unescape(base64, &text) ? text : "";
}

class WebhookCertificatesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::KubectlInstalled()) GTEST_SKIP() << "kubectl is not installed: it renders and creates the webhook";
    for (const std::vector<std::string>& probe : {std::vector<std::string>{"curl", "--version"},
                                                  std::vector<std::string>{"openssl", "version"}}) {
      auto version = testing::RunCommand(probe, dir_.Path());
      if (!version.ok() || !version->exit.Success()) GTEST_SKIP() << probe[0] << " is not installed: it is a TLS client here";
    }
    testing::KubeApiServerOptions options;
    options.tokens = {"test-token,test-admin,uid-admin,\"system:masters\"",
                      fmt::format("{},{},uid-coordinator,\"system:serviceaccounts\"", kCoordinatorToken, kCoordinatorUser)};
    auto server = testing::KubeApiServer::Start(options);
    if (!server.ok() && server.status().code() == absl::StatusCode::kFailedPrecondition) {
      GTEST_SKIP() << "no test API server: " << server.status();
    }
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto admin = kube::KubeClient::Create(server_->Config());
    ASSERT_TRUE(admin.ok()) << admin.status();
    admin_ = *std::move(admin);
    ASSERT_TRUE(admin_->Create(kube::Namespaces(), {{"metadata", {{"name", kNamespace}}}}).ok());
  }

  void TearDown() override {
    if (coordinator_) coordinator_->Stop();
    if (!server_) return;
    testing::ExpectObjectsValid(server_.get());
    testing::ExpectRequestsAllowed(OverlayRules(), RequestLogPath(), "deploy/overlays/webhook's RBAC");
  }

  std::string RequestLogPath() const { return dir_.Join("requests.jsonl"); }

  // The MutatingWebhookConfiguration as overlays/webhook renders it, created with kubectl.
  void CreateWebhookConfiguration() {
    auto rendered = testing::RunCommand({"kubectl", "kustomize", kOverlay}, dir_.Path());
    ASSERT_TRUE(rendered.ok()) << rendered.status();
    ASSERT_TRUE(rendered->exit.Success()) << rendered->err;
    std::string document;
    size_t start = 0;
    const std::string& text = rendered->out;
    while (start < text.size()) {
      size_t end = text.find("\n---\n", start);
      std::string part = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (part.find("kind: MutatingWebhookConfiguration") != std::string::npos) document = part;
      if (end == std::string::npos) break;
      start = end + 5;
    }
    ASSERT_NE(document, "") << "overlays/webhook renders no MutatingWebhookConfiguration";
    const std::string path = dir_.Join("mutating-webhook.yaml");
    ASSERT_TRUE(testing::WriteTestFile(path, document));
    auto created = server_->Kubectl({"create", "-f", path});
    ASSERT_TRUE(created.ok()) << created.status();
  }

  // The coordinator with the webhook on, its certificates managed, through the coordinator's
  // own token; `certificates` are more keys of webhook.certificates (flow map entries).
  void StartCoordinator(const std::string& certificates = "") {
    const std::string token_file = dir_.Join("coordinator-token");
    ASSERT_TRUE(testing::WriteTestFile(token_file, kCoordinatorToken));
    const std::string kubeconfig = dir_.Join("coordinator-kubeconfig");
    ASSERT_TRUE(testing::WriteTestFile(kubeconfig, fmt::format(R"(apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {{server: "{}", certificate-authority: "{}"}}
contexts:
- name: test
  context: {{cluster: test, user: coordinator}}
current-context: test
users:
- name: coordinator
  user: {{tokenFile: "{}"}}
)",
                                                               server_->Server(), server_->CaFile(), token_file)));
    testing::CoordinatorProcessOptions options;
    options.directory = dir_.Path() / "coordinator";
    options.extra_yaml = fmt::format(
        "kubernetes:\n  kubeconfig: {}\n  requestLog: {}\n"
        "webhook:\n  enabled: true\n  listen: 127.0.0.1:0\n  image: ghcr.io/modelcache/modelcache:test\n"
        "  certificates: {{managed: true{}}}\n",
        kubeconfig, RequestLogPath(), certificates.empty() ? "" : ", " + certificates);
    auto coordinator = testing::CoordinatorProcess::Start(options);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
  }

  // The webhook's port: in the current log's line "admission webhook listening".
  int WebhookPort() const {
    std::string log = coordinator_->Log();
    size_t line = log.find("admission webhook listening");
    if (line == std::string::npos) return 0;
    size_t at = log.find("port=", line);
    return at == std::string::npos ? 0 : std::atoi(log.c_str() + at + 5);
  }

  json Secret() {
    auto secret = admin_->Get(kube::Secrets(), kNamespace, kSecret);
    return secret.ok() ? *secret : json();
  }
  json Configuration() {
    auto configuration = admin_->Get(kube::MutatingWebhookConfigurations(), "", kConfiguration);
    return configuration.ok() ? *configuration : json();
  }
  std::string CaBundle() {
    json configuration = Configuration();
    return configuration.is_object() ? Decoded(Str(configuration["webhooks"][0], {"clientConfig", "caBundle"})) : "";
  }

  // Waits until the current run has served a certificate and the caBundle is set.
  void WaitServed() {
    ASSERT_TRUE(coordinator_->WaitForLogLine("webhook certificate served", kDeadline)) << coordinator_->Log();
    ASSERT_NE(CaBundle(), "");
  }

  // The certificate the webhook serves, as openssl s_client sees it while verifying it
  // against `ca_file` for the Service's DNS name; "" (and a failure) when it does not verify.
  std::string ServedCertificate(const std::string& ca_file) {
    auto connected = testing::RunCommand({"openssl", "s_client", "-connect", fmt::format("127.0.0.1:{}", WebhookPort()),
                                          "-servername", kHost, "-verify_hostname", kHost, "-CAfile", ca_file,
                                          "-verify_return_error", "-showcerts"},
                                         dir_.Path(), 30s);
    EXPECT_TRUE(connected.ok()) << connected.status();
    if (!connected.ok()) return "";
    EXPECT_TRUE(connected->exit.Success()) << connected->err << connected->out;
    EXPECT_NE(connected->out.find("Verify return code: 0 (ok)"), std::string::npos) << connected->out;
    const std::string& out = connected->out;
    size_t begin = out.find("-----BEGIN CERTIFICATE-----");
    size_t end = out.find("-----END CERTIFICATE-----", begin);
    if (begin == std::string::npos || end == std::string::npos) return "";
    return out.substr(begin, end + std::strlen("-----END CERTIFICATE-----") - begin) + "\n";
  }

  // POSTs an AdmissionReview of a pod without the model annotations to /mutate with curl,
  // which verifies the served certificate against `ca_file` for the Service's DNS name.
  testing::CommandResult Mutate(const std::string& ca_file) {
    json review = {{"apiVersion", "admission.k8s.io/v1"},
                   {"kind", "AdmissionReview"},
                   {"request",
                    {{"uid", "uid-1"},
                     {"namespace", "team-a"},
                     {"operation", "CREATE"},
                     {"object", {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "p"}}},
                                 {"spec", {{"containers", {{{"name", "c"}, {"image", "busybox"}}}}}}}}}}};
    const std::string body = dir_.Join("review.json");
    EXPECT_TRUE(testing::WriteTestFile(body, review.dump()));
    const int port = WebhookPort();
    auto posted = testing::RunCommand(
        {"curl", "-sS", "--fail-with-body", "--cacert", ca_file, "--resolve", fmt::format("{}:{}:127.0.0.1", kHost, port),
         "-H", "Content-Type: application/json", "--data-binary", "@" + body, fmt::format("https://{}:{}/mutate", kHost, port)},
        dir_.Path(), 30s);
    EXPECT_TRUE(posted.ok()) << posted.status();
    return posted.ok() ? *posted : testing::CommandResult{};
  }

  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = dir_.Join(name);
    EXPECT_TRUE(testing::WriteTestFile(path, text));
    return path;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::KubeApiServer> server_;
  std::unique_ptr<kube::KubeClient> admin_;
  std::unique_ptr<testing::CoordinatorProcess> coordinator_;
};

TEST_F(WebhookCertificatesTest, MakesTheSecretPatchesTheCaBundleAndServesACertificateThatVerifies) {
  CreateWebhookConfiguration();
  StartCoordinator();
  WaitServed();

  json secret = Secret();
  EXPECT_EQ(Str(secret, {"type"}), "kubernetes.io/tls");
  EXPECT_EQ(Str(secret, {"metadata", "labels", "app.kubernetes.io/managed-by"}), "modelcache");
  for (const char* key : {"tls.crt", "tls.key", "ca.crt", "ca.key"}) {
    EXPECT_NE(Decoded(Str(secret, {"data", key})), "") << key;
  }
  const std::string ca = Decoded(Str(secret, {"data", "ca.crt"}));
  EXPECT_EQ(CaBundle(), ca) << "the caBundle is the Secret's CA";
  const std::string bundle_file = WriteFile("ca-bundle.pem", CaBundle());

  // What a real TLS client sees: the Secret's certificate, valid for the Service's name under
  // the caBundle; and the webhook answers through it.
  EXPECT_EQ(ServedCertificate(bundle_file), Decoded(Str(secret, {"data", "tls.crt"})));
  testing::CommandResult posted = Mutate(bundle_file);
  EXPECT_TRUE(posted.exit.Success()) << posted.err << posted.out;
  EXPECT_EQ(json::parse(posted.out, nullptr, false).value("kind", ""), "AdmissionReview") << posted.out;
  // Verification is real: another CA is refused.
  testing::TestCertificates other;
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(Mutate(other.Path("ca.pem")).exit.Success());

  // The caBundle was written by the coordinator, as field manager modelcache.
  auto requests = testing::ReadRequestLog(RequestLogPath());
  ASSERT_TRUE(requests.ok()) << requests.status();
  int patches = 0;
  for (const json& request : *requests) {
    if (request.value("resource", "") != "mutatingwebhookconfigurations" || request.value("verb", "") != "patch") continue;
    ++patches;
    EXPECT_NE(request.value("query", "").find("fieldManager=modelcache"), std::string::npos) << request.dump();
  }
  EXPECT_EQ(patches, 1);
}

TEST_F(WebhookCertificatesTest, ARestartReusesTheSecretAndChangesNothing) {
  CreateWebhookConfiguration();
  StartCoordinator();
  WaitServed();
  const json secret = Secret();
  const std::string configuration_version = Str(Configuration(), {"metadata", "resourceVersion"});

  coordinator_->Stop();
  ASSERT_TRUE(coordinator_->Restart().ok());
  WaitServed();
  EXPECT_EQ(coordinator_->Log().find("webhook certificate made"), std::string::npos) << coordinator_->Log();
  EXPECT_EQ(coordinator_->Log().find("webhook caBundle patched"), std::string::npos) << coordinator_->Log();
  EXPECT_EQ(Str(Secret(), {"metadata", "resourceVersion"}), Str(secret, {"metadata", "resourceVersion"}));
  EXPECT_EQ(Str(Configuration(), {"metadata", "resourceVersion"}), configuration_version);
  const std::string bundle_file = WriteFile("ca-bundle.pem", CaBundle());
  EXPECT_EQ(ServedCertificate(bundle_file), Decoded(Str(secret, {"data", "tls.crt"})));
}

// A Secret of the same name that is no good (another type, no CA) is replaced; a serving
// certificate that enters its renewal window is renewed under the same CA, so the caBundle
// stays and the new certificate verifies against it. Together these use every rule of
// overlays/webhook's certificate roles.
TEST_F(WebhookCertificatesTest, ReplacesABadSecretAndRenewsUnderTheSameCa) {
  CreateWebhookConfiguration();
  ASSERT_TRUE(admin_->Create(kube::Secrets(), {{"metadata", {{"name", kSecret}, {"namespace", kNamespace}}},
                                               {"type", "Opaque"},
                                               {"data", {{"tls.crt", absl::Base64Escape("not a certificate")}}}})
                  .ok());
  // Renewed 5 s after it is made (15 s valid, renewed when 10 s are left).
  StartCoordinator("validFor: 15s, renewBefore: 10s");
  WaitServed();
  json first = Secret();
  EXPECT_EQ(Str(first, {"type"}), "kubernetes.io/tls");
  const std::string ca = Decoded(Str(first, {"data", "ca.crt"}));
  const std::string bundle = CaBundle();
  EXPECT_EQ(bundle, ca);

  ASSERT_TRUE(testing::PollUntil([&] { return Str(Secret(), {"data", "tls.crt"}) != Str(first, {"data", "tls.crt"}); },
                                 kDeadline, 100ms))
      << coordinator_->Log();
  ASSERT_TRUE(testing::PollUntil(
      [&] { return coordinator_->Log().find("new serving certificate") != std::string::npos; }, kDeadline, 100ms));
  json renewed = Secret();
  EXPECT_EQ(Decoded(Str(renewed, {"data", "ca.crt"})), ca) << "renewed under the same CA";
  EXPECT_EQ(CaBundle(), bundle) << "a renewal under the same CA leaves the caBundle alone";
  const std::string bundle_file = WriteFile("ca-bundle.pem", bundle);
  ASSERT_TRUE(testing::PollUntil([&] { return ServedCertificate(bundle_file) != Decoded(Str(first, {"data", "tls.crt"})); },
                                 kDeadline, 200ms));
  EXPECT_TRUE(Mutate(bundle_file).exit.Success());

  // Every rule the overlay adds for the certificates was needed.
  const auto& rules = OverlayRules();
  ASSERT_TRUE(rules.ok()) << rules.status();
  auto requests = testing::ReadRequestLog(RequestLogPath());
  ASSERT_TRUE(requests.ok()) << requests.status();
  std::set<std::string> used;
  for (const json& request : *requests) used.insert(testing::GrantFor(request));
  int checked = 0;
  for (const testing::RbacRule& rule : *rules) {
    if (!rule.role.starts_with("modelcache-coordinator-webhook")) continue;
    for (const std::string& grant : testing::GrantsOf({rule})) {
      EXPECT_TRUE(used.contains(grant)) << rule.role << " grants " << grant << ", which the coordinator never used";
      ++checked;
    }
  }
  EXPECT_EQ(checked, 6) << "secrets get, update, delete, create; mutatingwebhookconfigurations get, patch";
}

// The coordinator starts before its MutatingWebhookConfiguration exists (kubectl apply may
// create them in any order): it serves nothing until it can patch the caBundle, then serves.
TEST_F(WebhookCertificatesTest, RefusesHandshakesUntilTheCaBundleIsInPlace) {
  StartCoordinator();
  ASSERT_TRUE(coordinator_->WaitForLogLine("webhook certificates not in place", kDeadline)) << coordinator_->Log();
  EXPECT_NE(coordinator_->Log().find("not found: apply deploy/overlays/webhook"), std::string::npos)
      << coordinator_->Log();
  testing::TestCertificates any;
  ASSERT_TRUE(any.ok());
  EXPECT_FALSE(Mutate(any.Path("ca.pem")).exit.Success());

  CreateWebhookConfiguration();
  WaitServed();
  EXPECT_TRUE(Mutate(WriteFile("ca-bundle.pem", CaBundle())).exit.Success());
}

// The cert-manager overlay's way: the files of a mounted Secret, served again as soon as they
// change (the kubelet swaps a mounted Secret's files in place), with no restart.
TEST_F(WebhookCertificatesTest, CertificateFilesAreServedAgainWhenTheyChange) {
  testing::TestCertificates first;
  testing::TestCertificates second;
  ASSERT_TRUE(first.ok() && second.ok());
  const std::string cert = dir_.Join("tls.crt");
  const std::string key = dir_.Join("tls.key");
  ASSERT_TRUE(testing::WriteTestFile(cert, first.Read("server.pem")));
  ASSERT_TRUE(testing::WriteTestFile(key, first.Read("server.key")));
  testing::CoordinatorProcessOptions options;
  options.directory = dir_.Path() / "coordinator";
  options.extra_yaml = fmt::format(
      "webhook:\n  enabled: true\n  listen: 127.0.0.1:0\n  image: ghcr.io/modelcache/modelcache:test\n"
      "  tlsCert: {}\n  tlsKey: {}\n",
      cert, key);
  auto coordinator = testing::CoordinatorProcess::Start(options);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  coordinator_ = *std::move(coordinator);
  ASSERT_TRUE(testing::PollUntil([&] { return WebhookPort() != 0; }, kDeadline));

  auto post = [&](const testing::TestCertificates& ca) {
    return testing::RunCommand({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca.Path("ca.pem"),
                                fmt::format("https://127.0.0.1:{}/mutate", WebhookPort())},
                               dir_.Path(), 30s);
  };
  auto answered = post(first);
  ASSERT_TRUE(answered.ok());
  EXPECT_EQ(answered->out, "405") << answered->err;  // a GET: TLS and HTTP work
  // As the kubelet does: new files beside, then a rename over the old ones.
  ASSERT_TRUE(testing::WriteTestFile(cert + ".new", second.Read("server.pem")));
  ASSERT_TRUE(testing::WriteTestFile(key + ".new", second.Read("server.key")));
  std::filesystem::rename(key + ".new", key);
  std::filesystem::rename(cert + ".new", cert);
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        auto again = post(second);
        return again.ok() && again->out == "405";
      },
      kDeadline, 100ms))
      << coordinator_->Log();
  EXPECT_TRUE(coordinator_->WaitForLogLine("webhook certificate files reloaded", kDeadline));
}

}  // namespace
}  // namespace modelcache
