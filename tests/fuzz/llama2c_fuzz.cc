// Fuzzes the llama2.c checkpoint reader (engine/tools/llama2c.h): the input is the whole model.bin. Whatever it
// accepts must be a model whose every tensor view is readable to its last byte.
#include <cstddef>
#include <cstdint>

#include "engine/tools/llama2c.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

void TouchLinear(const nibble::HostLinear& linear) {
  nibble::fuzz::Check(!linear.quantized(), "a llama2.c Linear is quantized");
  const nibble::HostTensor& weight = std::get<nibble::HostTensor>(linear.weight);
  nibble::fuzz::Check(weight.numel() == linear.in_features * linear.out_features, "a Linear's shape is off");
  nibble::fuzz::TouchBytes(weight);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nibble;
  const std::filesystem::path path = fuzz::ScratchDir() / "model.bin";
  fuzz::WriteOrDie(path, fuzz::AsText(data, size));
  absl::StatusOr<HostModel> model = ReadLlama2c(path);
  if (!model.ok()) return 0;
  fuzz::Check(static_cast<int64_t>(model->layers.size()) == model->config.num_layers, "layers are missing");
  fuzz::TouchBytes(model->embedding);
  fuzz::TouchBytes(model->final_norm);
  fuzz::TouchBytes(model->lm_head);
  for (const HostLayer& layer : model->layers) {
    fuzz::TouchBytes(layer.attention_norm);
    fuzz::TouchBytes(layer.mlp_norm);
    for (const HostLinear* linear : {&layer.q, &layer.k, &layer.v, &layer.o, &layer.gate, &layer.up, &layer.down}) {
      TouchLinear(*linear);
    }
  }
  return 0;
}
