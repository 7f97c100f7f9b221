#include "agent/fill/source.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "agent/fill/http_source.h"
#include "agent/fill/s3_source.h"
#include "tests/testing/temp_dir.h"

namespace modelcache {
namespace {

namespace fs = std::filesystem;

void WriteFile(const fs::path& path, std::string_view contents) {
  ASSERT_TRUE(testing::WriteTestFile(path, contents)) << path;
}

// Lists `uri` as the agent would with `fileSources: [allowed]`.
absl::StatusOr<std::vector<SourceFile>> ListUri(const std::string& uri, const fs::path& allowed) {
  SourceOptions options;
  options.file_roots = std::vector<fs::path>{allowed};
  auto source = MakeSource(uri, options);
  if (!source.ok()) return source.status();
  return (*source)->List();
}

// As modelcachectl's local fill lists it: with the caller's own rights, anywhere.
absl::StatusOr<std::vector<SourceFile>> ListUriLocally(const std::string& uri) {
  SourceOptions options;
  options.file_roots = std::nullopt;
  auto source = MakeSource(uri, options);
  if (!source.ok()) return source.status();
  return (*source)->List();
}

TEST(MakeSource, UnknownSchemeIsInvalidArgumentListingAccepted) {
  auto source = MakeSource("gs://bucket/model", SourceOptions{});
  ASSERT_EQ(source.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(source.status().message());
  EXPECT_NE(message.find("gs"), std::string::npos) << message;
  for (const char* scheme : {"s3", "http", "https", "file"}) {
    EXPECT_NE(message.find(scheme), std::string::npos) << message;
  }
}

TEST(MakeSource, PicksSourceKindByScheme) {
  auto file = MakeSource("file:///tmp", SourceOptions{});
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE((*file)->IsLocal());
  auto http = MakeSource("http://127.0.0.1:1/models/", SourceOptions{});
  ASSERT_TRUE(http.ok()) << http.status();
  EXPECT_FALSE((*http)->IsLocal());
  EXPECT_TRUE((*http)->Auth().aws_sigv4.empty());
  auto s3 = MakeSource("s3://bucket/prefix/", SourceOptions{});
  ASSERT_TRUE(s3.ok()) << s3.status();
  EXPECT_FALSE((*s3)->IsLocal());
}

TEST(FileSource, ListsNestedRegularFilesSortedWithSizeAndEtag) {
  testing::TempDir dir;
  WriteFile(dir.Path() / "model" / "config.json", "{}");
  WriteFile(dir.Path() / "model" / "weights" / "b.bin", "0123456789");
  WriteFile(dir.Path() / "model" / "weights" / "a.bin", "");
  ASSERT_EQ(::mkfifo((dir.Path() / "model" / "pipe").c_str(), 0600), 0);  // not a regular file

  auto files = ListUri("file://" + (dir.Path() / "model").string(), dir.Path());
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 3u);
  EXPECT_EQ((*files)[0].path, "config.json");
  EXPECT_EQ((*files)[1].path, "weights/a.bin");
  EXPECT_EQ((*files)[2].path, "weights/b.bin");
  EXPECT_EQ((*files)[0].size, 2u);
  EXPECT_EQ((*files)[1].size, 0u);
  EXPECT_EQ((*files)[2].size, 10u);
  EXPECT_EQ((*files)[2].location, (dir.Path() / "model" / "weights" / "b.bin").string());

  struct stat info {};
  ASSERT_EQ(::stat((*files)[2].location.c_str(), &info), 0);
  const int64_t mtime_ns = int64_t{info.st_mtim.tv_sec} * 1'000'000'000 + info.st_mtim.tv_nsec;
  EXPECT_EQ((*files)[2].etag, "10-" + std::to_string(mtime_ns));
  EXPECT_TRUE((*files)[2].expected_sha256.empty());
}

TEST(FileSource, TrailingSlashOnDirectoryGivesSamePaths) {
  testing::TempDir dir;
  WriteFile(dir.Path() / "m" / "x" / "y.txt", "y");
  auto files = ListUri("file://" + (dir.Path() / "m").string() + "/", dir.Path());
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].path, "x/y.txt");
}

