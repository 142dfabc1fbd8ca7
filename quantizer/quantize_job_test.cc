// End to end on stories260K (a real trained model): AWQ and RTN jobs publish artifacts that the engine loads,
// with the quality the independent reference reports (issue 3), and bad jobs publish nothing.
#include <cmath>
#include <limits>

#include "engine/base/file_io.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/io/model_loader.h"
#include "engine/io/model_store.h"
#include "engine/io/model_writer.h"
#include "engine/tools/llama2c.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantizer/job.h"
#include "tests/support/shared_data.h"

namespace nibble {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Reference perplexities (numpy implementation of the spec; issue 3) on tinystories-dev-50, ctx 512.
constexpr double kFp32Perplexity = 4.0860;
constexpr double kRtnW4G32 = 4.4532;
constexpr double kAwqBothW4G32 = 4.3850;

class QuantizeJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto model = testing::SharedFile("models/stories260K/stories260K.bin");
    const auto tokenizer = testing::SharedFile("models/stories260K/tok512.model");
    const auto text = testing::SharedFile("data/tinystories-dev-50.txt");
    if (!model || !tokenizer || !text)
      GTEST_SKIP() << "stories260K or tinystories-dev-50.txt not found (set NIBBLE_SHARED)";
    text_ = *text;
    source_ = temp_.path() / "stories260K";
    ASSERT_TRUE(ImportLlama2c(*model, *tokenizer, source_).ok());
  }

  QuantizeJobSpec Spec(QuantMethod method, int group_size) const {
    QuantizeJobSpec spec;
    spec.model_dir = source_;
    spec.calibration_path = text_;
    spec.calibration.separator = "<|endoftext|>";
    spec.eval_text = text_;
    spec.quantize.method = method;
    spec.quantize.spec.group_size = group_size;
    spec.store_root = temp_.path() / "store";
    spec.model_name = "stories260K";
    return spec;
  }

  absl::StatusOr<QuantizeJobResult> Run(const QuantizeJobSpec& spec) {
    return RunQuantizeJob(*backend_, spec, {.log = [this](const std::string& line) {
      std::cout << line << std::endl;
      log_.push_back(line);
    }});
  }

  // Writes `host` (fp32) with the source's tokenizer into the model folder `dir`.
  void WriteModelCopy(const HostModel& host, const fs::path& dir) {
    ModelWriteOptions options;
    options.float_dtype = DType::kF32;
    ASSERT_TRUE(WriteHostModel(dir, host, options).ok());
    fs::copy_file(source_ / "tokenizer.model", dir / "tokenizer.model");
  }

  // The store must hold no version and no staging directory for the model.
  void ExpectNothingPublished() {
    const fs::path model_dir = temp_.path() / "store" / "stories260K";
    if (!fs::exists(model_dir)) return;
    EXPECT_TRUE(fs::is_empty(model_dir)) << model_dir;
  }

  testing::TempDir temp_;
  fs::path source_;
  fs::path text_;
  std::unique_ptr<Backend> backend_ = MakeCpuBackend();
  std::vector<std::string> log_;
};

TEST_F(QuantizeJobTest, AwqBeatsRtnAndMatchesTheReferenceAtW4G32) {
  auto rtn = Run(Spec(QuantMethod::kRtn, 32));
  ASSERT_TRUE(rtn.ok()) << rtn.status();
  auto awq = Run(Spec(QuantMethod::kAwq, 32));
  ASSERT_TRUE(awq.ok()) << awq.status();

  EXPECT_NEAR(*rtn->source_perplexity, kFp32Perplexity, kFp32Perplexity * 5e-4);
  EXPECT_EQ(rtn->eval_tokens, 21725);
  // The artifacts store fp16 scales and fp16 embeddings, the reference evaluates in fp32.
  EXPECT_NEAR(*rtn->quantized_perplexity, kRtnW4G32, kRtnW4G32 * 0.005);
  EXPECT_NEAR(*awq->quantized_perplexity, kAwqBothW4G32, kAwqBothW4G32 * 0.01);
  EXPECT_LT(*awq->quantized_perplexity, *rtn->quantized_perplexity);

  // Published as versions 1 (RTN) and 2 (AWQ), verified, with the figures in the manifest.
  ASSERT_EQ(rtn->version, 1u);
  ASSERT_EQ(awq->version, 2u);
  auto manifest = VerifyVersionDir(awq->version_dir);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->json["quantization"]["method"], "awq");
  EXPECT_EQ(manifest->json["quantization"]["group_size"], 32);
  EXPECT_EQ(manifest->json["quantization"]["scale_search"], "both");
  EXPECT_DOUBLE_EQ(manifest->json["quality"]["perplexity_quantized"].get<double>(), *awq->quantized_perplexity);
  EXPECT_EQ(manifest->json["calibration"]["blocks"], 27);
  EXPECT_EQ(manifest->json["layers"].size(), 5u);
  EXPECT_EQ(manifest->json["layers"][0]["scale_groups"].size(), 3u);  // GQA: no v -> o group
  // An AutoAWQ GEMM directory: quantization_config, qweight/qzeros/scales, tokenizer.
  auto loaded = LoadHostModel(awq->version_dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->config.awq.has_value());
  EXPECT_EQ(loaded->config.awq->group_size, 32);
  EXPECT_TRUE(loaded->layers[0].down.quantized());
  EXPECT_TRUE(fs::exists(awq->version_dir / "tokenizer.model"));
  // One progress line per block.
  EXPECT_EQ(
      std::count_if(log_.begin(), log_.end(), [](const std::string& line) { return line.rfind("block ", 0) == 0; }),
      10);
}

