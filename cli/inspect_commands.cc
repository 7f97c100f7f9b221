#include "cli/inspect_commands.h"

#include <google/protobuf/util/json_util.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>

#include "cli/agent_client.h"
#include "common/clock.h"
#include "common/quantity.h"
#include "common/status_format.h"
#include "spdlog/fmt/chrono.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::cli {
namespace {

struct InspectOptions {
  std::string socket;
  bool json = false;
  std::string model;
  std::string version;
};

std::string ToJson(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

std::string FormatTime(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:%Y-%m-%d %H:%M:%S}Z", utc);
}

void PrintRows(const std::vector<std::vector<std::string>>& rows, std::string_view indent = "") {
  std::vector<size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (size_t column = 0; column < row.size(); ++column) {
      widths[column] = std::max(widths[column], row[column].size());
    }
  }
  for (const auto& row : rows) {
    std::string line(indent);
    for (size_t column = 0; column < row.size(); ++column) {
      line += column + 1 == row.size() ? row[column] : fmt::format("{:<{}}  ", row[column], widths[column]);
    }
    std::cout << line << "\n";
  }
}

void PrintTable(const std::vector<v1::CachedModel>& models) {
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "VERSION", "SIZE", "FILES", "LAST ACCESS", "SOURCE"}};
  for (const v1::CachedModel& model : models) {
    rows.push_back({model.name(), model.version(), FormatBytes(model.size_bytes()),
                    std::to_string(model.file_count()), FormatTime(model.last_access_unix_ms()),
                    model.source()});
  }
  PrintRows(rows);
}

// What the source said the model was when it was filled: the whole model's revision or
// digest when the source has one, and each file's identity ("-" where the source stated none;
// manifests of older agents have none).
void PrintIdentity(const v1::CachedModel& model) {
  if (!model.source_revision().revision().empty()) {
    std::cout << fmt::format("revision:     {}\n", model.source_revision().revision());
  }
  if (!model.source_revision().digest().empty()) {
    std::cout << fmt::format("digest:       {}\n", model.source_revision().digest());
  }
  if (model.files().empty()) return;
  auto or_dash = [](const std::string& value) { return value.empty() ? std::string("-") : value; };
  std::vector<std::vector<std::string>> rows = {
      {"FILE", "SIZE", "SHA256", "ETAG", "VERSION ID", "SOURCE SHA256"}};
  for (const v1::ManifestFile& file : model.files()) {
    rows.push_back({file.path(), std::to_string(file.size()), file.sha256(), or_dash(file.etag()),
                    or_dash(file.version_id()),
                    file.source_sha256().empty()             ? std::string("-")
                    : file.source_sha256() == file.sha256() ? std::string("stated, matches")
                                                            : file.source_sha256()});
  }
  std::cout << "identity at the source:\n";
  PrintRows(rows, "  ");
}

// Connects, runs `call` on a stub and maps failures to exit codes.
template <typename Call>
int WithAgent(const InspectOptions& options, CliContext& context, Call call) {
  std::string socket = ResolveSocketPath(options.socket, context.environment);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ConnectToAgent(socket, std::chrono::seconds(5));
  if (!channel.ok()) {
    fmt::print(stderr, "modelcachectl: agent unreachable: {}\n", channel.status().message());
    return kExitUnreachable;
  }
  std::unique_ptr<v1::Agent::Stub> stub = v1::Agent::NewStub(*channel);
  grpc::ClientContext rpc;
  rpc.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  absl::Status status = call(*stub, rpc);
  if (!status.ok()) {
    fmt::print(stderr, "modelcachectl: {}\n", DescribeError(status));
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace

void AddInspectCommands(CLI::App& app, CliContext& context) {
  auto list_options = std::make_shared<InspectOptions>();
  CLI::App* list = app.add_subcommand("list", "List the models cached on this node");
  list->add_option("--socket", list_options->socket, "Agent socket");
  list->add_flag("--json", list_options->json, "Print JSON instead of a table");
  list->callback([list_options, &context] {
    context.exit_code = WithAgent(*list_options, context, [&](v1::Agent::Stub& stub,
                                                               grpc::ClientContext& rpc) {
      v1::ListResponse response;
      grpc::Status status = stub.List(&rpc, v1::ListRequest(), &response);
      if (!status.ok()) return FromGrpcStatus(status);
      std::vector<v1::CachedModel> models(response.models().begin(), response.models().end());
      std::sort(models.begin(), models.end(), [](const auto& a, const auto& b) {
        return std::tie(a.name(), a.version()) < std::tie(b.name(), b.version());
      });
      if (list_options->json) {
        std::cout << ToJson(response);
      } else {
        PrintTable(models);
      }
      return absl::OkStatus();
    });
  });

  auto stat_options = std::make_shared<InspectOptions>();
  CLI::App* stat = app.add_subcommand("stat", "Show one cached model (NOT_FOUND if absent)");
  stat->add_option("--model", stat_options->model, "Model name")->required();
  stat->add_option("--version", stat_options->version, "Model version")->required();
  stat->add_option("--socket", stat_options->socket, "Agent socket");
  stat->add_flag("--json", stat_options->json, "Print JSON");
  stat->callback([stat_options, &context] {
    context.exit_code = WithAgent(*stat_options, context, [&](v1::Agent::Stub& stub,
                                                               grpc::ClientContext& rpc) {
      v1::StatRequest request;
      request.set_name(stat_options->model);
      request.set_version(stat_options->version);
      v1::CachedModel model;
      grpc::Status status = stub.Stat(&rpc, request, &model);
      if (!status.ok()) return FromGrpcStatus(status);
      if (stat_options->json) {
        std::cout << ToJson(model);
      } else {
        std::cout << fmt::format(
            "name:         {}\nversion:      {}\npath:         {}\nsize:         {} ({} bytes)\n"
            "files:        {}\nsource:       {}\nfetched:      {}\nlast access:  {}\n",
            model.name(), model.version(), model.path(), FormatBytes(model.size_bytes()),
            model.size_bytes(), model.file_count(), model.source(),
            FormatTime(model.fetched_unix_ms()), FormatTime(model.last_access_unix_ms()));
        PrintIdentity(model);
      }
      return absl::OkStatus();
    });
  });
}

}  // namespace modelcache::cli
