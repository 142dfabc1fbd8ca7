// write_fuzz_seeds DIR: writes the seed corpus of every fuzz target (tests/fuzz/README.md) into DIR/<target>/,
// made with the project's own writers where it has one: a small safetensors file (WriteSafetensors), the
// synthetic models' config.json files (SynthPreset, ModelConfigToJson) and tokenizer.model (WriteSynthTokenizer),
// a nibble.json in the publisher's format over a synthetic model directory (WriteSynthModelDir; the publisher
// itself lives in quantizer/, which the fuzz build does not compile), small tokenizer.json files in the shapes of
// Llama 3 (byte-level BPE) and Llama 2 (Metaspace with byte fallback), and small llama2.c checkpoints.
// Exits 1 with the error on failure.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/file_io.h"
#include "engine/base/status_macros.h"
#include "engine/io/model_config.h"
#include "engine/io/model_store.h"
#include "engine/io/safetensors.h"
#include "engine/tokenizer/synth_tokenizer.h"
#include "engine/tools/synth.h"
#include "nlohmann/json.hpp"

namespace nibble {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

HostTensor Counting(DType dtype, Shape shape) {
  std::vector<std::byte> bytes(static_cast<size_t>(shape.numel()) * DTypeSize(dtype));
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>(i * 7 + 1);
  return HostTensor::FromBytes(std::move(bytes), dtype, shape);
}

absl::Status WriteSafetensorsSeeds(const fs::path& dir) {
  const std::vector<NamedTensor> tensors = {{"model.embed_tokens.weight", Counting(DType::kF16, Shape{4, 3})},
                                            {"model.norm.weight", Counting(DType::kF32, Shape{3})},
                                            {"ids", Counting(DType::kI64, Shape{2})},
                                            {"mask", Counting(DType::kU8, Shape{5})},
                                            {"empty", Counting(DType::kBF16, Shape{0, 2})}};
  NIBBLE_RETURN_IF_ERROR(WriteSafetensors(dir / "mixed.safetensors", tensors, {{"format", "pt"}}));
  return WriteSafetensors(dir / "one.safetensors", std::vector<NamedTensor>{{"w", Counting(DType::kI32, Shape{2, 2})}});
}

absl::Status WriteModelConfigSeeds(const fs::path& dir) {
  for (const std::string& preset : SynthPresetNames()) {
    NIBBLE_ASSIGN_OR_RETURN(ModelConfig config, SynthPreset(preset));
    NIBBLE_RETURN_IF_ERROR(WriteFileContents(dir / (preset + ".json"), ModelConfigToJson(config).dump(2)));
    if (preset == "tiny") {
      config.awq = AwqConfig{.group_size = 32};
      config.rope_scaling = Llama3RopeScaling{};
      NIBBLE_RETURN_IF_ERROR(WriteFileContents(dir / "tiny-awq.json", ModelConfigToJson(config).dump(2)));
      config.awq.reset();
      // A legacy AutoAWQ checkpoint: config.json without quantization_config, then (after NUL) quant_config.json.
      const std::string legacy = ModelConfigToJson(config).dump() + std::string(1, '\0') +
                                 R"({"w_bit": 4, "q_group_size": 64, "zero_point": true, "version": "GEMM"})";
      NIBBLE_RETURN_IF_ERROR(WriteFileContents(dir / "tiny-legacy-awq.json", legacy));
    }
  }
  return absl::OkStatus();
}

// nibble.json as quantizer/publisher.cc's Commit writes it, over a synthetic model directory.
absl::Status WriteManifestSeeds(const fs::path& dir, const fs::path& scratch) {
  const fs::path model_dir = scratch / "tiny";
  NIBBLE_RETURN_IF_ERROR(WriteSynthModelDir(model_dir, "tiny", 1));
  std::vector<fs::path> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(model_dir)) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  json listed = json::array();
  for (const fs::path& file : files) {
    NIBBLE_ASSIGN_OR_RETURN(const std::string sha256, Sha256OfFile(file));
    listed.push_back({{"path", file.filename().string()}, {"bytes", fs::file_size(file)}, {"sha256", sha256}});
  }
  json manifest = {{"format_version", kManifestFormatVersion},
                   {"created", "2026-12-07T12:00:00Z"},
                   {"tool_version", absl::StrCat("nibble ", NIBBLE_VERSION)},
                   {"job", "job-0001"},
                   {"quantization", {{"method", "awq"}, {"bits", 4}, {"group_size", 128}}},
                   {"source", {{"model", "tiny"}, {"version", 1}}},
                   {"files", listed}};
  NIBBLE_RETURN_IF_ERROR(WriteFileContents(dir / "synth-tiny.json", manifest.dump(2) + "\n"));
  // One that VerifyVersionDir accepts in the fuzz target's directory (config.json holding "{}\n").
  const fs::path braces = scratch / "braces.json";
  NIBBLE_RETURN_IF_ERROR(WriteFileContents(braces, "{}\n"));
  NIBBLE_ASSIGN_OR_RETURN(const std::string braces_sha256, Sha256OfFile(braces));
  manifest["files"] = json::array({{{"path", "config.json"}, {"bytes", 3}, {"sha256", braces_sha256}}});
  return WriteFileContents(dir / "verifies.json", manifest.dump(2) + "\n");
}

