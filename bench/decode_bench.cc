// End to end on the GPU: a synthetic Llama-family model with random 4-bit AWQ weights (nibble's synth; the
// speed does not depend on the values), loaded through the normal path (repacked, fused), then
//   - the time to prefill one prompt of --prompt tokens,
//   - decode tokens/s for each batch size of --batches after such a prompt per sequence (greedy sampling on
//     the GPU, decode steps replayed as CUDA graphs),
//   - GPU memory taken by the weights and by the KV cache,
// with the bandwidth floor of each decode step (weights + KV cache read once, at the copy bandwidth measured
// in the same run) for reference.
//
//   build/bench/decode_bench [--preset llama2-7b] [--group 128] [--prompt 512] [--decode 128] [--batches 1,8,32]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bench/copy_bandwidth.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/runtime/model.h"
#include "engine/tools/synth.h"

namespace nibble::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

void Check(const absl::Status& status, const char* what) {
  if (!status.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, std::string(status.message()).c_str());
    std::exit(1);
  }
}

struct Options {
  std::string preset = "llama2-7b";
  int group = 128;
  int prompt = 512;
  int decode = 128;
  std::vector<int> batches = {1, 8, 32};
};

Options Parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--preset") options.preset = value;
    if (flag == "--group") options.group = std::stoi(value);
    if (flag == "--prompt") options.prompt = std::stoi(value);
    if (flag == "--decode") options.decode = std::stoi(value);
    if (flag == "--batches") {
      options.batches.clear();
      for (absl::string_view part : absl::StrSplit(value, ',')) {
        int batch = 0;
        if (absl::SimpleAtoi(part, &batch)) options.batches.push_back(batch);
      }
    }
  }
  return options;
}

// Random prompt tokens (ids 3.., away from the special tokens).
std::vector<int32_t> Prompt(int length, int64_t vocab, uint32_t seed) {
  std::vector<int32_t> tokens(static_cast<size_t>(length));
  for (int i = 0; i < length; ++i)
    tokens[i] = static_cast<int32_t>(3 + (seed * 2654435761u + i * 40503u) % (vocab - 3));
  return tokens;
}

