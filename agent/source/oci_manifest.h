#pragma once
// What an OCI manifest says to fill, decided without I/O: which entry of an image index is the
// model, and which layers are files (filled with parallel ranges straight into place) or
// archives (streamed and unpacked, tar_unpacker.h).
//
//   ModelPack (CNCF model-spec): artifactType or config mediaType of the model manifest;
//     application/vnd.cncf.model.<kind>.v1.raw layers are files at their
//     org.cncf.model.filepath annotation, .tar and .tar+gzip layers are archives unpacked at
//     the model's root. (+zstd is refused: UNIMPLEMENTED.)
//   Artifacts pushed by ORAS: a layer titled by org.opencontainers.image.title is a file of
//     that name.
//   Images ("modelcars", as KServe runs them): tar / tar+gzip layers applied in order, and
//     the model is what they leave under /models.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "modelcache/v1/source_formats.pb.h"

namespace modelcache {

inline constexpr std::string_view kOciManifestMediaType = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndexMediaType = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kDockerManifestMediaType =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestListMediaType =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kModelPackArtifactType = "application/vnd.cncf.model.manifest.v1+json";
inline constexpr std::string_view kModelPackConfigMediaType = "application/vnd.cncf.model.config.v1+json";
inline constexpr std::string_view kModelPackFilePathAnnotation = "org.cncf.model.filepath";
inline constexpr std::string_view kTitleAnnotation = "org.opencontainers.image.title";
// The Accept header of manifest requests: every form this file understands.
inline constexpr std::string_view kManifestAccept =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

// The folder of a modelcar image that holds the model (KServe's convention).
inline constexpr std::string_view kModelcarFolder = "models";

// INVALID_ARGUMENT (naming `what`) for a body that is not a manifest or index JSON object.
absl::StatusOr<v1::OciManifest> ParseOciManifest(std::string_view json, std::string_view what);

// True when the document is an index (by its mediaType field, or the response's Content-Type
// when the field is absent, or by holding "manifests").
bool IsOciIndex(const v1::OciManifest& manifest, std::string_view content_type);

// The index entry to fill: the one whose artifactType is a ModelPack model; else, when there
// is none, the image for `os`/`architecture` (a multi-platform modelcar). INVALID_ARGUMENT
// naming `what` and the entries it saw when neither is there.
absl::StatusOr<v1::OciDescriptor> PickIndexEntry(const v1::OciManifest& index, std::string_view os,
                                                 std::string_view architecture, std::string_view what);

struct OciLayerFile {
  std::string path;    // validated relative path
  std::string digest;  // "sha256:<hex>"
  uint64_t size = 0;
};

struct OciLayerArchive {
  std::string digest;
  uint64_t size = 0;
  bool gzip = false;
  std::string folder;  // the archive folder that holds the model: "" or "models"
};

struct OciLayerPlan {
  std::string kind;  // "modelpack", "artifact" or "modelcar" (for messages and logs)
  std::vector<OciLayerFile> files;
  std::vector<OciLayerArchive> archives;  // in layer order
};

// INVALID_ARGUMENT naming `what` and the layer (index, digest, media type): a digest that is
// not sha256, a raw layer without a path or with a bad one, two layers at one path, a layer
// type it cannot place; UNIMPLEMENTED for zstd layers; NOT_FOUND for a manifest with no layer.
absl::StatusOr<OciLayerPlan> PlanOciLayers(const v1::OciManifest& manifest, std::string_view what);

}  // namespace modelcache
