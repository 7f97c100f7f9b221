#include "agent/fill/file_source.h"

#include "agent/fill/chunk_fetcher.h"
#include "agent/fill/file_tree.h"
#include "common/status_macros.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;

class FileSource final : public Source {
 public:
  FileSource(fs::path root, std::optional<std::vector<fs::path>> allowed_roots)
      : root_(std::move(root)), allowed_roots_(std::move(allowed_roots)) {}

  absl::StatusOr<std::vector<SourceFile>> List() override {
    ASSIGN_OR_RETURN(tree_, FileTree::Open(root_, allowed_roots_));
    return tree_->List();
  }

  bool IsLocal() const override { return true; }
  HttpAuth Auth() const override { return {}; }

  std::unique_ptr<ChunkFetcher> MakeChunkFetcher(EventLoop& loop, const FillSettings& settings) const override {
    return MakeFileChunkFetcher(loop, settings, tree_);
  }

 private:
  fs::path root_;
  std::optional<std::vector<fs::path>> allowed_roots_;
  std::shared_ptr<const FileTree> tree_;  // set by List(); shared with the chunk fetcher
};

}  // namespace

std::unique_ptr<Source> MakeFileSource(fs::path root, std::optional<std::vector<fs::path>> allowed_roots) {
  return std::make_unique<FileSource>(fs::absolute(std::move(root)), std::move(allowed_roots));
}

}  // namespace modelcache
