#include "cli/fetch_command.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <iostream>

#include "agent/config.h"
#include "cli/agent_client.h"
#include "cli/fetch_fallback.h"
#include "cli/local_fill.h"
#include "cli/progress_display.h"
#include "common/duration.h"
#include "common/fs.h"
#include "common/status_format.h"
#include "common/status_macros.h"
#include "common/uri.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::cli {
namespace {

struct FetchOptions {
  std::string model;
  std::string version;
  std::string source;
  std::string dest;
  std::string socket;
  std::string holder;
  bool fallback = false;
  std::string timeout;  // duration text; "" = none
  std::string connect_timeout = "5s";
  std::string s3_endpoint;
  std::string s3_region;
  bool s3_path_style = false;
};

// Settings for the local fallback's S3 source: flags first, then the usual AWS variables.
absl::StatusOr<SourceOptions> LocalSourceOptions(const FetchOptions& options,
                                                 const ProcessEnvironment& environment) {
  S3Config s3;
  s3.endpoint = options.s3_endpoint;
  if (s3.endpoint.empty()) s3.endpoint = environment.Get("AWS_ENDPOINT_URL_S3");
  if (s3.endpoint.empty()) s3.endpoint = environment.Get("AWS_ENDPOINT_URL");
  s3.region = options.s3_region;
  if (s3.region.empty()) s3.region = environment.Get("AWS_REGION");
  if (s3.region.empty()) s3.region = environment.Get("AWS_DEFAULT_REGION");
  if (s3.region.empty()) s3.region = "us-east-1";
  s3.path_style = options.s3_path_style || !s3.endpoint.empty();
  s3.credentials_file = DefaultCredentialsFile(environment);
  ASSIGN_OR_RETURN(AwsCredentials aws, LoadAwsCredentials(s3, environment));
  SourceOptions sources;
  sources.s3_endpoint = s3.endpoint;
  sources.s3_region = s3.region;
  sources.s3_path_style = s3.path_style;
  sources.aws = aws;
  // The local fill runs with the caller's own rights and network: what it may read or reach,
  // the caller could read or reach anyway. The agent's fileSources and network rules guard
  // what a pod can make the agent read on its behalf; they do not apply here.
  sources.file_roots = std::nullopt;
  sources.network.enforced = false;
  // hf:// and oci:// as the caller's own tools find their settings: HF_ENDPOINT, HF_TOKEN or
  // huggingface_hub's token file; docker's config.json ($DOCKER_CONFIG or ~/.docker).
  sources.hf_endpoint = environment.Get("HF_ENDPOINT");
  sources.hf_token = environment.Get("HF_TOKEN");
  if (sources.hf_token.empty()) sources.hf_token = environment.Get("HUGGING_FACE_HUB_TOKEN");
  const std::string home = environment.Get("HOME");
  if (sources.hf_token.empty()) {
    std::string token_file = environment.Get("HF_TOKEN_PATH");
    if (token_file.empty() && !environment.Get("HF_HOME").empty()) token_file = environment.Get("HF_HOME") + "/token";
    if (token_file.empty() && !home.empty()) token_file = home + "/.cache/huggingface/token";
    if (absl::StatusOr<std::string> token = ReadFileToString(token_file); !token_file.empty() && token.ok()) {
      while (!token->empty() && std::isspace(static_cast<unsigned char>(token->back()))) token->pop_back();
      sources.hf_token = *std::move(token);
    }
  }
  std::string docker_config = environment.Get("DOCKER_CONFIG");
  if (!docker_config.empty()) docker_config += "/config.json";
  if (docker_config.empty() && !home.empty()) docker_config = home + "/.docker/config.json";
  if (!docker_config.empty()) {
    absl::StatusOr<std::string> json = ReadFileToString(docker_config);
    if (json.ok()) {
      sources.docker_config_json = *std::move(json);
    } else if (!absl::IsNotFound(json.status())) {
      return json.status();
    }
  }
  return sources;
}

class Fetch {
 public:
  Fetch(const FetchOptions& options, CliContext& context)
      : options_(options),
        context_(context),
        display_(stderr, isatty(STDERR_FILENO) == 1,
                 fmt::format("{}@{}", options.model, options.version)) {}