int Main(int argc, char** argv) {
  const Options options = Parse(argc, argv);
  const int max_batch = *std::max_element(options.batches.begin(), options.batches.end());
  auto backend_or = MakeCudaBackend(0);
  Check(backend_or.status(), "backend");
  Backend& backend = **backend_or;

  auto start = Clock::now();
  auto host = SynthesizeQuantizedModel(options.preset, 1, options.group);
  Check(host.status(), "synthesize");
  const double synth_seconds = Seconds(start);
  const ModelConfig& config = host->config;

  ModelOptions model_options;
  model_options.max_seqs = max_batch;
  model_options.max_step_tokens = options.prompt;
  model_options.max_context = options.prompt + options.decode + 16;
  const size_t memory_before = backend.memory_usage().used_bytes;
  start = Clock::now();
  auto model_or = Model::Create(backend, *host, model_options);
  Check(model_or.status(), "load");
  Model& model = **model_or;
  const double load_seconds = Seconds(start);
  const size_t memory_after = backend.memory_usage().used_bytes;

  cudaStream_t probe_stream;
  cudaStreamCreate(&probe_stream);
  const CopyBandwidth copy = MeasureCopyBandwidth(probe_stream);

  // Prefill: one prompt from an empty cache, median of 5 after a warm-up.
  std::vector<double> prefill_ms;
  for (int rep = 0; rep < 6; ++rep) {
    KvSequence sequence(model.kv_pool());
    Check(sequence.Reserve(options.prompt), "reserve");
    const std::vector<int32_t> prompt = Prompt(options.prompt, config.vocab_size, 7 + rep);
    StepBatch step;
    step.AddSequence(prompt, 0, sequence.blocks(), StepBatch::Logits::kLast);
    start = Clock::now();
    Check(model.Forward(step).status(), "prefill");
    Check(backend.Synchronize(), "prefill");
    if (rep > 0) prefill_ms.push_back(Seconds(start) * 1e3);
  }
  std::sort(prefill_ms.begin(), prefill_ms.end());

  std::printf("model: %s (synthetic, AWQ w4 g%d), %ld layers, hidden %ld, vocab %ld; device: %s\n",
              options.preset.c_str(), options.group, static_cast<long>(config.num_layers),
              static_cast<long>(config.hidden_size), static_cast<long>(config.vocab_size), backend.name().c_str());
  std::printf("copy bandwidth (read + write): %.0f GB/s; synthesize %.1f s, load %.1f s\n", copy.best_gbs,
              synth_seconds, load_seconds);
  std::printf(
      "GPU memory: weights %.3f GB (%zu bytes), KV cache %.3f GB for %d x %d tokens, all allocations %.3f GB\n\n",
      model.weight_bytes() / 1e9, model.weight_bytes(), model.kv_cache().bytes() / 1e9, max_batch,
      model_options.max_context, (memory_after - memory_before) / 1e9);
  std::printf("| prefill %d tokens | median ms |\n|---|---|\n| batch 1 | %.2f |\n\n", options.prompt,
              prefill_ms[prefill_ms.size() / 2]);

  std::printf(
      "| decode after %d-token prompts | batch | tokens/s (all sequences) | ms per step | floor tokens/s | "
      "of floor |\n|---|---|---|---|---|---|\n",
      options.prompt);
  const SamplingParams greedy{.temperature = 0.0f};
  const size_t kv_bytes_per_token = KvCache::BytesPerBlock(config, config.num_layers, 1, DType::kF16);
  for (int batch : options.batches) {
    std::vector<KvSequence> sequences;
    std::vector<std::vector<int32_t>> last(batch);
    for (int b = 0; b < batch; ++b) {
      sequences.emplace_back(model.kv_pool());
      Check(sequences.back().Reserve(options.prompt + options.decode + 1), "reserve");
      const std::vector<int32_t> prompt = Prompt(options.prompt, config.vocab_size, 100 + b);
      StepBatch step;
      step.AddSequence(prompt, 0, sequences.back().blocks(), StepBatch::Logits::kLast);
      Check(model.Forward(step).status(), "prefill");
      last[b] = {prompt.back()};
    }
    const int warmup = 3;  // the first run of a shape sizes scratch, the second captures it
    double seconds = 0.0;
    for (int i = 0; i < warmup + options.decode; ++i) {
      StepBatch step;
      std::vector<SamplingRequest> requests(batch, SamplingRequest{&greedy, 0, {}, {}});
      for (int b = 0; b < batch; ++b) {
        step.AddSequence(last[b], options.prompt + i, sequences[b].blocks(), StepBatch::Logits::kLast);
      }
      start = Clock::now();
      auto tokens = model.ForwardAndSample(step, requests);
      Check(tokens.status(), "decode");
      if (i >= warmup) seconds += Seconds(start);
      for (int b = 0; b < batch; ++b) last[b] = {(*tokens)[b].token};
    }
    const double tokens_per_second = batch * options.decode / seconds;
    // Floor: every weight byte (the embedding table aside: one row per token) and each sequence's KV cache
    // read once per step, at the copy bandwidth.
    const double context = options.prompt + options.decode / 2.0;
    const double step_bytes = static_cast<double>(model.weight_bytes()) - config.vocab_size * config.hidden_size * 2.0 +
                              batch * context * kv_bytes_per_token;
    const double floor = batch / (step_bytes / (copy.best_gbs * 1e9));
    std::printf("| | %d | %.1f | %.3f | %.0f | %.0f%% |\n", batch, tokens_per_second, seconds / options.decode * 1e3,
                floor, 100.0 * tokens_per_second / floor);
  }
  return 0;
}

}  // namespace
}  // namespace nibble::bench

int main(int argc, char** argv) { return nibble::bench::Main(argc, argv); }
