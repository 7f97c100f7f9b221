#pragma once
// oci:// sources: a model artifact or image in an OCI registry (common/oci_uri.h).
//
// List():
//   1. GET /v2/<repository>/manifests/<tag or digest> with every manifest and index type in
//      Accept (registry_client.h does the authentication). The manifest's digest is the
//      SHA-256 of the bytes received; a digest reference must match it (DATA_LOSS otherwise).
//      Resolved().digest records it: the rest of the fill reads only blobs that manifest
//      names, so a tag moved during the fill changes nothing.
//   2. An image index: the ModelPack entry, or the image for this node's platform
//      (oci_manifest.h), fetched by digest and checked the same way.
//   3. Layers (oci_manifest.h): raw layers are the listed files, each filled with parallel
//      range GETs of /v2/<repository>/blobs/<digest> (redirects followed; the token is not sent
//      to another host) straight into place and checked against its digest before publishing
//      (DATA_LOSS names the file on a mismatch). Tar layers are Archives(): UnpackArchives
//      streams each (resuming a broken stream with a Range request), checks its digest and
//      unpacks it with tar_unpacker.h.
// An expired bearer token (401 on a range GET) is renewed, not a failure
// (resolving_chunk_fetcher.h).
#include <memory>

#include "agent/source/source.h"
#include "common/oci_uri.h"

namespace modelcache {

std::unique_ptr<Source> MakeOciSource(OciUri uri, const SourceOptions& options);

}  // namespace modelcache
