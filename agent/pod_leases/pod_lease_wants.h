#pragma once
// Which leases a pod should hold, decided from the pod object alone (a pure function, so the
// rules have unit tests without an API server). A pod asks for a model with the annotations of
// common/pod_annotations.h; it holds a lease on it from the moment it is scheduled to the node
// until it ends (phase Succeeded or Failed) or is gone.
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace modelcache::pod_leases {

struct PodLeaseWant {
  std::string name;
  std::string version;
  bool operator==(const PodLeaseWant&) const = default;
  auto operator<=>(const PodLeaseWant&) const = default;
};

struct PodLeases {
  std::string uid;     // metadata.uid ("" for an object without one: then nothing is held)
  std::string holder;  // "pod:<namespace>/<name>:<uid>": the lease's holder, one per pod incarnation
  std::vector<PodLeaseWant> wants;  // empty: hold nothing
  // Why nothing is held when a model is annotated ("pod Succeeded", "modelcache.io/version:
  // missing"); "" otherwise. For the agent's log.
  std::string skipped;
};

PodLeases LeasesOf(const nlohmann::json& pod);

// A holder as people read it: "pod team-a/server-1" for a pod the agent follows ("pod:<ns>/<name>:<uid>");
// any other holder (the one a fetch or hold named) as it is.
std::string HolderForPeople(std::string_view holder);

// At most this many holders of one model are reported to the coordinator (the count is
// reported in full).
inline constexpr size_t kMaxReportedHolders = 8;

}  // namespace modelcache::pod_leases
