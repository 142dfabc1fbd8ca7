#include "service/cli/quantize_command.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/backends/backend_factory.h"
#include "engine/base/status_macros.h"
#include "grpcpp/client_context.h"
#include "quantizer/job.h"
#include "quantizer/publisher.h"
#include "service/cli/jobs_command.h"
#include "service/client/cli_status.h"
#include "service/client/connection_flags.h"

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
  // With --server: the job goes to a nibble-quantizer instead.
  client::ConnectionOptions connection;
  std::vector<CLI::Option*> connection_options;  // [0] is --server
  bool watch = false;
  std::string request_id;
  std::vector<CLI::Option*> server_only;  // --watch, --request-id
  CLI::Option* store_option = nullptr;
  std::vector<CLI::Option*> local_only;  // --backend, --evaluate-only, --eval-ctx
  // The flags whose defaults the quantizer applies itself: sent only when given.
  CLI::Option* bits_option = nullptr;
  CLI::Option* group_size_option = nullptr;
  CLI::Option* n_samples_option = nullptr;
  CLI::Option* seqlen_option = nullptr;
  CLI::Option* scale_search_option = nullptr;
};

// NotFound naming `flag` when `path` (given) is not an existing file, or directory when `directory`.
absl::Status CheckLocalPath(const std::string& path, absl::string_view flag, bool directory) {
  if (path.empty()) return absl::OkStatus();
  std::error_code error;
  const bool exists =
      directory ? std::filesystem::is_directory(path, error) : std::filesystem::is_regular_file(path, error);
  if (exists) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat(flag, ": ", path, directory ? " is not a directory" : " is not a file"));
}

absl::Status RunLocal(const Flags& flags) {
  NIBBLE_RETURN_IF_ERROR(CheckLocalPath(flags.model, "--model", /*directory=*/true));
  NIBBLE_RETURN_IF_ERROR(CheckLocalPath(flags.calibration, "--calib", /*directory=*/false));
  NIBBLE_RETURN_IF_ERROR(CheckLocalPath(flags.eval_text, "--eval-text", /*directory=*/false));
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

// The job as nibble-quantizer takes it; paths pass as given, since the quantizer reads them on its own machine.
v1::SubmitJobRequest MakeSubmitRequest(const Flags& flags) {
  v1::SubmitJobRequest request;
  request.set_request_id(flags.request_id);
  v1::JobSpec& spec = *request.mutable_spec();
  spec.set_source_model(flags.model);
  spec.set_name(flags.name);
  spec.set_method(flags.method == "rtn" ? v1::QUANT_METHOD_RTN : v1::QUANT_METHOD_AWQ);
  spec.set_calibration_file(flags.calibration);
  spec.set_separator(flags.separator);
  spec.set_eval_text(flags.eval_text);
  if (flags.bits_option->count() > 0) spec.set_bits(flags.bits);
  if (flags.group_size_option->count() > 0) spec.set_group_size(flags.group_size);
  if (flags.n_samples_option->count() > 0) spec.set_n_samples(flags.n_samples);
  if (flags.seqlen_option->count() > 0 && flags.seqlen > 0) spec.set_seqlen(flags.seqlen);
  if (flags.scale_search_option->count() > 0) {
    spec.set_scale_search(flags.scale_search == "act"   ? v1::SCALE_SEARCH_ACT
                          : flags.scale_search == "duo" ? v1::SCALE_SEARCH_DUO
                                                        : v1::SCALE_SEARCH_BOTH);
  }
  return request;
}

absl::Status RunOnServer(const Flags& flags) {
  constexpr absl::string_view kLocalOnly =
      "applies only to quantizing here (without --server): nibble-quantizer runs on its own backend and store";
  NIBBLE_RETURN_IF_ERROR(client::RejectGiven(flags.local_only, kLocalOnly));
  // NIBBLE_STORE in the environment (set for the local mode) is no error; --store on the command line is.
  if (std::getenv("NIBBLE_STORE") == nullptr) {
    NIBBLE_RETURN_IF_ERROR(client::RejectGiven({flags.store_option}, kLocalOnly));
  }
  for (const auto& [value, flag] : {std::pair{flags.n_samples, "--n-samples"}, std::pair{flags.seqlen, "--seqlen"},
                                    std::pair{flags.bits, "--bits"}, std::pair{flags.group_size, "--group-size"}}) {
    if (value < 0) return absl::InvalidArgumentError(absl::StrCat(flag, ": ", value, " is negative"));
  }
  NIBBLE_ASSIGN_OR_RETURN(client::Connection connection, client::Connection::Open(flags.connection));
  grpc::ClientContext context;
  connection.Prepare(context);
  v1::Job job;
  const grpc::Status status = connection.quantizer().SubmitJob(&context, MakeSubmitRequest(flags), &job);
  if (!status.ok()) return connection.CallStatus(status, "SubmitJob");
  std::cout << job.id() << std::endl;
  if (!flags.watch) return absl::OkStatus();
  return WatchJobToEnd(connection, job.id());
}

absl::Status Run(const Flags& flags) {
  if (!flags.connection.server.empty()) return RunOnServer(flags);
  std::vector<CLI::Option*> server_only = flags.connection_options;
  server_only.insert(server_only.end(), flags.server_only.begin(), flags.server_only.end());
  NIBBLE_RETURN_IF_ERROR(client::RejectGiven(server_only, "applies only with --server ADDR"));
  return RunLocal(flags);
}

}  // namespace

