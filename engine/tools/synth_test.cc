#include "engine/tools/synth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

#include "engine/io/model_layout.h"
#include "engine/io/model_loader.h"
#include "engine/tokenizer/synth_tokenizer.h"
#include "tests/support/sentencepiece_reference.h"
#include "tests/support/shared_data.h"

namespace nibble {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::byte> BytesOf(const HostTensor& tensor) { return {tensor.data, tensor.data + tensor.bytes()}; }

TEST(SynthPresetTest, PresetsHaveTheShapesOfTheRealModels) {
  EXPECT_THAT(SynthPresetNames(), ElementsAre("tiny", "llama2-7b", "tinyllama-1.1b", "mistral-7b", "qwen2-0.5b"));
  const ModelConfig tiny = *SynthPreset("tiny");
  EXPECT_EQ(tiny.hidden_size, 64);
  EXPECT_EQ(tiny.num_layers, 2);
  EXPECT_EQ(tiny.num_heads, 4);
  EXPECT_EQ(tiny.num_kv_heads, 2);
  EXPECT_EQ(tiny.head_dim, 16);
  EXPECT_EQ(tiny.intermediate_size, 172);
  EXPECT_EQ(tiny.vocab_size, 512);
  EXPECT_EQ(tiny.max_position_embeddings, 512);

  const ModelConfig llama = *SynthPreset("llama2-7b");
  EXPECT_EQ(llama.hidden_size, 4096);
  EXPECT_EQ(llama.num_layers, 32);
  EXPECT_EQ(llama.num_kv_heads, 32);
  EXPECT_EQ(llama.intermediate_size, 11008);
  EXPECT_EQ(llama.vocab_size, 32000);
  EXPECT_EQ(llama.max_position_embeddings, 4096);
  EXPECT_EQ(llama.rms_norm_eps, 1e-5);
  EXPECT_FALSE(llama.tie_word_embeddings);

  const ModelConfig tinyllama = *SynthPreset("tinyllama-1.1b");
  EXPECT_EQ(tinyllama.hidden_size, 2048);
  EXPECT_EQ(tinyllama.num_layers, 22);
  EXPECT_EQ(tinyllama.num_kv_heads, 4);
  EXPECT_EQ(tinyllama.intermediate_size, 5632);

  const ModelConfig mistral = *SynthPreset("mistral-7b");
  EXPECT_EQ(mistral.architecture, Architecture::kMistral);
  EXPECT_EQ(mistral.num_kv_heads, 8);
  EXPECT_EQ(mistral.intermediate_size, 14336);

  const ModelConfig qwen = *SynthPreset("qwen2-0.5b");
  EXPECT_EQ(qwen.architecture, Architecture::kQwen2);
  EXPECT_EQ(qwen.hidden_size, 896);
  EXPECT_EQ(qwen.head_dim, 64);
  EXPECT_TRUE(qwen.qkv_bias);
  EXPECT_FALSE(qwen.o_bias);
  EXPECT_TRUE(qwen.tie_word_embeddings);
  EXPECT_EQ(qwen.vocab_size, 151936);

  for (const std::string& name : SynthPresetNames()) {  // each survives the config parser
    EXPECT_TRUE(ParseModelConfig(ModelConfigToJson(*SynthPreset(name)), name).ok()) << name;
  }
  const auto unknown = SynthPreset("gpt-5");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.status().message(), AllOf(HasSubstr("\"gpt-5\""), HasSubstr("tiny, llama2-7b")));
}

