// The AWQ quality table of issue 3 for stories260K: token-level perplexity on tinystories-dev-50 (ctx 512,
// separator <|endoftext|>, calibration = evaluation text) of fp32, RTN and AWQ at w4 g32, w4 g64 and w3 g32
// (fake-quant: the same quantizer, kept dense, so 3 bits can be measured), beside the independent reference
// (a numpy implementation of ../shared/docs/awq.md). Runs the quantizer on the CPU backend.
//
//   awq_quality_bench [--formulas both|all] [--shared DIR]     (default: both; DIR default $NIBBLE_SHARED)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/tools/llama2c.h"
#include "quantizer/job.h"

namespace nibble {
namespace {

struct Row {
  const char* name;
  int bits;
  int group_size;
  double reference[4];  // RTN, AWQ act, duo, both (issue 3)
};
constexpr Row kRows[] = {{"w4 g32", 4, 32, {4.4532, 4.3588, 4.3863, 4.3850}},
                         {"w4 g64", 4, 64, {4.5856, 4.4271, 4.4289, 4.4204}},
                         {"w3 g32", 3, 32, {7.1894, 6.0735, 6.0754, 5.9726}}};

int Main(int argc, char** argv) {
  std::string formulas = "both";
  std::filesystem::path shared = std::getenv("NIBBLE_SHARED") ? std::getenv("NIBBLE_SHARED") : "../shared";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--formulas")
      formulas = argv[i + 1];
    else if (flag == "--shared")
      shared = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: awq_quality_bench [--formulas both|all] [--shared DIR]\n");
      return 2;
    }
  }
  const std::filesystem::path work = std::filesystem::temp_directory_path() / "nibble-awq-quality";
  std::filesystem::remove_all(work);
  if (absl::Status status = ImportLlama2c(shared / "models/stories260K/stories260K.bin",
                                          shared / "models/stories260K/tok512.model", work / "stories260K");
      !status.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  std::unique_ptr<Backend> backend = MakeCpuBackend();
  auto perplexity = [&](const Row& row, QuantMethod method, ScaleSearchMode mode, double* source, double* seconds) {
    QuantizeJobSpec spec;
    spec.model_dir = work / "stories260K";
    spec.calibration_path = shared / "data/tinystories-dev-50.txt";
    spec.calibration.separator = "<|endoftext|>";
    spec.eval_text = spec.calibration_path;
    spec.quantize.method = method;
    spec.quantize.spec = QuantSpec{row.bits, row.group_size};
    spec.quantize.scale_search = mode;
    spec.quantize.pack = false;
    const auto start = std::chrono::steady_clock::now();
    auto result = RunQuantizeJob(*backend, spec, {});
    *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!result.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(result.status().message()).c_str());
      std::exit(1);
    }
    *source = *result->source_perplexity;
    return *result->quantized_perplexity;
  };

  std::printf("| stories260K, ctx 512 | fp32 | RTN | ref RTN |%s AWQ both | ref both | both vs ref | AWQ job s |\n",
              formulas == "all" ? " AWQ act | AWQ duo |" : "");
  std::printf("|---|---|---|---|%s---|---|---|---|\n", formulas == "all" ? "---|---|" : "");
  for (const Row& row : kRows) {
    double fp32 = 0, seconds = 0;
    const double rtn = perplexity(row, QuantMethod::kRtn, ScaleSearchMode::kBoth, &fp32, &seconds);
    std::string singles;
    if (formulas == "all") {
      for (ScaleSearchMode mode : {ScaleSearchMode::kActivation, ScaleSearchMode::kDuo}) {
        char cell[32];
        std::snprintf(cell, sizeof(cell), " %.4f |", perplexity(row, QuantMethod::kAwq, mode, &fp32, &seconds));
        singles += cell;
      }
    }
    const double both = perplexity(row, QuantMethod::kAwq, ScaleSearchMode::kBoth, &fp32, &seconds);
    std::printf("| %s | %.4f | %.4f | %.4f |%s %.4f | %.4f | %+.2f%% | %.1f |\n", row.name, fp32, rtn, row.reference[0],
                singles.c_str(), both, row.reference[3], 100.0 * (both / row.reference[3] - 1.0), seconds);
    std::fflush(stdout);
  }
  std::filesystem::remove_all(work);
  return 0;
}

}  // namespace
}  // namespace nibble

int main(int argc, char** argv) { return nibble::Main(argc, argv); }
