#include "tests/testing/hf_hub_server.h"

#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/source/blocking_http.h"
#include "tests/testing/wait.h"

namespace modelcache::testing {
namespace {

constexpr auto kStartTimeout = std::chrono::seconds(30);

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

uint16_t PortAfter(std::string_view text, std::string_view marker) {
  const size_t at = text.find(marker);
  if (at == std::string_view::npos) return 0;
  uint32_t port = 0;
  size_t pos = at + marker.size();
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') port = port * 10 + (text[pos++] - '0');
  if (pos >= text.size() || port == 0 || port > 65535) return 0;  // the line is not complete yet
  return static_cast<uint16_t>(port);
}

}  // namespace

std::string JsonQuote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

absl::StatusOr<std::unique_ptr<HfHubServer>> HfHubServer::Start() {
  std::unique_ptr<HfHubServer> server(new HfHubServer());
  server->dir_ = std::make_unique<TempDir>();
  SubprocessOptions options;
  options.argv = {"node", std::string(MODELCACHE_SOURCE_DIR) + "/tests/testing/hf_hub_server.mjs"};
  options.stdout_path = server->dir_->Join("hub.out");
  options.stderr_path = server->dir_->Join("hub.err");
  auto process = Subprocess::Start(options);
  if (!process.ok()) return process.status();
  server->process_ = *std::move(process);
  const bool listening = PollUntil(
      [&] {
        const std::string out = ReadAll(options.stdout_path);
        server->hub_port_ = PortAfter(out, "hub=");
        server->storage_port_ = PortAfter(out, "storage=");
        return (server->hub_port_ != 0 && server->storage_port_ != 0) || !server->process_->Running();
      },
      kStartTimeout, std::chrono::milliseconds(50));
  if (!listening || server->hub_port_ == 0 || server->storage_port_ == 0) {
    return absl::UnavailableError(fmt::format("test hub did not start: {} {}", ReadAll(options.stdout_path),
                                              ReadAll(options.stderr_path)));
  }
  return server;
}

HfHubServer::~HfHubServer() {
  if (process_) process_->Terminate(std::chrono::seconds(5));
}

std::string HfHubServer::Endpoint() const { return fmt::format("http://127.0.0.1:{}", hub_port_); }

absl::StatusOr<std::string> HfHubServer::Control(std::string_view what, std::string_view json) const {
  HttpRequest request;
  request.method = json.empty() ? "GET" : "PUT";
  request.url = fmt::format("{}/_test/{}", Endpoint(), what);
  request.body = std::string(json);
  request.timeout = std::chrono::seconds(30);
  request.network.enforced = false;
  absl::StatusOr<HttpResponse> response = PerformHttpRequest(request);
  if (!response.ok()) return response.status();
  if (response->status_code != 200) {
    return absl::InternalError(fmt::format("test hub {}: HTTP {}: {}", what, response->status_code, response->body));
  }
  return response->body;
}

absl::Status HfHubServer::AddRepo(std::string_view id, const HfRepoOptions& options) {
  std::vector<std::string> tokens;
  for (const std::string& token : options.tokens) tokens.push_back(JsonQuote(token));
  return Control("repo", fmt::format(R"({{"id":{},"type":{},"private":{},"gated":{},"tokens":[{}]}})",
                                     JsonQuote(id), JsonQuote(options.type), options.is_private,
                                     options.gated, absl::StrJoin(tokens, ",")))
      .status();
}

absl::StatusOr<std::string> HfHubServer::Commit(std::string_view id, const std::filesystem::path& dir,
                                                std::string_view branch, uint64_t lfs_min_size,
                                                std::string_view type) {
  absl::StatusOr<std::string> answer =
      Control("commit", fmt::format(R"({{"id":{},"type":{},"dir":{},"branch":{},"lfsMinSize":{}}})",
                                    JsonQuote(id), JsonQuote(type), JsonQuote(dir.string()),
                                    JsonQuote(branch), lfs_min_size));
  if (!answer.ok()) return answer.status();
  constexpr std::string_view kKey = "\"commit\":\"";
  const size_t at = answer->find(kKey);
  if (at == std::string::npos) return absl::InternalError("test hub commit: no commit id in " + *answer);
  return answer->substr(at + kKey.size(), 40);
}

absl::Status HfHubServer::MoveBranch(std::string_view id, std::string_view branch, std::string_view commit,
                                     std::string_view type) {
  return Control("branch", fmt::format(R"({{"id":{},"type":{},"branch":{},"commit":{}}})", JsonQuote(id),
                                       JsonQuote(type), JsonQuote(branch), JsonQuote(commit)))
      .status();
}

absl::Status HfHubServer::SetOptions(std::string_view json) { return Control("options", json).status(); }

absl::StatusOr<std::map<std::string, int64_t>> HfHubServer::Stats() const {
  absl::StatusOr<std::string> text = Control("stats", "");
  if (!text.ok()) return text.status();
  std::map<std::string, int64_t> stats;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    const size_t space = line.find(' ');
    if (space == absl::string_view::npos) continue;
    stats[std::string(line.substr(0, space))] = std::stoll(std::string(line.substr(space + 1)));
  }
  return stats;
}

}  // namespace modelcache::testing
