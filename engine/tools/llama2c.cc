#include "engine/tools/llama2c.h"

#include <array>
#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/file_io.h"
#include "engine/base/status_macros.h"
#include "engine/io/model_writer.h"
#include "engine/tokenizer/sentencepiece_model_writer.h"
#include "engine/tokenizer/sentencepiece_tokenizer.h"
#include "engine/tools/llama2c_tokenizer.h"

namespace nibble {
namespace {

constexpr size_t kHeaderInts = 7;
constexpr size_t kHeaderBytes = kHeaderInts * sizeof(int32_t);

struct Llama2cHeader {
  int64_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
  bool shared_classifier;

  int64_t kv_dim() const { return dim * n_kv_heads / n_heads; }
  int64_t head_size() const { return dim / n_heads; }
  // Floats after the header, the unshared classifier included.
  unsigned __int128 floats() const {
    using Wide = unsigned __int128;
    const Wide layers = n_layers, d = dim, kv = kv_dim(), h = hidden_dim;
    return Wide(vocab_size) * d                     // token_embedding
           + layers * d                             // rms_att
           + layers * d * d * 2                     // wq, wo
           + layers * kv * d * 2                    // wk, wv
           + layers * d                             // rms_ffn
           + layers * h * d * 3                     // w1, w2, w3
           + d                                      // rms_final
           + Wide(seq_len) * (head_size() / 2) * 2  // freq_cis_real, freq_cis_imag
           + (shared_classifier ? 0 : Wide(vocab_size) * d);
  }
};

absl::StatusOr<Llama2cHeader> ParseHeader(const MappedFile& file) {
  const std::string name = file.path().string();
  if (file.size() < kHeaderBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": ", file.size(), " bytes is too short for the ", kHeaderBytes, "-byte llama2.c header"));
  }
  std::array<int32_t, kHeaderInts> fields;
  std::memcpy(fields.data(), file.data(), kHeaderBytes);  // llama2.c writes native (little-endian) int32
  Llama2cHeader header{fields[0], fields[1], fields[2], fields[3], fields[4], fields[5], fields[6], fields[5] > 0};
  header.vocab_size = header.vocab_size < 0 ? -header.vocab_size : header.vocab_size;

  const struct {
    absl::string_view field;
    int64_t value;
  } positive[] = {{"dim", header.dim},
                  {"hidden_dim", header.hidden_dim},
                  {"n_layers", header.n_layers},
                  {"n_heads", header.n_heads},
                  {"n_kv_heads", header.n_kv_heads},
                  {"vocab_size (absolute value)", header.vocab_size},
                  {"seq_len", header.seq_len}};
  for (const auto& check : positive) {
    if (check.value <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": llama2.c header field ", check.field, " is ", check.value, "; it must be positive"));
    }
  }
  if (header.dim % header.n_heads != 0 || header.n_heads % header.n_kv_heads != 0 || header.head_size() % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": llama2.c header has dim ", header.dim, ", n_heads ", header.n_heads, ", n_kv_heads ",
        header.n_kv_heads, "; n_heads must divide dim into even head sizes and n_kv_heads must divide n_heads"));
  }
  const unsigned __int128 expected = kHeaderBytes + header.floats() * sizeof(float);
  if (expected != file.size()) {
    // The expected size can exceed 64 bits only for a corrupt header; say so instead of printing it.
    const std::string expected_text =
        expected >> 64 ? std::string("more than 2^64") : absl::StrCat(static_cast<uint64_t>(expected));
    return absl::InvalidArgumentError(absl::StrCat(name, ": the llama2.c header (dim ", header.dim, ", hidden_dim ",
                                                   header.hidden_dim, ", n_layers ", header.n_layers, ", n_heads ",
                                                   header.n_heads, ", n_kv_heads ", header.n_kv_heads, ", vocab_size ",
                                                   fields[5], ", seq_len ", header.seq_len, ") implies a file of ",
                                                   expected_text, " bytes, but it is ", file.size(), " bytes"));
  }
  return header;
}

// Walks the float tensors of the file in order, handing out views.
class TensorCursor {
 public:
  explicit TensorCursor(std::shared_ptr<const MappedFile> file) : file_(std::move(file)) {}

