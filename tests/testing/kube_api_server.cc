#include "tests/testing/kube_api_server.h"

#include <gtest/gtest.h>

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "tests/testing/wait.h"

namespace modelcache::testing {
namespace {

namespace fs = std::filesystem;

constexpr auto kStartTimeout = std::chrono::seconds(30);
constexpr auto kPollInterval = std::chrono::milliseconds(20);

std::string ToolsDir() { return std::string(MODELCACHE_SOURCE_DIR) + "/build/tools"; }
std::string ServerScript() { return std::string(MODELCACHE_SOURCE_DIR) + "/tests/testing/kube_api_server.mjs"; }

bool OnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::string_view rest(path);
  while (!rest.empty()) {
    const size_t colon = rest.find(':');
    const std::string dir(rest.substr(0, colon));
    if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return false;
}

std::string ReadIfExists(const std::string& path) {
  std::error_code error;
  if (!fs::exists(path, error)) return "";
  return ReadTestFile(path);
}

}  // namespace

bool KubectlInstalled() { return OnPath("kubectl"); }

absl::StatusOr<std::unique_ptr<KubeApiServer>> KubeApiServer::Start(KubeApiServerOptions options) {
  if (!OnPath("node")) return absl::FailedPreconditionError("node is not installed (scripts/setup.sh installs it)");
  for (const char* package : {"kubernetes-models", "@kubernetes/client-node"}) {
    const std::string manifest = fmt::format("{}/node_modules/{}/package.json", ToolsDir(), package);
    if (::access(manifest.c_str(), R_OK) != 0) {
      return absl::FailedPreconditionError(fmt::format("npm package {} missing in {} (run scripts/setup.sh)", package, ToolsDir()));
    }
  }
  std::unique_ptr<KubeApiServer> server(new KubeApiServer());
  if (!server->certificates_.ok()) return server->certificates_.status();
  server->options_ = std::move(options);
  server->dir_ = std::make_unique<TempDir>();
  if (absl::Status tokens = server->SetTokens(server->options_.tokens); !tokens.ok()) return tokens;
  if (absl::Status launched = server->Launch(0); !launched.ok()) return launched;
  kube::KubeConfig admin = server->Config("");
  auto client = kube::KubeClient::Create(admin);
  if (!client.ok()) return client.status();
  server->admin_ = std::move(*client);
  return server;
}

absl::Status KubeApiServer::Launch(uint16_t port) {
  const std::string port_file = dir_->Join("port");
  std::error_code error;
  fs::remove(port_file, error);
  ++launches_;
  SubprocessOptions process;
  process.argv = {"node", ServerScript(), "--tools", ToolsDir(), "--state", dir_->Join("state.json"),
                  "--port-file", port_file, "--port", std::to_string(port), "--tokens", dir_->Join("tokens.csv"),
                  "--history", std::to_string(options_.history_window),
                  "--bookmark-ms", std::to_string(options_.bookmark_interval_ms)};
  if (options_.tls) {
    for (const std::string& argument : {std::string("--tls-cert"), certificates_.Path("server.pem"),
                                        std::string("--tls-key"), certificates_.Path("server.key"),
                                        std::string("--client-ca"), certificates_.Path("ca.pem")}) {
      process.argv.push_back(argument);
    }
  }
  process.stdout_path = dir_->Join(fmt::format("server-{}.out", launches_));
  process.stderr_path = dir_->Join(fmt::format("server-{}.log", launches_));
  auto started = Subprocess::Start(process);
  if (!started.ok()) return started.status();
  process_ = std::move(*started);
  const bool listening = PollUntil(
      [&] { return fs::exists(port_file) || !process_->Running(); }, kStartTimeout, kPollInterval);
  if (!listening || !fs::exists(port_file)) {
    return absl::UnavailableError(fmt::format("kube test API server did not start ({}): {}",
                                              process_->Running() ? "timeout" : "exited",
                                              ReadIfExists(process.stderr_path)));
  }
  port_ = static_cast<uint16_t>(std::stoi(ReadTestFile(port_file)));
  return absl::OkStatus();
}

KubeApiServer::~KubeApiServer() { Stop(); }

std::string KubeApiServer::Server() const {
  return fmt::format("{}://127.0.0.1:{}", options_.tls ? "https" : "http", port_);
}

pid_t KubeApiServer::Pid() const { return process_ ? process_->Pid() : -1; }

kube::KubeConfig KubeApiServer::Config(const std::string& token) const {
  kube::KubeConfig config;
  config.server = Server();
  if (options_.tls) config.certificate_authority_pem = certificates_.Read("ca.pem");
  config.token = token;
  config.origin = "kube test API server";
  return config;
}

std::string KubeApiServer::WriteKubeconfig(const std::string& token) const {
  const std::string path = dir_->Join(fmt::format("kubeconfig-{}", std::hash<std::string>{}(token)));
  WriteTestFile(path, fmt::format(R"(apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: {}
{}contexts:
- name: test
  context: {{cluster: test, user: test}}
current-context: test
users:
- name: test
  user: {{token: "{}"}}
)",
                                  Server(), options_.tls ? fmt::format("    certificate-authority: {}\n", CaFile()) : "",
                                  token));
  return path;
}