// Byte-level BPE over printable ASCII and "Ġ" (Llama 3's shape), with two merges and a special token.
json ByteLevelTokenizer() {
  json vocab = json::object();
  int id = 0;
  for (char c = '!'; c <= '~'; ++c) vocab[std::string(1, c)] = id++;
  vocab["\xC4\xA0"] = id++;
  vocab["he"] = id++;
  vocab["hel"] = id++;
  return {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array({"h e", "he l"})}}},
          {"normalizer", {{"type", "NFC"}}},
          {"pre_tokenizer",
           {{"type", "Sequence"},
            {"pretokenizers",
             json::array({{{"type", "Split"},
                           {"pattern", {{"Regex", "(?i:'s|'t)|\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+|\\s+"}}},
                           {"behavior", "Isolated"},
                           {"invert", false}},
                          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"post_processor",
           {{"type", "TemplateProcessing"},
            {"single", json::array({{{"SpecialToken", {{"id", "<|begin|>"}, {"type_id", 0}}}},
                                    {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})}}},
          {"added_tokens", json::array({{{"id", id}, {"content", "<|begin|>"}, {"special", true}},
                                        {{"id", id + 1}, {"content", "<|end|>"}, {"special", true}}})}};
}

// Metaspace BPE with byte fallback (Llama 2's shape): <unk>, <s>, </s>, 256 byte pieces, then a few pieces.
json MetaspaceTokenizer() {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  int id = 3;
  for (int byte = 0; byte < 256; ++byte) {
    char piece[8];
    std::snprintf(piece, sizeof(piece), "<0x%02X>", byte);
    vocab[piece] = id++;
  }
  for (const char* piece : {"\xE2\x96\x81", "a", "b",
                            "\xE2\x96\x81"
                            "a",
                            "ab",
                            "\xE2\x96\x81"
                            "ab"})
    vocab[piece] = id++;
  return {
      {"model",
       {{"type", "BPE"},
        {"vocab", vocab},
        {"merges", json::array({"\xE2\x96\x81 a", "a b",
                                "\xE2\x96\x81"
                                "a b"})},
        {"unk_token", "<unk>"},
        {"byte_fallback", true},
        {"fuse_unk", true}}},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         json::array({{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                      {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}})}}},
      {"pre_tokenizer", nullptr},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                                  {{"type", "ByteFallback"}},
                                  {{"type", "Fuse"}},
                                  {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}}},
      {"added_tokens", json::array({{{"id", 0}, {"content", "<unk>"}, {"special", true}},
                                    {{"id", 1}, {"content", "<s>"}, {"special", true}},
                                    {{"id", 2}, {"content", "</s>"}, {"special", true}}})}};
}

