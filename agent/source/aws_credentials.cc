#include "agent/source/aws_credentials.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include "absl/status/status.h"

namespace modelcache {
namespace {

using Section = std::map<std::string, std::string>;

std::string_view Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

std::string Lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The named section of an AWS INI file ("[name]", or "[profile name]" as in ~/.aws/config);
// nullopt when absent.
absl::StatusOr<std::optional<Section>> FindProfile(std::string_view text, std::string_view profile) {
  std::optional<Section> found;
  bool in_profile = false;
  int line_number = 0;
  while (!text.empty()) {
    const size_t newline = std::min(text.find('\n'), text.size());
    const std::string_view line = Trim(text.substr(0, newline));
    text.remove_prefix(std::min(newline + 1, text.size()));
    ++line_number;
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']') {
        return absl::InvalidArgumentError(
            fmt::format("AWS credentials file line {}: unterminated section header", line_number));
      }
      std::string_view name = Trim(line.substr(1, line.size() - 2));
      if (name.substr(0, 8) == "profile ") name = Trim(name.substr(8));
      in_profile = name == profile;
      if (in_profile && !found) found.emplace();
      continue;
    }
    const size_t equals = line.find('=');
    if (equals == std::string_view::npos) {
      // Continuation lines of nested settings (e.g. "  s3 =" blocks in config) start with
      // whitespace and were trimmed; they carry no credentials, so ignore them.
      continue;
    }
    if (in_profile) {
      (*found)[Lowercase(Trim(line.substr(0, equals)))] = std::string(Trim(line.substr(equals + 1)));
    }
  }
  return found;
}

absl::StatusOr<AwsCredentials> Complete(std::string key_id, std::string secret, std::string token,
                                        std::string_view origin, std::string_view key_name,
                                        std::string_view secret_name) {
  if (key_id.empty() != secret.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {} is set but {} is not", origin, key_id.empty() ? secret_name : key_name,
                    key_id.empty() ? key_name : secret_name));
  }
  AwsCredentials credentials;
  credentials.access_key_id = std::move(key_id);
  credentials.secret_access_key = std::move(secret);
  credentials.session_token = std::move(token);
  return credentials;
}

std::string Lookup(const std::map<std::string, std::string>& values, const std::string& key) {
  const auto it = values.find(key);
  return it == values.end() ? std::string() : it->second;
}

}  // namespace

absl::StatusOr<AwsCredentials> ResolveAwsCredentials(const std::map<std::string, std::string>& env,
                                                     std::string_view credentials_file_text,
                                                     std::string_view profile) {
  std::string env_key = Lookup(env, "AWS_ACCESS_KEY_ID");
  std::string env_secret = Lookup(env, "AWS_SECRET_ACCESS_KEY");
  if (!env_key.empty() || !env_secret.empty()) {
    return Complete(std::move(env_key), std::move(env_secret), Lookup(env, "AWS_SESSION_TOKEN"),
                    "environment", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY");
  }

  std::string profile_name(profile);
  bool explicit_profile = !profile_name.empty();
  if (profile_name.empty()) {
    profile_name = Lookup(env, "AWS_PROFILE");
    explicit_profile = !profile_name.empty();
  }
  if (profile_name.empty()) profile_name = "default";

  auto section = FindProfile(credentials_file_text, profile_name);
  if (!section.ok()) return section.status();
  if (!section->has_value()) {
    if (explicit_profile) {
      return absl::InvalidArgumentError(
          fmt::format("AWS profile '{}' not found in the credentials file", profile_name));
    }
    return AwsCredentials{};
  }
  const Section& values = **section;
  return Complete(Lookup(values, "aws_access_key_id"), Lookup(values, "aws_secret_access_key"),
                  Lookup(values, "aws_session_token"),
                  fmt::format("AWS credentials file, profile '{}'", profile_name),
                  "aws_access_key_id", "aws_secret_access_key");
}

}  // namespace modelcache
