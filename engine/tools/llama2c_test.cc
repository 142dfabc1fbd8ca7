#include "engine/tools/llama2c.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/backends/backend_factory.h"
#include "engine/io/model_loader.h"
#include "engine/io/tensor_source.h"
#include "engine/runtime/model.h"
#include "engine/tokenizer/load_tokenizer.h"
#include "nlohmann/json.hpp"
#include "tests/support/sentencepiece_reference.h"
#include "tests/support/shared_data.h"

namespace nibble {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream stream(path, std::ios::binary);
  std::stringstream text;
  text << stream.rdbuf();
  return text.str();
}

void WriteFile(const std::filesystem::path& path, const std::string& contents) {
  std::ofstream(path, std::ios::binary) << contents;
}

// The raw fp32 values of a llama2.c file (after the 28-byte header), read here independently of the importer.
std::vector<float> RawFloats(const std::string& file) {
  std::vector<float> values((file.size() - 28) / 4);
  std::memcpy(values.data(), file.data() + 28, values.size() * 4);
  return values;
}

std::vector<float> Slice(const std::vector<float>& raw, size_t offset, size_t count) {
  return {raw.begin() + offset, raw.begin() + offset + count};
}

// The HF row that llama2.c row `row` of a q or k projection lands on: within each head of `head_size` rows,
// the rotary pair (2i, 2i + 1) becomes rows (i, head_size / 2 + i).
int64_t RotateHalfRow(int64_t row, int64_t head_size) {
  const int64_t head = row / head_size, within = row % head_size;
  return head * head_size + (within % 2) * (head_size / 2) + within / 2;
}

// Checks an imported q or k weight [rows, dim] against the llama2.c one at raw[offset...].
void ExpectPermuted(const HostLinear& linear, const std::vector<float>& raw, size_t offset, int64_t rows, int64_t dim,
                    int64_t head_size) {
  const std::vector<float> imported = std::get<HostTensor>(linear.weight).ToFloats();
  ASSERT_EQ(imported.size(), static_cast<size_t>(rows * dim));
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t hf_row = RotateHalfRow(row, head_size);
    for (int64_t col = 0; col < dim; ++col) {
      ASSERT_EQ(imported[hf_row * dim + col], raw[offset + row * dim + col]) << "llama2.c row " << row;
    }
  }
}