  int Run() {
    if (options_.fallback && options_.dest.empty()) {
      return Usage("--fallback needs --dest (where to download without the agent)");
    }
    // Without --source the agent fills from the source its coordinator's registry names; a
    // download without the agent has no registry to ask, so it needs the source up front
    // (checked now, not only when the agent is away, so that a wrong spec fails at once).
    if (options_.fallback && options_.source.empty()) {
      return Usage("--fallback needs --source (a download without the agent has no registry to "
                   "ask where the model comes from)");
    }
    if (!options_.timeout.empty()) {
      absl::StatusOr<std::chrono::seconds> timeout = ParseDuration(options_.timeout);
      if (!timeout.ok()) return Usage(fmt::format("--timeout: {}", timeout.status().message()));
      timeout_ = *timeout;
    }
    absl::StatusOr<std::chrono::seconds> connect_timeout = ParseDuration(options_.connect_timeout);
    if (!connect_timeout.ok()) {
      return Usage(fmt::format("--connect-timeout: {}", connect_timeout.status().message()));
    }
    // Checked here as well as in the agent: the agent's answer to a huge URI would not fit
    // in gRPC's response metadata, and the local fallback should not list it either.
    if (absl::Status length = CheckSourceUriLength(options_.source); !length.ok()) {
      return Usage(fmt::format("--source: {}", DescribeError(length)));
    }
    request_.set_name(options_.model);
    request_.set_version(options_.version);
    request_.set_source(options_.source);
    request_.set_holder(options_.holder.empty() ? context_.environment.Get("HOSTNAME")
                                                : options_.holder);

    const ProcessEnvironment& environment = context_.environment;
    if (IsTruthy(environment.Get("MODELCACHE_DISABLE")) ||
        IsTruthy(environment.Get("AIOLI_DISABLE_MODEL_CACHE"))) {
      if (options_.dest.empty() || options_.source.empty()) {
        return Usage("the model cache is disabled (MODELCACHE_DISABLE / AIOLI_DISABLE_MODEL_CACHE): "
                     "--dest and --source are required");
      }
      Note("the model cache is disabled; downloading into {} directly", options_.dest);
      return RunLocally();
    }

    std::string socket = ResolveSocketPath(options_.socket, environment);
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        ConnectToAgent(socket, std::chrono::duration_cast<std::chrono::milliseconds>(*connect_timeout));
    if (!channel.ok()) {
      if (options_.fallback) {
        Note("{}; downloading into {} without the cache", channel.status().message(), options_.dest);
        return RunLocally();
      }
      fmt::print(stderr, "modelcachectl: agent unreachable: {}\n", channel.status().message());
      return kExitUnreachable;
    }

    absl::StatusOr<v1::EnsureProgress> result = EnsureThroughAgent(*channel);
    if (!result.ok() && options_.fallback) {
      if (std::optional<std::string> why = LocalFallbackReason(result.status())) {
        // One line that says why: the reason and the agent's error.
        display_.Abandon();
        Note("{} ({}); downloading into {} without the cache", *why, result.status().message(),
             options_.dest);
        return RunLocally();
      }
    }
    return Report(result);
  }

 private:
  template <typename... Args>
  void Note(fmt::format_string<Args...> format, Args&&... args) {
    fmt::print(stderr, "modelcachectl: {}\n", fmt::format(format, std::forward<Args>(args)...));
  }

  int Usage(std::string_view message) {
    fmt::print(stderr, "modelcachectl fetch: {}\n", message);
    return kExitUsage;
  }