TEST(SynthModelTest, DeterministicInTheSeedAndScaledLikeAnInitialisedModel) {
  const auto a = SynthesizeModel("tiny", 7);
  const auto b = SynthesizeModel("tiny", 7);
  const auto c = SynthesizeModel("tiny", 8);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  ASSERT_EQ(a->layers.size(), 2u);
  for (const DecoderLinear& slot : DecoderLinears(a->config)) {
    const HostLinear& linear = a->layers[1].*slot.member;
    const HostTensor& weight = std::get<HostTensor>(linear.weight);
    EXPECT_EQ(weight.dtype, DType::kF16);
    EXPECT_EQ(weight.shape, (Shape{slot.out_features, slot.in_features})) << slot.module;
    EXPECT_EQ(BytesOf(weight), BytesOf(std::get<HostTensor>((b->layers[1].*slot.member).weight)));
    EXPECT_NE(BytesOf(weight), BytesOf(std::get<HostTensor>((c->layers[1].*slot.member).weight)));
    EXPECT_FALSE(linear.bias.has_value());
  }
  EXPECT_EQ(BytesOf(a->embedding), BytesOf(b->embedding));
  EXPECT_NE(a->lm_head.data, a->embedding.data);  // tiny is untied

  // Mean ~0, standard deviation ~0.02 over the 32768 embedding values; no two layers alike.
  const std::vector<float> values = a->embedding.ToFloats();
  double sum = 0, squares = 0;
  for (float v : values) {
    sum += v;
    squares += double{v} * v;
  }
  const double mean = sum / values.size();
  const double stddev = std::sqrt(squares / values.size() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.001);
  EXPECT_NEAR(stddev, 0.02, 0.001);
  EXPECT_NE(BytesOf(std::get<HostTensor>(a->layers[0].q.weight)), BytesOf(std::get<HostTensor>(a->layers[1].q.weight)));
  for (float v : a->layers[0].attention_norm.ToFloats()) ASSERT_EQ(v, 1.0f);
  for (float v : a->final_norm.ToFloats()) ASSERT_EQ(v, 1.0f);
}

TEST(SynthModelTest, QuantizedLinearsArePackedAwqWithUnusedNibblesZero) {
  const auto model = SynthesizeQuantizedModel("tiny", 3, 64);
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(model->config.awq.has_value());
  EXPECT_EQ(model->config.awq->group_size, 64);
  const auto again = SynthesizeQuantizedModel("tiny", 3, 64);

  // gate: in 64, out 172 = 21 words + 4 columns, so nibbles holding columns 4..7 of each row's last word
  // (nibbles 2, 3, 6, 7 by AWQ's order 0, 2, 4, 6, 1, 3, 5, 7) are zero, and the others are not all zero.
  const HostLinear& gate = model->layers[0].gate;
  ASSERT_TRUE(gate.quantized());
  const AwqWeight& awq = std::get<AwqWeight>(gate.weight);
  EXPECT_EQ(awq.group_size, 64);
  EXPECT_EQ(awq.qweight.dtype, DType::kI32);
  EXPECT_EQ(awq.qweight.shape, (Shape{64, 22}));
  EXPECT_EQ(awq.qzeros.shape, (Shape{1, 22}));
  EXPECT_EQ(awq.scales.shape, (Shape{1, 172}));
  EXPECT_EQ(awq.scales.dtype, DType::kF16);
  const auto words = awq.qweight.span<uint32_t>();
  uint32_t used_bits = 0;
  for (int64_t row = 0; row < 64; ++row) {
    const uint32_t last = words[row * 22 + 21];
    EXPECT_EQ(last & 0xFF00FF00u, 0u) << row;
    used_bits |= last;
  }
  EXPECT_EQ(used_bits, 0x00FF00FFu);
  EXPECT_EQ(std::get<AwqWeight>(again->layers[0].gate.weight).qweight.span<uint32_t>()[5], words[5]);

  // Codes are uniform over 0..15 (mean 7.5), scales within [0.002, 0.02] (to fp16 precision).
  double code_sum = 0;
  int64_t code_count = 0;
  const auto down_words = std::get<AwqWeight>(model->layers[1].down.weight).qweight.span<uint32_t>();
  for (uint32_t word : down_words) {
    for (int nibble = 0; nibble < 8; ++nibble) code_sum += (word >> (4 * nibble)) & 0xF;
    code_count += 8;
  }
  EXPECT_NEAR(code_sum / code_count, 7.5, 0.2);
  for (float scale : awq.scales.ToFloats()) {
    ASSERT_GE(scale, 0.002f * 0.999f);
    ASSERT_LE(scale, 0.02f * 1.001f);
  }
  for (float w : LinearWeightToFloats(model->layers[1].down)) ASSERT_LE(std::fabs(w), 15 * 0.0201f);
  // Norms and embeddings stay dense fp16.
  EXPECT_EQ(model->embedding.dtype, DType::kF16);
  EXPECT_TRUE(model->layers[0].q.quantized());
}

