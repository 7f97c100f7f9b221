#pragma once
// Range GETs for sources whose files are fetched from somewhere else than where they are
// listed, and with credentials that change during a fill: the Hugging Face Hub's resolve
// endpoint redirects to a storage host with a signed URL that expires, and a registry's bearer
// token expires. Each file's target (URL + credentials) is resolved once, on the thread pool,
// and the chunks go to it through the plain HTTP range engine (chunk_fetcher.h). A chunk the
// target refuses (401, 403, 404, 410: an expired signature or token) makes the resolver
// resolve that file again, and the chunk goes to the new target; it is not a failure of the
// fill. A target refused before it served any chunk counts against the chunk: its third such
// refusal is the chunk's error. Errors of a resolve fail the chunks that waited for it.
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/source/address_policy.h"
#include "agent/source/chunk_fetcher.h"
#include "agent/fill/fill_settings.h"
#include "agent/source/source.h"

namespace modelcache {

class EventLoop;

struct FetchTarget {
  std::string url;  // where the range GETs go (redirects are followed from there)
  HttpAuth auth;    // sent with each of them; empty for a signed URL
};

class TargetResolver {
 public:
  virtual ~TargetResolver() = default;
  // Where `file`'s bytes are now. `refused` is the target a range GET was just refused at, or
  // null for the first resolve: a resolver answers with a fresh signature or token then, not
  // from a cache. Blocking; called on the thread pool, possibly for several files at once.
  virtual absl::StatusOr<FetchTarget> Resolve(const SourceFile& file, const FetchTarget* refused) = 0;
};

// The fetcher for a fill: `resolver` is shared with the blocking steps still running when the
// fetcher goes. Loop thread only, like every ChunkFetcher.
std::unique_ptr<ChunkFetcher> MakeResolvingChunkFetcher(EventLoop& loop, const FillSettings& settings,
                                                        NetworkPolicy network,
                                                        std::shared_ptr<TargetResolver> resolver);

}  // namespace modelcache
