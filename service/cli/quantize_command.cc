#include "service/cli/quantize_command.h"

#include <cstdio>
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "engine/backends/backend_factory.h"
#include "quantizer/job.h"
#include "quantizer/publisher.h"
#include "service/client/cli_status.h"

namespace nibble::cli {
namespace {

struct Flags {
  std::string model;
  std::string calibration;
  std::string separator;
  std::string method = "awq";
  int bits = 4;
  int group_size = 128;
  int32_t n_samples = 128;
  int32_t seqlen = 0;
  std::string scale_search = "both";
  std::string eval_text;
  int32_t eval_context = 512;
  std::string store;
  std::string name;
  std::string backend = "auto";
  bool evaluate_only = false;
};

absl::Status Run(const Flags& flags) {
  QuantizeJobSpec spec;
  spec.model_dir = flags.model;
  spec.calibration_path = flags.calibration;
  spec.calibration.separator = flags.separator;
  spec.calibration.n_samples = flags.n_samples;
  spec.calibration.seqlen = flags.seqlen;
  if (!flags.eval_text.empty()) spec.eval_text = flags.eval_text;
  spec.eval_context = flags.eval_context;
  absl::StatusOr<QuantMethod> method = ParseQuantMethod(flags.method);
  if (!method.ok()) return method.status();
  spec.quantize.method = *method;
  spec.quantize.spec = QuantSpec{flags.bits, flags.group_size};
  absl::StatusOr<ScaleSearchMode> search = ParseScaleSearchMode(flags.scale_search);
  if (!search.ok()) return search.status();
  spec.quantize.scale_search = *search;
  spec.quantize.pack = !flags.evaluate_only;
  if (spec.quantize.method == QuantMethod::kAwq && flags.calibration.empty()) {
    return absl::InvalidArgumentError("--calib: AWQ needs a calibration text (or use --method rtn)");
  }
  if (!flags.evaluate_only) {
    if (flags.store.empty() || flags.name.empty()) {
      return absl::InvalidArgumentError("--store and --name say where to publish (or use --evaluate-only)");
    }
    spec.store_root = flags.store;
    spec.model_name = flags.name;
    // A crash of an earlier publisher on this host leaves a staging directory: remove those first.
    absl::StatusOr<int> removed = RemoveStaleStaging(ModelStore(spec.store_root));
    if (!removed.ok()) return removed.status();
    if (*removed > 0)
      std::cerr << "removed " << *removed << " stale staging director" << (*removed == 1 ? "y" : "ies") << "\n";
  } else if (flags.eval_text.empty()) {
    return absl::InvalidArgumentError("--evaluate-only needs --eval-text (what to measure)");
  }
  // Calibration, the search and the evaluation run on this backend (CUDA in fp16, or the CPU in fp32).
  absl::StatusOr<BackendKind> backend_kind = ParseBackendKind(flags.backend);
  if (!backend_kind.ok()) return backend_kind.status();
  absl::StatusOr<std::unique_ptr<Backend>> backend = MakeBackend(*backend_kind);
  if (!backend.ok()) return backend.status();
  std::cout << "quantizing on the " << (*backend)->name() << " backend" << std::endl;
  absl::StatusOr<QuantizeJobResult> result =
      RunQuantizeJob(**backend, spec, {.log = [](const std::string& line) { std::cout << line << std::endl; }});
  if (!result.ok()) return result.status();
  if (result->version) std::cout << result->version_dir.string() << std::endl;
  return absl::OkStatus();
}

}  // namespace

void RegisterQuantize(CLI::App& app, int& exit_code) {
  auto* command = app.add_subcommand(
      "quantize",
      "Quantize a Hugging Face Llama-family model to 4-bit weights with AWQ (or RTN) and publish it into a model "
      "store as the next version NAME/N (AutoAWQ GEMM safetensors + nibble.json). Prints one line per block, the "
      "quality figures when --eval-text is given, and the published directory. Runs on the CPU");
  auto flags = std::make_shared<Flags>();
  command->add_option("--model", flags->model, "Source model directory (fp32/fp16/bf16 safetensors)")
      ->required()
      ->check(CLI::ExistingDirectory);
  command
      ->add_option("--calib", flags->calibration,
                   "Calibration text: split on --separator, or one document per line's \"text\" for .jsonl")
      ->check(CLI::ExistingFile);
  command->add_option("--separator", flags->separator,
                      "Document separator of --calib and --eval-text (e.g. '<|endoftext|>'); none: one document");
  command->add_option("--method", flags->method, "awq or rtn (round-to-nearest, no calibration)")
      ->check(CLI::IsMember({"awq", "rtn"}))
      ->capture_default_str();
  command->add_option("--bits", flags->bits, "Weight bits: 4 (3 only with --evaluate-only)")->capture_default_str();
  command->add_option("--group-size", flags->group_size, "Input columns per quantization group: 32, 64 or 128")
      ->capture_default_str();
  command->add_option("--n-samples", flags->n_samples, "Calibration documents to use")->capture_default_str();
  command
      ->add_option("--seqlen", flags->seqlen,
                   "Tokens per calibration block (0: the smaller of 512 and the model's context)")
      ->capture_default_str();
  command
      ->add_option("--scale-search", flags->scale_search,
                   "AWQ scale formulas to search: act (xmean^a), duo (AutoAWQ's), or both (lowest loss wins)")
      ->check(CLI::IsMember({"act", "duo", "both"}))
      ->capture_default_str();
  command
      ->add_option("--eval-text", flags->eval_text,
                   "Measure perplexity before and after on this text (into the manifest)")
      ->check(CLI::ExistingFile);
  command->add_option("--eval-ctx", flags->eval_context, "Perplexity window in tokens")->capture_default_str();
  command->add_option("--store", flags->store, "Model store root to publish into")->envname("NIBBLE_STORE");
  command->add_option("--name", flags->name, "Model name in the store (letters, digits, '.', '_', '-')");
  command
      ->add_option("--backend", flags->backend,
                   "auto (CUDA when a GPU is visible), cpu (fp32, the reference) or cuda (fp16 activations, fp32 "
                   "losses)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  command->add_flag("--evaluate-only", flags->evaluate_only,
                    "Fake-quantize and report --eval-text perplexity without publishing (any --bits)");
  command->callback([flags, &exit_code] {
    if (absl::Status status = Run(*flags); !status.ok()) exit_code = client::ReportError(status);
  });
}

}  // namespace nibble::cli