TEST(SynthModelTest, Qwen2PresetHasQkvBiasesAndTiedEmbeddings) {
  ModelConfig config = *SynthPreset("qwen2-0.5b");
  config.num_layers = 1;
  config.vocab_size = 1000;  // keep the test small
  const auto model = SynthesizeQuantizedModel(config, 5, 128);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->lm_head.data, model->embedding.data);
  ASSERT_TRUE(model->layers[0].q.bias.has_value());
  EXPECT_EQ(model->layers[0].k.bias->shape, (Shape{128}));
  EXPECT_FALSE(model->layers[0].o.bias.has_value());
  EXPECT_FALSE(model->layers[0].gate.bias.has_value());
  // in 896 = 7 groups of 128; out 4864.
  EXPECT_EQ(std::get<AwqWeight>(model->layers[0].up.weight).scales.shape, (Shape{7, 4864}));
}

TEST(SynthModelTest, RejectsBadConfigsAndGroupSizes) {
  EXPECT_THAT(SynthesizeQuantizedModel("tiny", 1, 0).status().message(), HasSubstr("group size must be positive"));
  ModelConfig config = *SynthPreset("tiny");
  config.num_kv_heads = 3;
  EXPECT_THAT(SynthesizeModel(config, 1).status().message(), HasSubstr("num_key_value_heads"));
  EXPECT_EQ(SynthesizeModel("nope", 1).status().code(), absl::StatusCode::kNotFound);
}

// Quantized models are made in packed form, fast enough for benchmarks (a 7B model takes seconds, most of
// it the kernel handing out 3.5 GB). A 1.1B model keeps the test light; the bound is generous because
// sanitizer builds are several times slower.
TEST(SynthModelTest, QuantizedModelsAreFast) {
  const auto start = std::chrono::steady_clock::now();
  const auto model = SynthesizeQuantizedModel("tinyllama-1.1b", 1, 128);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->layers.size(), 22u);
  EXPECT_EQ(std::get<AwqWeight>(model->layers[21].down.weight).qweight.shape, (Shape{5632, 256}));
  EXPECT_LT(seconds, 60.0);
  std::printf("tinyllama-1.1b AWQ synthesized in %.2f s\n", seconds);
}

// --- Tokenizer --------------------------------------------------------------------------------------------

TEST(SynthTokenizerTest, SentencePieceLoadsItWithTheExactVocabulary) {
  testing::TempDir dir;
  const auto path = dir.path() / "tokenizer.model";
  ASSERT_TRUE(WriteSynthTokenizer(path, 512).ok());
  const testing::SentencePieceReference reference(path.string());
  ASSERT_EQ(reference.error(), "");
  const std::vector<testing::SentencePiecePiece> pieces = reference.Pieces();
  ASSERT_EQ(pieces.size(), 512u);
  EXPECT_EQ(reference.unk_id(), 0);
  EXPECT_EQ(reference.bos_id(), 1);
  EXPECT_EQ(reference.eos_id(), 2);
  EXPECT_EQ(pieces[0].piece, "<unk>");
  EXPECT_TRUE(pieces[0].unknown);
  EXPECT_EQ(pieces[1].piece, "<s>");
  EXPECT_TRUE(pieces[1].control);
  EXPECT_EQ(pieces[2].piece, "</s>");
  EXPECT_TRUE(pieces[2].control);
  for (int b = 0; b < 256; ++b) {
    char expected[8];
    std::snprintf(expected, sizeof(expected), "<0x%02X>", b);
    ASSERT_EQ(pieces[3 + b].piece, expected);
    ASSERT_TRUE(pieces[3 + b].byte);
  }
  EXPECT_EQ(pieces[259].piece, "\xE2\x96\x81");
  EXPECT_EQ(pieces[260].piece, "a");
  for (size_t i = 260; i < pieces.size(); ++i) {
    ASSERT_FALSE(pieces[i].byte || pieces[i].control || pieces[i].unknown) << i;
    ASSERT_LT(pieces[i].score, pieces[i - 1].score) << i;
  }
}

