// The quantizer on the GPU, against the CPU (skips without a GPU):
// - stories260K's AWQ w4 g32 artifact, made by the quantizer and loaded back from the store, runs on the CUDA
//   backend (W4A16 kernels) with perplexity within 0.5% of the CPU backend's on the same artifact; both greedy
//   texts are printed;
// - calibrated on the CUDA backend (fp16 activations, fp32 losses), stories260K AWQ w4 g32 and g64 choose the
//   same scale ratio as the CPU job in at least 90% of the scale groups, and the artifacts' perplexities (both
//   measured on the CPU backend) are within 0.3%.
#include <gtest/gtest.h>

#include <iostream>

#include "absl/strings/str_cat.h"
#include "engine/base/file_io.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/io/model_loader.h"
#include "engine/tokenizer/load_tokenizer.h"
#include "engine/tools/documents.h"
#include "engine/tools/llama2c.h"
#include "quantizer/job.h"
#include "tests/support/model_checks.h"
#include "tests/support/shared_data.h"

namespace nibble {
namespace {

// Runs the AWQ job for stories260K at `group_size` on `backend` (named `label` in the model name and the log),
// publishing into `store`.
absl::StatusOr<QuantizeJobResult> QuantizeStories(Backend& backend, const std::string& label,
                                                  const std::filesystem::path& source,
                                                  const std::filesystem::path& text, int group_size,
                                                  const std::filesystem::path& store) {
  QuantizeJobSpec spec;
  spec.model_dir = source;
  spec.calibration_path = text;
  spec.calibration.separator = "<|endoftext|>";
  spec.quantize.spec.group_size = group_size;
  spec.store_root = store;
  spec.model_name = absl::StrCat("stories260K-g", group_size, "-", label);
  return RunQuantizeJob(backend, spec,
                        {.log = [&](const std::string& line) { std::cout << label << ": " << line << "\n"; }});
}

// stories260K imported from llama2.c, its tokenized dev text, and both backends.
class AwqGpuParityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA GPU visible: skipping the quantizer's GPU parity tests";
    NIBBLE_REQUIRE_SHARED(checkpoint, "models/stories260K/stories260K.bin");
    NIBBLE_REQUIRE_SHARED(tokenizer_file, "models/stories260K/tok512.model");
    NIBBLE_REQUIRE_SHARED(text_file, "data/tinystories-dev-50.txt");
    text_file_ = text_file;
    ASSERT_TRUE(ImportLlama2c(checkpoint, tokenizer_file, source()).ok());
    auto tokenizer = LoadTokenizer(source());
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = std::move(*tokenizer);
    const auto corpus = ReadTextFile(text_file);
    ASSERT_TRUE(corpus.ok()) << corpus.status();
    auto documents = TokenizeDocuments(*tokenizer_, SplitDocuments(*corpus, "<|endoftext|>"));
    ASSERT_TRUE(documents.ok()) << documents.status();
    documents_ = std::move(*documents);
    auto cuda = MakeCudaBackend(0);
    ASSERT_TRUE(cuda.ok()) << cuda.status();
    cuda_ = std::move(*cuda);
  }
  std::filesystem::path source() const { return temp_.path() / "source"; }
  std::filesystem::path store() const { return temp_.path() / "store"; }
  testing::PerplexityAndGreedy Measure(Backend& backend, const std::filesystem::path& version_dir) {
    auto artifact = LoadHostModel(version_dir);
    EXPECT_TRUE(artifact.ok()) << artifact.status();
    if (!artifact.ok()) return {};
    return testing::MeasurePerplexityAndGreedy(backend, *artifact, *tokenizer_, documents_);
  }

  testing::TempDir temp_;
  std::filesystem::path text_file_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<std::vector<int32_t>> documents_;
  std::unique_ptr<Backend> cpu_ = MakeCpuBackend();
  std::unique_ptr<Backend> cuda_;
};

TEST_F(AwqGpuParityTest, Stories260kAwqArtifactMatchesTheCpu) {
  auto job = QuantizeStories(*cpu_, "cpu", source(), text_file_, 32, store());
  ASSERT_TRUE(job.ok()) << job.status();
  const testing::PerplexityAndGreedy on_cpu = Measure(*cpu_, job->version_dir);
  const testing::PerplexityAndGreedy on_cuda = Measure(*cuda_, job->version_dir);
  std::cout << "stories260K AWQ w4 g32 perplexity: cpu " << on_cpu.perplexity << ", cuda " << on_cuda.perplexity
            << "\ngreedy (cpu):  " << on_cpu.greedy << "\ngreedy (cuda): " << on_cuda.greedy << "\n";
  EXPECT_EQ(on_cuda.predicted_tokens, 21725);
  EXPECT_NEAR(on_cuda.perplexity, on_cpu.perplexity, on_cpu.perplexity * 0.005);
}

// The scale ratio (formula and alpha) each scale group of `a` and `b` chose, compared: how many are equal, of how
// many; the differences are printed.
std::pair<int, int> SameScaleChoices(const nlohmann::json& a, const nlohmann::json& b) {
  int same = 0;
  int groups = 0;
  for (size_t l = 0; l < a.size() && l < b.size(); ++l) {
    const nlohmann::json& a_groups = a[l].at("scale_groups");
    const nlohmann::json& b_groups = b[l].at("scale_groups");
    for (size_t g = 0; g < a_groups.size() && g < b_groups.size(); ++g) {
      ++groups;
      if (a_groups[g].at("formula") == b_groups[g].at("formula") &&
          a_groups[g].at("alpha") == b_groups[g].at("alpha")) {
        ++same;
      } else {
        std::cout << "layer " << l << " " << a_groups[g].at("layers") << ": cpu " << a_groups[g].at("formula") << "@"
                  << a_groups[g].at("alpha") << ", cuda " << b_groups[g].at("formula") << "@" << b_groups[g].at("alpha")
                  << "\n";
      }
    }
  }
  return {same, groups};
}

TEST_F(AwqGpuParityTest, CalibrationOnTheGpuChoosesTheCpuScales) {
  for (int group_size : {32, 64}) {
    SCOPED_TRACE(absl::StrCat("w4 g", group_size));
    auto on_cpu = QuantizeStories(*cpu_, "cpu", source(), text_file_, group_size, store());
    ASSERT_TRUE(on_cpu.ok()) << on_cpu.status();
    auto on_cuda = QuantizeStories(*cuda_, "cuda", source(), text_file_, group_size, store());
    ASSERT_TRUE(on_cuda.ok()) << on_cuda.status();
    const nlohmann::json& cpu_layers = on_cpu->manifest.at("layers");
    const nlohmann::json& cuda_layers = on_cuda->manifest.at("layers");
    ASSERT_EQ(cpu_layers.size(), cuda_layers.size());
    const auto [same, groups] = SameScaleChoices(cpu_layers, cuda_layers);
    std::cout << "g" << group_size << ": " << same << " of " << groups << " scale groups chose the same ratio\n";
    EXPECT_GT(groups, 0);
    EXPECT_GE(same * 10, groups * 9);
    // Both artifacts measured the same way, on the CPU backend.
    const double cpu_ppl = Measure(*cpu_, on_cpu->version_dir).perplexity;
    const double cuda_ppl = Measure(*cpu_, on_cuda->version_dir).perplexity;
    std::cout << "g" << group_size << " artifact perplexity: calibrated on the cpu " << cpu_ppl << ", on cuda "
              << cuda_ppl << "\n";
    EXPECT_NEAR(cuda_ppl, cpu_ppl, cpu_ppl * 0.003);
  }
}

}  // namespace
}  // namespace nibble
