#include "engine/tools/synth.h"

#include <algorithm>
#include <atomic>
#include <system_error>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/base/status_macros.h"
#include "engine/io/model_layout.h"
#include "engine/io/model_writer.h"
#include "engine/tokenizer/synth_tokenizer.h"

namespace nibble {
namespace {

struct Preset {
  absl::string_view name;
  Architecture architecture;
  absl::string_view architecture_name;
  int64_t hidden, intermediate, layers, heads, kv_heads, vocab, context;
  double rms_norm_eps, rope_theta;
  bool tied;
};

constexpr Preset kPresets[] = {
    {"tiny", Architecture::kLlama, "LlamaForCausalLM", 64, 172, 2, 4, 2, 512, 512, 1e-5, 1e4, false},
    {"llama2-7b", Architecture::kLlama, "LlamaForCausalLM", 4096, 11008, 32, 32, 32, 32000, 4096, 1e-5, 1e4, false},
    {"tinyllama-1.1b", Architecture::kLlama, "LlamaForCausalLM", 2048, 5632, 22, 32, 4, 32000, 2048, 1e-5, 1e4, false},
    {"mistral-7b", Architecture::kMistral, "MistralForCausalLM", 4096, 14336, 32, 32, 8, 32000, 32768, 1e-5, 1e4,
     false},
    {"qwen2-0.5b", Architecture::kQwen2, "Qwen2ForCausalLM", 896, 4864, 24, 14, 2, 151936, 32768, 1e-6, 1e6, true},
};

constexpr float kWeightStd = 0.02f;
constexpr float kMinScale = 0.002f;
constexpr float kMaxScale = 0.02f;
constexpr int64_t kChunkElements = int64_t{1} << 20;  // elements drawn from one random stream

// SplitMix64 (Steele, Lea, Flood 2014): a fast stream with good statistics, keyed by its starting state.
class RandomStream {
 public:
  explicit RandomStream(uint64_t key) : state_(key) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

// Approximately normal(0, 1): the sum of the four 16-bit uniforms of `bits`, centred and scaled.
float ApproxStandardNormal(uint64_t bits) {
  const uint64_t sum = (bits & 0xFFFF) + ((bits >> 16) & 0xFFFF) + ((bits >> 32) & 0xFFFF) + (bits >> 48);
  constexpr float kMean = 4 * 32767.5f;
  constexpr float kInverseStd = 1.0f / 37837.22f;  // sqrt(4 * (65536^2 - 1) / 12)
  return (static_cast<float>(sum) - kMean) * kInverseStd;
}

// Runs fn(chunk) for chunk = 0..chunks-1 on up to all cores.
template <typename Fn>
void ParallelChunks(int64_t chunks, const Fn& fn) {
  std::atomic<int64_t> next{0};
  auto work = [&] {
    for (int64_t chunk = next++; chunk < chunks; chunk = next++) fn(chunk);
  };
  const int64_t helpers = std::min<int64_t>(chunks, std::max(1u, std::thread::hardware_concurrency())) - 1;
  std::vector<std::thread> threads;
  for (int64_t i = 0; i < helpers; ++i) {
    try {
      threads.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // fewer threads; this one does the rest
    }
  }
  work();
  for (std::thread& thread : threads) thread.join();
}

// Random tensors, each drawn from its own streams keyed by (seed, tensor number, chunk), so the values do not
// depend on the number of threads. Tensors are numbered in the order they are made.
class RandomWeights {
 public:
  explicit RandomWeights(uint64_t seed) : seed_(seed) {}

  // fp16, approximately normal(0, stddev).
  HostTensor Normal(Shape shape, float stddev = kWeightStd) {
    return Fill<uint16_t>(DType::kF16, shape, [stddev](RandomStream& random, uint16_t* out, int64_t count, int64_t) {
      for (int64_t i = 0; i < count; ++i) out[i] = FloatToHalf(stddev * ApproxStandardNormal(random.Next()));
    });
  }

  // fp16 ones.
  HostTensor Ones(Shape shape) {
    return Fill<uint16_t>(DType::kF16, shape, [](RandomStream&, uint16_t* out, int64_t count, int64_t) {
      std::fill(out, out + count, FloatToHalf(1.0f));
    });
  }

