#include "cli/hold_command.h"

#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <memory>

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

int Run(const HoldOptions& options, CliContext& context) {
  const int modes = (options.once ? 1 : 0) + (options.release ? 1 : 0) + (options.every.empty() ? 0 : 1);
  if (modes > 1) {
    fmt::print(stderr, "modelcachectl hold: choose one of --every, --once and --release\n");
    return kExitUsage;
  }
  std::chrono::seconds every{0};
  if (!options.every.empty()) {
    absl::StatusOr<std::chrono::seconds> parsed = ParseDuration(options.every);
    if (!parsed.ok() || parsed->count() == 0) {
      fmt::print(stderr, "modelcachectl hold: --every \"{}\": want a duration such as 30s\n",
                 options.every);
      return kExitUsage;
    }
    every = *parsed;
  }
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
    absl::StatusOr<std::chrono::seconds> ttl = ParseDuration(options.ttl);
    if (!ttl.ok() || ttl->count() == 0) {
      fmt::print(stderr, "modelcachectl hold: --ttl \"{}\": want a duration such as 10m\n",
                 options.ttl);
      return kExitUsage;
    }
    request.set_ttl_seconds(static_cast<uint32_t>(ttl->count()));
  }
  const std::string socket = ResolveSocketPath(options.socket, context.environment);
  const std::string what = fmt::format("{}@{} for {}", request.name(), request.version(),
                                       request.holder());

  if (options.release) {
    request.set_release(true);
    absl::StatusOr<v1::HoldResponse> released = CallHold(socket, request);
    if (!released.ok()) {
      fmt::print(stderr, "modelcachectl hold: release {}: {}\n", what,
                 DescribeError(released.status()));
      return ExitCodeFor(released.status());
    }
    std::printf("released %s (%s)\n", what.c_str(),
                released->released() ? "lease ended" : "no live lease");
    return kExitOk;
  }

  if (every.count() == 0) {
    absl::StatusOr<v1::HoldResponse> held = CallHold(socket, request);
    if (!held.ok()) {
      fmt::print(stderr, "modelcachectl hold: {}: {}\n", what, DescribeError(held.status()));
      return ExitCodeFor(held.status());
    }
    std::printf("holding %s until %s\n", what.c_str(), ExpiryText(held->expires_unix_ms()).c_str());
    return kExitOk;
  }

  // Sidecar mode. The signals are blocked before gRPC starts any thread, so that sigtimedwait
  // below is the only place they are taken.
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
      // The agent may be restarting: keep trying at the same pace.
      fmt::print(stderr, "modelcachectl hold: renew {}: {} (retrying in {})\n", what,
                 DescribeError(held.status()), FormatDuration(every));
    }
    timespec wait{static_cast<time_t>(every.count()), 0};
    int received = sigtimedwait(&signals, nullptr, &wait);
    if (received == SIGTERM || received == SIGINT) break;
  }
  if (!ever_held) return kExitOk;
  request.set_release(true);
  absl::StatusOr<v1::HoldResponse> released = CallHold(socket, request);
  if (!released.ok()) {
    fmt::print(stderr, "modelcachectl hold: release {}: {}\n", what,
               DescribeError(released.status()));
    return ExitCodeFor(released.status());
  }
  std::printf("released %s\n", what.c_str());
  return kExitOk;
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
