#include "engine/io/model_store.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/shared_data.h"

namespace nibble {
namespace {

void WriteFile(const std::filesystem::path& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary) << contents;
}

// A version directory holding one weight file and a manifest that lists it.
void WriteVersion(const std::filesystem::path& dir, const std::string& contents) {
  std::filesystem::create_directories(dir);
  WriteFile(dir / "model.safetensors", contents);
  nlohmann::json manifest = {{"format_version", kManifestFormatVersion},
                             {"files",
                              {{{"path", "model.safetensors"},
                                {"bytes", contents.size()},
                                {"sha256", *Sha256OfFile(dir / "model.safetensors")}}}}};
  WriteFile(dir / kManifestFileName, manifest.dump());
}

TEST(ModelStoreTest, Sha256MatchesKnownVectors) {
  testing::TempDir dir;
  WriteFile(dir.path() / "abc", "abc");
  WriteFile(dir.path() / "empty", "");
  EXPECT_EQ(*Sha256OfFile(dir.path() / "abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(*Sha256OfFile(dir.path() / "empty"), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256OfFile(dir.path() / "missing").status().code(), absl::StatusCode::kNotFound);
}

TEST(ModelStoreTest, NamesThatCouldEscapeTheRootAreRefused) {
  for (const char* bad : {"", "..", ".hidden", "a/b", "../etc", "a\\b", "name with space", "ü"}) {
    EXPECT_EQ(ValidateModelName(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(ValidateModelName(std::string(65, 'a')).code(), absl::StatusCode::kInvalidArgument);
  for (const char* good : {"llama-2-7b", "stories260K", "qwen2.5_0.5b", "a"}) EXPECT_TRUE(ValidateModelName(good).ok());
}

TEST(ModelStoreTest, ListsCompleteVersionsAndIgnoresEverythingElse) {
  testing::TempDir root;
  ModelStore store(root.path());
  WriteVersion(root.path() / "m" / "1", "one");
  WriteVersion(root.path() / "m" / "3", "three");
  std::filesystem::create_directories(root.path() / "m" / ".staging-job7");
  std::filesystem::create_directories(root.path() / "m" / "007");  // leading zero: not a version
  WriteFile(root.path() / "m" / "2", "a file, not a directory");
  std::filesystem::create_directories(root.path() / ".trash");
  EXPECT_EQ(*store.ListModels(), std::vector<std::string>{"m"});
  EXPECT_EQ(*store.ListVersions("m"), (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(*store.LatestVersion("m"), 3u);
  EXPECT_EQ(*store.Resolve("m"), root.path() / "m" / "3");
  EXPECT_EQ(*store.Resolve("m:1"), root.path() / "m" / "1");
  EXPECT_EQ(store.Resolve("m:2").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store.Resolve("m:x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store.Resolve("../m:1").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store.ListVersions("absent").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(ModelStore(root.path() / "no-such-root").ListModels()->empty());
}

TEST(ModelStoreTest, AFlippedByteIsRefusedNamingTheFile) {
  testing::TempDir root;
  const std::filesystem::path dir = root.path() / "m" / "1";
  WriteVersion(dir, "weights");
  ASSERT_TRUE(VerifyVersionDir(dir).ok());
  WriteFile(dir / "model.safetensors", "weighTs");
  const auto verified = VerifyVersionDir(dir);
  ASSERT_EQ(verified.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(verified.status().message().find("model.safetensors"), absl::string_view::npos) << verified.status();
  std::filesystem::remove(dir / "model.safetensors");
  EXPECT_EQ(VerifyVersionDir(dir).status().code(), absl::StatusCode::kFailedPrecondition);
  WriteFile(dir / kManifestFileName,
            "{\"format_version\": 1, \"files\": [{\"path\": \"../x\", \"bytes\": 1, \"sha256\": \"\"}]}");
  EXPECT_EQ(ReadManifest(dir).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace nibble