absl::Status WriteHfTokenizerSeeds(const fs::path& dir) {
  const std::string nul(1, '\0');
  NIBBLE_RETURN_IF_ERROR(
      WriteFileContents(dir / "byte-level", ByteLevelTokenizer().dump() + nul + "hello world, it's 2026 <|end|>\n"));
  NIBBLE_RETURN_IF_ERROR(WriteFileContents(
      dir / "byte-level-configs",
      ByteLevelTokenizer().dump() + nul + "hel he\xC3\xA9 99" + nul +
          R"({"add_bos_token": true, "bos_token": "<|begin|>", "eos_token": {"content": "<|end|>"}})" + nul +
          R"({"eos_token_id": [96, 97]})"));
  return WriteFileContents(dir / "metaspace",
                           MetaspaceTokenizer().dump() + nul + "ab a b \xE6\x97\xA5 <s> x" + nul +
                               R"({"add_bos_token": true, "bos_token": "<s>", "eos_token": "</s>"})");
}

// A llama2.c checkpoint of the given header, its floats counting up.
std::string Llama2cCheckpoint(int32_t dim, int32_t hidden, int32_t layers, int32_t heads, int32_t kv_heads,
                              int32_t vocab, int32_t seq_len) {
  const int64_t kv_dim = int64_t{dim} * kv_heads / heads, abs_vocab = vocab < 0 ? -int64_t{vocab} : vocab;
  const int64_t floats = abs_vocab * dim + layers * (2 * dim + 2 * dim * dim + 2 * kv_dim * dim + 3 * hidden * dim) +
                         dim + seq_len * (dim / heads) + (vocab < 0 ? abs_vocab * dim : 0);
  const int32_t header[7] = {dim, hidden, layers, heads, kv_heads, vocab, seq_len};
  std::string bytes(sizeof(header) + floats * sizeof(float), '\0');
  std::memcpy(bytes.data(), header, sizeof(header));
  for (int64_t i = 0; i < floats; ++i) {
    const float value = static_cast<float>(i % 17) / 16.0f - 0.5f;
    std::memcpy(bytes.data() + sizeof(header) + i * sizeof(float), &value, sizeof(float));
  }
  return bytes;
}

absl::Status WriteLlama2cSeeds(const fs::path& dir) {
  NIBBLE_RETURN_IF_ERROR(WriteFileContents(dir / "shared-classifier", Llama2cCheckpoint(8, 16, 1, 2, 1, 8, 4)));
  return WriteFileContents(dir / "unshared-classifier", Llama2cCheckpoint(4, 8, 2, 2, 2, -4, 2));
}

absl::Status WriteSentencePieceSeeds(const fs::path& dir) {
  NIBBLE_RETURN_IF_ERROR(WriteSynthTokenizer(dir / "synth-smallest.model", kMinSynthVocabSize));
  return WriteSynthTokenizer(dir / "synth-300.model", 300);
}

absl::Status WriteSeeds(const fs::path& root) {
  const fs::path scratch = root / ".scratch";
  for (const char* target : {"safetensors", "model_config", "manifest", "hf_tokenizer", "llama2c", "sentencepiece"}) {
    fs::create_directories(root / target);
  }
  fs::create_directories(scratch);
  NIBBLE_RETURN_IF_ERROR(WriteSafetensorsSeeds(root / "safetensors"));
  NIBBLE_RETURN_IF_ERROR(WriteModelConfigSeeds(root / "model_config"));
  NIBBLE_RETURN_IF_ERROR(WriteManifestSeeds(root / "manifest", scratch));
  NIBBLE_RETURN_IF_ERROR(WriteHfTokenizerSeeds(root / "hf_tokenizer"));
  NIBBLE_RETURN_IF_ERROR(WriteLlama2cSeeds(root / "llama2c"));
  NIBBLE_RETURN_IF_ERROR(WriteSentencePieceSeeds(root / "sentencepiece"));
  fs::remove_all(scratch);
  return absl::OkStatus();
}

}  // namespace
}  // namespace nibble

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const absl::Status status = nibble::WriteSeeds(argv[1]);
  if (!status.ok()) {
    std::fprintf(stderr, "write_fuzz_seeds: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
