#pragma once
// hf:// sources: a model or dataset repository of the Hugging Face Hub (common/hf_uri.h).
//
// List():
//   1. GET <endpoint>/api/<type>s/<repo>/revision/<revision>: the commit the revision points
//      to now. Everything after uses that commit, so a branch that moves during the fill
//      cannot mix the files of two commits; Resolved().revision records it in the manifest.
//   2. GET <endpoint>/api/<type>s/<repo>/tree/<commit>[/<subfolder>]?recursive=true, following
//      its `Link: <..>; rel="next"` pages: each file's size, and for LFS (and Xet) files the
//      SHA-256 the fill checks every byte against. Small git files state only a git blob id;
//      they are hashed as they are filled and the manifest records their SHA-256.
//   3. allow/ignore patterns of the URI pick the files.
// Each file is fetched from <endpoint>/<repo>/resolve/<commit>/<path>: a HEAD (no redirect
// followed) says where, and the parallel range GETs go there. A redirect to another host (the
// LFS storage or a CDN) gets no token; a redirect URL that expires during the fill (403, 410)
// is resolved again (resolving_chunk_fetcher.h).
//
// The token (SourceOptions::hf_token) is sent only to the endpoint's origin. Without one, a
// private or gated repository is PERMISSION_DENIED naming the repository and the key to set.
// A 429 is waited out as Retry-After / RateLimit ask (polite_http.h, and the chunk engine).
#include <memory>

#include "agent/source/source.h"
#include "common/hf_uri.h"

namespace modelcache {

inline constexpr std::string_view kDefaultHfEndpoint = "https://huggingface.co";

std::unique_ptr<Source> MakeHfSource(HfUri uri, const SourceOptions& options);

}  // namespace modelcache
