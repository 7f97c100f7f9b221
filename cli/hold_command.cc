#include "cli/hold_command.h"

#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <string_view>
#include <variant>

#include "cli/agent_client.h"
#include "common/duration.h"
#include "common/status_format.h"
#include "modelcache/v1/agent.grpc.pb.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::cli {
namespace {

// How long one Hold call may take, and how long to wait for the agent's socket.
constexpr std::chrono::seconds kCallTimeout{10};
constexpr std::chrono::seconds kConnectTimeout{5};

struct HoldOptions {
  std::string model;
  std::string version;
  std::string holder;
  std::string socket;
  std::string every;  // duration text; empty: renew once
  std::string ttl;    // duration text; empty: the agent's leaseTtl
  bool once = false;
  bool release = false;
};

// One Hold call on a fresh channel (the agent may have restarted between two renewals).
absl::StatusOr<v1::HoldResponse> CallHold(const std::string& socket, v1::HoldRequest request) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = ConnectToAgent(socket, kConnectTimeout);
  if (!channel.ok()) return channel.status();
  std::unique_ptr<v1::Agent::Stub> stub = v1::Agent::NewStub(*channel);
  grpc::ClientContext rpc;
  rpc.set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  v1::HoldResponse response;
  grpc::Status status = stub->Hold(&rpc, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

std::string ExpiryText(int64_t unix_ms) {
  std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M:%SZ", &utc);
  return text;
}

int ExitCodeFor(const absl::Status& status) {
  return absl::IsUnavailable(status) ? kExitUnreachable : kExitFailed;
}

// A duration flag ("30s"): its value, or nullopt after saying on stderr what is wrong.
std::optional<std::chrono::seconds> PositiveDurationFlag(std::string_view flag,
                                                        const std::string& text,
                                                        std::string_view example) {
  absl::StatusOr<std::chrono::seconds> parsed = ParseDuration(text);
  if (!parsed.ok() || parsed->count() == 0) {
    fmt::print(stderr, "modelcachectl hold: {} \"{}\": want a duration such as {}\n", flag, text,
               example);
    return std::nullopt;
  }
  return *parsed;
}

// The Hold request the flags ask for (holder defaulting to $HOSTNAME), or kExitUsage after
// saying why.
std::variant<v1::HoldRequest, int> RequestFor(const HoldOptions& options,
                                              const CliContext& context) {
  v1::HoldRequest request;
  request.set_name(options.model);
  request.set_version(options.version);
  request.set_holder(options.holder.empty() ? context.environment.Get("HOSTNAME")
                                            : options.holder);
  if (request.holder().empty()) {
    fmt::print(stderr, "modelcachectl hold: --holder is required ($HOSTNAME is not set)\n");
    return kExitUsage;
  }
  if (!options.ttl.empty()) {
    std::optional<std::chrono::seconds> ttl = PositiveDurationFlag("--ttl", options.ttl, "10m");
    if (!ttl) return kExitUsage;
    request.set_ttl_seconds(static_cast<uint32_t>(ttl->count()));
  }
  return request;
}

// --release, and the end of the sidecar mode (which does not say whether a lease was live).
int Release(const std::string& socket, v1::HoldRequest request, const std::string& what,
            bool say_whether_live) {
  request.set_release(true);
  absl::StatusOr<v1::HoldResponse> released = CallHold(socket, request);
  if (!released.ok()) {
    fmt::print(stderr, "modelcachectl hold: release {}: {}\n", what,
               DescribeError(released.status()));
    return ExitCodeFor(released.status());
  }
  if (say_whether_live) {
    std::printf("released %s (%s)\n", what.c_str(),
                released->released() ? "lease ended" : "no live lease");
  } else {
    std::printf("released %s\n", what.c_str());
  }
  return kExitOk;
}

// --once (the default): one renewal.
int HoldOnce(const std::string& socket, const v1::HoldRequest& request, const std::string& what) {
  absl::StatusOr<v1::HoldResponse> held = CallHold(socket, request);
  if (!held.ok()) {
    fmt::print(stderr, "modelcachectl hold: {}: {}\n", what, DescribeError(held.status()));
    return ExitCodeFor(held.status());
  }
  std::printf("holding %s until %s\n", what.c_str(), ExpiryText(held->expires_unix_ms()).c_str());
  return kExitOk;
}

// --every: the sidecar. Renews at that pace (an agent that does not answer, restarting maybe,
// is tried again at the same pace) until SIGTERM or SIGINT, then releases what it held.
int HoldUntilSignal(const std::string& socket, const v1::HoldRequest& request,
                    const std::string& what, std::chrono::seconds every) {
  // The signals are blocked before gRPC starts any thread, so that sigtimedwait below is the
  // only place they are taken.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  bool ever_held = false;
  for (;;) {
    absl::StatusOr<v1::HoldResponse> held = CallHold(socket, request);
    if (held.ok()) {
      ever_held = true;
      std::printf("holding %s until %s\n", what.c_str(),
                  ExpiryText(held->expires_unix_ms()).c_str());
      std::fflush(stdout);
    } else if (absl::IsInvalidArgument(held.status())) {
      fmt::print(stderr, "modelcachectl hold: {}: {}\n", what, DescribeError(held.status()));
      return kExitFailed;
    } else {
      fmt::print(stderr, "modelcachectl hold: renew {}: {} (retrying in {})\n", what,
                 DescribeError(held.status()), FormatDuration(every));
    }
    timespec wait{static_cast<time_t>(every.count()), 0};
    int received = sigtimedwait(&signals, nullptr, &wait);
    if (received == SIGTERM || received == SIGINT) break;
  }
  if (!ever_held) return kExitOk;
  return Release(socket, request, what, /*say_whether_live=*/false);
}

int Run(const HoldOptions& options, CliContext& context) {
  const int modes =
      (options.once ? 1 : 0) + (options.release ? 1 : 0) + (options.every.empty() ? 0 : 1);
  if (modes > 1) {
    fmt::print(stderr, "modelcachectl hold: choose one of --every, --once and --release\n");
    return kExitUsage;
  }
  std::optional<std::chrono::seconds> every;
  if (!options.every.empty()) {
    every = PositiveDurationFlag("--every", options.every, "30s");
    if (!every) return kExitUsage;
  }
  std::variant<v1::HoldRequest, int> request = RequestFor(options, context);
  if (const int* code = std::get_if<int>(&request)) return *code;
  const v1::HoldRequest& hold = std::get<v1::HoldRequest>(request);
  const std::string socket = ResolveSocketPath(options.socket, context.environment);
  const std::string what =
      fmt::format("{}@{} for {}", hold.name(), hold.version(), hold.holder());
  if (options.release) return Release(socket, hold, what, /*say_whether_live=*/true);
  if (!every) return HoldOnce(socket, hold, what);
  return HoldUntilSignal(socket, hold, what, *every);
}

}  // namespace

void AddHoldCommand(CLI::App& app, CliContext& context) {
  auto options = std::make_shared<HoldOptions>();
  CLI::App* hold = app.add_subcommand(
      "hold", "Keep (or release) a pod's lease on a cached model so that no purge takes it");
  hold->add_option("--model", options->model, "Model name")->required();
  hold->add_option("--version", options->version, "Model version")->required();
  hold->add_option("--holder", options->holder, "Pod name or UID (default $HOSTNAME)");
  hold->add_option("--every", options->every,
                   "Renew every DURATION (30s) until SIGTERM/SIGINT, then release");
  hold->add_flag("--once", options->once, "Renew once and exit (the default)");
  hold->add_flag("--release", options->release, "End the lease");
  hold->add_option("--ttl", options->ttl, "Lease length (default: the agent's leaseTtl)");
  hold->add_option("--socket", options->socket, "Agent socket (default $MODELCACHE_SOCKET)");
  hold->callback([options, &context] { context.exit_code = Run(*options, context); });
}

}  // namespace modelcache::cli
