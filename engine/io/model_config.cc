#include "engine/io/model_config.h"

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"

namespace nibble {
namespace {

using nlohmann::json;

// The largest size (and token id) a config may give: products of two sizes (a weight's elements) then fit
// int64, and every id fits int32.
constexpr int64_t kMaxSize = INT32_MAX;

absl::Status FieldError(const std::string& source, absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": field \"", field, "\" ", problem));
}

// Reads an integer field; `fallback` when absent (nullopt: required).
absl::StatusOr<int64_t> IntField(const json& object, const std::string& source, absl::string_view field,
                                 std::optional<int64_t> fallback = std::nullopt) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) {
    if (fallback) return *fallback;
    return FieldError(source, field, "is missing");
  }
  if (!it->is_number_integer()) return FieldError(source, field, "must be an integer");
  return it->get<int64_t>();
}

absl::StatusOr<double> NumberField(const json& object, const std::string& source, absl::string_view field,
                                   double fallback) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_number()) return FieldError(source, field, "must be a number");
  return it->get<double>();
}

absl::StatusOr<bool> BoolField(const json& object, const std::string& source, absl::string_view field, bool fallback) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return FieldError(source, field, "must be true or false");
  return it->get<bool>();
}

absl::StatusOr<std::string> StringField(const json& object, const std::string& source, absl::string_view field,
                                        std::string fallback) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_string()) return FieldError(source, field, "must be a string");
  return it->get<std::string>();
}

absl::StatusOr<Architecture> ParseArchitecture(const json& object, const std::string& source, std::string* name) {
  auto it = object.find("architectures");
  if (it == object.end() || !it->is_array() || it->empty() || !(*it)[0].is_string()) {
    return FieldError(source, "architectures", "must be a non-empty list of names");
  }
  *name = (*it)[0].get<std::string>();
  if (*name == "LlamaForCausalLM") return Architecture::kLlama;
  if (*name == "MistralForCausalLM") return Architecture::kMistral;
  if (*name == "Qwen2ForCausalLM") return Architecture::kQwen2;
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": unsupported architecture \"", *name,
                   "\" (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)"));
}

absl::StatusOr<std::optional<Llama3RopeScaling>> ParseRopeScaling(const json& object, const std::string& source) {
  auto it = object.find("rope_scaling");
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (!it->is_object()) return FieldError(source, "rope_scaling", "must be an object or null");
  NIBBLE_ASSIGN_OR_RETURN(std::string type, StringField(*it, source, "rope_type", ""));
  if (type.empty()) {
    NIBBLE_ASSIGN_OR_RETURN(type, StringField(*it, source, "type", ""));
  }
  if (type == "default") return std::nullopt;
  if (type != "llama3") {
    return FieldError(source, "rope_scaling",
                      absl::StrCat("has rope_type \"", type, "\"; only \"llama3\" and \"default\" are supported"));
  }
  Llama3RopeScaling scaling;
  NIBBLE_ASSIGN_OR_RETURN(scaling.factor, NumberField(*it, source, "factor", scaling.factor));
  NIBBLE_ASSIGN_OR_RETURN(scaling.low_freq_factor,
                          NumberField(*it, source, "low_freq_factor", scaling.low_freq_factor));
  NIBBLE_ASSIGN_OR_RETURN(scaling.high_freq_factor,
                          NumberField(*it, source, "high_freq_factor", scaling.high_freq_factor));
  NIBBLE_ASSIGN_OR_RETURN(
      scaling.original_max_position_embeddings,
      IntField(*it, source, "original_max_position_embeddings", scaling.original_max_position_embeddings));
  if (scaling.factor <= 0 || scaling.low_freq_factor <= 0 || scaling.high_freq_factor <= scaling.low_freq_factor ||
      scaling.original_max_position_embeddings <= 0) {
    return FieldError(
        source, "rope_scaling",
        "needs factor > 0, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings > 0");
  }
  return scaling;
}

