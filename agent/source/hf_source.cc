#include "agent/source/hf_source.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "agent/source/blocking_http.h"
#include "agent/source/polite_http.h"
#include "agent/source/resolving_chunk_fetcher.h"
#include "common/names.h"
#include "common/status_macros.h"
#include "modelcache/v1/source_formats.pb.h"
#include "common/concat.h"

namespace modelcache {
namespace {

constexpr int kMaxRedirects = 5;
constexpr int kMaxTreePages = 10'000;

bool IsHex(std::string_view text, size_t length) {
  return text.size() == length && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// "scheme://host[:port]" of an absolute URL; "" for anything else.
std::string Origin(std::string_view url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return "";
  const size_t path = url.find_first_of("/?#", scheme_end + 3);
  return absl::AsciiStrToLower(std::string(url.substr(0, path)));
}

// A Location header made absolute against the URL it answered.
std::string AbsoluteLocation(std::string_view base, std::string_view location) {
  if (location.find("://") != std::string_view::npos) return std::string(location);
  if (location.starts_with("//")) return Concat(base.substr(0, base.find("://") + 1), location);
  if (location.starts_with('/')) return Concat(Origin(base), location);
  const std::string_view directory = base.substr(0, base.rfind('/') + 1);
  return Concat(directory, location);
}

// The URL of `rel="next"` in a Link header ("<url>; rel=\"next\", <url2>; rel=\"last\""); ""
// when there is none.
std::string NextLink(std::string_view header) {
  size_t open = header.find('<');
  while (open != std::string_view::npos) {
    const size_t close = header.find('>', open);
    if (close == std::string_view::npos) return "";
    const size_t following = header.find('<', close);
    const std::string_view params = header.substr(close + 1, following == std::string_view::npos
                                                                 ? std::string_view::npos
                                                                 : following - close - 1);
    if (params.find("rel=\"next\"") != std::string_view::npos || params.find("rel=next") != std::string_view::npos) {
      return std::string(header.substr(open + 1, close - open - 1));
    }
    open = following;
  }
  return "";
}

template <typename Message>
absl::Status ParseJson(std::string_view json, Message* message, std::string_view what) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), message, options);
  if (!parsed.ok()) return absl::UnavailableError(Concat(what, ": unreadable answer (", parsed.ToString(), ")"));
  return absl::OkStatus();
}

// Everything the source and its resolver share: the blocking requests to the Hub.
class HubClient {
 public:
  HubClient(HfUri uri, const SourceOptions& options)
      : uri_(std::move(uri)),
        display_(FormatHfUri(uri_)),
        endpoint_(options.hf_endpoint.empty() ? std::string(kDefaultHfEndpoint) : options.hf_endpoint),
        token_(options.hf_token),
        timeout_(options.request_timeout),
        network_(options.network) {
    while (endpoint_.ends_with('/')) endpoint_.pop_back();
  }

  const HfUri& uri() const { return uri_; }
  const std::string& display() const { return display_; }
  const std::string& endpoint() const { return endpoint_; }

  HttpAuth TokenAuth() const {
    HttpAuth auth;
    if (!token_.empty()) auth.headers.push_back(Concat("Authorization: Bearer ", token_));
    return auth;
  }

  // A request to the Hub itself (the token goes with it).
  absl::StatusOr<HttpResponse> Get(const std::string& url, std::string method = "GET") const {
    HttpRequest request;
    request.method = std::move(method);
    request.url = url;
    request.timeout = timeout_;
    request.follow_redirects = false;
    request.network = network_;
    request.headers.push_back("Accept: application/json");
    if (Origin(url) == Origin(endpoint_)) request.auth = TokenAuth();
    return PerformPolitely(request);
  }

