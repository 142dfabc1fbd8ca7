// Fuzzes config.json (engine/io/model_config.h) as ReadModelConfig reads a model directory: the input is
// config.json, then after a NUL byte the legacy quant_config.json. Whatever it accepts must give the shapes the
// loader derives (model_layout.h) and round-trip through ModelConfigToJson, as the quantizer writes it back.
#include <cstddef>
#include <cstdint>

#include "engine/io/model_config.h"
#include "engine/io/model_layout.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nibble;
  const std::vector<absl::string_view> parts = fuzz::SplitOnNul(fuzz::AsText(data, size), 2);
  const std::filesystem::path& dir = fuzz::ScratchDir();
  fuzz::WriteOrDie(dir / "config.json", parts[0]);
  if (parts.size() > 1) {
    fuzz::WriteOrDie(dir / "quant_config.json", parts[1]);
  } else {
    fuzz::RemoveIfPresent(dir / "quant_config.json");
  }
  absl::StatusOr<ModelConfig> config = ReadModelConfig(dir);
  if (!config.ok()) return 0;

  int64_t elements = config->qkv_size();
  for (const DecoderLinear& linear : DecoderLinears(*config)) {
    fuzz::Check(linear.in_features > 0 && linear.out_features > 0, "a Linear of an accepted config is empty");
    if (config->awq) {
      const AwqShapes shapes = AwqTensorShapes(linear.in_features, linear.out_features, config->awq->group_size);
      elements += shapes.qweight.numel() + shapes.qzeros.numel() + shapes.scales.numel();
    }
  }
  fuzz::Check(elements > 0, "an accepted config has no weights");

  const nlohmann::json written = ModelConfigToJson(*config);
  const std::string text = written.dump();  // as the writers do: must not throw
  absl::StatusOr<ModelConfig> reread = ParseModelConfig(nlohmann::json::parse(text), "round trip");
  fuzz::Check(reread.ok(), "the config written back is refused");
  fuzz::Check(ModelConfigToJson(*reread) == written, "the config written back reads differently");
  return 0;
}