TEST(Llama2cTest, ImportsStories260K) {
  NIBBLE_REQUIRE_SHARED(bin, "models/stories260K/stories260K.bin");
  NIBBLE_REQUIRE_SHARED(tokenizer, "models/stories260K/tok512.model");
  testing::TempDir dir;
  const auto out = dir.path() / "stories260K";
  ASSERT_TRUE(ImportLlama2c(bin, tokenizer, out).ok());

  const json config = json::parse(ReadFile(out / "config.json"));
  EXPECT_EQ(config["architectures"], json({"LlamaForCausalLM"}));
  EXPECT_EQ(config["torch_dtype"], "float32");
  EXPECT_EQ(config["rms_norm_eps"], 1e-5);
  EXPECT_EQ(config["rope_theta"], 10000.0);
  EXPECT_EQ(config["tie_word_embeddings"], true);
  EXPECT_EQ(ReadFile(out / "tokenizer.model"), ReadFile(tokenizer));
  const json tokenizer_config = json::parse(ReadFile(out / "tokenizer_config.json"));
  EXPECT_EQ(tokenizer_config["tokenizer_class"], "LlamaTokenizer");
  EXPECT_EQ(tokenizer_config["add_bos_token"], true);
  EXPECT_EQ(tokenizer_config["bos_token"], "<s>");
  const json generation_config = json::parse(ReadFile(out / "generation_config.json"));
  EXPECT_EQ(generation_config["bos_token_id"], 1);
  EXPECT_EQ(generation_config["eos_token_id"], json({2, 1}));
  EXPECT_EQ(testing::SentencePieceReference((out / "tokenizer.model").string()).GetPieceSize(), 512);

  const auto model = LoadHostModel(out);
  ASSERT_TRUE(model.ok()) << model.status();
  const ModelConfig& c = model->config;
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.num_layers, 5);
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>{2});
  EXPECT_FALSE(TensorSource::Open(out)->Has("lm_head.weight"));
  EXPECT_EQ(model->lm_head.data, model->embedding.data);
  EXPECT_EQ(model->embedding.dtype, DType::kF32);

  // Offsets (in floats) of llama2.c's tensors, from its documented order.
  const std::string file = ReadFile(bin);
  ASSERT_EQ(file.size(), 1'056'540u);
  const std::vector<float> raw = RawFloats(file);
  const size_t dim = 64, hidden = 172, layers = 5, kv_dim = 32, vocab = 512;
  const size_t embedding = 0;
  const size_t rms_att = embedding + vocab * dim;
  const size_t wq = rms_att + layers * dim;
  const size_t wk = wq + layers * dim * dim;
  const size_t wv = wk + layers * kv_dim * dim;
  const size_t wo = wv + layers * kv_dim * dim;
  const size_t rms_ffn = wo + layers * dim * dim;
  const size_t w1 = rms_ffn + layers * dim;
  const size_t w2 = w1 + layers * hidden * dim;
  const size_t w3 = w2 + layers * dim * hidden;
  const size_t rms_final = w3 + layers * hidden * dim;
  ASSERT_EQ(rms_final + dim + 2 * 512 * 4, raw.size());  // then freq_cis_real/imag [512, 4]: nothing after

  EXPECT_EQ(model->embedding.ToFloats(), Slice(raw, embedding, vocab * dim));
  EXPECT_EQ(model->layers[3].attention_norm.ToFloats(), Slice(raw, rms_att + 3 * dim, dim));
  EXPECT_EQ(model->layers[2].mlp_norm.ToFloats(), Slice(raw, rms_ffn + 2 * dim, dim));
  EXPECT_EQ(LinearWeightToFloats(model->layers[2].v), Slice(raw, wv + 2 * kv_dim * dim, kv_dim * dim));
  EXPECT_EQ(LinearWeightToFloats(model->layers[1].o), Slice(raw, wo + 1 * dim * dim, dim * dim));
  EXPECT_EQ(LinearWeightToFloats(model->layers[4].gate), Slice(raw, w1 + 4 * hidden * dim, hidden * dim));
  EXPECT_EQ(LinearWeightToFloats(model->layers[4].down), Slice(raw, w2 + 4 * dim * hidden, dim * hidden));
  EXPECT_EQ(LinearWeightToFloats(model->layers[4].up), Slice(raw, w3 + 4 * hidden * dim, hidden * dim));
  EXPECT_EQ(model->layers[4].down.in_features, 172);
  EXPECT_EQ(model->final_norm.ToFloats(), Slice(raw, rms_final, dim));
  for (size_t l : {size_t{0}, size_t{4}}) {
    SCOPED_TRACE(l);
    ExpectPermuted(model->layers[l].q, raw, wq + l * dim * dim, dim, dim, 8);
    ExpectPermuted(model->layers[l].k, raw, wk + l * kv_dim * dim, kv_dim, dim, 8);
  }
  // The permutation moves rows: llama2.c row 1 (head 0, pair 0, second element) is HF row 4.
  EXPECT_NE(LinearWeightToFloats(model->layers[0].q), Slice(raw, wq, dim * dim));
}