  // A non-2xx answer of the Hub as a status that says what to do.
  absl::Status HubError(const HttpResponse& response, std::string_view method, std::string_view url) const {
    const std::string detail = response.Header("X-Error-Message").value_or("");
    const std::string where = Concat(display_, ": ", method, " ", url, ": HTTP ", response.status_code,
                                           detail.empty() ? "" : Concat(" (", detail, ")"));
    if (response.status_code == 401 || response.status_code == 403) {
      if (token_.empty()) {
        return absl::PermissionDeniedError(Concat(
            where, ": the repository ", uri_.repo_id,
            " is gated or private (or does not exist); set a Hugging Face token: hf.tokenFile in "
            "the agent config, or HF_TOKEN"));
      }
      return absl::PermissionDeniedError(Concat(
          where, ": the token was refused for ", uri_.repo_id,
          " (a gated repository needs its conditions accepted by the token's account on the Hub)"));
    }
    if (response.status_code == 404) return absl::NotFoundError(where);
    return HttpStatusToStatus(response.status_code, method, url, detail).code() == absl::StatusCode::kUnavailable
               ? absl::UnavailableError(where)
               : absl::InternalError(where);
  }

 private:
  HfUri uri_;
  std::string display_;
  std::string endpoint_;
  std::string token_;
  std::chrono::milliseconds timeout_;
  NetworkPolicy network_;
};

class HubResolver final : public TargetResolver {
 public:
  explicit HubResolver(std::shared_ptr<const HubClient> hub) : hub_(std::move(hub)) {}

  absl::StatusOr<FetchTarget> Resolve(const SourceFile& file, const FetchTarget* /*refused*/) override {
    // Always asks the Hub again: a refused target was a signed URL that expired.
    std::string url = file.location;
    for (int hop = 0; hop <= kMaxRedirects; ++hop) {
      ASSIGN_OR_RETURN(const HttpResponse response, hub_->Get(url, "HEAD"));
      if (response.status_code >= 200 && response.status_code < 300) {
        return FetchTarget{url, hub_->TokenAuth()};  // the Hub serves the file itself
      }
      if (response.status_code >= 300 && response.status_code < 400) {
        const std::optional<std::string> location = response.Header("Location");
        if (!location || location->empty()) {
          return absl::UnavailableError(Concat(hub_->display(), ": file ", file.path, ": HEAD ", url,
                                                     ": HTTP ", response.status_code, " without Location"));
        }
        const std::string next = AbsoluteLocation(url, *location);
        // Another origin is the storage host: its URL is signed, and it never sees the token.
        if (Origin(next) != Origin(hub_->endpoint())) return FetchTarget{next, HttpAuth{}};
        url = next;
        continue;
      }
      return hub_->HubError(response, "HEAD", url);
    }
    return absl::UnavailableError(
        Concat(hub_->display(), ": file ", file.path, ": more than ", kMaxRedirects, " redirects on the Hub"));
  }

 private:
  std::shared_ptr<const HubClient> hub_;
};

class HfSource final : public Source {
 public:
  HfSource(HfUri uri, const SourceOptions& options)
      : hub_(std::make_shared<HubClient>(std::move(uri), options)),
        resolver_(std::make_shared<HubResolver>(hub_)),
        network_(options.network) {}