TEST_F(QuantizeJobTest, FakeQuantW3IsEvaluatedWithoutPublishing) {
  QuantizeJobSpec spec = Spec(QuantMethod::kRtn, 32);
  spec.quantize.spec.bits = 3;
  spec.quantize.pack = false;
  auto rtn = Run(spec);
  ASSERT_TRUE(rtn.ok()) << rtn.status();
  EXPECT_FALSE(rtn->version.has_value());
  EXPECT_NEAR(*rtn->quantized_perplexity, 7.1894, 7.1894 * 0.005);
  ExpectNothingPublished();
}

TEST_F(QuantizeJobTest, NonFiniteWeightsAreRefusedNamingTheTensor) {
  auto host = LoadHostModel(source_);
  ASSERT_TRUE(host.ok());
  std::vector<float> weight = std::get<HostTensor>(host->layers[2].up.weight).ToFloats();
  weight[17] = std::numeric_limits<float>::quiet_NaN();
  host->layers[2].up.weight = HostTensor::FromFloats(weight, std::get<HostTensor>(host->layers[2].up.weight).shape);
  const fs::path poisoned = temp_.path() / "poisoned";
  ASSERT_NO_FATAL_FAILURE(WriteModelCopy(*host, poisoned));
  for (QuantMethod method : {QuantMethod::kAwq, QuantMethod::kRtn}) {
    QuantizeJobSpec spec = Spec(method, 32);
    spec.model_dir = poisoned;
    auto result = Run(spec);
    EXPECT_TRUE(absl::IsInvalidArgument(result.status())) << result.status();
    EXPECT_THAT(std::string(result.status().message()), HasSubstr("model.layers.2.mlp.up_proj.weight"));
  }
  ExpectNothingPublished();
}

TEST_F(QuantizeJobTest, NonFiniteEmbeddingIsRefusedNamingTheTensor) {
  auto host = LoadHostModel(source_);
  ASSERT_TRUE(host.ok());
  std::vector<float> embedding = host->embedding.ToFloats();
  embedding[5] = std::numeric_limits<float>::infinity();
  host->embedding = HostTensor::FromFloats(embedding, host->embedding.shape);
  const fs::path poisoned = temp_.path() / "poisoned-embedding";
  ASSERT_NO_FATAL_FAILURE(WriteModelCopy(*host, poisoned));
  QuantizeJobSpec spec = Spec(QuantMethod::kAwq, 32);
  spec.model_dir = poisoned;
  auto result = Run(spec);
  EXPECT_TRUE(absl::IsInvalidArgument(result.status())) << result.status();
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("model.embed_tokens.weight"));
  ExpectNothingPublished();
}

TEST_F(QuantizeJobTest, BadOptionsAreRefusedAndPublishNothing) {
  QuantizeJobSpec three_bits = Spec(QuantMethod::kRtn, 32);
  three_bits.quantize.spec.bits = 3;  // an artifact must be 4-bit
  auto result = Run(three_bits);
  EXPECT_TRUE(absl::IsInvalidArgument(result.status()));
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("4-bit"));

  auto too_wide = Run(Spec(QuantMethod::kRtn, 128));  // stories260K's Linears have 64 inputs
  EXPECT_TRUE(absl::IsInvalidArgument(too_wide.status()));
  EXPECT_THAT(std::string(too_wide.status().message()), HasSubstr("group size 128"));

  QuantizeJobSpec odd_group = Spec(QuantMethod::kRtn, 48);
  EXPECT_THAT(std::string(Run(odd_group).status().message()), HasSubstr("32, 64 or 128"));

  QuantizeJobSpec escape = Spec(QuantMethod::kRtn, 32);
  escape.model_name = "../outside";
  EXPECT_TRUE(absl::IsInvalidArgument(Run(escape).status()));
  EXPECT_FALSE(fs::exists(temp_.path() / "outside"));

  QuantizeJobSpec empty_calibration = Spec(QuantMethod::kAwq, 32);
  empty_calibration.calibration_path = temp_.path() / "empty.txt";
  ASSERT_TRUE(WriteFileContents(empty_calibration.calibration_path, "The end.").ok());
  auto no_block = Run(empty_calibration);
  EXPECT_TRUE(absl::IsInvalidArgument(no_block.status()));
  EXPECT_THAT(std::string(no_block.status().message()), HasSubstr("no block"));
  ExpectNothingPublished();
}

TEST_F(QuantizeJobTest, UnsupportedArchitectureIsRefused) {
  const fs::path other = temp_.path() / "gpt2";
  fs::create_directories(other);
  fs::copy(source_, other, fs::copy_options::recursive);
  auto config = ReadTextFile(other / "config.json");
  ASSERT_TRUE(config.ok());
  std::string text = *config;
  text.replace(text.find("LlamaForCausalLM"), std::string("LlamaForCausalLM").size(), "GPT2LMHeadModel");
  ASSERT_TRUE(WriteFileContents(other / "config.json", text).ok());
  QuantizeJobSpec spec = Spec(QuantMethod::kRtn, 32);
  spec.model_dir = other;
  auto result = Run(spec);
  EXPECT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("GPT2LMHeadModel"));
  ExpectNothingPublished();
}

}  // namespace
}  // namespace nibble
