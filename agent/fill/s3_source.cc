#include "agent/fill/s3_source.h"

#include <fmt/format.h>

#include <algorithm>

#include "absl/status/status.h"
#include "agent/fill/blocking_http.h"
#include "agent/fill/chunk_fetcher.h"
#include "agent/fill/s3_list_parser.h"
#include "common/names.h"
#include "common/status_macros.h"

namespace modelcache {
namespace {

// "http://127.0.0.1:4568/" -> {"http://", "127.0.0.1:4568"}.
std::pair<std::string, std::string> SplitEndpoint(std::string_view endpoint) {
  while (endpoint.ends_with('/')) endpoint.remove_suffix(1);
  const size_t scheme_end = endpoint.find("://");
  if (scheme_end == std::string_view::npos) return {"https://", std::string(endpoint)};
  return {std::string(endpoint.substr(0, scheme_end + 3)), std::string(endpoint.substr(scheme_end + 3))};
}

// The bucket's root URL, without a trailing '/'.
std::string BucketUrl(const SourceOptions& options, std::string_view bucket) {
  auto [scheme, host] = options.s3_endpoint.empty()
                            ? std::pair<std::string, std::string>("https://", fmt::format("s3.{}.amazonaws.com", options.s3_region))
                            : SplitEndpoint(options.s3_endpoint);
  // A dotted bucket name in the host name would not match S3's wildcard TLS certificate.
  const bool path_style = options.s3_path_style || bucket.find('.') != std::string_view::npos;
  if (path_style) return fmt::format("{}{}/{}", scheme, host, bucket);
  return fmt::format("{}{}.{}", scheme, bucket, host);
}

class S3Source final : public Source {
 public:
  S3Source(std::string bucket, std::string prefix, const SourceOptions& options)
      : bucket_(std::move(bucket)), prefix_(std::move(prefix)), options_(options) {
    if (!options_.aws.Anonymous()) {
      auth_.aws_sigv4 = fmt::format("aws:amz:{}:s3", options_.s3_region);
      auth_.user_password = options_.aws.access_key_id + ":" + options_.aws.secret_access_key;
      // curl 7.88 signs the request but does not send the payload hash S3 requires.
      auth_.headers.push_back("x-amz-content-sha256: UNSIGNED-PAYLOAD");
      if (!options_.aws.session_token.empty()) {
        auth_.headers.push_back("x-amz-security-token: " + options_.aws.session_token);
      }
    }
  }

  absl::StatusOr<std::vector<SourceFile>> List() override {
    const bool directory_prefix = prefix_.empty() || prefix_.ends_with('/');
    const std::string directory = directory_prefix ? prefix_ : prefix_ + "/";
    ASSIGN_OR_RETURN(std::vector<SourceFile> files, ListDirectory(directory));
    if (!files.empty()) return files;
    if (!directory_prefix) {
      // No "<prefix>/..." objects: maybe the prefix names one object. It would be the first
      // key listed under itself, since every other key with that prefix is longer.
      ASSIGN_OR_RETURN(const S3ListPage page, ListPage(prefix_, "", 1));
      if (!page.objects.empty() && page.objects.front().key == prefix_) {
        const S3Object& object = page.objects.front();
        ASSIGN_OR_RETURN(SourceFile file, ToSourceFile(object, prefix_.substr(prefix_.rfind('/') + 1)));
        files.push_back(std::move(file));
        return files;
      }
    }
    return absl::NotFoundError(fmt::format("no objects under s3://{}/{}", bucket_, prefix_));
  }

  bool IsLocal() const override { return false; }
  HttpAuth Auth() const override { return auth_; }
  std::unique_ptr<ChunkFetcher> MakeChunkFetcher(EventLoop& loop, const FillSettings& settings) const override {
    return MakeHttpChunkFetcher(loop, auth_, settings, options_.network);
  }

 private:
  absl::StatusOr<std::vector<SourceFile>> ListDirectory(const std::string& directory) {
    std::vector<SourceFile> files;
    std::string continuation_token;
    do {
      // max-keys=0 would make S3 answer empty pages forever.
      const uint32_t max_keys = options_.s3_max_keys == 0 ? 1000 : options_.s3_max_keys;
      ASSIGN_OR_RETURN(S3ListPage page, ListPage(directory, continuation_token, max_keys));
      for (const S3Object& object : page.objects) {
        if (object.key.ends_with('/')) continue;  // a "folder" marker, not data
        if (!object.key.starts_with(directory)) {
          return absl::UnavailableError(fmt::format("s3://{}/{}: listing returned key '{}' outside the prefix",
                                                    bucket_, directory, object.key));
        }
        ASSIGN_OR_RETURN(SourceFile file, ToSourceFile(object, object.key.substr(directory.size())));
        files.push_back(std::move(file));
      }
      continuation_token = page.is_truncated ? page.next_continuation_token : "";
    } while (!continuation_token.empty());
    std::sort(files.begin(), files.end(),
              [](const SourceFile& a, const SourceFile& b) { return a.path < b.path; });
    return files;
  }

