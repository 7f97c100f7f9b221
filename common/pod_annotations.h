#pragma once
// The pod metadata that asks for a cached model (issue 14). The coordinator's admission webhook
// (coordinator/webhook/) reads it to inject the fetch; the agent (agent/pod_leases/) reads it to
// hold a lease for as long as the pod lives. One place, so the two always agree.
//
//   metadata:
//     labels:
//       modelcache.io/inject: "true"          # the webhook's objectSelector and the agent's watch
//     annotations:
//       modelcache.io/model: llama-3          # required
//       modelcache.io/version: v2             # required
//       modelcache.io/source: s3://bucket/llama-3/v2/   # required
//       modelcache.io/mount-path: /models/llama-3        # default /models/<model>
//       modelcache.io/containers: server,sidecar         # default every app container
//       modelcache.io/disabled: "true"                   # download locally, no cache
namespace modelcache {

inline constexpr char kInjectLabel[] = "modelcache.io/inject";
inline constexpr char kInjectLabelValue[] = "true";
inline constexpr char kModelAnnotation[] = "modelcache.io/model";
inline constexpr char kVersionAnnotation[] = "modelcache.io/version";
inline constexpr char kSourceAnnotation[] = "modelcache.io/source";
inline constexpr char kMountPathAnnotation[] = "modelcache.io/mount-path";
inline constexpr char kContainersAnnotation[] = "modelcache.io/containers";
inline constexpr char kDisabledAnnotation[] = "modelcache.io/disabled";
// Set by the webhook on a pod it mutated: a second admission leaves the pod as it is.
inline constexpr char kInjectedAnnotation[] = "modelcache.io/injected";

}  // namespace modelcache
