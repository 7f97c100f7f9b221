#include "agent/source/http_source.h"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "absl/status/status.h"
#include "agent/source/blocking_http.h"
#include "agent/source/chunk_fetcher.h"
#include "common/names.h"
#include "common/percent_encoding.h"
#include "common/status_macros.h"
#include "modelcache/v1/manifest.pb.h"

namespace modelcache {
namespace {

constexpr std::string_view kListingName = "modelcache.json";

// Lowercase hex of a 64-digit SHA-256 written in either case; nullopt otherwise.
std::optional<std::string> NormalizeSha256(std::string_view text) {
  if (text.size() != 64) return std::nullopt;
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  return out;
}

std::optional<uint64_t> ParseUint(std::string_view text) {
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// The URL without its query string or fragment.
std::string_view UrlWithoutQuery(std::string_view url) {
  return url.substr(0, std::min(url.find_first_of("?#"), url.size()));
}

class HttpSource final : public Source {
 public:
  HttpSource(std::string url, const SourceOptions& options)
      : url_(std::move(url)),
        timeout_(options.request_timeout),
        budget_(options.listing_budget),
        network_(options.network) {}

  absl::StatusOr<std::vector<SourceFile>> List() override {
    // Every answer read while listing is charged to the agent's listing budget.
    std::unique_ptr<ListingBudget::Listing> listing;
    if (budget_ != nullptr) {
      ASSIGN_OR_RETURN(listing, budget_->Enter(url_));
    }
    listing_ = listing.get();
    absl::StatusOr<std::vector<SourceFile>> files = ListFiles();
    listing_ = nullptr;
    return files;
  }

  bool IsLocal() const override { return false; }
  HttpAuth Auth() const override { return {}; }
  std::unique_ptr<ChunkFetcher> MakeChunkFetcher(EventLoop& loop, const FillSettings& settings) const override {
    return MakeHttpChunkFetcher(loop, {}, settings, network_);
  }

 private:
  absl::StatusOr<std::vector<SourceFile>> ListFiles() {
    if (UrlWithoutQuery(url_).ends_with('/')) return ListDirectory();
    ASSIGN_OR_RETURN(SourceFile file, ListSingleFile());
    return std::vector<SourceFile>{std::move(file)};
  }

  absl::StatusOr<HttpResponse> Perform(std::string method, const std::string& url) const {
    HttpRequest request;
    request.method = std::move(method);
    request.url = url;
    request.timeout = timeout_;
    request.listing = listing_;
    request.network = network_;
    return PerformHttpRequest(request);
  }

  absl::StatusOr<std::vector<SourceFile>> ListDirectory() {
    // A query (an access token, say) applies to the listing and to every file.
    const std::string_view base = UrlWithoutQuery(url_);
    const std::string query(std::string_view(url_).substr(base.size()));
    const std::string listing_url = std::string(base) + std::string(kListingName) + query;
    ASSIGN_OR_RETURN(const HttpResponse response, Perform("GET", listing_url));
    RETURN_IF_ERROR(HttpStatusToStatus(response.status_code, "GET", listing_url));
    auto files = ParseHttpDirectoryListing(response.body, base);
    if (!files.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("{}: {}", listing_url, std::string(files.status().message())));
    }
    for (SourceFile& file : *files) file.location += query;
    // Size is required in the listing, but proto3 cannot tell a missing size from 0: ask
    // the server about the (rare) files listed as empty.
    for (SourceFile& file : *files) {
      if (file.size != 0) continue;
      ASSIGN_OR_RETURN(const RemoteFileInfo info, Describe(file.location));
      file.size = info.size;
      file.etag = info.etag;
    }
    return files;
  }

  absl::StatusOr<SourceFile> ListSingleFile() {
    const std::string_view without_query = UrlWithoutQuery(url_);
    SourceFile file;
    file.path = PercentDecode(without_query.substr(without_query.rfind('/') + 1));
    if (absl::Status valid = ValidateRelativeFilePath(file.path); !valid.ok()) {
      return absl::InvalidArgumentError(fmt::format("{}: {}", url_, std::string(valid.message())));
    }
    file.location = url_;
    ASSIGN_OR_RETURN(const RemoteFileInfo info, Describe(url_));
    file.size = info.size;
    file.etag = info.etag;
    ASSIGN_OR_RETURN(file.expected_sha256, FetchSidecarSha256());
    return file;
  }

  struct RemoteFileInfo {
    uint64_t size = 0;
    std::string etag;
  };

  // Size and ETag from a HEAD; servers that refuse HEAD or omit Content-Length on it are
  // asked for the first byte instead, whose Content-Range states the total.
  absl::StatusOr<RemoteFileInfo> Describe(const std::string& url) const {
    ASSIGN_OR_RETURN(const HttpResponse head, Perform("HEAD", url));
    // Some servers (and presigned URLs) refuse HEAD but serve ranges.
    const bool head_refused = head.status_code == 405 || head.status_code == 501;
    if (!head_refused) RETURN_IF_ERROR(HttpStatusToStatus(head.status_code, "HEAD", url));
    RemoteFileInfo info;
    info.etag = head.Header("ETag").value_or("");
    if (auto length = head.Header("Content-Length"); length && !head_refused) {
      if (auto size = ParseUint(*length)) {
        info.size = *size;
        return info;
      }
      return absl::UnavailableError(fmt::format("HEAD {}: bad Content-Length '{}'", url, *length));
    }
    HttpRequest request;
    request.url = url;
    request.timeout = timeout_;
    request.network = network_;
    request.range = HttpRange{0, 0};
    request.listing = listing_;
    ASSIGN_OR_RETURN(const HttpResponse first_byte, PerformHttpRequest(request));
    RETURN_IF_ERROR(HttpStatusToStatus(first_byte.status_code, "GET", url));
    const std::string content_range = first_byte.Header("Content-Range").value_or("");
    const size_t slash = content_range.rfind('/');
    std::optional<uint64_t> total;
    if (first_byte.status_code == 206 && slash != std::string::npos) {
      total = ParseUint(std::string_view(content_range).substr(slash + 1));
    } else if (first_byte.status_code == 200) {
      total = first_byte.body.size();  // the server ignored Range and sent everything
    }
    if (!total) {
      return absl::UnavailableError(
          fmt::format("{}: size unknown (no Content-Length, Content-Range '{}')", url, content_range));
    }
    info.size = *total;
    if (info.etag.empty()) info.etag = first_byte.Header("ETag").value_or("");
    return info;
  }

  // The optional <url>.sha256 sidecar ("<hex>  <name>" as sha256sum writes it): "" when absent.
  absl::StatusOr<std::string> FetchSidecarSha256() const {
    const std::string_view without_query = UrlWithoutQuery(url_);
    const std::string sidecar_url = std::string(without_query) + ".sha256" +
                                    std::string(std::string_view(url_).substr(without_query.size()));
    ASSIGN_OR_RETURN(const HttpResponse response, Perform("GET", sidecar_url));
    if (response.status_code == 404) return std::string();
    RETURN_IF_ERROR(HttpStatusToStatus(response.status_code, "GET", sidecar_url));
    std::string_view body = response.body;
    const size_t start = std::min(body.find_first_not_of(" \t\r\n"), body.size());
    body.remove_prefix(start);
    const std::string_view token = body.substr(0, std::min(body.find_first_of(" \t\r\n"), body.size()));
    auto sha256 = NormalizeSha256(token);
    if (!sha256) {
      return absl::InvalidArgumentError(
          fmt::format("{}: not a SHA-256 sidecar (first token '{}')", sidecar_url, token.substr(0, 80)));
    }
    return *sha256;
  }

  std::string url_;
  std::chrono::milliseconds timeout_;
  ListingBudget* budget_;                       // null: none
  ListingBudget::Listing* listing_ = nullptr;   // while List() runs
  NetworkPolicy network_;
};

}  // namespace

std::unique_ptr<Source> MakeHttpSource(std::string url, const SourceOptions& options) {
  return std::make_unique<HttpSource>(std::move(url), options);
}

absl::StatusOr<std::vector<SourceFile>> ParseHttpDirectoryListing(std::string_view json,
                                                                  std::string_view base_url) {
  v1::HttpDirectoryListing listing;
  google::protobuf::util::JsonParseOptions parse_options;
  parse_options.ignore_unknown_fields = true;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &listing, parse_options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(fmt::format("malformed {}: {}", kListingName, parsed.ToString()));
  }
  std::vector<SourceFile> files;
  std::set<std::string> seen;
  for (const v1::ManifestFile& entry : listing.files()) {
    if (absl::Status valid = ValidateRelativeFilePath(entry.path()); !valid.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("{} lists a bad path: {}", kListingName, std::string(valid.message())));
    }
    if (!seen.insert(entry.path()).second) {
      return absl::InvalidArgumentError(fmt::format("{} lists '{}' twice", kListingName, entry.path()));
    }
    SourceFile file;
    file.path = entry.path();
    file.size = entry.size();
    file.location = std::string(base_url) + PercentEncode(entry.path(), /*keep_slash=*/true);
    if (!entry.sha256().empty()) {
      auto sha256 = NormalizeSha256(entry.sha256());
      if (!sha256) {
        return absl::InvalidArgumentError(fmt::format("{}: file '{}' has a bad sha256 '{}'",
                                                      kListingName, entry.path(), entry.sha256()));
      }
      file.expected_sha256 = *sha256;
    }
    files.push_back(std::move(file));
  }
  return files;
}

}  // namespace modelcache