absl::StatusOr<std::vector<int32_t>> ParseEosIds(const json& object, const std::string& source) {
  auto it = object.find("eos_token_id");
  if (it == object.end() || it->is_null()) return std::vector<int32_t>{2};
  std::vector<int32_t> ids;
  // A token id: an integer in [0, 2^31).
  auto is_id = [](const json& id) {
    return id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() <= kMaxSize;
  };
  if (it->is_number_integer()) {
    if (!is_id(*it)) return FieldError(source, "eos_token_id", "must be a token id (0 to 2147483647)");
    ids.push_back(it->get<int32_t>());
  } else if (it->is_array()) {
    for (const json& id : *it) {
      if (!is_id(id)) return FieldError(source, "eos_token_id", "must hold token ids (integers 0 to 2147483647)");
      ids.push_back(id.get<int32_t>());
    }
  } else {
    return FieldError(source, "eos_token_id", "must be an integer or a list of integers");
  }
  return ids;
}

absl::StatusOr<AwqConfig> ParseAwqConfig(const json& object, const std::string& source, bool legacy) {
  AwqConfig awq;
  if (!legacy) {
    NIBBLE_ASSIGN_OR_RETURN(std::string method, StringField(object, source, "quant_method", ""));
    if (method != "awq") {
      return FieldError(source, "quantization_config.quant_method",
                        absl::StrCat("is \"", method, "\"; only \"awq\" checkpoints are supported"));
    }
  }
  NIBBLE_ASSIGN_OR_RETURN(int64_t bits, IntField(object, source, legacy ? "w_bit" : "bits", 4));
  NIBBLE_ASSIGN_OR_RETURN(int64_t group, IntField(object, source, legacy ? "q_group_size" : "group_size", 128));
  NIBBLE_ASSIGN_OR_RETURN(awq.zero_point, BoolField(object, source, "zero_point", true));
  NIBBLE_ASSIGN_OR_RETURN(awq.version, StringField(object, source, "version", "gemm"));
  for (char& c : awq.version) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (bits != 4) return FieldError(source, "bits", absl::StrCat("is ", bits, "; AWQ checkpoints must be 4-bit"));
  if (group <= 0 || group > kMaxSize) {
    return FieldError(source, "group_size", absl::StrCat("must be positive and at most ", kMaxSize, ", got ", group));
  }
  if (!awq.zero_point) return FieldError(source, "zero_point", "must be true (asymmetric AWQ)");
  if (awq.version != "gemm") {
    return FieldError(source, "version", absl::StrCat("is \"", awq.version, "\"; only the GEMM layout is supported"));
  }
  awq.bits = static_cast<int>(bits);
  awq.group_size = static_cast<int>(group);
  return awq;
}

absl::StatusOr<json> ReadJsonFile(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat(path.string(), ": cannot open"));
  std::stringstream text;
  text << file.rdbuf();
  json parsed = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path.string(), ": invalid JSON"));
  return parsed;
}

}  // namespace

