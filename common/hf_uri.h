#pragma once
// Hugging Face Hub source URIs:
//
//   hf://<owner>/<repo>[@<revision>][/<subfolder>][?allow=<glob>&ignore=<glob>...]
//   hf://datasets/<owner>/<repo>...   (a dataset repository; hf://models/... is a model one)
//
// <revision> is a branch, a tag or a commit (default "main"); a revision with '/' is written
// percent-encoded ("@feature%2Fx"), except the Hub's own "refs/pr/<n>" and "refs/convert/<x>",
// which may be written as they are. <subfolder> selects the files below that folder, and the
// model's paths are relative to it. `allow` and `ignore` (repeatable, or comma-separated) are
// fnmatch globs on those relative paths where '*' also matches '/', as huggingface_hub's
// allow_patterns: a file is filled when it matches some allow pattern (or none is given) and
// no ignore pattern; a pattern ending in '/' means everything below that folder.
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace modelcache {

struct HfUri {
  std::string repo_type = "model";  // "model" or "dataset"
  std::string repo_id;              // "owner/repo"
  std::string revision = "main";    // as written (decoded)
  std::string subfolder;            // without leading or trailing '/'; empty: the whole repo
  std::vector<std::string> allow;   // sorted, without duplicates
  std::vector<std::string> ignore;  // sorted, without duplicates

  // The Hub API path prefix: "models/owner/repo" or "datasets/owner/repo".
  std::string ApiRepoPath() const;
  // The path prefix of resolve URLs: "owner/repo" or "datasets/owner/repo".
  std::string ResolveRepoPath() const;
  // Whether a path relative to the subfolder is filled under allow/ignore.
  bool Selects(std::string_view relative_path) const;
};

// INVALID_ARGUMENT names the URI and what is wrong: a missing owner or repo, a name with
// characters the Hub does not allow, an empty revision, ".." in the subfolder, an unknown
// query parameter.
absl::StatusOr<HfUri> ParseHfUri(std::string_view uri);

// The canonical form: "hf://[datasets/]owner/repo@<revision>[/<subfolder>][?allow=..&ignore=..]"
// with the default revision written out, '/' in the revision encoded, and the patterns sorted.
std::string FormatHfUri(const HfUri& uri);

}  // namespace modelcache