TEST(FileSource, SingleFileIsNamedAfterItself) {
  testing::TempDir dir;
  WriteFile(dir.Path() / "model.gguf", "ggufdata");
  auto files = ListUri("file://" + (dir.Path() / "model.gguf").string(), dir.Path());
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].path, "model.gguf");
  EXPECT_EQ((*files)[0].size, 8u);
  EXPECT_EQ((*files)[0].location, (dir.Path() / "model.gguf").string());
}

TEST(FileSource, SymlinkInsideTreeIsFollowed) {
  testing::TempDir dir;
  WriteFile(dir.Path() / "m" / "blobs" / "abc", "blobdata");
  fs::create_directories(dir.Path() / "m" / "snap");
  fs::create_symlink("../blobs/abc", dir.Path() / "m" / "snap" / "weights.bin");
  auto files = ListUri("file://" + (dir.Path() / "m").string(), dir.Path());
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[1].path, "snap/weights.bin");
  EXPECT_EQ((*files)[1].size, 8u);
}

TEST(FileSource, SymlinkEscapingTreeIsRejected) {
  testing::TempDir dir;
  WriteFile(dir.Path() / "secret.txt", "do not copy");
  WriteFile(dir.Path() / "m" / "ok.txt", "ok");
  fs::create_symlink("../secret.txt", dir.Path() / "m" / "leak.txt");  // in fileSources, not in m
  auto files = ListUri("file://" + (dir.Path() / "m").string(), dir.Path());
  ASSERT_EQ(files.status().code(), absl::StatusCode::kInvalidArgument) << files.status();
  EXPECT_NE(files.status().message().find("leak.txt"), absl::string_view::npos) << files.status();
  EXPECT_NE(files.status().message().find("outside the directory"), absl::string_view::npos) << files.status();
}

TEST(FileSource, DirectorySymlinkEscapingTreeIsRejected) {
  testing::TempDir dir;
  WriteFile(dir.Path() / "outside" / "f", "x");
  WriteFile(dir.Path() / "m" / "ok.txt", "ok");
  fs::create_symlink("../outside", dir.Path() / "m" / "escape");
  auto files = ListUri("file://" + (dir.Path() / "m").string(), dir.Path());
  EXPECT_EQ(files.status().code(), absl::StatusCode::kInvalidArgument) << files.status();
}

TEST(FileSource, SymlinkOutOfTheAllowedFoldersIsPermissionDeniedNamingFileSources) {
  testing::TempDir dir;
  WriteFile(dir.Path() / "secret.txt", "do not copy");
  WriteFile(dir.Path() / "allowed" / "m" / "ok.txt", "ok");
  for (const std::string& target :
       std::vector<std::string>{"../../secret.txt", (dir.Path() / "secret.txt").string(), "/etc/passwd"}) {
    fs::remove(dir.Path() / "allowed" / "m" / "leak.txt");
    fs::create_symlink(target, dir.Path() / "allowed" / "m" / "leak.txt");
    auto files = ListUri("file://" + (dir.Path() / "allowed" / "m").string(), dir.Path() / "allowed");
    ASSERT_EQ(files.status().code(), absl::StatusCode::kPermissionDenied) << target << ": " << files.status();
    const std::string message(files.status().message());
    EXPECT_NE(message.find("leak.txt"), std::string::npos) << message;
    EXPECT_NE(message.find("fileSources"), std::string::npos) << message;
  }
}

TEST(FileSource, SourceOutsideTheAllowedFoldersIsPermissionDeniedNamingKeyAndPath) {
  testing::TempDir dir;
  WriteFile(dir.Path() / "allowed" / "a.bin", "a");
  WriteFile(dir.Path() / "allowed-not" / "b.bin", "b");  // a name prefix is not a folder
  for (const fs::path& path : {dir.Path() / "allowed-not", dir.Path() / "allowed-not" / "b.bin"}) {
    auto files = ListUri("file://" + path.string(), dir.Path() / "allowed");
    ASSERT_EQ(files.status().code(), absl::StatusCode::kPermissionDenied) << files.status();
    const std::string message(files.status().message());
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find("fileSources"), std::string::npos) << message;
  }
  // The agent's default: no folder at all.
  auto source = MakeSource("file://" + (dir.Path() / "allowed" / "a.bin").string(), SourceOptions{});
  ASSERT_TRUE(source.ok()) << source.status();
  auto files = (*source)->List();
  EXPECT_EQ(files.status().code(), absl::StatusCode::kPermissionDenied) << files.status();
  EXPECT_NE(files.status().message().find("fileSources: none"), absl::string_view::npos) << files.status();
}