  // The next shape.numel() floats, viewed as `shape`.
  HostTensor Next(Shape shape) {
    HostTensor tensor = At(offset_, shape);
    offset_ += shape.numel();
    return tensor;
  }
  // `count` consecutive tensors of `shape` (one per layer).
  std::vector<HostTensor> NextPerLayer(int64_t count, Shape shape) {
    std::vector<HostTensor> tensors;
    for (int64_t i = 0; i < count; ++i) tensors.push_back(Next(shape));
    return tensors;
  }
  void Skip(int64_t floats) { offset_ += floats; }

 private:
  HostTensor At(int64_t float_offset, Shape shape) const {
    HostTensor tensor;
    tensor.dtype = DType::kF32;
    tensor.shape = shape;
    tensor.data = file_->data() + kHeaderBytes + float_offset * sizeof(float);
    tensor.owner = file_;
    return tensor;
  }

  std::shared_ptr<const MappedFile> file_;
  int64_t offset_ = 0;  // in floats after the header
};

// transformers' permute(w, n_heads, dim1, dim2) =
//   w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2):
// within each head, the interleaved rotary pairs (rows 2i, 2i+1) become the two halves (rows i, half + i).
HostTensor PermuteForRotateHalf(const HostTensor& weight, int64_t n_heads) {
  const int64_t rows = weight.shape[0];
  const int64_t cols = weight.shape[1];
  const int64_t half = rows / n_heads / 2;
  const std::span<const float> in = weight.span<float>();
  std::vector<float> out(in.size());
  for (int64_t head = 0; head < n_heads; ++head) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t t = 0; t < 2; ++t) {
        const int64_t src = head * 2 * half + 2 * i + t;
        const int64_t dst = head * 2 * half + t * half + i;
        std::memcpy(&out[dst * cols], &in[src * cols], cols * sizeof(float));
      }
    }
  }
  return HostTensor::FromFloats(std::move(out), weight.shape);
}

HostLinear DenseLinear(HostTensor weight) {
  HostLinear linear;
  linear.out_features = weight.shape[0];
  linear.in_features = weight.shape[1];
  linear.weight = std::move(weight);
  return linear;
}

ModelConfig ConfigFor(const Llama2cHeader& header) {
  ModelConfig config;
  config.architecture = Architecture::kLlama;
  config.architecture_name = "LlamaForCausalLM";
  config.vocab_size = header.vocab_size;
  config.hidden_size = header.dim;
  config.intermediate_size = header.hidden_dim;
  config.num_layers = header.n_layers;
  config.num_heads = header.n_heads;
  config.num_kv_heads = header.n_kv_heads;
  config.head_dim = header.head_size();
  config.max_position_embeddings = header.seq_len;
  config.rms_norm_eps = 1e-5;
  config.rope_theta = 10000.0;
  config.tie_word_embeddings = header.shared_classifier;
  config.bos_token_id = 1;
  config.eos_token_ids = {2};
  config.torch_dtype = "float32";
  return config;
}

// The tokenizer.model to write: `tokenizer`'s own bytes when it is a SentencePiece model, else its conversion when it
// is llama2.c's tokenizer.bin (of `vocab_size` tokens); InvalidArgument naming it when it is neither.
absl::StatusOr<std::string> SentencePieceModelFor(const std::filesystem::path& tokenizer, int64_t vocab_size) {
  NIBBLE_ASSIGN_OR_RETURN(std::string contents, ReadTextFile(tokenizer));
  const auto sentencepiece = LoadSentencePieceTokenizer(tokenizer);
  if (sentencepiece.ok()) return contents;
  if (StartsLikeLlama2cTokenizer(contents)) {
    NIBBLE_ASSIGN_OR_RETURN(const SentencePieceBpeModel model,
                            ConvertLlama2cTokenizer(contents, tokenizer.string(), vocab_size));
    return SerializeSentencePieceBpeModel(model);
  }
  return absl::InvalidArgumentError(absl::StrCat(tokenizer.string(), ": not a SentencePiece model (",
                                                 sentencepiece.status().message(),
                                                 ") nor llama2.c's tokenizer.bin (whose first int32, "
                                                 "max_token_length, would be 1 to ",
                                                 kLlama2cLongestToken, ")"));
}

}  // namespace

