#include "engine/io/model_loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "engine/io/model_layout.h"
#include "engine/io/model_writer.h"
#include "engine/io/safetensors.h"
#include "engine/io/tensor_source.h"
#include "engine/tools/synth.h"
#include "nlohmann/json.hpp"
#include "tests/support/shared_data.h"

namespace nibble {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::vector<std::byte> BytesOf(const HostTensor& tensor) { return {tensor.data, tensor.data + tensor.bytes()}; }

// A small model with odd sizes: head_dim 8, intermediate 172 (not a multiple of 8 or of the group size).
ModelConfig OddConfig() {
  ModelConfig config = *SynthPreset("tiny");
  config.num_layers = 3;
  config.num_heads = 4;
  config.num_kv_heads = 2;
  config.hidden_size = 32;
  config.head_dim = 8;
  config.intermediate_size = 172;
  config.vocab_size = 300;
  return config;
}

// Every tensor of a model under its HF name (the HostLinear's parts by suffix).
std::map<std::string, HostTensor> Flatten(const HostModel& model) {
  std::map<std::string, HostTensor> out = {
      {"embed", model.embedding}, {"norm", model.final_norm}, {"lm_head", model.lm_head}};
  for (size_t l = 0; l < model.layers.size(); ++l) {
    const std::string prefix = LayerPrefix(static_cast<int64_t>(l));
    for (const DecoderNorm& norm : kDecoderNorms) out[prefix + std::string(norm.module)] = model.layers[l].*norm.member;
    for (const DecoderLinear& slot : DecoderLinears(model.config)) {
      const HostLinear& linear = model.layers[l].*slot.member;
      const std::string name = prefix + std::string(slot.module);
      if (const auto* awq = std::get_if<AwqWeight>(&linear.weight)) {
        out[name + ".qweight"] = awq->qweight;
        out[name + ".qzeros"] = awq->qzeros;
        out[name + ".scales"] = awq->scales;
      } else {
        out[name + ".weight"] = std::get<HostTensor>(linear.weight);
      }
      if (linear.bias) out[name + ".bias"] = *linear.bias;
    }
  }
  return out;
}

void ExpectSameTensors(const HostModel& actual, const HostModel& expected) {
  const auto a = Flatten(actual);
  const auto e = Flatten(expected);
  ASSERT_EQ(a.size(), e.size());
  for (const auto& [name, tensor] : e) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(a.count(name));
    EXPECT_EQ(a.at(name).dtype, tensor.dtype);
    EXPECT_EQ(a.at(name).shape, tensor.shape);
    EXPECT_EQ(BytesOf(a.at(name)), BytesOf(tensor));
  }
}

TEST(ModelLoaderTest, DenseModelRoundTripsByteForByte) {
  testing::TempDir dir;
  const auto model = SynthesizeModel(OddConfig(), 11);
  ASSERT_TRUE(model.ok()) << model.status();
  const auto written = WriteHostModel(dir.path(), *model);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_EQ(written->size(), 2u);  // config.json, model.safetensors
  const auto loaded = LoadHostModel(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectSameTensors(*loaded, *model);
  EXPECT_EQ(loaded->config.intermediate_size, 172);
  EXPECT_EQ(loaded->config.head_dim, 8);
  EXPECT_FALSE(loaded->config.awq.has_value());
  EXPECT_EQ(loaded->layers[2].down.in_features, 172);
  EXPECT_EQ(loaded->layers[2].down.out_features, 32);
  // The tensors came from the file just written.
  const auto source = TensorSource::Open(dir.path());
  ASSERT_TRUE(source.ok());
  EXPECT_EQ(source->FileOf("model.norm.weight"), (dir.path() / "model.safetensors").string());
}

TEST(ModelLoaderTest, WritesDenseTensorsInTheChosenFloatDtype) {
  const auto model = SynthesizeModel(OddConfig(), 12);
  ASSERT_TRUE(model.ok());
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    testing::TempDir dir;
    ModelWriteOptions options;
    options.float_dtype = dtype;
    ASSERT_TRUE(WriteHostModel(dir.path(), *model, options).ok());
    const auto loaded = LoadHostModel(dir.path());
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ(loaded->config.torch_dtype, dtype == DType::kF32 ? "float32" : "bfloat16");
    const HostTensor& weight = std::get<HostTensor>(loaded->layers[1].gate.weight);
    EXPECT_EQ(weight.dtype, dtype);
    const std::vector<float> source = std::get<HostTensor>(model->layers[1].gate.weight).ToFloats();
    const std::vector<float> values = weight.ToFloats();
    ASSERT_EQ(values.size(), source.size());
    for (size_t i = 0; i < values.size(); ++i) {
      const float expected = dtype == DType::kF32 ? source[i] : BFloat16ToFloat(FloatToBFloat16(source[i]));
      ASSERT_EQ(values[i], expected) << i;
    }
    EXPECT_EQ(loaded->final_norm.dtype, dtype);
    EXPECT_EQ(loaded->final_norm.ToFloats()[0], 1.0f);
  }
}