TEST(FileSource, SingleFileLinkMayPointAnywhereInTheAllowedFolderButNotOut) {
  testing::TempDir dir;
  WriteFile(dir.Path() / "allowed" / "blobs" / "abc", "blobdata");
  WriteFile(dir.Path() / "secret.txt", "do not copy");
  fs::create_directories(dir.Path() / "allowed" / "snap");
  fs::create_symlink("../blobs/abc", dir.Path() / "allowed" / "snap" / "w.bin");
  fs::create_symlink("../../secret.txt", dir.Path() / "allowed" / "snap" / "leak.bin");
  auto inside = ListUri("file://" + (dir.Path() / "allowed" / "snap" / "w.bin").string(), dir.Path() / "allowed");
  ASSERT_TRUE(inside.ok()) << inside.status();
  ASSERT_EQ(inside->size(), 1u);
  EXPECT_EQ((*inside)[0].path, "w.bin");
  EXPECT_EQ((*inside)[0].size, 8u);
  auto out = ListUri("file://" + (dir.Path() / "allowed" / "snap" / "leak.bin").string(), dir.Path() / "allowed");
  EXPECT_EQ(out.status().code(), absl::StatusCode::kPermissionDenied) << out.status();
}

TEST(FileSource, NestedAllowedFoldersAllowLinksAnywhereInTheOuterOne) {
  testing::TempDir dir;
  WriteFile(dir.Path() / "shared" / "blob.bin", "blob");
  fs::create_directories(dir.Path() / "models");
  fs::create_symlink("../shared/blob.bin", dir.Path() / "models" / "w.bin");
  SourceOptions options;
  options.file_roots = std::vector<fs::path>{dir.Path() / "models", dir.Path()};
  auto source = MakeSource("file://" + (dir.Path() / "models" / "w.bin").string(), options);
  ASSERT_TRUE(source.ok()) << source.status();
  auto files = (*source)->List();
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_EQ((*files)[0].size, 4u);
}

TEST(FileSource, FifoAsTheSourceIsInvalidArgument) {
  testing::TempDir dir;
  ASSERT_EQ(::mkfifo((dir.Path() / "pipe").c_str(), 0600), 0);
  auto files = ListUri("file://" + (dir.Path() / "pipe").string(), dir.Path());
  EXPECT_EQ(files.status().code(), absl::StatusCode::kInvalidArgument) << files.status();
  EXPECT_NE(files.status().message().find("FIFO"), absl::string_view::npos) << files.status();
}

TEST(FileSource, LocalFillReadsWithItsCallersRightsAnywhere) {
  testing::TempDir dir;
  WriteFile(dir.Path() / "elsewhere" / "model.gguf", "ggufdata");
  fs::create_directories(dir.Path() / "m");
  fs::create_symlink(dir.Path() / "elsewhere" / "model.gguf", dir.Path() / "m" / "model.gguf");
  auto files = ListUriLocally("file://" + (dir.Path() / "m" / "model.gguf").string());
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].size, 8u);
}

