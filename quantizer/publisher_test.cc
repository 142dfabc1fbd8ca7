#include "quantizer/publisher.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "engine/base/file_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/shared_data.h"

namespace nibble {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

void WriteFile(const fs::path& path, const std::string& contents) {
  ASSERT_TRUE(WriteFileContents(path, contents).ok()) << path;
}

// A small model directory with two files.
fs::path MakeSource(const fs::path& root) {
  const fs::path source = root / "source";
  fs::create_directories(source);
  WriteFile(source / "config.json", R"({"architectures": ["LlamaForCausalLM"]})");
  WriteFile(source / "model.safetensors", std::string(4096, 'w'));
  return source;
}

// Staging directories left under a model directory.
std::vector<std::string> StagingDirs(const fs::path& model_dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(model_dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kStagingPrefix, 0) == 0) names.push_back(name);
  }
  return names;
}

// Runs `body` in a forked child and returns its exit status (or -signal when killed).
template <typename Body>
int RunInChild(Body body) {
  const pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

TEST(PublisherTest, PublishesNumberedVerifiedVersions) {
  testing::TempDir temp;
  const ModelStore store(temp.path() / "store");
  const fs::path source = MakeSource(temp.path());

  auto first = PublishDirectory(store, "tiny", source, {{"quantization", {{"method", "rtn"}}}});
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = PublishDirectory(store, "tiny", source, {});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*first, 1u);
  EXPECT_EQ(*second, 2u);
  EXPECT_THAT(*store.ListVersions("tiny"), ElementsAre(1u, 2u));
  EXPECT_TRUE(StagingDirs(store.ModelDir("tiny")).empty());

  auto manifest = VerifyVersionDir(store.VersionDir("tiny", 1));
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  ASSERT_EQ(manifest->files.size(), 2u);
  EXPECT_EQ(manifest->files[0].path, "config.json");
  EXPECT_EQ(manifest->files[1].path, "model.safetensors");
  EXPECT_EQ(manifest->files[1].bytes, 4096u);
  EXPECT_EQ(manifest->json["quantization"]["method"], "rtn");
  EXPECT_EQ(manifest->json["format_version"], kManifestFormatVersion);
  EXPECT_EQ(manifest->json["source"]["path"], fs::absolute(source).string());
  EXPECT_THAT(manifest->json["tool_version"].get<std::string>(), HasSubstr("nibble "));
}

TEST(PublisherTest, FindVersionOfJobSkipsManifestsWhoseJobIsNotAString) {
  testing::TempDir temp;
  const ModelStore store(temp.path() / "store");
  const fs::path source = MakeSource(temp.path());
  ASSERT_TRUE(PublishDirectory(store, "tiny", source, {{"job", "job-7"}}).ok());
  ASSERT_TRUE(PublishDirectory(store, "tiny", source, {{"job", 7}}).ok());
  ASSERT_TRUE(PublishDirectory(store, "tiny", source, {{"job", {{"id", "job-7"}}}}).ok());
  absl::StatusOr<std::optional<uint64_t>> found = FindVersionOfJob(store, "tiny", "job-7");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, std::optional<uint64_t>(1));
  found = FindVersionOfJob(store, "tiny", "job-8");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, std::nullopt);
}

TEST(PublisherTest, UncommittedStagingIsRemovedAndNothingPublished) {
  testing::TempDir temp;
  const ModelStore store(temp.path() / "store");
  {
    auto staging = StagingVersion::Begin(store, "tiny");
    ASSERT_TRUE(staging.ok()) << staging.status();
    WriteFile(staging->dir() / "config.json", "{}");
  }
  EXPECT_TRUE(StagingDirs(store.ModelDir("tiny")).empty());
  EXPECT_TRUE(absl::IsNotFound(store.LatestVersion("tiny").status()));
}

TEST(PublisherTest, WriterKilledBetweenFilesPublishesNothingAndTheNextGetsTheNextNumber) {
  testing::TempDir temp;
  const ModelStore store(temp.path() / "store");
  const fs::path source = MakeSource(temp.path());
  ASSERT_TRUE(PublishDirectory(store, "tiny", source, {}).ok());

  const int child = RunInChild([&] {
    auto staging = StagingVersion::Begin(store, "tiny");
    if (!staging.ok()) return 1;
    if (!WriteFileContents(staging->dir() / "config.json", "{}").ok()) return 2;
    raise(SIGKILL);  // dies between files, before Commit
    return 3;
  });
  ASSERT_EQ(child, -SIGKILL);
  EXPECT_THAT(*store.ListVersions("tiny"), ElementsAre(1u));
  EXPECT_EQ(StagingDirs(store.ModelDir("tiny")).size(), 1u);

  // Readers ignore the leftover; the next quantizer start removes it; the next publish gets 2.
  auto removed = RemoveStaleStaging(store);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 1);
  EXPECT_TRUE(StagingDirs(store.ModelDir("tiny")).empty());
  auto next = PublishDirectory(store, "tiny", source, {});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, 2u);
}

