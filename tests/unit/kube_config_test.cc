// kube/kube_config.h: where the client finds the API server and its credentials.
#include "kube/kube_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "tests/testing/temp_dir.h"

namespace modelcache::kube {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::WriteTestFile;

constexpr char kCaPem[] = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n";

std::string Kubeconfig(const std::string& cluster_extra, const std::string& user_extra,
                       const std::string& server = "https://10.0.0.1:6443") {
  return "apiVersion: v1\nkind: Config\ncurrent-context: main\n"
         "clusters:\n- name: c\n  cluster:\n    server: " + server + "\n" + cluster_extra +
         "contexts:\n- name: main\n  context: {cluster: c, user: u, namespace: team-a}\n"
         "- name: other\n  context: {cluster: c, user: u}\n"
         "users:\n- name: u\n  user:\n" + (user_extra.empty() ? "    token: fixed-token\n" : user_extra);
}

KubeEnvironment InCluster(const TempDir& dir) {
  KubeEnvironment environment;
  environment.kubernetes_service_host = "10.96.0.1";
  environment.kubernetes_service_port = "443";
  environment.service_account_dir = dir.Path();
  return environment;
}

TEST(KubeConfig, InClusterReadsTheServiceAccountFiles) {
  TempDir dir;
  WriteTestFile(dir.Path() / "token", "sa-token\n");
  WriteTestFile(dir.Path() / "ca.crt", kCaPem);
  WriteTestFile(dir.Path() / "namespace", "modelcache\n");
  auto config = LoadKubeConfig({}, InCluster(dir));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://10.96.0.1:443");
  EXPECT_EQ(config->token_file, dir.Path() / "token") << "the file, so rotated tokens are read again";
  EXPECT_TRUE(config->token.empty());
  EXPECT_EQ(config->certificate_authority_pem, kCaPem);
  EXPECT_EQ(config->default_namespace, "modelcache");
  EXPECT_FALSE(config->insecure_skip_tls_verify);
  EXPECT_THAT(config->origin, HasSubstr("in-cluster"));
}

TEST(KubeConfig, InClusterIpv6HostIsBracketed) {
  TempDir dir;
  WriteTestFile(dir.Path() / "token", "t");
  WriteTestFile(dir.Path() / "ca.crt", kCaPem);
  KubeEnvironment environment = InCluster(dir);
  environment.kubernetes_service_host = "fd00::1";
  auto config = LoadInClusterConfig(environment);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://[fd00::1]:443");
  EXPECT_EQ(config->default_namespace, "default");
}

TEST(KubeConfig, InClusterWithoutTokenNamesTheFile) {
  TempDir dir;
  WriteTestFile(dir.Path() / "ca.crt", kCaPem);
  auto config = LoadKubeConfig({}, InCluster(dir));
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr((dir.Path() / "token").string()));
}

TEST(KubeConfig, FlagWinsOverKubeconfigVariableAndCluster) {
  TempDir dir;
  WriteTestFile(dir.Path() / "flag.yaml", Kubeconfig("", "", "https://flag:6443"));
  WriteTestFile(dir.Path() / "env.yaml", Kubeconfig("", "", "https://env:6443"));
  WriteTestFile(dir.Path() / "token", "t");
  WriteTestFile(dir.Path() / "ca.crt", kCaPem);
  KubeEnvironment environment = InCluster(dir);
  environment.kubeconfig = (dir.Path() / "env.yaml").string();
  auto from_flag = LoadKubeConfig({dir.Path() / "flag.yaml", ""}, environment);
  ASSERT_TRUE(from_flag.ok()) << from_flag.status();
  EXPECT_EQ(from_flag->server, "https://flag:6443");
  auto from_variable = LoadKubeConfig({}, environment);
  ASSERT_TRUE(from_variable.ok()) << from_variable.status();
  EXPECT_EQ(from_variable->server, "https://env:6443") << "$KUBECONFIG before in-cluster";
  EXPECT_EQ(from_variable->default_namespace, "team-a");
  EXPECT_EQ(from_variable->token, "fixed-token");
}