absl::StatusOr<HostModel> ReadLlama2c(const std::filesystem::path& model_bin) {
  NIBBLE_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> file, MappedFile::Open(model_bin));
  NIBBLE_ASSIGN_OR_RETURN(const Llama2cHeader header, ParseHeader(*file));
  HostModel model;
  model.config = ConfigFor(header);
  // The engine's own limits (head size, bos below vocab, ...), with this file named in the message.
  NIBBLE_RETURN_IF_ERROR(ParseModelConfig(ModelConfigToJson(model.config), model_bin.string()).status());

  const int64_t layers = header.n_layers, dim = header.dim, kv_dim = header.kv_dim(), hidden = header.hidden_dim;
  TensorCursor cursor(file);
  model.embedding = cursor.Next(Shape{header.vocab_size, dim});
  const auto rms_att = cursor.NextPerLayer(layers, Shape{dim});
  const auto wq = cursor.NextPerLayer(layers, Shape{dim, dim});
  const auto wk = cursor.NextPerLayer(layers, Shape{kv_dim, dim});
  const auto wv = cursor.NextPerLayer(layers, Shape{kv_dim, dim});
  const auto wo = cursor.NextPerLayer(layers, Shape{dim, dim});
  const auto rms_ffn = cursor.NextPerLayer(layers, Shape{dim});
  const auto w1 = cursor.NextPerLayer(layers, Shape{hidden, dim});
  const auto w2 = cursor.NextPerLayer(layers, Shape{dim, hidden});
  const auto w3 = cursor.NextPerLayer(layers, Shape{hidden, dim});
  model.final_norm = cursor.Next(Shape{dim});
  cursor.Skip(2 * header.seq_len * (header.head_size() / 2));  // freq_cis_real, freq_cis_imag
  model.lm_head = header.shared_classifier ? model.embedding : cursor.Next(Shape{header.vocab_size, dim});

  for (int64_t l = 0; l < layers; ++l) {
    HostLayer& layer = model.layers.emplace_back();
    layer.attention_norm = rms_att[l];
    layer.q = DenseLinear(PermuteForRotateHalf(wq[l], header.n_heads));
    layer.k = DenseLinear(PermuteForRotateHalf(wk[l], header.n_kv_heads));
    layer.v = DenseLinear(wv[l]);
    layer.o = DenseLinear(wo[l]);
    layer.mlp_norm = rms_ffn[l];
    layer.gate = DenseLinear(w1[l]);
    layer.down = DenseLinear(w2[l]);
    layer.up = DenseLinear(w3[l]);
  }
  return model;
}

absl::Status ImportLlama2c(const std::filesystem::path& model_bin, const std::filesystem::path& tokenizer_model,
                           const std::filesystem::path& out_dir) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(tokenizer_model, error)) {
    return absl::NotFoundError(absl::StrCat(tokenizer_model.string(), ": tokenizer model not found"));
  }
  NIBBLE_ASSIGN_OR_RETURN(const HostModel model, ReadLlama2c(model_bin));
  NIBBLE_ASSIGN_OR_RETURN(const std::string sentencepiece_model,
                          SentencePieceModelFor(tokenizer_model, model.config.vocab_size));
  ModelWriteOptions options;
  options.float_dtype = DType::kF32;
  NIBBLE_RETURN_IF_ERROR(WriteHostModel(out_dir, model, options).status());
  NIBBLE_RETURN_IF_ERROR(WriteFileContents(out_dir / "tokenizer.model", sentencepiece_model));
  NIBBLE_RETURN_IF_ERROR(WriteLlamaTokenizerConfig(out_dir, model.config.max_position_embeddings).status());
  // llama2.c's models were trained on stories separated by BOS and never saw EOS: BOS ends a story.
  const int32_t bos = model.config.bos_token_id, eos = model.config.eos_token_ids.front();
  return WriteFileContents(
      out_dir / "generation_config.json",
      absl::StrCat("{\n  \"bos_token_id\": ", bos, ",\n  \"eos_token_id\": [", eos, ", ", bos, "]\n}\n"));
}

}  // namespace nibble