void KubeApiServer::Stop() {
  if (process_) process_->Terminate(std::chrono::seconds(5));
}

bool KubeApiServer::Running() const { return process_ && process_->Running(); }

absl::Status KubeApiServer::Restart() {
  Stop();
  return Launch(port_);
}

absl::Status KubeApiServer::SetTokens(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  // Replaced by rename, as the kubelet swaps a projected token: readers see old or new.
  const std::string temporary = dir_->Join("tokens.csv.tmp");
  if (!WriteTestFile(temporary, text)) return absl::InternalError("cannot write the token file");
  std::error_code error;
  fs::rename(temporary, dir_->Join("tokens.csv"), error);
  if (error) return absl::InternalError(fmt::format("rename token file: {}", error.message()));
  return absl::OkStatus();
}

absl::StatusOr<nlohmann::json> KubeApiServer::TestEndpoint(const std::string& method, const std::string& path,
                                                           const nlohmann::json* body) const {
  return admin_->Raw(method, path, body);
}

absl::StatusOr<std::vector<nlohmann::json>> KubeApiServer::ValidationFailures() const {
  auto answer = TestEndpoint("GET", "/_test/validation-failures");
  if (!answer.ok()) return answer.status();
  return (*answer)["items"].get<std::vector<nlohmann::json>>();
}

absl::StatusOr<std::vector<nlohmann::json>> KubeApiServer::Requests() const {
  auto answer = TestEndpoint("GET", "/_test/requests");
  if (!answer.ok()) return answer.status();
  return (*answer)["items"].get<std::vector<nlohmann::json>>();
}

absl::Status KubeApiServer::Compact() const { return TestEndpoint("POST", "/_test/compact").status(); }

absl::StatusOr<int> KubeApiServer::DropWatches() const {
  auto answer = TestEndpoint("POST", "/_test/drop-watches");
  if (!answer.ok()) return answer.status();
  return (*answer)["dropped"].get<int>();
}

absl::Status KubeApiServer::Configure(const nlohmann::json& settings) const {
  return TestEndpoint("POST", "/_test/config", &settings).status();
}

absl::StatusOr<std::string> KubeApiServer::Kubectl(const std::vector<std::string>& args,
                                                   std::chrono::seconds timeout) const {
  if (!KubectlInstalled()) return absl::FailedPreconditionError("kubectl is not installed");
  const int call = ++kubectl_calls_;
  SubprocessOptions process;
  process.argv = {"kubectl", "--kubeconfig", WriteKubeconfig(), "--cache-dir", dir_->Join("kubectl-cache")};
  process.argv.insert(process.argv.end(), args.begin(), args.end());
  process.stdout_path = dir_->Join(fmt::format("kubectl-{}.out", call));
  process.stderr_path = dir_->Join(fmt::format("kubectl-{}.err", call));
  auto started = Subprocess::Start(process);
  if (!started.ok()) return started.status();
  auto exit = (*started)->WaitExit(timeout);
  if (!exit.ok()) return exit.status();
  if (!exit->Success()) {
    std::string command;
    for (const std::string& arg : args) command += " " + arg;
    return absl::UnknownError(fmt::format("kubectl{} ({}): {}", command, exit->ToString(),
                                          ReadIfExists(process.stderr_path)));
  }
  return ReadIfExists(process.stdout_path);
}

std::string KubeApiServer::Log() const {
  std::string log;
  for (int launch = 1; launch <= launches_; ++launch) log += ReadIfExists(dir_->Join(fmt::format("server-{}.log", launch)));
  return log;
}

void ExpectObjectsValid(const KubeApiServer* server) {
  if (server == nullptr || !server->Running()) return;
  auto failures = server->ValidationFailures();
  ASSERT_TRUE(failures.ok()) << failures.status();
  EXPECT_TRUE(failures->empty()) << "objects failed validation: " << nlohmann::json(*failures).dump();
}

}  // namespace modelcache::testing