void RegisterQuantize(CLI::App& app, int& exit_code) {
  auto* command = app.add_subcommand(
      "quantize",
      "Quantize a Hugging Face Llama-family model to 4-bit weights with AWQ (or RTN) and publish it into a model "
      "store as the next version NAME/N (AutoAWQ GEMM safetensors + nibble.json). Prints one line per block, the "
      "quality figures when --eval-text is given, and the published directory. With --server ADDR the job goes to "
      "a nibble-quantizer instead (the paths are then the quantizer's): prints its id, and with --watch follows "
      "it to its end");
  auto flags = std::make_shared<Flags>();
  command->add_option("--model", flags->model, "Source model directory (fp32/fp16/bf16 safetensors)")->required();
  command->add_option("--calib", flags->calibration,
                      "Calibration text: split on --separator, or one document per line's \"text\" for .jsonl");
  command->add_option("--separator", flags->separator,
                      "Document separator of --calib and --eval-text (e.g. '<|endoftext|>'); none: one document");
  command->add_option("--method", flags->method, "awq or rtn (round-to-nearest, no calibration)")
      ->check(CLI::IsMember({"awq", "rtn"}))
      ->capture_default_str();
  flags->bits_option =
      command->add_option("--bits", flags->bits, "Weight bits: 4 (3 only with --evaluate-only)")->capture_default_str();
  flags->group_size_option =
      command->add_option("--group-size", flags->group_size, "Input columns per quantization group: 32, 64 or 128")
          ->capture_default_str();
  flags->n_samples_option =
      command->add_option("--n-samples", flags->n_samples, "Calibration documents to use")->capture_default_str();
  flags->seqlen_option =
      command
          ->add_option("--seqlen", flags->seqlen,
                       "Tokens per calibration block (0: the smaller of 512 and the model's context)")
          ->capture_default_str();
  flags->scale_search_option =
      command
          ->add_option("--scale-search", flags->scale_search,
                       "AWQ scale formulas to search: act (xmean^a), duo (AutoAWQ's), or both (lowest loss wins)")
          ->check(CLI::IsMember({"act", "duo", "both"}))
          ->capture_default_str();
  command->add_option("--eval-text", flags->eval_text,
                      "Measure perplexity before and after on this text (into the manifest)");
  CLI::Option* eval_ctx =
      command->add_option("--eval-ctx", flags->eval_context, "Perplexity window in tokens")->capture_default_str();
  flags->store_option =
      command->add_option("--store", flags->store, "Model store root to publish into")->envname("NIBBLE_STORE");
  command->add_option("--name", flags->name, "Model name in the store (letters, digits, '.', '_', '-')");
  CLI::Option* backend =
      command
          ->add_option("--backend", flags->backend,
                       "auto (CUDA when a GPU is visible), cpu (fp32, the reference) or cuda (fp16 activations, fp32 "
                       "losses)")
          ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
          ->capture_default_str();
  CLI::Option* evaluate_only =
      command->add_flag("--evaluate-only", flags->evaluate_only,
                        "Fake-quantize and report --eval-text perplexity without publishing (any --bits)");
  flags->local_only = {backend, evaluate_only, eval_ctx};
  flags->connection_options = client::AddConnectionFlags(*command, flags->connection, /*server_required=*/false);
  flags->connection_options[0]->description(
      "HOST:PORT of a nibble-quantizer: submit the job there instead of running it here");
  flags->server_only = {
      command->add_flag("--watch", flags->watch,
                        "With --server: follow the job to its end (exit status 0 only when it succeeded, the "
                        "published path last)"),
      command->add_option("--request-id", flags->request_id,
                          "With --server: submitting the same id again returns the job it made instead of a new one"),
  };
  command->callback([flags, &exit_code] {
    if (absl::Status status = Run(*flags); !status.ok()) exit_code = client::ReportError(status);
  });
}

}  // namespace nibble::cli
