#include "agent/source/oci_manifest.h"

#include <google/protobuf/util/json_util.h>

#include <set>

#include "absl/strings/str_join.h"
#include "common/names.h"
#include "common/oci_uri.h"
#include "common/concat.h"

namespace modelcache {
namespace {

bool IsModelPack(const v1::OciManifest& manifest) {
  return manifest.artifact_type() == kModelPackArtifactType ||
         manifest.config().media_type() == kModelPackConfigMediaType;
}

bool IsImageLayer(std::string_view media_type) {
  return media_type == "application/vnd.oci.image.layer.v1.tar" ||
         media_type == "application/vnd.oci.image.layer.v1.tar+gzip" ||
         media_type == "application/vnd.docker.image.rootfs.diff.tar.gzip" ||
         media_type == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
}

}  // namespace

absl::StatusOr<v1::OciManifest> ParseOciManifest(std::string_view json, std::string_view what) {
  v1::OciManifest manifest;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &manifest, options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(Concat(what, ": not an OCI manifest or index (",
                                                   parsed.ToString(), ")"));
  }
  if (manifest.schema_version() != 2) {
    return absl::InvalidArgumentError(
        Concat(what, ": schemaVersion ", manifest.schema_version(), " (want 2)"));
  }
  return manifest;
}

bool IsOciIndex(const v1::OciManifest& manifest, std::string_view content_type) {
  const std::string_view media_type =
      manifest.media_type().empty() ? content_type : std::string_view(manifest.media_type());
  if (media_type.starts_with(kOciIndexMediaType) || media_type.starts_with(kDockerManifestListMediaType)) {
    return true;
  }
  return manifest.manifests_size() > 0 && manifest.layers_size() == 0;
}

absl::StatusOr<v1::OciDescriptor> PickIndexEntry(const v1::OciManifest& index, std::string_view os,
                                                 std::string_view architecture, std::string_view what) {
  for (const v1::OciDescriptor& entry : index.manifests()) {
    if (entry.artifact_type() == kModelPackArtifactType) return entry;
  }
  std::vector<std::string> seen;
  for (const v1::OciDescriptor& entry : index.manifests()) {
    if (entry.platform().os() == os && entry.platform().architecture() == architecture) return entry;
    seen.push_back(entry.artifact_type().empty()
                       ? Concat(entry.platform().os(), "/", entry.platform().architecture())
                       : entry.artifact_type());
  }
  return absl::InvalidArgumentError(Concat(
      what, ": not a model artifact: the image index has no ModelPack manifest (artifactType ",
      kModelPackArtifactType, ") and no image for ", os, "/", architecture, " (it lists: ",
      seen.empty() ? "nothing" : absl::StrJoin(seen, ", "), ")"));
}

absl::StatusOr<OciLayerPlan> PlanOciLayers(const v1::OciManifest& manifest, std::string_view what) {
  if (manifest.layers_size() == 0) return absl::NotFoundError(Concat(what, ": the manifest has no layers"));
  OciLayerPlan plan;
  const bool modelpack = IsModelPack(manifest);
  plan.kind = modelpack ? "modelpack" : "modelcar";
  std::set<std::string> paths;
  for (int i = 0; i < manifest.layers_size(); ++i) {
    const v1::OciDescriptor& layer = manifest.layers(i);
    const std::string& media_type = layer.media_type();
    auto layer_error = [&](std::string_view why) {
      return absl::InvalidArgumentError(Concat(what, ": layer ", i, " (", layer.digest(), ", ",
                                                     media_type, "): ", why));
    };
    if (!IsSha256Digest(layer.digest())) return layer_error("digest is not sha256:<64 hex digits>");
    if (layer.size() < 0) return layer_error("negative size");
    if (!layer.urls().empty()) return layer_error("foreign layers (urls) are not fetched");
    const bool modelpack_layer = media_type.starts_with("application/vnd.cncf.model.");
    if (media_type.ends_with("+zstd")) {
      return absl::UnimplementedError(Concat(what, ": layer ", i, " (", layer.digest(), "): ",
                                                   media_type, ": zstd layers are not supported"));
    }
    if (modelpack_layer && media_type.ends_with(".raw")) {
      auto path = layer.annotations().find(std::string(kModelPackFilePathAnnotation));
      if (path == layer.annotations().end()) {
        path = layer.annotations().find(std::string(kTitleAnnotation));
      }
      if (path == layer.annotations().end() || path->second.empty()) {
        return layer_error(Concat("a raw layer needs its path in the ", kModelPackFilePathAnnotation,
                                        " annotation"));
      }
      std::string file_path = path->second;
      while (file_path.starts_with("./")) file_path.erase(0, 2);
      if (absl::Status valid = ValidateRelativeFilePath(file_path); !valid.ok()) return layer_error(std::string(valid.message()));
      if (!paths.insert(file_path).second) return layer_error(Concat("a second layer at ", file_path));
      plan.files.push_back({file_path, layer.digest(), static_cast<uint64_t>(layer.size())});
      continue;
    }
    if (modelpack_layer && (media_type.ends_with(".tar") || media_type.ends_with(".tar+gzip"))) {
      plan.archives.push_back({layer.digest(), static_cast<uint64_t>(layer.size()),
                               media_type.ends_with("+gzip"), ""});
      continue;
    }
    if (!modelpack && IsImageLayer(media_type)) {
      plan.archives.push_back({layer.digest(), static_cast<uint64_t>(layer.size()),
                               !media_type.ends_with(".tar"), std::string(kModelcarFolder)});
      continue;
    }
    // Anything else with a title is a file, as ORAS pushes them.
    auto title = layer.annotations().find(std::string(kTitleAnnotation));
    if (title != layer.annotations().end() && !title->second.empty()) {
      if (absl::Status valid = ValidateRelativeFilePath(title->second); !valid.ok()) return layer_error(std::string(valid.message()));
      if (!paths.insert(title->second).second) return layer_error(Concat("a second layer at ", title->second));
      plan.files.push_back({title->second, layer.digest(), static_cast<uint64_t>(layer.size())});
      if (!modelpack) plan.kind = "artifact";
      continue;
    }
    return layer_error("not a model layer (want a ModelPack layer, an image layer or a titled file)");
  }
  if (!plan.files.empty() && !plan.archives.empty() && plan.kind == "modelcar") {
    return absl::InvalidArgumentError(
        Concat(what, ": mixes image layers with titled files; cannot tell where the model is"));
  }
  return plan;
}

}  // namespace modelcache
