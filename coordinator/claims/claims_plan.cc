#include "coordinator/claims/claims_plan.h"

#include <algorithm>
#include <set>

#include "coordinator/claims/claims_config.h"
#include "coordinator/claims/volume_copy.h"
#include "spdlog/fmt/fmt.h"

namespace modelcache::claims {
namespace {

using nlohmann::json;

std::string Name(const json& object) { return Str(object, {"metadata", "name"}); }
std::string Namespace(const json& object) { return Str(object, {"metadata", "namespace"}); }
bool Deleting(const json& object) { return !Str(object, {"metadata", "deletionTimestamp"}).empty(); }

kube::DeletePreconditions PreconditionsOf(const json& object) {
  return {.uid = Str(object, {"metadata", "uid"}), .resource_version = Str(object, {"metadata", "resourceVersion"})};
}

std::string Ago(std::chrono::seconds seconds) {
  if (seconds.count() < 120) return fmt::format("{}s", seconds.count());
  if (seconds.count() < 7200) return fmt::format("{}m", seconds.count() / 60);
  if (seconds.count() < 2 * 86400) return fmt::format("{}h", seconds.count() / 3600);
  return fmt::format("{}d", seconds.count() / 86400);
}

SourceStatus EvaluateSource(const ClusterState& cluster, const ClaimsSettings& settings, CopySource& source) {
  SourceStatus status;
  status.claim = settings.source_namespace + "/" + settings.claim_name;
  const json* claim = nullptr;
  for (const json& candidate : cluster.claims) {
    if (Namespace(candidate) == settings.source_namespace && Name(candidate) == settings.claim_name) claim = &candidate;
  }
  if (claim == nullptr) {
    status.reason = "source_missing";
    status.problem = fmt::format(
        "persistentvolumeclaim \"{}\" in namespace \"{}\" not found: it is the cache claim the agents mount "
        "(models-cache-pvc-<kubernetes.release><modelsCacheStorage.pvcNameSuffix> in kubernetes.sourceNamespace); "
        "no copies are made until it exists",
        settings.claim_name, settings.source_namespace);
    return status;
  }
  status.volume = Str(*claim, {"spec", "volumeName"});
  const std::string phase = Str(*claim, {"status", "phase"});
  if (status.volume.empty() || phase != "Bound") {
    status.reason = "source_unbound";
    status.problem = fmt::format(
        "persistentvolumeclaim \"{}\" in namespace \"{}\" is not bound (phase {}, volumeName \"{}\"): copies are made "
        "once it is bound to a volume",
        settings.claim_name, settings.source_namespace, phase.empty() ? "unknown" : phase, status.volume);
    return status;
  }
  const json* volume = nullptr;
  for (const json& candidate : cluster.volumes) {
    if (Name(candidate) == status.volume) volume = &candidate;
  }
  if (volume == nullptr) {
    status.reason = "source_volume_missing";
    status.problem = fmt::format(
        "persistentvolume \"{}\", to which persistentvolumeclaim \"{}\" in namespace \"{}\" is bound, not found",
        status.volume, settings.claim_name, settings.source_namespace);
    return status;
  }
  StorageVerdict verdict = CheckStorage(*volume, settings.bypass_storage_check);
  status.storage = verdict.source.type;
  status.bypassed = verdict.bypassed;
  if (!verdict.copy) {
    status.reason = verdict.source.key.empty() ? "no_volume_source" : "storage_refused";
    status.problem = verdict.message;
    return status;
  }
  if (verdict.bypassed) status.problem = verdict.message;  // copied anyway: still worth showing
  status.healthy = true;
  source = CopySource{settings.source_namespace, settings.claim_name, *volume};
  return status;
}

}  // namespace

const char* ActionName(ActionKind kind) {
  switch (kind) {
    case ActionKind::kCreateClaim: return "create persistentvolumeclaim";
    case ActionKind::kCreateVolume: return "create persistentvolume";
    case ActionKind::kPatchClaim: return "repair persistentvolumeclaim";
    case ActionKind::kPatchVolume: return "repair persistentvolume";
    case ActionKind::kDeleteClaim: return "delete persistentvolumeclaim";
    case ActionKind::kDeleteVolume: return "delete persistentvolume";
  }
  return "?";
}

absl::Status ValidateNamespaceName(std::string_view name) {
  bool valid = !name.empty() && name.size() <= 63 && name.front() != '-' && name.back() != '-';
  for (char c : name) valid = valid && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
  if (valid) return absl::OkStatus();
  return absl::InvalidArgumentError(fmt::format(
      "namespace \"{}\" ({} characters): not a namespace name, which is a DNS-1123 label: 1 to 63 of a-z, 0-9 and "
      "'-', starting and ending with a letter or digit",
      name, name.size()));
}

namespace {

// Which namespaces get a copy, each with why (its label, or a pod's recent ask); counts the
// asks from invalid namespace names and notes when the next ask expires.
std::map<std::string, std::vector<std::string>> QualifyingNamespaces(const ClusterState& cluster,
                                                                     const ClaimsSettings& settings,
                                                                     Clock::TimePoint now,
                                                                     ClaimsPlan& plan) {
  std::map<std::string, std::vector<std::string>> qualifying;
  for (const json& object : cluster.namespaces) {
    const std::string name = Name(object);
    if (name == settings.source_namespace || Deleting(object) || Str(object, {"status", "phase"}) == "Terminating") {
      continue;
    }
    if (!ValidateNamespaceName(name).ok()) continue;
    std::vector<std::string> reasons;
    if (Str(object, {"metadata", "labels", kNamespaceLabel}) == kNamespaceLabelValue) {
      reasons.push_back(fmt::format("label {}={}", kNamespaceLabel, kNamespaceLabelValue));
    }
    auto asked = cluster.asks.find(name);
    if (asked != cluster.asks.end()) {
      const Clock::TimePoint until = asked->second + settings.namespace_idle_after;
      if (until > now) {
        auto ago = std::chrono::duration_cast<std::chrono::seconds>(now - asked->second);
        auto left = std::chrono::duration_cast<std::chrono::seconds>(until - now);
        reasons.push_back(fmt::format("a pod asked for a cached model {} ago (kept {} more without another)",
                                      Ago(ago), Ago(left)));
        if (!plan.next_expiry || until < *plan.next_expiry) plan.next_expiry = until;
      }
    }
    if (!reasons.empty()) qualifying[name] = std::move(reasons);
  }
  for (const auto& [name, at] : cluster.asks) {
    if (!ValidateNamespaceName(name).ok()) plan.problems["invalid_namespace"]++;
  }

  return qualifying;
}

// What exists in the cluster, by namespace: our claims and volume copies, and claims of the
// cache claim's name that are not ours.
struct OurObjects {
  std::map<std::string, std::vector<const json*>> claims;
  std::map<std::string, std::vector<const json*>> volumes;  // by the namespace they copy into
  std::map<std::string, const json*> volumes_by_name;
  std::map<std::string, const json*> foreign_claims;  // namespace -> a PVC of the claim's name not ours
};

OurObjects IndexObjects(const ClusterState& cluster, const ClaimsSettings& settings,
                        const std::string& source_volume) {
  // Our objects, by namespace. The source claim and its PV are never ours, whatever their labels.
  OurObjects objects;
  for (const json& claim : cluster.claims) {
    const std::string ns = Namespace(claim);
    if (ns == settings.source_namespace) continue;
    if (IsOurs(claim) && !Str(claim, {"metadata", "labels", kSourceClaimLabel}).empty()) {
      objects.claims[ns].push_back(&claim);
    } else if (Name(claim) == settings.claim_name) {
      objects.foreign_claims[ns] = &claim;
    }
  }
  for (const json& volume : cluster.volumes) {
    objects.volumes_by_name[Name(volume)] = &volume;
    const std::string ns = Str(volume, {"metadata", "labels", kCopyNamespaceLabel});
    if (IsOurs(volume) && !ns.empty() && Name(volume) != source_volume) objects.volumes[ns].push_back(&volume);
  }
  return objects;
}

// A namespace whose cache claim exists: rebind, repair edited labels or fields, or make the
// volume copy again when it is missing or copies another source.
void PlanExistingCopy(const std::string& ns, const json& claim, const json* volume,
                      const std::string& volume_name, const CopySource& source,
                      const ClaimsSettings& settings, NamespaceStatus& status, ClaimsPlan& plan) {
  const std::string bound_to = Str(claim, {"spec", "volumeName"});
  if (!bound_to.empty() && bound_to != volume_name) {
    // volumeName is immutable: make it again.
    plan.actions.push_back({.kind = ActionKind::kDeleteClaim, .namespace_name = ns, .name = settings.claim_name,
                            .preconditions = PreconditionsOf(claim),
                            .why = fmt::format("bound to persistentvolume \"{}\", not to the copy \"{}\"", bound_to,
                                               volume_name)});
  } else if (json patch = RepairPatch(claim, DesiredClaim(source, ns)); !patch.is_null()) {
    plan.actions.push_back({.kind = ActionKind::kPatchClaim, .namespace_name = ns, .name = settings.claim_name,
                            .object = std::move(patch), .why = "labels edited"});
  }
  const json desired_volume = DesiredVolume(source, ns, Str(claim, {"metadata", "uid"}));
  if (volume == nullptr) {
    plan.actions.push_back({.kind = ActionKind::kCreateVolume, .namespace_name = ns, .name = volume_name,
                            .object = desired_volume, .why = "the claim's volume is missing"});
  } else if (Deleting(*volume)) {
    status.problems.push_back("the volume copy is being deleted; it is made again once it is gone");
  } else if (!SameVolumeSource(*volume, desired_volume)) {
    plan.actions.push_back({.kind = ActionKind::kDeleteVolume, .namespace_name = ns, .name = volume_name,
                            .preconditions = PreconditionsOf(*volume),
                            .why = "its volume source differs from the source volume's (made again)"});
  } else if (json patch = RepairPatch(*volume, desired_volume); !patch.is_null()) {
    plan.actions.push_back({.kind = ActionKind::kPatchVolume, .namespace_name = ns, .name = volume_name,
                            .object = std::move(patch), .why = "fields edited or claim made again"});
  }
}

// The current copy in a namespace that qualifies: made, repaired, or why not.
void PlanCurrentCopy(const std::string& ns, const std::vector<std::string>& reasons,
                     OurObjects& objects, const CopySource& source, const ClaimsSettings& settings,
                     ClaimsPlan& plan) {
  NamespaceStatus status{.namespace_name = ns, .claim = settings.claim_name, .reasons = reasons};
  const std::string volume_name = CopyVolumeName(settings.claim_name, ns);
  status.volume = volume_name;
  const json* claim = nullptr;
  for (const json* candidate : objects.claims[ns]) {
    if (Name(*candidate) == settings.claim_name) claim = candidate;
  }
  if (claim != nullptr) status.phase = Str(*claim, {"status", "phase"});
  if (claim != nullptr && status.phase.empty()) status.phase = "Pending";
  auto volume_it = objects.volumes_by_name.find(volume_name);
  const json* volume = volume_it == objects.volumes_by_name.end() ? nullptr : volume_it->second;
  if (auto foreign = objects.foreign_claims.find(ns); foreign != objects.foreign_claims.end()) {
    status.phase = Str(*foreign->second, {"status", "phase"});
    status.volume = Str(*foreign->second, {"spec", "volumeName"});
    status.problems.push_back(fmt::format(
        "persistentvolumeclaim \"{}\" in namespace \"{}\" exists and is not managed by modelcache (no label {}={}): "
        "left alone; delete or rename it to get the cache claim here",
        settings.claim_name, ns, kManagedByLabel, kManagedByValue));
    plan.problems["foreign_claim"]++;
  } else if (volume != nullptr && !IsOurs(*volume)) {
    status.problems.push_back(fmt::format(
        "persistentvolume \"{}\" exists and is not managed by modelcache: left alone; no copy in this namespace",
        volume_name));
    plan.problems["foreign_volume"]++;
  } else if (!plan.source.healthy) {
    status.problems.push_back(fmt::format("no copy made or repaired: {}", plan.source.problem));
  } else if (claim == nullptr) {
    json desired_claim = DesiredClaim(source, ns);
    // QualifyingNamespaces puts the label's reason first when there is one.
    const bool for_label = reasons.front().starts_with("label ");
    desired_claim["metadata"]["annotations"][kMadeForAnnotation] = for_label ? "label" : "pod";
    plan.actions.push_back({.kind = ActionKind::kCreateClaim, .namespace_name = ns, .name = settings.claim_name,
                            .object = std::move(desired_claim), .why = reasons.front()});
    if (volume == nullptr) {
      plan.actions.push_back({.kind = ActionKind::kCreateVolume, .namespace_name = ns, .name = volume_name,
                              .object = DesiredVolume(source, ns, ""), .why = reasons.front()});
    }
  } else if (Deleting(*claim)) {
    status.problems.push_back("the claim is being deleted; it is made again once it is gone");
  } else {
    PlanExistingCopy(ns, *claim, volume, volume_name, source, settings, status, plan);
  }
  if (plan.source.bypassed) status.problems.push_back(plan.source.problem);
  plan.namespaces.push_back(std::move(status));
}

// Copies of a previous claim (storage switched): listed and kept while their claim exists;
// a volume copy whose claim is gone is deleted.
void PlanPreviousCopies(const std::string& ns, OurObjects& objects, const ClaimsSettings& settings,
                        ClaimsPlan& plan) {
  const std::string current_label = LabelValue(settings.claim_name);
  std::set<std::string> claimed;
  for (const json* old : objects.claims[ns]) {
    if (Name(*old) == settings.claim_name) continue;
    claimed.insert(Name(*old));
    NamespaceStatus previous{.namespace_name = ns,
                             .claim = Name(*old),
                             .volume = Str(*old, {"spec", "volumeName"}),
                             .phase = Str(*old, {"status", "phase"}),
                             .current = false};
    previous.reasons.push_back(fmt::format(
        "a copy of the previous cache claim \"{}\" (pvcNameSuffix changed): kept while pods use it; delete the "
        "claim when none does",
        Str(*old, {"metadata", "labels", kSourceClaimLabel})));
    plan.namespaces.push_back(std::move(previous));
  }
  for (const json* old : objects.volumes[ns]) {
    const std::string claim_of = Str(*old, {"spec", "claimRef", "name"});
    if (Str(*old, {"metadata", "labels", kSourceClaimLabel}) == current_label || claimed.contains(claim_of) ||
        Deleting(*old)) {
      continue;
    }
    plan.actions.push_back({.kind = ActionKind::kDeleteVolume, .namespace_name = ns, .name = Name(*old),
                            .preconditions = PreconditionsOf(*old),
                            .why = fmt::format("copy of a previous claim \"{}\" whose claim is gone", claim_of)});
  }
}

// Namespaces that do not qualify (any more): their copies go, claims first.
void PlanLeaving(const std::map<std::string, std::vector<std::string>>& qualifying,
                 OurObjects& objects, ClaimsPlan& plan) {
  std::set<std::string> leaving;
  for (const auto& [ns, claims] : objects.claims) {
    if (!qualifying.contains(ns) && !claims.empty()) leaving.insert(ns);
  }
  for (const auto& [ns, volumes] : objects.volumes) {
    if (!qualifying.contains(ns) && !volumes.empty()) leaving.insert(ns);
  }
  for (const std::string& ns : leaving) {
    const std::string why = fmt::format("namespace \"{}\" no longer gets the cache claim (no label {}={}, no pod asked "
                                        "within kubernetes.namespaceIdleAfter, or the namespace is going)",
                                        ns, kNamespaceLabel, kNamespaceLabelValue);
    for (const json* claim : objects.claims[ns]) {
      if (Deleting(*claim)) continue;
      plan.actions.push_back({.kind = ActionKind::kDeleteClaim, .namespace_name = ns, .name = Name(*claim),
                              .preconditions = PreconditionsOf(*claim), .why = why});
    }
    for (const json* volume : objects.volumes[ns]) {
      if (Deleting(*volume)) continue;
      plan.actions.push_back({.kind = ActionKind::kDeleteVolume, .namespace_name = ns, .name = Name(*volume),
                              .preconditions = PreconditionsOf(*volume), .why = why});
    }
  }
}

}  // namespace

ClaimsPlan PlanClaims(const ClusterState& cluster, const ClaimsSettings& settings, Clock::TimePoint now) {
  ClaimsPlan plan;
  CopySource source;
  plan.source = EvaluateSource(cluster, settings, source);
  if (!plan.source.reason.empty()) plan.problems[plan.source.reason]++;
  const std::map<std::string, std::vector<std::string>> qualifying =
      QualifyingNamespaces(cluster, settings, now, plan);
  // The source claim and its PV are never ours, whatever their labels.
  OurObjects objects = IndexObjects(cluster, settings, plan.source.volume);
  // Namespaces that qualify: make or repair the current copy; keep previous ones while claimed.
  for (const auto& [ns, reasons] : qualifying) {
    PlanCurrentCopy(ns, reasons, objects, source, settings, plan);
    PlanPreviousCopies(ns, objects, settings, plan);
  }
  PlanLeaving(qualifying, objects, plan);
  return plan;
}

}  // namespace modelcache::claims
