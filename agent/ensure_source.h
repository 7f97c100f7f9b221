#pragma once
// Which source an Ensure fills from, decided before the cache is asked (ModelCache::Ensure
// fills from whatever source it is given). An agent with a coordinator fills a version only
// from the source the coordinator's registry records for it, so that no client can decide
// what a shared NAME@VERSION holds; an agent without one fills from the request's source.
#include <string>

#include "absl/status/statusor.h"
#include "agent/caching_policy.h"
#include "modelcache/v1/agent.pb.h"

namespace modelcache {

// Pure. The source to fill `request` from:
//  - kNoCoordinator: request.source as given; INVALID_ARGUMENT naming the field when empty.
//  - kRegistered: the registered source, when request.source is empty or names the same
//    place (compared normalized, common/uri.h); FAILED_PRECONDITION naming both when it names
//    another; INVALID_ARGUMENT when it is not a source URI at all.
//  - kUnregistered, kNotReceived: FAILED_PRECONDITION saying the version has no registered
//    source (and the command that registers one) or that the registry has not reached this
//    agent yet.
// Every FAILED_PRECONDITION leaves the client to download on its own (`fetch --fallback`).
absl::StatusOr<std::string> ResolveEnsureSource(const v1::EnsureRequest& request,
                                                const RegistryLookup& registry);

}  // namespace modelcache