  absl::StatusOr<std::vector<SourceFile>> List() override {
    const HfUri& uri = hub_->uri();
    const std::string revision_url = Concat(hub_->endpoint(), "/api/", uri.ApiRepoPath(), "/revision/",
                                                  PercentEncode(uri.revision, /*keep_slash=*/false));
    ASSIGN_OR_RETURN(const HttpResponse answer, hub_->Get(revision_url));
    if (answer.status_code != 200) return hub_->HubError(answer, "GET", revision_url);
    v1::HfRevisionInfo info;
    RETURN_IF_ERROR(ParseJson(answer.body, &info, Concat(hub_->display(), ": GET ", revision_url)));
    const std::string commit = absl::AsciiStrToLower(info.sha());
    if (!IsHex(commit, 40)) {
      return absl::UnavailableError(Concat(hub_->display(), ": GET ", revision_url,
                                                 ": no commit id in the answer (sha \"", info.sha(), "\")"));
    }

    std::string url = Concat(hub_->endpoint(), "/api/", uri.ApiRepoPath(), "/tree/", commit,
                                   uri.subfolder.empty() ? "" : "/", PercentEncode(uri.subfolder, true),
                                   "?recursive=true&expand=false");
    std::vector<SourceFile> files;
    size_t listed = 0;
    for (int page = 0; !url.empty(); ++page) {
      if (page == kMaxTreePages) {
        return absl::UnavailableError(Concat(hub_->display(), ": more than ", kMaxTreePages, " tree pages"));
      }
      ASSIGN_OR_RETURN(const HttpResponse response, hub_->Get(url));
      if (response.status_code != 200) return hub_->HubError(response, "GET", url);
      v1::HfTreePage tree;
      RETURN_IF_ERROR(ParseJson(Concat("{\"entries\":", response.body, "}"), &tree,
                                Concat(hub_->display(), ": GET ", url)));
      for (const v1::HfTreeEntry& entry : tree.entries()) {
        if (entry.type() != "file") continue;
        ++listed;
        ASSIGN_OR_RETURN(std::optional<SourceFile> file, ToSourceFile(entry, commit));
        if (file) files.push_back(*std::move(file));
      }
      const std::string next = NextLink(response.Header("Link").value_or(""));
      // The token goes with every page: a next page elsewhere is not followed.
      if (!next.empty() && Origin(next) != Origin(hub_->endpoint())) {
        return absl::UnavailableError(Concat(hub_->display(), ": GET ", url,
                                                   ": the next page is on another host: ", next));
      }
      url = next;
    }
    if (files.empty()) {
      return absl::NotFoundError(Concat(
          hub_->display(), ": no file to fill at commit ", commit, " (", listed, " listed",
          uri.allow.empty() && uri.ignore.empty() ? "" : ", none selected by allow/ignore", ")"));
    }
    resolved_.revision = commit;
    return files;
  }

  bool IsLocal() const override { return false; }
  HttpAuth Auth() const override { return {}; }
  ResolvedRevision Resolved() const override { return resolved_; }

  std::unique_ptr<ChunkFetcher> MakeChunkFetcher(EventLoop& loop, const FillSettings& settings) const override {
    return MakeResolvingChunkFetcher(loop, settings, network_, resolver_);
  }

 private:
  // The file of a tree entry, or nullopt when allow/ignore leave it out.
  absl::StatusOr<std::optional<SourceFile>> ToSourceFile(const v1::HfTreeEntry& entry, const std::string& commit) const {
    const HfUri& uri = hub_->uri();
    std::string relative = entry.path();
    if (!uri.subfolder.empty()) {
      if (!relative.starts_with(uri.subfolder + "/")) {
        return absl::UnavailableError(Concat(hub_->display(), ": the tree of ", uri.subfolder,
                                                   " lists ", entry.path(), ", which is not below it"));
      }
      relative.erase(0, uri.subfolder.size() + 1);
    }
    if (absl::Status valid = ValidateRelativeFilePath(relative); !valid.ok()) {
      return absl::InvalidArgumentError(Concat(hub_->display(), ": ", valid.message()));
    }
    if (!uri.Selects(relative)) return std::nullopt;
    if (entry.size() < 0) {
      return absl::UnavailableError(Concat(hub_->display(), ": file ", entry.path(), ": negative size"));
    }
    SourceFile file;
    file.path = relative;
    file.size = static_cast<uint64_t>(entry.size());
    file.location = Concat(hub_->endpoint(), "/", uri.ResolveRepoPath(), "/resolve/", commit, "/",
                                 PercentEncode(entry.path(), /*keep_slash=*/true));
    if (entry.has_lfs()) {
      const std::string sha256 = absl::AsciiStrToLower(entry.lfs().oid());
      if (!IsHex(sha256, 64)) {
        return absl::UnavailableError(Concat(hub_->display(), ": file ", entry.path(),
                                                   ": LFS oid is not a SHA-256: ", entry.lfs().oid()));
      }
      file.expected_sha256 = sha256;
      file.etag = sha256;
    } else {
      file.etag = entry.oid();  // the git blob id: the file's identity for a resume
    }
    return file;
  }

  std::shared_ptr<HubClient> hub_;
  std::shared_ptr<HubResolver> resolver_;
  NetworkPolicy network_;
  ResolvedRevision resolved_;
};

}  // namespace

std::unique_ptr<Source> MakeHfSource(HfUri uri, const SourceOptions& options) {
  return std::make_unique<HfSource>(std::move(uri), options);
}

}  // namespace modelcache