  // fp16, uniform in [low, high).
  HostTensor Uniform(Shape shape, float low, float high) {
    return Fill<uint16_t>(DType::kF16, shape, [low, high](RandomStream& random, uint16_t* out, int64_t count, int64_t) {
      const float step = (high - low) / static_cast<float>(1 << 24);
      for (int64_t i = 0; i < count; ++i) out[i] = FloatToHalf(low + step * static_cast<float>(random.Next() >> 40));
    });
  }

  // int32 [rows, ceil(columns / 8)] of random 4-bit codes in AWQ's packing; the nibbles of the last word of
  // a row that hold no column (columns not a multiple of 8) are zero.
  HostTensor PackedNibbles(int64_t rows, int64_t columns) {
    const int64_t words_per_row = (columns + 7) / 8;
    const int64_t last_word_columns = columns - 8 * (words_per_row - 1);
    uint32_t last_word_mask = 0;
    for (int nibble = 0; nibble < 8; ++nibble) {
      if (kAwqNibbleColumn[nibble] < last_word_columns) last_word_mask |= 0xFu << (4 * nibble);
    }
    return Fill<uint32_t>(DType::kI32, Shape{rows, words_per_row},
                          [=](RandomStream& random, uint32_t* out, int64_t count, int64_t first) {
                            for (int64_t i = 0; i < count; i += 2) {
                              const uint64_t bits = random.Next();
                              out[i] = static_cast<uint32_t>(bits);
                              if (i + 1 < count) out[i + 1] = static_cast<uint32_t>(bits >> 32);
                            }
                            if (last_word_mask == 0xFFFFFFFFu) return;
                            // The first last-word of a row at or after element `first`.
                            for (int64_t i = words_per_row - 1 - first % words_per_row; i < count; i += words_per_row) {
                              out[i] &= last_word_mask;
                            }
                          });
  }

 private:
  // A new tensor filled chunk by chunk: fill(stream, out, count, first element index).
  template <typename T, typename FillChunk>
  HostTensor Fill(DType dtype, Shape shape, const FillChunk& fill_chunk) {
    const int64_t numel = shape.numel();
    std::shared_ptr<T[]> storage(new T[static_cast<size_t>(std::max<int64_t>(numel, 1))]);  // no zero-fill
    const uint64_t tensor = tensors_++;
    ParallelChunks((numel + kChunkElements - 1) / kChunkElements, [&](int64_t chunk) {
      RandomStream random(seed_ ^ (tensor * 0xD1B54A32D192ED03ull) ^
                          (static_cast<uint64_t>(chunk) * 0x8CB92BA72F3D8DD7ull));
      random.Next();  // decorrelate neighbouring keys
      const int64_t first = chunk * kChunkElements;
      fill_chunk(random, storage.get() + first, std::min(kChunkElements, numel - first), first);
    });
    HostTensor result;
    result.dtype = dtype;
    result.shape = shape;
    result.data = reinterpret_cast<const std::byte*>(storage.get());
    result.owner = std::move(storage);
    return result;
  }

  uint64_t seed_;
  uint64_t tensors_ = 0;
};

AwqWeight RandomAwq(RandomWeights& random, int64_t in_features, int64_t out_features, int group_size) {
  const AwqShapes shapes = AwqTensorShapes(in_features, out_features, group_size);
  AwqWeight awq;
  awq.group_size = group_size;
  awq.qweight = random.PackedNibbles(in_features, out_features);
  awq.qzeros = random.PackedNibbles(shapes.qzeros[0], out_features);
  awq.scales = random.Uniform(shapes.scales, kMinScale, kMaxScale);
  return awq;
}

// A model of `config` with dense Linears, or AWQ ones of `group_size` when given.
absl::StatusOr<HostModel> Synthesize(ModelConfig config, uint64_t seed, std::optional<int> group_size) {
  if (group_size) {
    if (*group_size <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("AWQ group size must be positive, not ", *group_size));
    }
    config.awq = AwqConfig{};
    config.awq->group_size = *group_size;
  } else {
    config.awq.reset();
  }
  config.torch_dtype = "float16";
  NIBBLE_RETURN_IF_ERROR(ParseModelConfig(ModelConfigToJson(config), "synthetic model config").status());