TEST(FileSource, MissingRootIsNotFound) {
  testing::TempDir dir;
  auto files = ListUri("file://" + (dir.Path() / "nope").string(), dir.Path());
  EXPECT_EQ(files.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(files.status().message().find("nope"), absl::string_view::npos);
}

TEST(FileSource, ReservedFileNameIsRejected) {
  testing::TempDir dir;
  WriteFile(dir.Path() / "m" / ".modelcache-manifest.json", "{}");
  auto files = ListUri("file://" + (dir.Path() / "m").string(), dir.Path());
  EXPECT_EQ(files.status().code(), absl::StatusCode::kInvalidArgument) << files.status();
}

TEST(HttpDirectoryListing, ParsesFilesWithEncodedLocationsAndSha256) {
  const std::string sha = "3F3E0A6C1E3E0A6C1E3E0A6C1E3E0A6C1E3E0A6C1E3E0A6C1E3E0A6C1E3E0A6C";
  auto files = ParseHttpDirectoryListing(
      R"({"files": [
            {"path": "config.json", "size": "42", "sha256": ")" + sha + R"("},
            {"path": "weights/part 1+2.bin", "size": 7, "comment": "ignored"}
          ], "generator": "unknown fields are ignored"})",
      "http://127.0.0.1:8080/models/llama/");
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].path, "config.json");
  EXPECT_EQ((*files)[0].size, 42u);
  EXPECT_EQ((*files)[0].expected_sha256, "3f3e0a6c1e3e0a6c1e3e0a6c1e3e0a6c1e3e0a6c1e3e0a6c1e3e0a6c1e3e0a6c");
  EXPECT_EQ((*files)[0].location, "http://127.0.0.1:8080/models/llama/config.json");
  EXPECT_EQ((*files)[1].path, "weights/part 1+2.bin");
  EXPECT_EQ((*files)[1].size, 7u);
  EXPECT_EQ((*files)[1].expected_sha256, "");
  EXPECT_EQ((*files)[1].location, "http://127.0.0.1:8080/models/llama/weights/part%201%2B2.bin");
}

TEST(HttpDirectoryListing, RejectsMalformedJson) {
  auto files = ParseHttpDirectoryListing(R"({"files": [ {"path": "a", )", "http://h/");
  EXPECT_EQ(files.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HttpDirectoryListing, RejectsBadPaths) {
  for (const char* path : {"../etc/passwd", "/abs", "a//b", "a/./b", ""}) {
    auto files = ParseHttpDirectoryListing(
        std::string(R"({"files": [{"path": ")") + path + R"(", "size": 1}]})", "http://h/");
    EXPECT_EQ(files.status().code(), absl::StatusCode::kInvalidArgument) << path;
  }
}

TEST(HttpDirectoryListing, RejectsDuplicatePathsAndBadSha256) {
  EXPECT_EQ(ParseHttpDirectoryListing(
                R"({"files": [{"path": "a", "size": 1}, {"path": "a", "size": 2}]})", "http://h/")
                .status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseHttpDirectoryListing(R"({"files": [{"path": "a", "size": 1, "sha256": "abc"}]})",
                                      "http://h/")
                .status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(S3ObjectUrl, VirtualHostedByDefault) {
  SourceOptions options;
  options.s3_region = "eu-west-1";
  EXPECT_EQ(S3ObjectUrl(options, "models", "llama/config.json"),
            "https://models.s3.eu-west-1.amazonaws.com/llama/config.json");
}

TEST(S3ObjectUrl, DottedBucketUsesPathStyle) {
  SourceOptions options;
  EXPECT_EQ(S3ObjectUrl(options, "my.models", "m/f"), "https://s3.us-east-1.amazonaws.com/my.models/m/f");
}

TEST(S3ObjectUrl, PathStyleEndpointAndKeyEncoding) {
  SourceOptions options;
  options.s3_endpoint = "http://127.0.0.1:4568/";
  options.s3_path_style = true;
  EXPECT_EQ(S3ObjectUrl(options, "models", "a b/c+d=e&f~g.bin"),
            "http://127.0.0.1:4568/models/a%20b/c%2Bd%3De%26f~g.bin");
}

TEST(S3Source, AuthSignsWithRegionAndSendsPayloadHashAndToken) {
  SourceOptions options;
  options.s3_region = "ap-south-1";
  options.aws.access_key_id = "AKIA";
  options.aws.secret_access_key = "secret";
  options.aws.session_token = "token";
  const HttpAuth auth = MakeS3Source("b", "p/", options)->Auth();
  EXPECT_EQ(auth.aws_sigv4, "aws:amz:ap-south-1:s3");
  EXPECT_EQ(auth.user_password, "AKIA:secret");
  EXPECT_EQ(auth.headers,
            (std::vector<std::string>{"x-amz-content-sha256: UNSIGNED-PAYLOAD", "x-amz-security-token: token"}));
}

TEST(S3Source, AnonymousAuthIsEmpty) {
  const HttpAuth auth = MakeS3Source("b", "p/", SourceOptions{})->Auth();
  EXPECT_TRUE(auth.aws_sigv4.empty());
  EXPECT_TRUE(auth.user_password.empty());
  EXPECT_TRUE(auth.headers.empty());
}

}  // namespace
}  // namespace modelcache