TEST(SynthTokenizerTest, TextRoundTripsAsciiAndThroughByteFallback) {
  testing::TempDir dir;
  const auto path = dir.path() / "tokenizer.model";
  ASSERT_TRUE(WriteSynthTokenizer(path, 512).ok());

  const std::string ascii = "Hello world, this is a test: 1+1=2 (ok)!";
  const testing::SentencePieceReference reference(path.string());
  ASSERT_EQ(reference.error(), "");
  const std::vector<int> plain = reference.EncodeAsIds(ascii);
  EXPECT_EQ(reference.DecodeIds(plain), ascii);
  for (int id : plain) EXPECT_GE(id, 259) << "ASCII needs no byte fallback";
  EXPECT_LT(plain.size(), ascii.size());  // merges happened ("▁w" is a piece)
  EXPECT_THAT(reference.EncodeAsPieces(ascii), Contains("\xE2\x96\x81w"));

  const std::string unicode = "h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x99\x82";  // héllo 世界 🙂
  EXPECT_EQ(reference.DecodeIds(reference.EncodeAsIds(unicode)), unicode);
  const std::vector<std::string> bytes = reference.EncodeAsPieces(unicode);
  EXPECT_THAT(bytes, Contains("<0xC3>"));
  EXPECT_THAT(bytes, Contains("<0xF0>"));
}

TEST(SynthTokenizerTest, LargeVocabulariesReachLongerPieces) {
  testing::TempDir dir;
  for (int64_t vocab : {32000, 151936}) {
    const auto path = dir.path() / ("tokenizer-" + std::to_string(vocab) + ".model");
    ASSERT_TRUE(WriteSynthTokenizer(path, vocab).ok());
    const testing::SentencePieceReference reference(path.string());
    ASSERT_EQ(reference.error(), "");
    EXPECT_EQ(reference.GetPieceSize(), vocab);
    const std::vector<int> ids = reference.EncodeAsIds("the quick brown fox");
    EXPECT_EQ(reference.DecodeIds(ids), "the quick brown fox");
    EXPECT_LE(ids.size(), 10u) << vocab;  // 3-character pieces ("▁th", "the") are in the vocabulary
  }
}

TEST(SynthTokenizerTest, RejectsTooSmallAVocabulary) {
  testing::TempDir dir;
  const auto path = dir.path() / "tokenizer.model";
  const absl::Status status = WriteSynthTokenizer(path, 100);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), AllOf(HasSubstr(path.string()), HasSubstr("between 259 and"), HasSubstr("not 100")));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(SynthModelDirTest, WritesALoadableModelDirectory) {
  testing::TempDir dir;
  const auto out = dir.path() / "tiny";
  ASSERT_TRUE(WriteSynthModelDir(out, "tiny", 21).ok());
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.model", "tokenizer_config.json"}) {
    EXPECT_TRUE(std::filesystem::exists(out / file)) << file;
  }
  const auto loaded = LoadHostModel(out);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const auto expected = SynthesizeModel("tiny", 21);
  EXPECT_EQ(BytesOf(loaded->embedding), BytesOf(expected->embedding));
  EXPECT_EQ(BytesOf(std::get<HostTensor>(loaded->layers[1].down.weight)),
            BytesOf(std::get<HostTensor>(expected->layers[1].down.weight)));
  EXPECT_EQ(loaded->config.torch_dtype, "float16");
  EXPECT_EQ(testing::SentencePieceReference((out / "tokenizer.model").string()).GetPieceSize(), 512);
}

}  // namespace
}  // namespace nibble