TEST(ModelLoaderTest, AwqModelRoundTripsByteForByte) {
  testing::TempDir dir;
  const auto model = SynthesizeQuantizedModel(OddConfig(), 13, /*group_size=*/32);
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(WriteHostModel(dir.path(), *model).ok());
  const auto loaded = LoadHostModel(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->config.awq.has_value());
  EXPECT_EQ(loaded->config.awq->group_size, 32);
  ExpectSameTensors(*loaded, *model);
  const HostLinear& down = loaded->layers[0].down;  // in 172: groups of 32, the last one 12 long
  ASSERT_TRUE(down.quantized());
  EXPECT_EQ(std::get<AwqWeight>(down.weight).qweight.shape, (Shape{172, 4}));
  EXPECT_EQ(std::get<AwqWeight>(down.weight).qzeros.shape, (Shape{6, 4}));
  EXPECT_EQ(std::get<AwqWeight>(down.weight).scales.shape, (Shape{6, 32}));
  EXPECT_EQ(LinearWeightToFloats(down), LinearWeightToFloats(model->layers[0].down));

  std::ifstream config_file(dir.path() / "config.json");
  const json config = json::parse(config_file);
  EXPECT_EQ(config["quantization_config"]["quant_method"], "awq");
  EXPECT_EQ(config["quantization_config"]["group_size"], 32);
  EXPECT_EQ(config["quantization_config"]["version"], "gemm");
}

TEST(ModelLoaderTest, Qwen2BiasesAndTiedEmbeddings) {
  testing::TempDir dir;
  ModelConfig config = *SynthPreset("qwen2-0.5b");
  config.vocab_size = 320;
  config.hidden_size = 64;
  config.num_heads = 4;
  config.num_kv_heads = 2;
  config.head_dim = 16;
  config.intermediate_size = 96;
  config.num_layers = 2;
  const auto model = SynthesizeModel(config, 14);
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_TRUE(WriteHostModel(dir.path(), *model).ok());
  const auto source = TensorSource::Open(dir.path());
  ASSERT_TRUE(source.ok());
  EXPECT_FALSE(source->Has("lm_head.weight"));
  EXPECT_TRUE(source->Has("model.layers.1.self_attn.k_proj.bias"));
  EXPECT_FALSE(source->Has("model.layers.1.self_attn.o_proj.bias"));
  EXPECT_FALSE(source->Has("model.layers.1.mlp.up_proj.bias"));

  const auto loaded = LoadHostModel(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->config.architecture, Architecture::kQwen2);
  EXPECT_TRUE(loaded->config.tie_word_embeddings);
  EXPECT_EQ(loaded->lm_head.data, loaded->embedding.data);
  ASSERT_TRUE(loaded->layers[1].v.bias.has_value());
  EXPECT_EQ(loaded->layers[1].v.bias->shape, (Shape{32}));
  EXPECT_FALSE(loaded->layers[1].o.bias.has_value());
  ExpectSameTensors(*loaded, *model);
}