absl::StatusOr<ModelConfig> ParseModelConfig(const json& object, const std::string& source) {
  if (!object.is_object()) return absl::InvalidArgumentError(absl::StrCat(source, ": expected a JSON object"));
  ModelConfig config;
  NIBBLE_ASSIGN_OR_RETURN(config.architecture, ParseArchitecture(object, source, &config.architecture_name));
  NIBBLE_ASSIGN_OR_RETURN(config.vocab_size, IntField(object, source, "vocab_size"));
  NIBBLE_ASSIGN_OR_RETURN(config.hidden_size, IntField(object, source, "hidden_size"));
  NIBBLE_ASSIGN_OR_RETURN(config.intermediate_size, IntField(object, source, "intermediate_size"));
  NIBBLE_ASSIGN_OR_RETURN(config.num_layers, IntField(object, source, "num_hidden_layers"));
  NIBBLE_ASSIGN_OR_RETURN(config.num_heads, IntField(object, source, "num_attention_heads"));
  NIBBLE_ASSIGN_OR_RETURN(config.num_kv_heads, IntField(object, source, "num_key_value_heads", config.num_heads));
  if (config.num_heads <= 0) return FieldError(source, "num_attention_heads", "must be positive");
  NIBBLE_ASSIGN_OR_RETURN(config.head_dim, IntField(object, source, "head_dim", config.hidden_size / config.num_heads));
  NIBBLE_ASSIGN_OR_RETURN(config.max_position_embeddings, IntField(object, source, "max_position_embeddings", 2048));
  NIBBLE_ASSIGN_OR_RETURN(config.rms_norm_eps, NumberField(object, source, "rms_norm_eps", 1e-6));
  NIBBLE_ASSIGN_OR_RETURN(config.rope_theta, NumberField(object, source, "rope_theta", 10000.0));
  NIBBLE_ASSIGN_OR_RETURN(config.rope_scaling, ParseRopeScaling(object, source));
  NIBBLE_ASSIGN_OR_RETURN(config.tie_word_embeddings, BoolField(object, source, "tie_word_embeddings", false));
  NIBBLE_ASSIGN_OR_RETURN(bool attention_bias, BoolField(object, source, "attention_bias", false));
  NIBBLE_ASSIGN_OR_RETURN(config.mlp_bias, BoolField(object, source, "mlp_bias", false));
  config.qkv_bias = attention_bias || config.architecture == Architecture::kQwen2;
  config.o_bias = attention_bias && config.architecture != Architecture::kQwen2;
  NIBBLE_ASSIGN_OR_RETURN(const int64_t bos, IntField(object, source, "bos_token_id", 1));
  if (bos < 0 || bos > kMaxSize) return FieldError(source, "bos_token_id", "must be a token id below vocab_size");
  config.bos_token_id = static_cast<int32_t>(bos);
  NIBBLE_ASSIGN_OR_RETURN(config.eos_token_ids, ParseEosIds(object, source));
  NIBBLE_ASSIGN_OR_RETURN(config.torch_dtype, StringField(object, source, "torch_dtype", "float16"));
  if (auto it = object.find("sliding_window"); it != object.end() && !it->is_null()) {
    NIBBLE_ASSIGN_OR_RETURN(config.sliding_window, IntField(object, source, "sliding_window"));
    if (*config.sliding_window <= 0) return FieldError(source, "sliding_window", "must be positive or null");
  } else if (it == object.end() && config.architecture == Architecture::kMistral) {
    config.sliding_window = kMistralDefaultSlidingWindow;  // transformers' MistralConfig default
  }
  NIBBLE_ASSIGN_OR_RETURN(const bool use_sliding_window, BoolField(object, source, "use_sliding_window", false));
  if (use_sliding_window && config.architecture == Architecture::kQwen2) {
    return FieldError(source, "use_sliding_window",
                      "is true, which nibble does not support (transformers then windows the layers from "
                      "max_window_layers on; nibble would attend to every key)");
  }
  if (auto it = object.find("quantization_config"); it != object.end() && !it->is_null()) {
    if (!it->is_object()) return FieldError(source, "quantization_config", "must be an object");
    NIBBLE_ASSIGN_OR_RETURN(config.awq, ParseAwqConfig(*it, source, /*legacy=*/false));
  }

  struct Positive {
    absl::string_view field;
    int64_t value;
  };
  for (const Positive& check :
       {Positive{"vocab_size", config.vocab_size}, Positive{"hidden_size", config.hidden_size},
        Positive{"num_attention_heads", config.num_heads}, Positive{"intermediate_size", config.intermediate_size},
        Positive{"num_hidden_layers", config.num_layers}, Positive{"num_key_value_heads", config.num_kv_heads},
        Positive{"head_dim", config.head_dim}, Positive{"max_position_embeddings", config.max_position_embeddings}}) {
    if (check.value <= 0 || check.value > kMaxSize) {
      return FieldError(source, check.field,
                        absl::StrCat("must be positive and at most ", kMaxSize, ", got ", check.value));
    }
  }
  if (config.num_heads % config.num_kv_heads != 0) {
    return FieldError(
        source, "num_key_value_heads",
        absl::StrCat("(", config.num_kv_heads, ") must divide num_attention_heads (", config.num_heads, ")"));
  }
  if (config.head_dim % 2 != 0 || config.head_dim > 256) {
    return FieldError(source, "head_dim", absl::StrCat("must be even and at most 256, got ", config.head_dim));
  }
  if (config.rms_norm_eps <= 0) return FieldError(source, "rms_norm_eps", "must be positive");
  if (config.rope_theta <= 0) return FieldError(source, "rope_theta", "must be positive");
  if (config.bos_token_id < 0 || config.bos_token_id >= config.vocab_size) {
    return FieldError(source, "bos_token_id", "must be a token id below vocab_size");
  }
  return config;
}

