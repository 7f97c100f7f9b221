#pragma once
// What a test allows the agent to read, the way an operator would. The test origins (nginx,
// s3rver, small servers) listen on 127.0.0.1, which the agent refuses by default
// (agent/fill/address_policy.h); file:// sources are refused outside the folders listed in
// fileSources (agent/fill/file_tree.h). Tests name both explicitly: in the agent's config
// (AgentProcessOptions::network_allow and ::file_sources) or in the SourceOptions of an
// in-process engine.
#include <filesystem>
#include <string>
#include <vector>

#include "agent/fill/address_policy.h"
#include "agent/fill/source.h"

namespace modelcache::testing {

// network.allow entries for the test origins on loopback.
std::vector<std::string> LoopbackOrigins();

// The agent's default policy plus network.allow: LoopbackOrigins().
NetworkPolicy AllowLoopback();

// SourceOptions for an in-process engine whose origins listen on loopback and whose file://
// sources lie beneath `file_roots` (as fileSources: [...]).
SourceOptions LoopbackSourceOptions(std::vector<std::filesystem::path> file_roots = {});

}  // namespace modelcache::testing
