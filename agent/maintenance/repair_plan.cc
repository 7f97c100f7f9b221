#include "agent/maintenance/repair_plan.h"

#include <map>

namespace modelcache {

RepairPlan PlanRepair(const v1::Manifest& manifest, const std::set<std::string>& bad_files,
                      const std::vector<SourceFile>& listing) {
  std::map<std::string, const v1::ManifestFile*> recorded;
  for (const v1::ManifestFile& file : manifest.files()) recorded[file.path()] = &file;

  RepairPlan plan;
  plan.journal.set_name(manifest.name());
  plan.journal.set_version(manifest.version());
  plan.journal.set_source(manifest.source());
  for (const SourceFile& file : listing) {
    auto found = recorded.find(file.path);
    bool keep = found != recorded.end() && bad_files.count(file.path) == 0 &&
                found->second->size() == file.size &&
                (file.expected_sha256.empty() || found->second->sha256().empty() ||
                 file.expected_sha256 == found->second->sha256());
    v1::FillJournal::File* entry = plan.journal.add_files();
    entry->set_path(file.path);
    entry->set_size(file.size);
    entry->set_etag(file.etag);
    entry->set_committed_bytes(keep ? file.size : 0);
    if (keep) {
      plan.keep.push_back(file.path);
      plan.bytes_kept += file.size;
    } else {
      plan.fetch.push_back(file.path);
      plan.bytes_to_fetch += file.size;
    }
  }
  return plan;
}

}  // namespace modelcache