  absl::StatusOr<v1::EnsureProgress> EnsureThroughAgent(std::shared_ptr<grpc::Channel> channel) {
    std::unique_ptr<v1::Agent::Stub> stub = v1::Agent::NewStub(channel);
    grpc::ClientContext call;
    if (timeout_) call.set_deadline(std::chrono::system_clock::now() + *timeout_);
    std::unique_ptr<grpc::ClientReader<v1::EnsureProgress>> reader = stub->Ensure(&call, request_);
    v1::EnsureProgress progress;
    std::optional<v1::EnsureProgress> last;
    while (reader->Read(&progress)) {
      if (progress.state() != v1::EnsureProgress::READY) display_.Update(progress);
      last = progress;
    }
    grpc::Status status = reader->Finish();
    if (!status.ok()) return FromGrpcStatus(status);
    if (!last || last->state() != v1::EnsureProgress::READY || last->path().empty()) {
      return absl::InternalError("the agent ended the stream without a READY message");
    }
    return *last;
  }

  int RunLocally() {
    absl::StatusOr<SourceOptions> sources = LocalSourceOptions(options_, context_.environment);
    if (!sources.ok()) return Report(sources.status());
    return Report(FillLocally(request_, options_.dest, *sources, timeout_,
                              [this](const v1::EnsureProgress& progress) { display_.Update(progress); }));
  }

  int Report(const absl::StatusOr<v1::EnsureProgress>& result) {
    if (!result.ok()) {
      display_.Abandon();
      fmt::print(stderr, "modelcachectl: fetch {}@{} failed: {}\n", options_.model,
                 options_.version, DescribeError(result.status()));
      return kExitFailed;
    }
    display_.Finish(*result);
    std::cout << result->path() << std::endl;
    return kExitOk;
  }

  const FetchOptions& options_;
  CliContext& context_;
  ProgressDisplay display_;
  v1::EnsureRequest request_;
  std::optional<std::chrono::seconds> timeout_;
};

}  // namespace

void AddFetchCommand(CLI::App& app, CliContext& context) {
  auto options = std::make_shared<FetchOptions>();
  CLI::App* command = app.add_subcommand(
      "fetch", "Make a model ready in the node's cache (or locally) and print its path");
  command->add_option("--model", options->model, "Model name")->required();
  command->add_option("--version", options->version, "Model version")->required();
  command->add_option("--source", options->source,
                      "s3://bucket/prefix/, http(s)://host/path/, file:///path, "
                      "hf://owner/repo[@rev] or oci://registry/repository:tag; an agent with "
                      "a coordinator checks it against the registry, and without it fills from "
                      "the registered source (required with --fallback or without an agent)");
  command->add_option("--dest", options->dest,
                      "Cache root for a local download when the cache is disabled or with --fallback");
  command->add_option("--socket", options->socket,
                      "Agent socket (default $MODELCACHE_SOCKET or /run/modelcache/agent.sock)");
  command->add_option("--holder", options->holder, "Who uses the model (default $HOSTNAME)");
  command->add_flag("--fallback", options->fallback,
                    "Download locally into --dest if the agent is unreachable, refuses "
                    "(FAILED_PRECONDITION), the cache is full (RESOURCE_EXHAUSTED) or the "
                    "agent is unavailable (UNAVAILABLE, CANCELLED)");
  command->add_option("--timeout", options->timeout, "Give up after this long (30s, 10m, 1h)");
  command->add_option("--connect-timeout", options->connect_timeout,
                      "How long to wait for the agent to accept a connection")
      ->capture_default_str();
  command->add_option("--s3-endpoint", options->s3_endpoint,
                      "Local fallback: S3 endpoint (default $AWS_ENDPOINT_URL)");
  command->add_option("--s3-region", options->s3_region,
                      "Local fallback: S3 region (default $AWS_REGION or us-east-1)");
  command->add_flag("--s3-path-style", options->s3_path_style, "Local fallback: path-style S3 URLs");
  command->callback([options, &context] { context.exit_code = Fetch(*options, context).Run(); });
}

}  // namespace modelcache::cli
