#pragma once
// The one step that makes a model visible: everything durable first, then one rename.
#include "absl/status/status.h"
#include "agent/store/layout.h"
#include "modelcache/v1/manifest.pb.h"

namespace modelcache {

// Writes the manifest into StagingTree(name, version), fsyncs every file and directory of
// the tree, creates models/<name>/ if needed, renames the tree to ModelDir(name, version),
// fsyncs models/<name>/ and removes the now-empty staging folder.
// ALREADY_EXISTS if the model was published meanwhile (the staging tree is left for the
// caller to trash). FAILED_PRECONDITION (or NOT_FOUND) if a file of the manifest is missing
// from the tree or has another size; INVALID_ARGUMENT for an invalid name, version or path.
// A crash at any point leaves either no model or the whole model.
absl::Status Publish(const CacheLayout& layout, const v1::Manifest& manifest);

}  // namespace modelcache