// End to end: the imported model, run by the engine's CPU backend with greedy sampling from BOS, writes the
// text llama2.c's run.c prints for stories260K (../shared/models/stories260K/stories260K.md), decoded by the
// imported tokenizer, whether the import was given tok512.model or run.c's own tok512.bin. A wrong RoPE
// permutation would garble it.
TEST(Llama2cTest, ImportedStories260KGeneratesTheReferenceText) {
  NIBBLE_REQUIRE_SHARED(bin, "models/stories260K/stories260K.bin");
  NIBBLE_REQUIRE_SHARED(tokenizer_model, "models/stories260K/tok512.model");
  NIBBLE_REQUIRE_SHARED(tokenizer_bin, "models/stories260K/tok512.bin");
  for (const std::filesystem::path& tokenizer : {tokenizer_model, tokenizer_bin}) {
    SCOPED_TRACE(tokenizer);
    testing::TempDir dir;
    ASSERT_TRUE(ImportLlama2c(bin, tokenizer, dir.path()).ok());
    const auto host = LoadHostModel(dir.path());
    ASSERT_TRUE(host.ok()) << host.status();
    const auto imported_tokenizer = LoadTokenizer(dir.path());
    ASSERT_TRUE(imported_tokenizer.ok()) << imported_tokenizer.status();
    auto backend = MakeBackend(BackendKind::kCpu);
    ASSERT_TRUE(backend.ok()) << backend.status();
    ModelOptions options;
    options.max_seqs = 1;
    options.max_step_tokens = 8;
    auto model = Model::Create(**backend, *host, options);
    ASSERT_TRUE(model.ok()) << model.status();

    KvSequence sequence((*model)->kv_pool());
    SamplingParams greedy;
    greedy.temperature = 0.0f;
    std::vector<int32_t> tokens = {host->config.bos_token_id};
    for (int32_t position = 0; position < 40; ++position) {
      ASSERT_TRUE(sequence.Reserve(position + 1).ok());
      StepBatch batch;
      batch.AddSequence(std::span<const int32_t>(&tokens[position], 1), position, sequence.blocks(),
                        StepBatch::Logits::kLast);
      const std::span<const int32_t> generated(tokens.begin() + 1, tokens.end());
      const SamplingRequest request{&greedy, static_cast<uint64_t>(position), {}, generated};
      const auto sampled = (*model)->ForwardAndSample(batch, std::span<const SamplingRequest>(&request, 1));
      ASSERT_TRUE(sampled.ok()) << sampled.status();
      tokens.push_back((*sampled)[0].token);
    }
    const std::string text = (*imported_tokenizer)->Decode(std::span<const int32_t>(tokens).subspan(1));
    EXPECT_THAT(text, ::testing::StartsWith("Once upon a time, there was a little girl named Lily. She loved to play"));
  }
}

// --- A hand-made checkpoint with an unshared classifier ---------------------------------------------------

// A llama2.c file of the given header whose floats are 0, 1, 2, ... (so every value tells its offset).
std::string MakeCheckpoint(const std::array<int32_t, 7>& header, size_t floats) {
  std::string file(reinterpret_cast<const char*>(header.data()), 28);
  for (size_t i = 0; i < floats; ++i) {
    const float value = static_cast<float>(i);
    file.append(reinterpret_cast<const char*>(&value), 4);
  }
  return file;
}

// dim 8, hidden 12, 2 layers, 2 heads, 1 KV head (kv_dim 4, head size 4), vocab 16 unshared, seq_len 3.
constexpr std::array<int32_t, 7> kSmallHeader = {8, 12, 2, 2, 1, -16, 3};
constexpr size_t kSmallFloats =
    16 * 8 + 2 * 8 + 2 * 64 + 2 * 32 + 2 * 32 + 2 * 64 + 2 * 8 + 3 * 2 * 96 + 8 + 2 * 3 * 2 + 16 * 8;

TEST(Llama2cTest, UnsharedClassifierComesLast) {
  testing::TempDir dir;
  const auto bin = dir.path() / "small.bin";
  WriteFile(bin, MakeCheckpoint(kSmallHeader, kSmallFloats));
  const auto model = ReadLlama2c(bin);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_FALSE(model->config.tie_word_embeddings);
  EXPECT_EQ(model->config.vocab_size, 16);
  EXPECT_EQ(model->config.num_kv_heads, 1);
  EXPECT_EQ(model->config.head_dim, 4);
  const std::vector<float> lm_head = model->lm_head.ToFloats();
  ASSERT_EQ(lm_head.size(), 128u);
  EXPECT_EQ(lm_head.front(), static_cast<float>(kSmallFloats - 128));
  EXPECT_EQ(lm_head.back(), static_cast<float>(kSmallFloats - 1));
  // k of layer 1 starts after embedding (128), rms_att (16), wq (128) and k of layer 0 (32): at 304. With
  // head size 4, llama2.c rows 0, 1, 2, 3 are HF rows 0, 2, 1, 3.
  const std::vector<float> k = LinearWeightToFloats(model->layers[1].k);
  EXPECT_EQ(k[0 * 8], 304.0f);
  EXPECT_EQ(k[1 * 8], 304.0f + 2 * 8);
  EXPECT_EQ(k[2 * 8], 304.0f + 1 * 8);
  EXPECT_EQ(k[3 * 8], 304.0f + 3 * 8);

  NIBBLE_REQUIRE_SHARED(tokenizer, "models/stories260K/tok512.model");
  testing::TempDir out;
  ASSERT_TRUE(ImportLlama2c(bin, tokenizer, out.path()).ok());
  const auto loaded = LoadHostModel(out.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->lm_head.ToFloats(), lm_head);
  EXPECT_EQ(json::parse(ReadFile(out.path() / "config.json"))["tie_word_embeddings"], false);
}