TEST(ModelLoaderTest, ShardedModelLoads) {
  testing::TempDir dir;
  const auto model = SynthesizeModel(OddConfig(), 15);
  ASSERT_TRUE(model.ok());
  ModelWriteOptions options;
  options.max_shard_bytes = 40'000;
  const auto written = WriteHostModel(dir.path(), *model, options);
  ASSERT_TRUE(written.ok()) << written.status();
  EXPECT_GT(written->size(), 3u);
  EXPECT_EQ(written->back(), dir.path() / "model.safetensors.index.json");
  const auto loaded = LoadHostModel(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectSameTensors(*loaded, *model);
}

// --- Bad model directories ---------------------------------------------------------------------------------

class BadModelDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = *SynthesizeModel(OddConfig(), 16);
    ASSERT_TRUE(WriteHostModel(dir_.path(), model_).ok());
  }
  // Rewrites model.safetensors after `edit` changes its tensors (copied first: the file is rewritten).
  void EditTensors(const std::function<void(std::vector<NamedTensor>&)>& edit) {
    std::vector<NamedTensor> tensors;
    {
      const auto source = TensorSource::Open(dir_.path());
      ASSERT_TRUE(source.ok());
      for (const std::string& name : source->names()) {
        const HostTensor view = *source->Get(name);
        tensors.push_back({name, HostTensor::FromBytes(BytesOf(view), view.dtype, view.shape)});
      }
    }
    edit(tensors);
    ASSERT_TRUE(WriteSafetensors(dir_.path() / "model.safetensors", tensors).ok());
  }
  void ReplaceTensor(const std::string& name, HostTensor tensor) {
    EditTensors([&](std::vector<NamedTensor>& tensors) {
      for (NamedTensor& named : tensors) {
        if (named.name == name) named.tensor = tensor;
      }
    });
  }
  void EditConfig(const std::function<void(json&)>& edit) {
    json config;
    std::ifstream(dir_.path() / "config.json") >> config;
    edit(config);
    std::ofstream(dir_.path() / "config.json") << config.dump();
  }
  absl::Status LoadError() {
    const auto loaded = LoadHostModel(dir_.path());
    EXPECT_FALSE(loaded.ok());
    return loaded.ok() ? absl::OkStatus() : loaded.status();
  }
  std::string file() const { return (dir_.path() / "model.safetensors").string(); }
  std::string config_file() const { return (dir_.path() / "config.json").string(); }

  testing::TempDir dir_;
  HostModel model_;
};

TEST_F(BadModelDirTest, MissingTensor) {
  EditTensors([](std::vector<NamedTensor>& tensors) {
    std::erase_if(tensors, [](const NamedTensor& t) { return t.name == "model.layers.2.mlp.up_proj.weight"; });
  });
  const absl::Status status = LoadError();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), dir_.path().string() + ": tensor \"model.layers.2.mlp.up_proj.weight\" is missing; " +
                                  config_file() + " implies it");
}

TEST_F(BadModelDirTest, WrongDtype) {
  ReplaceTensor("model.norm.weight", HostTensor::FromBytes(std::vector<std::byte>(32 * 4), DType::kI32, Shape{32}));
  const absl::Status status = LoadError();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), file() + ": tensor \"model.norm.weight\" has dtype I32 but must be F32, F16 or BF16");
}

TEST_F(BadModelDirTest, WrongShape) {
  ReplaceTensor("model.layers.1.self_attn.k_proj.weight",
                HostTensor::FromFloats(std::vector<float>(32 * 32), Shape{32, 32}));
  const absl::Status status = LoadError();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), file() + ": tensor \"model.layers.1.self_attn.k_proj.weight\" has shape [32, 32] but " +
                                  config_file() + " implies [16, 32]");
}

TEST_F(BadModelDirTest, ConfigDisagreesWithTheTensors) {
  EditConfig([](json& config) { config["intermediate_size"] = 176; });
  EXPECT_THAT(LoadError().message(),
              AllOf(HasSubstr(file()), HasSubstr("model.layers.0.mlp.gate_proj.weight\" has shape [172, 32] but"),
                    HasSubstr("implies [176, 32]")));
}

TEST_F(BadModelDirTest, UntiedModelWithoutLmHead) {
  EditTensors([](std::vector<NamedTensor>& tensors) {
    std::erase_if(tensors, [](const NamedTensor& t) { return t.name == "lm_head.weight"; });
  });
  EXPECT_THAT(LoadError().message(),
              AllOf(HasSubstr("\"lm_head.weight\" is missing"), HasSubstr("tie_word_embeddings is false")));
}

