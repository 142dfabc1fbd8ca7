// stories260K's AWQ w4 g32 artifact, made by the quantizer and loaded back from the store, runs on the CUDA
// backend (W4A16 kernels) with perplexity within 0.5% of the CPU backend's on the same artifact; both greedy
// texts are printed. Skips without a GPU.
#include <gtest/gtest.h>

#include <iostream>

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

TEST(AwqGpuParityTest, Stories260kAwqArtifactMatchesTheCpu) {
  if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA GPU visible: skipping the AWQ artifact GPU parity test";
  NIBBLE_REQUIRE_SHARED(checkpoint, "models/stories260K/stories260K.bin");
  NIBBLE_REQUIRE_SHARED(tokenizer_file, "models/stories260K/tok512.model");
  NIBBLE_REQUIRE_SHARED(text_file, "data/tinystories-dev-50.txt");
  testing::TempDir temp;
  ASSERT_TRUE(ImportLlama2c(checkpoint, tokenizer_file, temp.path() / "source").ok());
  std::unique_ptr<Backend> cpu = MakeCpuBackend();
  QuantizeJobSpec spec;
  spec.model_dir = temp.path() / "source";
  spec.calibration_path = text_file;
  spec.calibration.separator = "<|endoftext|>";
  spec.quantize.spec.group_size = 32;
  spec.store_root = temp.path() / "store";
  spec.model_name = "stories260K-awq";
  auto job = RunQuantizeJob(*cpu, spec, [](const std::string& line) { std::cout << line << "\n"; });
  ASSERT_TRUE(job.ok()) << job.status();

  auto artifact = LoadHostModel(job->version_dir);
  ASSERT_TRUE(artifact.ok()) << artifact.status();
  auto tokenizer = LoadTokenizer(job->version_dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const auto corpus = ReadTextFile(text_file);
  ASSERT_TRUE(corpus.ok());
  const auto documents = TokenizeDocuments(**tokenizer, SplitDocuments(*corpus, "<|endoftext|>"));
  ASSERT_TRUE(documents.ok());
  auto cuda = MakeCudaBackend(0);
  ASSERT_TRUE(cuda.ok()) << cuda.status();
  const testing::PerplexityAndGreedy on_cpu =
      testing::MeasurePerplexityAndGreedy(*cpu, *artifact, **tokenizer, *documents);
  const testing::PerplexityAndGreedy on_cuda =
      testing::MeasurePerplexityAndGreedy(**cuda, *artifact, **tokenizer, *documents);
  std::cout << "stories260K AWQ w4 g32 perplexity: cpu " << on_cpu.perplexity << ", cuda " << on_cuda.perplexity
            << "\ngreedy (cpu):  " << on_cpu.greedy << "\ngreedy (cuda): " << on_cuda.greedy << "\n";
  EXPECT_EQ(on_cuda.predicted_tokens, 21725);
  EXPECT_NEAR(on_cuda.perplexity, on_cpu.perplexity, on_cpu.perplexity * 0.005);
}

}  // namespace
}  // namespace nibble