TEST(PublisherTest, LiveStagingIsNotRemoved) {
  testing::TempDir temp;
  const ModelStore store(temp.path() / "store");
  auto staging = StagingVersion::Begin(store, "tiny");
  ASSERT_TRUE(staging.ok()) << staging.status();
  auto removed = RemoveStaleStaging(store);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 0);
  EXPECT_TRUE(fs::is_directory(staging->dir()));
}

TEST(PublisherTest, ConcurrentPublishersNeverShareAVersion) {
  testing::TempDir temp;
  const ModelStore store(temp.path() / "store");
  const fs::path source = MakeSource(temp.path());
  constexpr int kPublishers = 6;
  std::vector<pid_t> children;
  for (int i = 0; i < kPublishers; ++i) {
    const pid_t pid = fork();
    if (pid == 0) {
      auto version = PublishDirectory(store, "tiny", source, {{"publisher", i}});
      _exit(version.ok() ? 0 : 1);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_THAT(*store.ListVersions("tiny"), ElementsAre(1u, 2u, 3u, 4u, 5u, 6u));
  std::vector<int> publishers;
  for (uint64_t version = 1; version <= kPublishers; ++version) {
    auto manifest = VerifyVersionDir(store.VersionDir("tiny", version));
    ASSERT_TRUE(manifest.ok()) << manifest.status();
    publishers.push_back(manifest->json["publisher"].get<int>());
  }
  std::sort(publishers.begin(), publishers.end());
  EXPECT_THAT(publishers, ElementsAre(0, 1, 2, 3, 4, 5));
}

TEST(PublisherTest, FullDiskRemovesStagingAndSaysSo) {
  testing::TempDir temp;
  const ModelStore store(temp.path() / "store");
  const fs::path source = temp.path() / "big";
  fs::create_directories(source);
  WriteFile(source / "config.json", "{}");
  WriteFile(source / "model.safetensors", std::string(1 << 20, 'w'));
  ASSERT_TRUE(fs::create_directories(store.ModelDir("tiny")));

  // The child may write at most 64 KiB per file (a disk that fills up): writes fail with EFBIG.
  const int child = RunInChild([&] {
    signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{64 << 10, 64 << 10};
    setrlimit(RLIMIT_FSIZE, &limit);
    auto version = PublishDirectory(store, "tiny", source, {});
    if (version.ok()) return 1;
    const std::string message(version.status().message());
    if (message.find("nothing was published") == std::string::npos) return 2;
    if (message.find("model.safetensors") == std::string::npos) return 3;
    return 0;
  });
  EXPECT_EQ(child, 0);
  EXPECT_TRUE(StagingDirs(store.ModelDir("tiny")).empty());
  EXPECT_TRUE(absl::IsNotFound(store.LatestVersion("tiny").status()));
}

TEST(PublisherTest, ModelNamesThatEscapeTheRootAreRefused) {
  testing::TempDir temp;
  const ModelStore store(temp.path() / "store");
  for (const char* name : {"../escape", "a/b", "..", ".hidden", ""}) {
    auto staging = StagingVersion::Begin(store, name);
    EXPECT_TRUE(absl::IsInvalidArgument(staging.status())) << name;
  }
  EXPECT_FALSE(fs::exists(temp.path() / "escape"));
  EXPECT_FALSE(fs::exists(store.root()));
}

TEST(PublisherTest, AFlippedByteIsRefusedNamingTheFile) {
  testing::TempDir temp;
  const ModelStore store(temp.path() / "store");
  auto version = PublishDirectory(store, "tiny", MakeSource(temp.path()), {});
  ASSERT_TRUE(version.ok()) << version.status();
  const fs::path weights = store.VersionDir("tiny", *version) / "model.safetensors";
  {
    std::fstream file(weights, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(100);
    file.put('x');
  }
  auto verified = VerifyVersionDir(store.VersionDir("tiny", *version));
  EXPECT_TRUE(absl::IsFailedPrecondition(verified.status()));
  EXPECT_THAT(std::string(verified.status().message()), HasSubstr("model.safetensors"));
}

}  // namespace
}  // namespace nibble