TEST_F(BadModelDirTest, AwqConfigOverADenseCheckpoint) {
  EditConfig([](json& config) {
    config["quantization_config"] = {{"quant_method", "awq"}, {"bits", 4}, {"group_size", 128}, {"version", "gemm"}};
  });
  const absl::Status status = LoadError();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("model.layers.0.self_attn.q_proj.qweight\" is missing"),
                    HasSubstr("quantization_config says AWQ, but the checkpoint has a dense .weight")));
}

TEST_F(BadModelDirTest, InvalidConfigJson) {
  std::ofstream(dir_.path() / "config.json") << "{\"architectures\": [";
  EXPECT_THAT(LoadError().message(), AllOf(HasSubstr(config_file()), HasSubstr("invalid JSON")));
}

TEST_F(BadModelDirTest, UnsupportedArchitecture) {
  EditConfig([](json& config) { config["architectures"] = {"GPT2LMHeadModel"}; });
  EXPECT_THAT(LoadError().message(),
              AllOf(HasSubstr(config_file()), HasSubstr("unsupported architecture \"GPT2LMHeadModel\"")));
}

TEST_F(BadModelDirTest, MissingConfigAndWeights) {
  std::filesystem::remove(dir_.path() / "model.safetensors");
  EXPECT_THAT(LoadError().message(), AllOf(HasSubstr(dir_.path().string()), HasSubstr("neither model.safetensors")));
  std::filesystem::remove(dir_.path() / "config.json");
  const absl::Status status = LoadError();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr(config_file()));
}

class BadAwqDirTest : public BadModelDirTest {
 protected:
  void SetUp() override {
    model_ = *SynthesizeQuantizedModel(OddConfig(), 17, 64);
    ASSERT_TRUE(WriteHostModel(dir_.path(), model_).ok());
  }
};

TEST_F(BadAwqDirTest, ScalesMustBeF16) {
  ReplaceTensor("model.layers.0.mlp.down_proj.scales",
                HostTensor::FromFloats(std::vector<float>(3 * 32), Shape{3, 32}));
  EXPECT_EQ(LoadError().message(),
            file() + ": tensor \"model.layers.0.mlp.down_proj.scales\" has dtype F32 but must be F16");
}

TEST_F(BadAwqDirTest, QweightShapeFollowsTheGroupSize) {
  EditConfig([](json& config) { config["quantization_config"]["group_size"] = 128; });
  EXPECT_THAT(LoadError().message(), AllOf(HasSubstr("model.layers.0.mlp.down_proj.qzeros\" has shape [3, 4] but"),
                                           HasSubstr("implies [2, 4]")));
}

// --- The writer checks before it writes ---------------------------------------------------------------------

TEST(ModelWriterTest, RefusesAModelThatDisagreesWithItsConfig) {
  testing::TempDir dir;
  HostModel model = *SynthesizeModel(OddConfig(), 18);
  model.config.intermediate_size = 160;
  const auto status = WriteHostModel(dir.path() / "out", model).status();
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("model being written to"), HasSubstr("mlp.gate_proj.weight\" has shape "
                                                                   "[172, 32] but its config implies [160, 32]")));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "out"));

  model = *SynthesizeModel(OddConfig(), 18);
  model.layers.pop_back();
  EXPECT_THAT(WriteHostModel(dir.path() / "out", model).status().message(),
              HasSubstr("has 2 layers but its config says 3"));

  model = *SynthesizeQuantizedModel(OddConfig(), 18, 64);
  model.config.awq->group_size = 100;  // same group count for in = 32 and 172: only the group size tells
  EXPECT_THAT(WriteHostModel(dir.path() / "out", model).status().message(),
              HasSubstr("has AWQ group size 64 but its config says 100"));

  model = *SynthesizeModel(OddConfig(), 18);
  ModelWriteOptions options;
  options.float_dtype = DType::kI32;
  EXPECT_THAT(WriteHostModel(dir.path() / "out", model, options).status().message(), HasSubstr("not I32"));
}

}  // namespace
}  // namespace nibble
