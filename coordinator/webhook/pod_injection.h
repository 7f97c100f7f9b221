#pragma once
// What the admission webhook does to a pod that asks for a cached model (the annotations of
// common/pod_annotations.h), as pure functions: the pod in, the pod to admit (or an error
// naming the annotation) out, and the AdmissionReview answer with its RFC 6902 JSONPatch.
//
// The pod gets:
//   volumes   modelcache-socket (hostPath: the agent's socket folder), modelcache-cache (the
//             namespace's cache claim, read-only), modelcache-model (an emptyDir);
//   init      modelcache-fetch (the webhook's own image): `modelcachectl fetch --fallback` with
//             the pod as holder, then one symlink per top-level entry of the model in the
//             emptyDir, pointing into the read-only cache mount (cache case) or into the local
//             download beside it (opt-out or fallback case);
//   app       in every app container (or those in modelcache.io/containers): the emptyDir
//             read-only at modelcache.io/mount-path (default /models/<model>), the cache claim
//             read-only at /modelcache (the symlinks' targets), and MODEL_PATH = the mount path.
// So $MODEL_PATH holds the model's files in both cases, at the same path.
#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace modelcache::webhook {

struct InjectionSettings {
  std::string image;                                 // the init container's: the webhook's own
  std::string socket_host_path = "/run/modelcache";  // the agents' socket folder on each node
  std::string claim_name;                            // the namespace's copy of the cache claim
  std::string agent_cache_root = "/cache";           // the agents' cacheRoot (fetch prints paths in it)
};

// Where the injected volumes are mounted.
inline constexpr char kCacheMount[] = "/modelcache";      // the cache claim, read-only
inline constexpr char kLocalMount[] = "/modelcache-local";  // the emptyDir, in the init container
inline constexpr char kFetchContainer[] = "modelcache-fetch";

// The pod to admit. Unchanged for a pod already injected (idempotent). INVALID_ARGUMENT naming
// the annotation for a missing model, version or source, an invalid name or version, a source
// of an unknown scheme, a relative mount path, or a container name the pod does not have.
absl::StatusOr<nlohmann::json> InjectedPod(const nlohmann::json& pod, const InjectionSettings& settings);

// The shell script the init container runs (exposed for the end-to-end test, which runs it
// with the paths of a sandbox).
std::string FetchScript(const std::string& cache_root, const std::string& cache_mount, const std::string& local_mount);

// The AdmissionReview (admission.k8s.io/v1) answer to `review`: allowed with a base64 JSONPatch
// (patchType JSONPatch) when the pod changes, allowed without a patch when it does not, denied
// with the error's message (HTTP-style code 400) for bad annotations. INVALID_ARGUMENT when
// `review` is not an AdmissionReview with a request.
absl::StatusOr<nlohmann::json> AdmissionAnswer(const nlohmann::json& review, const InjectionSettings& settings);

}  // namespace modelcache::webhook
