#include "agent/source/tar_unpacker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/testing/oci_registry.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::TarArchive;
using testing::TarEntry;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// Feeds `archive` in pieces of `piece` bytes, as a network stream would.
absl::Status Feed(TarUnpacker& unpacker, const std::string& archive, size_t piece = 777) {
  for (size_t at = 0; at < archive.size(); at += piece) {
    const std::string_view part = std::string_view(archive).substr(at, piece);
    absl::Status status = unpacker.Write(std::as_bytes(std::span(part.data(), part.size())));
    if (!status.ok()) return status;
  }
  return unpacker.FinishArchive();
}

TEST(TarUnpacker, UnpacksGzipModelcarFolderAndHashesFiles) {
  testing::TempDir dir;
  const std::string weights(300'000, 'w');
  const std::string long_name = "models/" + std::string(120, 'x') + ".bin";
  TarUnpacker unpacker(dir.Path(), {.folder = "models"});
  unpacker.StartArchive(/*gzip=*/true, "layer 1");
  ASSERT_TRUE(Feed(unpacker, TarArchive({{"bin/sh", '0', "#!busybox"},
                                         {"models/", '5'},
                                         {"models/config.json", '0', "{}"},
                                         {"./models/sub/w.bin", '0', weights},
                                         {long_name, '0', "long"},
                                         {"models/alias.bin", '2', "", "sub/w.bin"},
                                         {"models/hard.json", '1', "", "models/config.json"}},
                                        true))
                  .ok());
  absl::StatusOr<std::vector<UnpackedFile>> files = unpacker.Finish();
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 5u);
  EXPECT_EQ((*files)[0].path, "alias.bin");
  EXPECT_EQ((*files)[0].sha256, testing::Sha256Hex(weights)) << "a link is a copy of its target";
  EXPECT_EQ((*files)[1].path, "config.json");
  EXPECT_EQ((*files)[2].path, "hard.json");
  EXPECT_EQ((*files)[3].path, "sub/w.bin");
  EXPECT_EQ((*files)[3].size, weights.size());
  EXPECT_EQ((*files)[4].path, std::string(120, 'x') + ".bin");
  EXPECT_EQ(ReadFile(dir.Path() / "alias.bin"), weights);
  EXPECT_FALSE(fs::is_symlink(dir.Path() / "alias.bin"));
  EXPECT_FALSE(fs::exists(dir.Path() / "bin")) << "entries outside the folder are read past";
}

TEST(TarUnpacker, LaterLayersOverrideAndWhiteoutsRemove) {
  testing::TempDir dir;
  TarUnpacker unpacker(dir.Path(), {});
  unpacker.StartArchive(false, "layer 1");
  ASSERT_TRUE(Feed(unpacker, TarArchive({{"a.bin", '0', "old"}, {"gone.bin", '0', "x"}, {"d/x", '0', "1"}}, false)).ok());
  unpacker.StartArchive(false, "layer 2");
  ASSERT_TRUE(Feed(unpacker, TarArchive({{"a.bin", '0', "new"}, {".wh.gone.bin", '0'}, {"d/.wh..wh..opq", '0'},
                                         {"d/y", '0', "2"}},
                                        false))
                  .ok());
  absl::StatusOr<std::vector<UnpackedFile>> files = unpacker.Finish();
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].path, "a.bin");
  EXPECT_EQ(ReadFile(dir.Path() / "a.bin"), "new");
  EXPECT_EQ((*files)[1].path, "d/y");
  EXPECT_FALSE(fs::exists(dir.Path() / "gone.bin"));
  EXPECT_FALSE(fs::exists(dir.Path() / "d/x"));
}

TEST(TarUnpacker, HostileEntriesAreRefusedAndNothingLandsOutside) {
  struct Case {
    TarEntry entry;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{"../evil", '0', "x"}, "\"..\""},
      {{"models/../../evil", '0', "x"}, "\"..\""},
      {{"/etc/evil", '0', "x"}, "absolute path"},
      {{"models/link", '2', "", "/etc/passwd"}, "outside the model folder"},
      {{"models/link", '2', "", "../../etc/passwd"}, "outside the model folder"},
      {{"models/hard", '1', "", "etc/shadow"}, "outside the model folder"},
      {{"models/dev", '3'}, "device"},
      {{"models/fifo", '6'}, "FIFO"},
      {{"models/.modelcache-manifest.json", '0', "{}"}, ".modelcache"},
  };
  for (const Case& test : cases) {
    testing::TempDir dir;
    const fs::path tree = dir.Path() / "tree";
    fs::create_directories(tree);
    TarUnpacker unpacker(tree, {.folder = "models"});
    unpacker.StartArchive(true, "layer sha256:ab");
    absl::Status status = Feed(unpacker, TarArchive({{"models/ok.bin", '0', "fine"}, test.entry}, true));
    if (status.ok()) status = unpacker.Finish().status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << test.entry.name << ": " << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(test.want)) << test.entry.name;
    EXPECT_THAT(std::string(status.message()), HasSubstr("layer sha256:ab"));
    EXPECT_FALSE(fs::exists(dir.Path() / "evil"));
    EXPECT_FALSE(fs::exists(dir.Path() / "etc"));
  }
}

TEST(TarUnpacker, ReservedPathsAndBudgetAndTruncation) {
  testing::TempDir dir;
  {
    TarUnpacker unpacker(dir.Path(), {.reserved = {"weights.bin"}});
    unpacker.StartArchive(false, "layer 2");
    absl::Status status = Feed(unpacker, TarArchive({{"weights.bin", '0', "x"}}, false));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr("another layer"));
  }
  {
    TarUnpacker unpacker(dir.Path() / "", {.max_output_bytes = 1000});
    unpacker.StartArchive(true, "bomb");
    absl::Status status = Feed(unpacker, TarArchive({{"big.bin", '0', std::string(5000, '0')}}, true));
    EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  }
  {
    TarUnpacker unpacker(dir.Path(), {});
    unpacker.StartArchive(true, "cut");
    const std::string archive = TarArchive({{"c.bin", '0', std::string(9000, 'c')}}, true);
    absl::Status status = Feed(unpacker, archive.substr(0, archive.size() / 2));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  }
  {
    TarUnpacker unpacker(dir.Path(), {});
    unpacker.StartArchive(false, "garbage");
    absl::Status status = Feed(unpacker, std::string(2048, 'g'));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr("not a tar archive"));
  }
}

}  // namespace
}  // namespace modelcache