TEST(KubeConfig, InClusterBeforeHomeKubeconfigWhichComesLast) {
  TempDir dir;
  WriteTestFile(dir.Path() / ".kube" / "config", Kubeconfig("", "", "https://home:6443"));
  WriteTestFile(dir.Path() / "token", "t");
  WriteTestFile(dir.Path() / "ca.crt", kCaPem);
  KubeEnvironment environment = InCluster(dir);
  environment.home = dir.Path().string();
  auto in_cluster = LoadKubeConfig({}, environment);
  ASSERT_TRUE(in_cluster.ok()) << in_cluster.status();
  EXPECT_EQ(in_cluster->server, "https://10.96.0.1:443");
  environment.kubernetes_service_host.clear();
  auto home = LoadKubeConfig({}, environment);
  ASSERT_TRUE(home.ok()) << home.status();
  EXPECT_EQ(home->server, "https://home:6443");
}

TEST(KubeConfig, NothingFoundSaysWhereItLooked) {
  TempDir dir;
  KubeEnvironment environment;
  environment.home = dir.Path().string();
  auto config = LoadKubeConfig({}, environment);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  const std::string message(config.status().message());
  EXPECT_THAT(message, HasSubstr("KUBECONFIG"));
  EXPECT_THAT(message, HasSubstr("KUBERNETES_SERVICE_HOST"));
  EXPECT_THAT(message, HasSubstr(dir.Path().string() + "/.kube/config"));
  auto missing_flag = LoadKubeConfig({dir.Path() / "nope.yaml", ""}, environment);
  ASSERT_FALSE(missing_flag.ok());
  EXPECT_THAT(std::string(missing_flag.status().message()), HasSubstr("nope.yaml"));
}

TEST(KubeConfig, KubeconfigListIsMergedFirstFileWins) {
  TempDir dir;
  // The first file sets the current context and a user; the second has the cluster, and a
  // user of the same name that must lose.
  WriteTestFile(dir.Path() / "a.yaml",
                "current-context: main\ncontexts:\n- name: main\n  context: {cluster: c, user: u}\n"
                "users:\n- name: u\n  user: {token: first}\n");
  WriteTestFile(dir.Path() / "b.yaml",
                "current-context: other\nclusters:\n- name: c\n  cluster: {server: 'https://b:6443'}\n"
                "users:\n- name: u\n  user: {token: second}\n");
  KubeEnvironment environment;
  environment.kubeconfig = (dir.Path() / "a.yaml").string() + ":" + (dir.Path() / "missing.yaml").string() + ":" +
                           (dir.Path() / "b.yaml").string();
  auto config = LoadKubeConfig({}, environment);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://b:6443");
  EXPECT_EQ(config->token, "first");
  EXPECT_THAT(config->origin, HasSubstr("context main"));
}

TEST(KubeConfig, CertificateAuthorityDataAndFileGiveTheSamePem) {
  TempDir dir;
  WriteTestFile(dir.Path() / "certs" / "ca.pem", kCaPem);
  WriteTestFile(dir.Path() / "data.yaml",
                Kubeconfig("    certificate-authority-data: " + absl::Base64Escape(kCaPem) + "\n", ""));
  // A relative path is relative to the kubeconfig's folder, as kubectl reads it.
  WriteTestFile(dir.Path() / "file.yaml", Kubeconfig("    certificate-authority: certs/ca.pem\n", ""));
  auto data = LoadKubeconfigFiles({dir.Path() / "data.yaml"}, "");
  auto file = LoadKubeconfigFiles({dir.Path() / "file.yaml"}, "");
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(data->certificate_authority_pem, kCaPem);
  EXPECT_EQ(file->certificate_authority_pem, kCaPem);

  WriteTestFile(dir.Path() / "bad.yaml", Kubeconfig("    certificate-authority-data: '%%%'\n", ""));
  auto bad = LoadKubeconfigFiles({dir.Path() / "bad.yaml"}, "");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("certificate-authority-data is not base64"));
  WriteTestFile(dir.Path() / "gone.yaml", Kubeconfig("    certificate-authority: certs/missing.pem\n", ""));
  auto gone = LoadKubeconfigFiles({dir.Path() / "gone.yaml"}, "");
  ASSERT_FALSE(gone.ok());
  EXPECT_THAT(std::string(gone.status().message()), HasSubstr("missing.pem"));
}