absl::StatusOr<ModelConfig> ReadModelConfig(const std::filesystem::path& model_dir) {
  const std::filesystem::path config_path = model_dir / "config.json";
  NIBBLE_ASSIGN_OR_RETURN(json object, ReadJsonFile(config_path));
  NIBBLE_ASSIGN_OR_RETURN(ModelConfig config, ParseModelConfig(object, config_path.string()));
  const std::filesystem::path legacy_path = model_dir / "quant_config.json";
  if (!config.awq && std::filesystem::exists(legacy_path)) {
    NIBBLE_ASSIGN_OR_RETURN(json legacy, ReadJsonFile(legacy_path));
    if (!legacy.is_object())
      return absl::InvalidArgumentError(absl::StrCat(legacy_path.string(), ": expected an object"));
    NIBBLE_ASSIGN_OR_RETURN(config.awq, ParseAwqConfig(legacy, legacy_path.string(), /*legacy=*/true));
  }
  return config;
}

json ModelConfigToJson(const ModelConfig& config) {
  json object = {
      {"architectures", {config.architecture_name}},
      {"model_type", config.architecture == Architecture::kQwen2     ? "qwen2"
                     : config.architecture == Architecture::kMistral ? "mistral"
                                                                     : "llama"},
      {"vocab_size", config.vocab_size},
      {"hidden_size", config.hidden_size},
      {"intermediate_size", config.intermediate_size},
      {"num_hidden_layers", config.num_layers},
      {"num_attention_heads", config.num_heads},
      {"num_key_value_heads", config.num_kv_heads},
      {"head_dim", config.head_dim},
      {"max_position_embeddings", config.max_position_embeddings},
      {"rms_norm_eps", config.rms_norm_eps},
      {"rope_theta", config.rope_theta},
      {"tie_word_embeddings", config.tie_word_embeddings},
      {"hidden_act", "silu"},
      {"bos_token_id", config.bos_token_id},
      {"torch_dtype", config.torch_dtype},
  };
  object["eos_token_id"] =
      config.eos_token_ids.size() == 1 ? json(config.eos_token_ids[0]) : json(config.eos_token_ids);
  if (config.sliding_window) object["sliding_window"] = *config.sliding_window;
  if (config.architecture == Architecture::kLlama) {
    object["attention_bias"] = config.qkv_bias;
    object["mlp_bias"] = config.mlp_bias;
  }
  if (config.rope_scaling) {
    object["rope_scaling"] = {
        {"rope_type", "llama3"},
        {"factor", config.rope_scaling->factor},
        {"low_freq_factor", config.rope_scaling->low_freq_factor},
        {"high_freq_factor", config.rope_scaling->high_freq_factor},
        {"original_max_position_embeddings", config.rope_scaling->original_max_position_embeddings},
    };
  } else {
    object["rope_scaling"] = nullptr;
  }
  if (config.awq) {
    object["quantization_config"] = {
        {"quant_method", "awq"}, {"bits", config.awq->bits},       {"group_size", config.awq->group_size},
        {"zero_point", true},    {"version", config.awq->version}, {"modules_to_not_convert", nullptr},
    };
  }
  return object;
}

}  // namespace nibble