TEST(Llama2cTest, FileSizeMustMatchTheHeader) {
  testing::TempDir dir;
  const auto bin = dir.path() / "small.bin";
  const std::string good = MakeCheckpoint(kSmallHeader, kSmallFloats);
  const size_t expected = good.size();
  WriteFile(bin, good.substr(0, good.size() - 4));
  absl::Status status = ReadLlama2c(bin).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr(bin.string()), HasSubstr("dim 8, hidden_dim 12, n_layers 2"), HasSubstr("vocab_size -16"),
                    HasSubstr("implies a file of " + std::to_string(expected) + " bytes, but it is " +
                              std::to_string(expected - 4) + " bytes")));
  WriteFile(bin, good + "xxxx");
  EXPECT_THAT(ReadLlama2c(bin).status().message(), HasSubstr("but it is " + std::to_string(expected + 4) + " bytes"));
  // A shared classifier expects 128 floats fewer.
  std::array<int32_t, 7> shared = kSmallHeader;
  shared[5] = 16;
  WriteFile(bin, MakeCheckpoint(shared, kSmallFloats));
  EXPECT_THAT(ReadLlama2c(bin).status().message(), HasSubstr("implies a file of " + std::to_string(expected - 512)));
}

TEST(Llama2cTest, Stories260KTruncatedIsAnError) {
  NIBBLE_REQUIRE_SHARED(bin, "models/stories260K/stories260K.bin");
  testing::TempDir dir;
  const auto cut = dir.path() / "stories260K.bin";
  WriteFile(cut, ReadFile(bin).substr(0, 1'000'000));
  EXPECT_THAT(ReadLlama2c(cut).status().message(),
              AllOf(HasSubstr(cut.string()), HasSubstr("implies a file of 1056540 bytes, but it is 1000000 bytes")));
}

TEST(Llama2cTest, BadHeaders) {
  testing::TempDir dir;
  const auto bin = dir.path() / "bad.bin";
  WriteFile(bin, "tiny");
  EXPECT_THAT(ReadLlama2c(bin).status().message(), AllOf(HasSubstr(bin.string()), HasSubstr("too short")));

  std::array<int32_t, 7> header = kSmallHeader;
  header[3] = 0;  // n_heads
  WriteFile(bin, MakeCheckpoint(header, 10));
  EXPECT_THAT(ReadLlama2c(bin).status().message(), HasSubstr("field n_heads is 0; it must be positive"));

  header = kSmallHeader;
  header[4] = 3;  // n_kv_heads does not divide n_heads
  WriteFile(bin, MakeCheckpoint(header, 10));
  EXPECT_THAT(ReadLlama2c(bin).status().message(), HasSubstr("n_kv_heads must divide n_heads"));

  header = {1 << 30, 1 << 30, 1 << 30, 1, 1, 1 << 30, 1 << 30};  // sizes beyond 64 bits
  WriteFile(bin, MakeCheckpoint(header, 10));
  EXPECT_THAT(ReadLlama2c(bin).status().message(), AllOf(HasSubstr("more than 2^64"), HasSubstr("but it is 68 bytes")));

  EXPECT_EQ(ReadLlama2c(dir.path() / "absent.bin").status().code(), absl::StatusCode::kNotFound);
}

TEST(Llama2cTest, MissingTokenizerWritesNothing) {
  testing::TempDir dir;
  const auto bin = dir.path() / "small.bin";
  WriteFile(bin, MakeCheckpoint(kSmallHeader, kSmallFloats));
  const absl::Status status = ImportLlama2c(bin, dir.path() / "absent.model", dir.path() / "out");
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("absent.model: tokenizer model not found"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "out"));
}

TEST(Llama2cTest, TokenizerThatIsNotSentencePieceIsRefused) {
  testing::TempDir dir;
  const auto bin = dir.path() / "small.bin";
  WriteFile(bin, MakeCheckpoint(kSmallHeader, kSmallFloats));
  const auto tokenizer = dir.path() / "tok.model";
  WriteFile(tokenizer, "plain text, not a model");
  const absl::Status status = ImportLlama2c(bin, tokenizer, dir.path() / "out");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr(tokenizer.string() + ": not a SentencePiece model"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "out"));
}

}  // namespace
}  // namespace nibble
