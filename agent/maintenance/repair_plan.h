#pragma once
// Pure part of `modelcachectl repair`: which files of a damaged model can be kept and which
// must be fetched again, expressed as the fill journal that makes FillJob resume from the
// kept files and fetch only the rest.
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "agent/source/source.h"
#include "modelcache/v1/manifest.pb.h"

namespace modelcache {

struct RepairPlan {
  v1::FillJournal journal;          // what to write into staging before the fill starts
  std::vector<std::string> keep;    // files to take over from the damaged copy (complete)
  std::vector<std::string> fetch;   // files to fetch from the source again
  uint64_t bytes_kept = 0;
  uint64_t bytes_to_fetch = 0;
};

// `manifest`: the damaged model's manifest; `bad_files`: its files that failed verification;
// `listing`: what its source lists now. A file is kept when it is good and the source still
// lists it with the manifest's size (and, when the source states one, the manifest's
// sha256); its journal entry is then complete, carrying the listing's etag so that FillJob
// accepts it. Every other listed file is fetched from byte 0.
RepairPlan PlanRepair(const v1::Manifest& manifest, const std::set<std::string>& bad_files,
                      const std::vector<SourceFile>& listing);

}  // namespace modelcache
