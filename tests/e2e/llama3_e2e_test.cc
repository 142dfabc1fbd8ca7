// A synthetic Llama-3-shaped model (tiny widths, Llama-3's 128,256-token vocabulary, BOS 128000, two EOS ids)
// with the real Llama-3 tokenizer.json (fetched by scripts/fetch-test-data.sh): AWQ-quantized by the quantizer's
// job on the shared dev text, published, served over loopback gRPC. Its greedy stream equals offline generation
// from the published version, and no streamed delta splits a UTF-8 character although byte-level tokens do.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include "engine/backends/backend_factory.h"
#include "engine/base/utf8.h"
#include "engine/io/model_loader.h"
#include "engine/io/model_writer.h"
#include "engine/serving/generation.h"
#include "engine/tokenizer/load_tokenizer.h"
#include "engine/tools/synth.h"
#include "quantizer/job.h"
#include "tests/e2e/server_test_support.h"

namespace nibble::e2e {
namespace {

namespace fs = std::filesystem;

constexpr char kLlama3[] = "llama3";
// Byte-level pieces of its output must be joined into whole characters: CJK, an emoji, an accent.
constexpr char kPrompt[] =
    "Once upon a time, a little \xE5\xB0\x8F\xE7\x8C\xAB found a \xF0\x9F\x8E\x88 by the caf\xC3\xA9.";

fs::path TestDataDir() {
  if (const char* dir = std::getenv("NIBBLE_TEST_DATA")) return dir;
  return NIBBLE_TEST_DATA_DIR;
}

// Writes the synthetic model with the real tokenizer into `dir`.
absl::Status WriteLlama3Model(const fs::path& dir, const fs::path& tokenizer_dir) {
  ModelConfig config = SynthPreset("tiny").value();
  config.vocab_size = 128256;
  config.bos_token_id = 128000;
  config.eos_token_ids = {128001, 128009};
  config.rope_theta = 500000.0;
  absl::StatusOr<HostModel> model = SynthesizeModel(config, /*seed=*/3);
  if (!model.ok()) return model.status();
  if (absl::Status written = WriteHostModel(dir, *model).status(); !written.ok()) return written;
  for (const char* file : {"tokenizer.json", "tokenizer_config.json"}) {
    std::error_code error;
    fs::copy_file(tokenizer_dir / file, dir / file, fs::copy_options::overwrite_existing, error);
    if (error) return absl::InternalError(absl::StrCat("copying ", file, ": ", error.message()));
  }
  return absl::OkStatus();
}

TEST(Llama3ServingTest, AQuantizedLlama3ModelStreamsItsOfflineTextInWholeCharacters) {
  const fs::path tokenizer_dir = TestDataDir() / "tokenizers" / "llama3";
  if (!fs::exists(tokenizer_dir / "tokenizer.json")) {
    GTEST_SKIP() << tokenizer_dir << " has no tokenizer.json (scripts/fetch-test-data.sh could not reach npm)";
  }
  const std::optional<fs::path> calibration = testing::SharedFile("data/tinystories-dev-50.txt");
  if (!calibration) GTEST_SKIP() << "tinystories-dev-50.txt not found in ../shared (set NIBBLE_SHARED)";
  testing::TempDir temp;
  const fs::path source = temp.path() / "llama3-source";
  ASSERT_TRUE(WriteLlama3Model(source, tokenizer_dir).ok());

  // AWQ through the quantizer's job, calibrated on the dev text as the Llama-3 tokenizer encodes it.
  QuantizeJobSpec spec;
  spec.model_dir = source;
  spec.calibration_path = *calibration;
  spec.calibration.separator = "<|endoftext|>";
  spec.calibration.n_samples = 8;
  spec.calibration.seqlen = 128;
  spec.quantize.method = QuantMethod::kAwq;
  spec.quantize.spec.group_size = 32;
  spec.store_root = temp.path() / "store";
  spec.model_name = kLlama3;
  auto backend = MakeBackend(BackendKind::kCpu).value();
  const absl::StatusOr<QuantizeJobResult> quantized = RunQuantizeJob(*backend, spec, {});
  ASSERT_TRUE(quantized.ok()) << quantized.status();
  ASSERT_TRUE(quantized->version.has_value());
  const fs::path dir = quantized->version_dir;

  // The reference: offline greedy generation on the published version.
  const HostModel host = LoadHostModel(dir).value();
  ASSERT_TRUE(host.layers[0].q.quantized());
  const auto tokenizer = LoadTokenizer(dir).value();
  auto model = Model::Create(*backend, host, ModelOptions{}).value();
  GenerationRequest offline;
  offline.prompt = kPrompt;
  offline.max_tokens = 64;
  offline.ignore_eos = true;
  offline.sampling.temperature = 0.0f;  // greedy
  const GenerationResult expected = Generate(*model, tokenizer.get(), offline).value();
  ASSERT_EQ(expected.tokens.size(), 64u);

  auto server = StartServer(LoopbackOptions(spec.store_root));
  ASSERT_TRUE(server.ok()) << server.status();
  v1::GenerateRequest request;
  request.set_model(kLlama3);
  request.set_text(kPrompt);
  request.set_max_tokens(64);
  request.set_ignore_eos(true);
  request.mutable_sampling()->set_temperature(0.0f);
  const StreamResult result = RunStream(*server->stub, request);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.tokens(), expected.tokens);
  EXPECT_EQ(result.text(), expected.text);
  EXPECT_EQ(result.text(), tokenizer->Decode(expected.tokens));
  for (const v1::TokenChunk& chunk : result.chunks) EXPECT_TRUE(IsValidUtf8(chunk.text())) << chunk.text();
  // Some generated token is part of a character on its own (so whole-character streaming was needed).
  EXPECT_TRUE(std::any_of(expected.tokens.begin(), expected.tokens.end(),
                          [&](int32_t id) { return !IsValidUtf8(tokenizer->TokenBytes(id)); }));
  ASSERT_TRUE(result.final.has_value());
  // This tokenizer.json's post-processor adds no BOS (bos_id -1), so neither does the server (nor calibration).
  EXPECT_EQ(result.final->usage().prompt_tokens(),
            tokenizer->Encode(kPrompt)->size() + (tokenizer->bos_id() >= 0 ? 1u : 0u));
}

}  // namespace
}  // namespace nibble::e2e