TEST(KubeConfig, InsecureSkipTlsVerifyOnlyWhenSetTrue) {
  TempDir dir;
  const std::pair<std::string, bool> cases[] = {
      {"", false}, {"    insecure-skip-tls-verify: false\n", false}, {"    insecure-skip-tls-verify: true\n", true}};
  for (const auto& [line, want] : cases) {
    WriteTestFile(dir.Path() / "k.yaml", Kubeconfig(line, ""));
    auto config = LoadKubeconfigFiles({dir.Path() / "k.yaml"}, "");
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->insecure_skip_tls_verify, want) << "line: " << line;
  }
  WriteTestFile(dir.Path() / "k.yaml", Kubeconfig("    insecure-skip-tls-verify: perhaps\n", ""));
  auto unclear = LoadKubeconfigFiles({dir.Path() / "k.yaml"}, "");
  ASSERT_FALSE(unclear.ok());
  EXPECT_THAT(std::string(unclear.status().message()), HasSubstr("insecure-skip-tls-verify \"perhaps\""));
  WriteTestFile(dir.Path() / "k.yaml", Kubeconfig("    insecure-skip-tls-verify: true\n    certificate-authority-data: " +
                                                      absl::Base64Escape(kCaPem) + "\n", ""));
  EXPECT_FALSE(LoadKubeconfigFiles({dir.Path() / "k.yaml"}, "").ok()) << "a CA and insecure together are refused";
}

TEST(KubeConfig, TokenFileAndClientCertificates) {
  TempDir dir;
  WriteTestFile(dir.Path() / "secrets" / "client.pem", "CERT");
  WriteTestFile(dir.Path() / "k.yaml",
                Kubeconfig("", "    tokenFile: secrets/token\n    client-certificate: secrets/client.pem\n"
                               "    client-key-data: " + absl::Base64Escape("KEY") + "\n"));
  auto config = LoadKubeconfigFiles({dir.Path() / "k.yaml"}, "");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->token_file, dir.Path() / "secrets" / "token");
  EXPECT_EQ(config->client_certificate_pem, "CERT");
  EXPECT_EQ(config->client_key_pem, "KEY");

  WriteTestFile(dir.Path() / "k.yaml", Kubeconfig("", "    client-certificate: secrets/client.pem\n"));
  auto half = LoadKubeconfigFiles({dir.Path() / "k.yaml"}, "");
  ASSERT_FALSE(half.ok());
  EXPECT_THAT(std::string(half.status().message()), HasSubstr("client-key"));
}

TEST(KubeConfig, UnsupportedAuthenticationNamesTheKey) {
  TempDir dir;
  WriteTestFile(dir.Path() / "k.yaml", Kubeconfig("", "    exec:\n      command: aws\n"));
  auto config = LoadKubeconfigFiles({dir.Path() / "k.yaml"}, "");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("\"exec\""));
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("user \"u\""));
}

TEST(KubeConfig, ContextChoiceAndItsErrors) {
  TempDir dir;
  WriteTestFile(dir.Path() / "k.yaml", Kubeconfig("", ""));
  auto other = LoadKubeconfigFiles({dir.Path() / "k.yaml"}, "other");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->default_namespace, "default");
  auto missing = LoadKubeconfigFiles({dir.Path() / "k.yaml"}, "nowhere");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("context \"nowhere\" not found"));
  WriteTestFile(dir.Path() / "k.yaml", Kubeconfig("", "", "10.0.0.1:6443"));
  auto no_scheme = LoadKubeconfigFiles({dir.Path() / "k.yaml"}, "");
  ASSERT_FALSE(no_scheme.ok());
  EXPECT_THAT(std::string(no_scheme.status().message()), HasSubstr("not an http(s) URL"));
}

TEST(KubeConfig, EnvironmentComesFromTheLookupGiven) {
  const KubeEnvironment environment = KubeEnvironment::FromLookup([](const char* name) -> const char* {
    if (std::string_view(name) == "KUBECONFIG") return "/a:/b";
    if (std::string_view(name) == "HOME") return "/home/x";
    return nullptr;
  });
  EXPECT_EQ(environment.kubeconfig, "/a:/b");
  EXPECT_EQ(environment.home, "/home/x");
  EXPECT_TRUE(environment.kubernetes_service_host.empty());
  EXPECT_EQ(environment.service_account_dir, kServiceAccountDir);
}

}  // namespace
}  // namespace modelcache::kube
