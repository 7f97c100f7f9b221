#pragma once
// A model source: lists the model's files and says how to fetch byte ranges of them.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/source/address_policy.h"

namespace modelcache {

class ListingBudget;
class ChunkFetcher;
class EventLoop;
struct FillSettings;

struct SourceFile {
  std::string path;             // relative path inside the model, already validated
  uint64_t size = 0;            // bytes, from the listing (Content-Length, S3 Size, stat)
  std::string location;         // URL for http(s)/s3 range GETs; absolute path for file://
  std::string expected_sha256;  // lowercase hex when the source states it, else empty
  std::string etag;             // identity for change detection and resume; may be empty.
                                // http(s)/s3: as the ETag header carries it (quotes included)
  std::string version_id;       // s3 on a versioned bucket, when the source read it; else empty
};

// What a source resolved the whole model to (List() sets it), recorded in the manifest beside
// each file's identity. Empty for s3, http(s) and file sources.
struct ResolvedRevision {
  std::string revision;  // a commit a branch or tag resolved to (Hugging Face)
  std::string digest;    // a content digest a tag resolved to (an OCI manifest's "sha256:...")
};

// What a range GET needs besides the URL and the Range header.
struct HttpAuth {
  std::string aws_sigv4;       // CURLOPT_AWS_SIGV4 value ("aws:amz:us-east-1:s3"); empty: none
  std::string user_password;   // "ACCESS_KEY_ID:SECRET" for SigV4
  std::vector<std::string> headers;  // "x-amz-content-sha256: UNSIGNED-PAYLOAD", session token
};

struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty unless temporary credentials
  bool Anonymous() const { return access_key_id.empty(); }
};

struct SourceOptions {
  std::string s3_endpoint;           // "http://127.0.0.1:4568"; empty: https://<bucket>.s3.<region>.amazonaws.com
  std::string s3_region = "us-east-1";
  bool s3_path_style = false;        // http://endpoint/bucket/key instead of bucket.endpoint/key
  AwsCredentials aws;                // filled by the config loader (env or credentials file)
  std::chrono::seconds request_timeout{60};  // for listing requests
  uint32_t s3_max_keys = 1000;       // ListObjectsV2 page size (S3's maximum; tests use less)
  // Borrowed, outlives the sources. The agent's memory for listings (listing_budget.h): each
  // http(s) and s3 List() takes a slot and charges what it receives. Null: no shared budget
  // (each response is still capped at 256 MiB), as in modelcachectl's local fallback.
  ListingBudget* listing_budget = nullptr;
  // Where file:// sources may be read (file_tree.h): only beneath these folders (the agent's
  // fileSources; none by default, so every file:// source is refused). nullopt: anywhere this
  // process may read, for modelcachectl's local fill, which runs with its caller's rights.
  std::optional<std::vector<std::filesystem::path>> file_roots{std::in_place};
  // Which addresses http(s) and s3 requests may connect to (address_policy.h); by default
  // not loopback, link-local or cloud metadata.
  NetworkPolicy network;
  // hf:// (agent/source/hf_source.h): the Hub or a mirror ("" is https://huggingface.co), and
  // the token sent to it (never to the storage hosts it redirects to); "" for none.
  std::string hf_endpoint;
  std::string hf_token;
  // oci:// (agent/source/oci_source.h): registries reached over plain HTTP besides those on
  // this host ("registry.lan:5000"), and a docker config.json's contents for credentials.
  std::vector<std::string> oci_insecure_registries;
  std::string docker_config_json;
};

// A file a source unpacked from an archive (UnpackArchives), with what the fill records of it.
struct UnpackedFile {
  std::string path;  // relative to the model folder, validated
  uint64_t size = 0;
  std::string sha256;  // lowercase hex of the bytes written
};

// A tar archive that the fill streams and unpacks into the model instead of copying it (an
// OCI image layer): its files are known only once it is read. Its digest is checked at its end.
struct SourceArchive {
  std::string name;  // "layer sha256:ab12..", for messages
  uint64_t size = 0;  // bytes as fetched (compressed); counted in the fill's progress
};

// What UnpackArchives works with.
struct ArchiveJob {
  std::filesystem::path tree;  // the staging tree: archives unpack below it
  // Paths of the listed files (filled beside the archives): an archive may not write there.
  std::set<std::string> listed;
  uint64_t max_output_bytes = UINT64_MAX;  // a decompression bomb fails RESOURCE_EXHAUSTED
  std::chrono::seconds stall_timeout{30};  // a stream without a byte for this long is retried
  uint32_t max_attempts = 6;               // per archive, resuming where it broke
  std::function<void(uint64_t)> on_bytes;  // archive bytes read; any thread
  std::function<bool()> cancelled;         // polled; true ends it with CANCELLED
};

class Source {
 public:
  virtual ~Source() = default;
  // The model's files, each path validated (INVALID_ARGUMENT names a bad one). Blocking
  // network or disk I/O: call on a worker thread, never on the loop thread. Errors map
  // HTTP 404 -> NOT_FOUND, 401/403 -> PERMISSION_DENIED, other failures -> UNAVAILABLE,
  // and name the URL.
  virtual absl::StatusOr<std::vector<SourceFile>> List() = 0;
  // true for file:// (chunks are pread from `location`), false for range GETs over HTTP.
  virtual bool IsLocal() const = 0;
  // Authentication to add to each range GET (empty for plain http and file).
  virtual HttpAuth Auth() const = 0;
  // After a successful List(): what the model resolved to, for the manifest.
  virtual ResolvedRevision Resolved() const { return {}; }
  // The fetcher for this source's chunks, after List() succeeded: range GETs with Auth() under
  // the source's network policy, or reads through the same file resolution as the listing.
  // Loop thread.
  virtual std::unique_ptr<ChunkFetcher> MakeChunkFetcher(EventLoop& loop,
                                                         const FillSettings& settings) const = 0;
  // After a successful List(): archives to stream and unpack beside the listed files. Empty
  // for every source but oci:// image and tar layers.
  virtual std::vector<SourceArchive> Archives() const { return {}; }
  // Streams every archive of Archives() in order and unpacks it below job.tree; returns the
  // files they left. Blocking, on the thread pool. Errors name the archive (and the entry):
  // DATA_LOSS for a digest mismatch, INVALID_ARGUMENT for an entry no model may hold (a path
  // out, a device, a link out), UNAVAILABLE when the origin failed after the retries.
  virtual absl::StatusOr<std::vector<UnpackedFile>> UnpackArchives(const ArchiveJob& job) const;
};

// The source for a URI (see common/uri.h). INVALID_ARGUMENT for an unknown scheme.
// http(s): a URL ending in '/' is a directory whose files are listed by <url>modelcache.json
// (v1::HttpDirectoryListing as JSON); any other URL is a single file named after its last
// path part, with an optional <url>.sha256 sidecar. s3: every object under the prefix
// (ListObjectsV2, paginated), paths relative to the prefix. hf: a Hugging Face Hub repository
// (agent/source/hf_source.h). oci: an artifact or image in a registry (agent/source/oci_source.h).
absl::StatusOr<std::unique_ptr<Source>> MakeSource(std::string_view uri, const SourceOptions& options);

}  // namespace modelcache
