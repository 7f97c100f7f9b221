#include "agent/source/oci_source.h"

#include <utility>

#include "agent/source/oci_manifest.h"
#include "agent/source/registry_client.h"
#include "agent/source/resolving_chunk_fetcher.h"
#include "agent/source/tar_unpacker.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "common/concat.h"

namespace modelcache {
namespace {

constexpr int kMaxIndexDepth = 2;

std::string_view NodeArchitecture() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#else
  return "unknown";
#endif
}

std::string Sha256Of(std::string_view bytes) {
  Sha256 sha;
  sha.Update(std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()));
  return sha.FinishHex();
}

class BlobResolver final : public TargetResolver {
 public:
  explicit BlobResolver(std::shared_ptr<RegistryClient> client) : client_(std::move(client)) {}

  absl::StatusOr<FetchTarget> Resolve(const SourceFile& file, const FetchTarget* refused) override {
    ASSIGN_OR_RETURN(HttpAuth auth, client_->BlobAuth(/*refresh=*/refused != nullptr));
    return FetchTarget{file.location, std::move(auth)};
  }

 private:
  std::shared_ptr<RegistryClient> client_;
};

class OciSource final : public Source {
 public:
  OciSource(OciUri uri, const SourceOptions& options) : uri_(std::move(uri)), options_(options) {}

  absl::StatusOr<std::vector<SourceFile>> List() override {
    ASSIGN_OR_RETURN(std::unique_ptr<RegistryClient> made, RegistryClient::Create(uri_, options_));
    client_ = std::move(made);
    const std::string& display = client_->display();

    std::string reference = uri_.Reference();
    ASSIGN_OR_RETURN(v1::OciManifest manifest, FetchManifest(reference, /*top=*/true));
    for (int depth = 0; IsOciIndex(manifest, content_type_); ++depth) {
      if (depth == kMaxIndexDepth) {
        return absl::InvalidArgumentError(Concat(display, ": image indexes nested too deep"));
      }
      ASSIGN_OR_RETURN(v1::OciDescriptor entry,
                       PickIndexEntry(manifest, "linux", NodeArchitecture(), Concat(display, " (index)")));
      if (!IsSha256Digest(entry.digest())) {
        return absl::InvalidArgumentError(Concat(display, ": index entry digest ", entry.digest(),
                                                       " is not sha256"));
      }
      ASSIGN_OR_RETURN(manifest, FetchManifest(entry.digest(), /*top=*/false));
    }
    ASSIGN_OR_RETURN(OciLayerPlan plan, PlanOciLayers(manifest, display));

    std::vector<SourceFile> files;
    for (const OciLayerFile& layer : plan.files) {
      SourceFile file;
      file.path = layer.path;
      file.size = layer.size;
      file.location = client_->BlobUrl(layer.digest);
      file.expected_sha256 = layer.digest.substr(7);
      file.etag = layer.digest;  // the blob's identity, for a resume
      files.push_back(std::move(file));
    }
    archives_ = std::move(plan.archives);
    return files;
  }

  bool IsLocal() const override { return false; }
  HttpAuth Auth() const override { return {}; }
  ResolvedRevision Resolved() const override { return {"", digest_}; }

  std::unique_ptr<ChunkFetcher> MakeChunkFetcher(EventLoop& loop, const FillSettings& settings) const override {
    return MakeResolvingChunkFetcher(loop, settings, options_.network, std::make_shared<BlobResolver>(client_));
  }

  std::vector<SourceArchive> Archives() const override {
    std::vector<SourceArchive> out;
    for (const OciLayerArchive& archive : archives_) out.push_back({Concat("layer ", archive.digest), archive.size});
    return out;
  }

  absl::StatusOr<std::vector<UnpackedFile>> UnpackArchives(const ArchiveJob& job) const override {
    UnpackOptions options;
    options.reserved = job.listed;
    options.max_output_bytes = job.max_output_bytes;
    // One folder for every layer of one manifest (oci_manifest.h never mixes them).
    if (!archives_.empty()) options.folder = archives_.front().folder;
    TarUnpacker unpacker(job.tree, options);
    for (const OciLayerArchive& archive : archives_) {
      const std::string what = Concat(client_->display(), ": layer ", archive.digest);
      unpacker.StartArchive(archive.gzip, what);
      Sha256 sha;
      RETURN_IF_ERROR(client_->StreamBlob(
          archive.digest, archive.size,
          [&](std::span<const std::byte> data) -> absl::Status {
            sha.Update(data);
            if (job.on_bytes) job.on_bytes(data.size());
            return unpacker.Write(data);
          },
          job.cancelled ? job.cancelled : [] { return false; }, static_cast<int>(job.max_attempts),
          job.stall_timeout));
      const std::string got = Concat("sha256:", sha.FinishHex());
      if (got != archive.digest) {
        return absl::DataLossError(Concat(what, ": digest mismatch (got ", got, ")"));
      }
      RETURN_IF_ERROR(unpacker.FinishArchive());
    }
    return unpacker.Finish();
  }

 private:
  // A manifest by tag or digest, its digest checked against the reference when that is one.
  absl::StatusOr<v1::OciManifest> FetchManifest(const std::string& reference, bool top) {
    const std::string& display = client_->display();
    ASSIGN_OR_RETURN(RegistryClient::Manifest answer, client_->GetManifest(reference));
    const std::string digest = Concat("sha256:", Sha256Of(answer.body));
    if (IsSha256Digest(reference) && digest != reference) {
      return absl::DataLossError(Concat(display, ": manifest ", reference, ": digest mismatch (got ", digest, ")"));
    }
    if (top) digest_ = digest;
    content_type_ = answer.content_type;
    return ParseOciManifest(answer.body, Concat(display, ": manifest ", digest));
  }

  OciUri uri_;
  SourceOptions options_;
  std::shared_ptr<RegistryClient> client_;  // made by List()
  std::string digest_;                      // of the manifest the reference named
  std::string content_type_;                // of the last manifest answer
  std::vector<OciLayerArchive> archives_;
};

}  // namespace

std::unique_ptr<Source> MakeOciSource(OciUri uri, const SourceOptions& options) {
  return std::make_unique<OciSource>(std::move(uri), options);
}

}  // namespace modelcache