  absl::StatusOr<SourceFile> ToSourceFile(const S3Object& object, std::string path) const {
    if (absl::Status valid = ValidateRelativeFilePath(path); !valid.ok()) {
      return absl::InvalidArgumentError(fmt::format("s3://{}/{}: {}", bucket_, object.key,
                                                    std::string(valid.message())));
    }
    SourceFile file;
    file.path = std::move(path);
    file.size = object.size;
    file.location = S3ObjectUrl(options_, bucket_, object.key);
    file.etag = object.etag;
    if (object.has_sha256_checksum) {
      ASSIGN_OR_RETURN(file.expected_sha256, UploadedSha256(object, file.location, file.version_id));
    }
    return file;
  }

  // The SHA-256 the object was uploaded with (HEAD with checksum mode), so the fill checks
  // the bytes against it; empty when S3 only has a composite checksum of multipart parts.
  // `version_id` gets the object's x-amz-version-id (versioned buckets), for the manifest.
  absl::StatusOr<std::string> UploadedSha256(const S3Object& object, const std::string& url,
                                             std::string& version_id) const {
    HttpRequest request;
    request.method = "HEAD";
    request.url = url;
    request.headers.push_back("x-amz-checksum-mode: ENABLED");
    request.auth = auth_;
    request.timeout = options_.request_timeout;
    request.follow_redirects = false;
    request.network = options_.network;
    ASSIGN_OR_RETURN(const HttpResponse response, PerformHttpRequest(request));
    RETURN_IF_ERROR(HttpStatusToStatus(response.status_code, "HEAD", url));
    if (response.Header("ETag").value_or(object.etag) != object.etag) {
      // The checksum would be another version's; the next listing sees one version.
      return absl::UnavailableError(fmt::format("HEAD {}: object changed while listing (ETag {} in the listing, {} now)",
                                                url, object.etag, *response.Header("ETag")));
    }
    version_id = response.Header("x-amz-version-id").value_or("");
    std::optional<std::string> value = response.Header("x-amz-checksum-sha256");
    if (!value) return std::string();
    return WholeObjectSha256Hex(*value, response.Header("x-amz-checksum-type").value_or("")).value_or("");
  }

  absl::StatusOr<S3ListPage> ListPage(std::string_view prefix, std::string_view continuation_token,
                                      uint32_t max_keys) const {
    // Parameters in sorted order and RFC 3986-encoded: that is SigV4's canonical query
    // string, so the signature curl computes over the URL as written is the one S3 expects.
    std::string query;
    if (!continuation_token.empty()) {
      query += fmt::format("continuation-token={}&", PercentEncode(continuation_token, false));
    }
    query += fmt::format("list-type=2&max-keys={}&prefix={}", max_keys, PercentEncode(prefix, false));
    HttpRequest request;
    request.url = fmt::format("{}/?{}", BucketUrl(options_, bucket_), query);
    request.auth = auth_;
    request.timeout = options_.request_timeout;
    request.follow_redirects = false;  // a redirect means the wrong region; say so instead
    request.network = options_.network;
    ASSIGN_OR_RETURN(const HttpResponse response, PerformHttpRequest(request));
    if (response.status_code < 200 || response.status_code >= 300) {
      std::string detail;
      if (auto error = ParseS3Error(response.body)) {
        detail = error->message.empty() ? error->code : fmt::format("{}: {}", error->code, error->message);
      }
      if (auto region = response.Header("x-amz-bucket-region")) {
        detail += fmt::format("{}bucket is in region {}", detail.empty() ? "" : "; ", *region);
      }
      return HttpStatusToStatus(response.status_code, "GET", request.url, detail);
    }
    auto page = ParseListObjectsV2(response.body);
    if (!page.ok()) {
      return absl::UnavailableError(fmt::format("GET {}: {}", request.url, std::string(page.status().message())));
    }
    return page;
  }

  std::string bucket_;
  std::string prefix_;
  SourceOptions options_;
  HttpAuth auth_;
};

}  // namespace

std::string S3ObjectUrl(const SourceOptions& options, std::string_view bucket, std::string_view key) {
  return fmt::format("{}/{}", BucketUrl(options, bucket), PercentEncode(key, /*keep_slash=*/true));
}

std::unique_ptr<Source> MakeS3Source(std::string bucket, std::string prefix, const SourceOptions& options) {
  return std::make_unique<S3Source>(std::move(bucket), std::move(prefix), options);
}

}  // namespace modelcache