  RandomWeights random(seed);
  HostModel model;
  model.config = config;
  model.embedding = random.Normal(Shape{config.vocab_size, config.hidden_size});
  for (int64_t l = 0; l < config.num_layers; ++l) {
    HostLayer& layer = model.layers.emplace_back();
    for (const DecoderNorm& norm : kDecoderNorms) layer.*norm.member = random.Ones(Shape{config.hidden_size});
    for (const DecoderLinear& slot : DecoderLinears(config)) {
      HostLinear& linear = layer.*slot.member;
      linear.in_features = slot.in_features;
      linear.out_features = slot.out_features;
      if (group_size) {
        linear.weight = RandomAwq(random, slot.in_features, slot.out_features, *group_size);
      } else {
        linear.weight = random.Normal(Shape{slot.out_features, slot.in_features});
      }
      if (slot.bias) linear.bias = random.Normal(Shape{slot.out_features});
    }
  }
  model.final_norm = random.Ones(Shape{config.hidden_size});
  model.lm_head =
      config.tie_word_embeddings ? model.embedding : random.Normal(Shape{config.vocab_size, config.hidden_size});
  return model;
}

}  // namespace

std::vector<std::string> SynthPresetNames() {
  std::vector<std::string> names;
  for (const Preset& preset : kPresets) names.emplace_back(preset.name);
  return names;
}

absl::StatusOr<ModelConfig> SynthPreset(absl::string_view name) {
  for (const Preset& preset : kPresets) {
    if (preset.name != name) continue;
    ModelConfig config;
    config.architecture = preset.architecture;
    config.architecture_name = std::string(preset.architecture_name);
    config.vocab_size = preset.vocab;
    config.hidden_size = preset.hidden;
    config.intermediate_size = preset.intermediate;
    config.num_layers = preset.layers;
    config.num_heads = preset.heads;
    config.num_kv_heads = preset.kv_heads;
    config.head_dim = preset.hidden / preset.heads;
    config.max_position_embeddings = preset.context;
    config.rms_norm_eps = preset.rms_norm_eps;
    config.rope_theta = preset.rope_theta;
    config.tie_word_embeddings = preset.tied;
    config.qkv_bias = preset.architecture == Architecture::kQwen2;
    config.bos_token_id = 1;
    config.eos_token_ids = {2};
    config.torch_dtype = "float16";
    return config;
  }
  return absl::NotFoundError(
      absl::StrCat("unknown synth preset \"", name, "\" (available: ", absl::StrJoin(SynthPresetNames(), ", "), ")"));
}

absl::StatusOr<HostModel> SynthesizeModel(const ModelConfig& config, uint64_t seed) {
  return Synthesize(config, seed, std::nullopt);
}

absl::StatusOr<HostModel> SynthesizeModel(absl::string_view preset, uint64_t seed) {
  NIBBLE_ASSIGN_OR_RETURN(const ModelConfig config, SynthPreset(preset));
  return SynthesizeModel(config, seed);
}

absl::StatusOr<HostModel> SynthesizeQuantizedModel(const ModelConfig& config, uint64_t seed, int group_size) {
  return Synthesize(config, seed, group_size);
}

absl::StatusOr<HostModel> SynthesizeQuantizedModel(absl::string_view preset, uint64_t seed, int group_size) {
  NIBBLE_ASSIGN_OR_RETURN(const ModelConfig config, SynthPreset(preset));
  return SynthesizeQuantizedModel(config, seed, group_size);
}

absl::Status WriteSynthModelDir(const std::filesystem::path& out_dir, absl::string_view preset, uint64_t seed) {
  NIBBLE_ASSIGN_OR_RETURN(const HostModel model, SynthesizeModel(preset, seed));
  ModelWriteOptions options;
  options.float_dtype = DType::kF16;
  NIBBLE_RETURN_IF_ERROR(WriteHostModel(out_dir, model, options).status());
  NIBBLE_RETURN_IF_ERROR(WriteSynthTokenizer(out_dir / "tokenizer.model", model.config.vocab_size));
  return WriteLlamaTokenizerConfig(out_dir, model.config.max_position_embeddings).status();
}

}  // namespace nibble
