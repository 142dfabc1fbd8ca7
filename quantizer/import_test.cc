// ImportModelDirectory on synthetic Hugging Face directories: dense and AutoAWQ ones enter the store as
// verified versions; a bad one (NaN weight, no tokenizer, bad name, missing directory) is refused naming the
// problem, and nothing is published.
#include "quantizer/import.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

#include "engine/io/model_loader.h"
#include "engine/io/model_writer.h"
#include "engine/tools/synth.h"
#include "tests/support/shared_data.h"

namespace nibble {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class ImportTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(WriteSynthModelDir(source(), "tiny", 1).ok()); }
  fs::path source() const { return temp_.path() / "source"; }
  ModelStore store() const { return ModelStore(temp_.path() / "store"); }
  // Nothing of `model` was published: no version, and no staging directory left behind.
  void ExpectNothingPublished(const std::string& model) const {
    EXPECT_FALSE(store().LatestVersion(model).ok());
    const fs::path dir = temp_.path() / "store" / model;
    if (fs::exists(dir)) EXPECT_TRUE(fs::is_empty(dir)) << dir;
  }
  testing::TempDir temp_;
};

TEST_F(ImportTest, ADenseModelBecomesAVerifiedVersion) {
  const absl::StatusOr<uint64_t> version = ImportModelDirectory(store(), "tiny", source());
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(*version, 1u);
  const fs::path dir = store().VersionDir("tiny", 1);
  ASSERT_TRUE(VerifyVersionDir(dir).ok());
  const absl::StatusOr<Manifest> manifest = ReadManifest(dir);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->json["source"]["imported"], true);
  EXPECT_FALSE(manifest->json.contains("quantization"));
  EXPECT_EQ(ImportModelDirectory(store(), "tiny", source()).value_or(0), 2u) << "the next import is the next version";
}

TEST_F(ImportTest, AnAwqCheckpointKeepsItsLayoutAndRecordsItsQuantization) {
  const HostModel quantized = SynthesizeQuantizedModel("tiny", 1, /*group_size=*/32).value();
  ASSERT_TRUE(WriteHostModel(source(), quantized).ok());
  const absl::StatusOr<uint64_t> version = ImportModelDirectory(store(), "tiny-awq", source());
  ASSERT_TRUE(version.ok()) << version.status();
  const fs::path dir = store().VersionDir("tiny-awq", *version);
  const absl::StatusOr<Manifest> manifest = ReadManifest(dir);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->json["quantization"]["method"], "awq");
  EXPECT_EQ(manifest->json["quantization"]["group_size"], 32);
  EXPECT_EQ(manifest->json["quantization"]["bits"], 4);
  const absl::StatusOr<HostModel> loaded = LoadHostModel(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->layers[0].q.quantized());
}

TEST_F(ImportTest, ANanWeightIsRefusedNamingTheTensorAndNothingIsPublished) {
  HostModel model = SynthesizeModel("tiny", 1).value();
  HostTensor& weight = std::get<HostTensor>(model.layers[0].q.weight);
  std::vector<float> values = weight.ToFloats();
  values[3] = std::numeric_limits<float>::quiet_NaN();
  weight = HostTensor::FromFloats(std::move(values), weight.shape);
  ASSERT_TRUE(WriteHostModel(source(), model).ok());
  const absl::StatusOr<uint64_t> version = ImportModelDirectory(store(), "tiny", source());
  EXPECT_EQ(version.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(version.status().message(), HasSubstr("model.layers.0.self_attn.q_proj.weight"));
  EXPECT_THAT(version.status().message(), HasSubstr(source().string()));
  ExpectNothingPublished("tiny");
}

TEST_F(ImportTest, BadSourcesAndNamesAreRefusedBeforeAnythingIsPublished) {
  EXPECT_EQ(ImportModelDirectory(store(), "../escape", source()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ImportModelDirectory(store(), "tiny", temp_.path() / "absent").status().code(),
            absl::StatusCode::kNotFound);
  fs::remove(source() / "tokenizer.model");
  const absl::StatusOr<uint64_t> untokenized = ImportModelDirectory(store(), "tiny", source());
  EXPECT_FALSE(untokenized.ok());
  EXPECT_THAT(untokenized.status().message(), HasSubstr("tokenizer"));
  fs::remove(source() / "config.json");
  EXPECT_FALSE(ImportModelDirectory(store(), "tiny", source()).ok());
  ExpectNothingPublished("tiny");
}

}  // namespace
}  // namespace nibble
