#include "engine/io/model_config.h"

#include <gtest/gtest.h>

namespace nibble {
namespace {

using nlohmann::json;

json Llama() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "vocab_size": 32000, "hidden_size": 4096,
    "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 32, "rms_norm_eps": 1e-5, "max_position_embeddings": 4096,
    "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float16"})");
}

TEST(ModelConfigTest, ParsesLlama) {
  const auto config = ParseModelConfig(Llama(), "config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->architecture, Architecture::kLlama);
  EXPECT_EQ(config->head_dim, 128);
  EXPECT_EQ(config->qkv_size(), 3 * 4096);
  EXPECT_FALSE(config->qkv_bias);
  EXPECT_FALSE(config->rope_scaling.has_value());
  EXPECT_EQ(config->eos_token_ids, std::vector<int32_t>{2});
}

TEST(ModelConfigTest, Qwen2HasQkvBiasAndLlama3Scaling) {
  json object = Llama();
  object["architectures"] = {"Qwen2ForCausalLM"};
  object["num_key_value_heads"] = 8;
  object["eos_token_id"] = {151643, 151645};
  object["rope_scaling"] = {{"rope_type", "llama3"},
                            {"factor", 8.0},
                            {"low_freq_factor", 1.0},
                            {"high_freq_factor", 4.0},
                            {"original_max_position_embeddings", 8192}};
  const auto config = ParseModelConfig(object, "config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->qkv_bias);
  EXPECT_FALSE(config->o_bias);
  EXPECT_EQ(config->kv_size(), 8 * 128);
  ASSERT_TRUE(config->rope_scaling.has_value());
  EXPECT_EQ(config->rope_scaling->factor, 8.0);
  EXPECT_EQ(config->eos_token_ids.size(), 2u);
}

TEST(ModelConfigTest, RoundTripsThroughJson) {
  json object = Llama();
  object["quantization_config"] = {
      {"quant_method", "awq"}, {"bits", 4}, {"group_size", 64}, {"zero_point", true}, {"version", "GEMM"}};
  const auto config = ParseModelConfig(object, "config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_TRUE(config->awq.has_value());
  EXPECT_EQ(config->awq->group_size, 64);
  const auto again = ParseModelConfig(ModelConfigToJson(*config), "again");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->hidden_size, 4096);
  EXPECT_EQ(again->awq->group_size, 64);
  EXPECT_EQ(again->awq->version, "gemm");
}

TEST(ModelConfigTest, MistralSlidingWindowRoundTrips) {
  json object = Llama();
  object["architectures"] = {"MistralForCausalLM"};
  object["sliding_window"] = 4096;
  const auto config = ParseModelConfig(object, "config.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->sliding_window, 4096);
  const json written = ModelConfigToJson(*config);
  EXPECT_EQ(written["sliding_window"], 4096);
  const auto again = ParseModelConfig(written, "again");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->sliding_window, 4096);

  // Mistral v0.2 and later: "sliding_window": null, none; and none is not written back.
  object["sliding_window"] = nullptr;
  const auto without = ParseModelConfig(object, "config.json");
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_FALSE(without->sliding_window.has_value());
  EXPECT_FALSE(ModelConfigToJson(*without).contains("sliding_window"));

  // No key at all: transformers' MistralConfig default, 4096, and written back so that transformers agrees.
  object.erase("sliding_window");
  const auto defaulted = ParseModelConfig(object, "config.json");
  ASSERT_TRUE(defaulted.ok()) << defaulted.status();
  EXPECT_EQ(defaulted->sliding_window, kMistralDefaultSlidingWindow);
  EXPECT_EQ(defaulted->attention_window(), 4096);
  EXPECT_EQ(ModelConfigToJson(*defaulted)["sliding_window"], 4096);
  // Llama has no such default.
  EXPECT_FALSE(ParseModelConfig(Llama(), "config.json")->sliding_window.has_value());
}

TEST(ModelConfigTest, QwenSlidingWindowIsIgnoredUnlessUsedAndRefusedWhenUsed) {
  json object = Llama();
  object["architectures"] = {"Qwen2ForCausalLM"};
  object["sliding_window"] = 131072;
  object["use_sliding_window"] = false;
  const auto ignored = ParseModelConfig(object, "config.json");
  ASSERT_TRUE(ignored.ok()) << ignored.status();
  EXPECT_EQ(ignored->attention_window(), 0);
  object["use_sliding_window"] = true;
  const auto used = ParseModelConfig(object, "/m/config.json");
  ASSERT_FALSE(used.ok());
  EXPECT_EQ(used.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(used.status().message().find("/m/config.json"), absl::string_view::npos) << used.status();
  EXPECT_NE(used.status().message().find("use_sliding_window"), absl::string_view::npos) << used.status();
}

struct BadConfig {
  std::string name;
  std::function<void(json&)> edit;
  std::string expected_in_message;
};

class ModelConfigErrorTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ModelConfigErrorTest, NamesTheFileAndTheProblem) {
  json object = Llama();
  GetParam().edit(object);
  const auto config = ParseModelConfig(object, "/models/x/config.json");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(config.status().message().find("/models/x/config.json"), absl::string_view::npos) << config.status();
  EXPECT_NE(config.status().message().find(GetParam().expected_in_message), absl::string_view::npos) << config.status();
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ModelConfigErrorTest,
    ::testing::Values(
        BadConfig{"UnsupportedArchitecture", [](json& j) { j["architectures"] = {"GPT2LMHeadModel"}; },
                  "unsupported architecture \"GPT2LMHeadModel\""},
        BadConfig{"ZeroSlidingWindow", [](json& j) { j["sliding_window"] = 0; },
                  "\"sliding_window\" must be positive or null"},
        BadConfig{"StringSlidingWindow", [](json& j) { j["sliding_window"] = "4096"; }, "must be an integer"},
        BadConfig{"MissingHidden", [](json& j) { j.erase("hidden_size"); }, "\"hidden_size\" is missing"},
        BadConfig{"StringLayers", [](json& j) { j["num_hidden_layers"] = "32"; }, "must be an integer"},
        BadConfig{"KvHeadsDoNotDivide", [](json& j) { j["num_key_value_heads"] = 5; }, "must divide"},
        BadConfig{"NegativeVocab", [](json& j) { j["vocab_size"] = -1; }, "\"vocab_size\" must be positive"},
        // Found through tests/fuzz/model_config_fuzz.cc (sizes whose products overflowed, a group size that
        // became 0 as an int and divided by zero, ids that wrapped to other ids).
        BadConfig{"HeadsWhoseSizesOverflow",
                  [](json& j) {
                    j["num_attention_heads"] = int64_t{1} << 62;
                    j["num_key_value_heads"] = int64_t{1} << 62;
                    j["head_dim"] = 2;
                  },
                  "\"num_attention_heads\" must be positive and at most 2147483647"},
        BadConfig{"GroupSizeAbove2To31",
                  [](json& j) {
                    j["quantization_config"] = {{"quant_method", "awq"}, {"bits", 4}, {"group_size", int64_t{1} << 32}};
                  },
                  "\"group_size\" must be positive and at most 2147483647"},
        BadConfig{"BosAbove2To31", [](json& j) { j["bos_token_id"] = (int64_t{1} << 32) + 1; }, "\"bos_token_id\""},
        BadConfig{"EosAbove2To31",
                  [](json& j) {
                    j["eos_token_id"] = {2, (int64_t{1} << 32) + 2};
                  },
                  "\"eos_token_id\""},
        BadConfig{"NegativeEos", [](json& j) { j["eos_token_id"] = -1; }, "\"eos_token_id\""},
        BadConfig{"UnknownRopeScaling",
                  [](json& j) {
                    j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4}};
                  },
                  "rope_type \"yarn\""},
        BadConfig{"ThreeBitAwq",
                  [](json& j) {
                    j["quantization_config"] = {{"quant_method", "awq"}, {"bits", 3}, {"group_size", 128}};
                  },
                  "must be 4-bit"},
        BadConfig{"GptqIsNotAwq",
                  [](json& j) {
                    j["quantization_config"] = {{"quant_method", "gptq"}};
                  },
                  "only \"awq\""}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace nibble
