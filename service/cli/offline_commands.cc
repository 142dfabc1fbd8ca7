#include "service/cli/offline_commands.h"

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/backends/backend_factory.h"
#include "engine/base/file_io.h"
#include "engine/io/model_loader.h"
#include "engine/io/model_store.h"
#include "engine/serving/generation.h"
#include "engine/tokenizer/load_tokenizer.h"
#include "engine/tools/documents.h"
#include "engine/tools/llama2c.h"
#include "engine/tools/perplexity.h"
#include "engine/tools/synth.h"
#include "service/client/cli_status.h"

namespace nibble::cli {
namespace {

// A model directory loaded onto a backend, with its tokenizer.
struct LocalModel {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
};

// The directory `model` names: a model directory (a store version's is verified first), or with a store, a
// reference NAME or NAME:VERSION into it.
absl::StatusOr<std::filesystem::path> ResolveLocalModel(const std::string& model, const std::string& store) {
  std::filesystem::path dir = model;
  if (!std::filesystem::is_directory(dir)) {
    if (store.empty()) {
      return absl::NotFoundError(
          absl::StrCat("--model ", model, " is not a directory (a store reference NAME[:N] ", "needs --store ROOT)"));
    }
    absl::StatusOr<std::filesystem::path> resolved = ModelStore(store).Resolve(model);
    if (!resolved.ok()) return resolved.status();
    dir = *resolved;
  }
  if (std::filesystem::exists(dir / kManifestFileName)) {
    if (absl::Status verified = VerifyVersionDir(dir).status(); !verified.ok()) return verified;
  }
  return dir;
}

absl::StatusOr<LocalModel> LoadLocalModel(const std::string& model_argument, const std::string& store,
                                          const std::string& backend_name, const ModelOptions& options) {
  absl::StatusOr<std::filesystem::path> resolved = ResolveLocalModel(model_argument, store);
  if (!resolved.ok()) return resolved.status();
  const std::filesystem::path& dir = *resolved;
  LocalModel local;
  absl::StatusOr<BackendKind> kind = ParseBackendKind(backend_name);
  if (!kind.ok()) return kind.status();
  absl::StatusOr<std::unique_ptr<Backend>> backend = MakeBackend(*kind);
  if (!backend.ok()) return backend.status();
  local.backend = std::move(*backend);
  absl::StatusOr<HostModel> host = LoadHostModel(dir);
  if (!host.ok()) return host.status();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadTokenizer(dir);
  if (!tokenizer.ok()) return tokenizer.status();
  local.tokenizer = std::move(*tokenizer);
  absl::StatusOr<std::unique_ptr<Model>> model = Model::Create(*local.backend, *host, options);
  if (!model.ok()) return model.status();
  local.model = std::move(*model);
  return local;
}

}  // namespace

CLI::Option* AddBackendOption(CLI::App& command, std::string& backend) {
  return command.add_option("--backend", backend, "Where to run: auto (CUDA when a GPU is visible), cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
}

CLI::Option* AddStoreOption(CLI::App& command, std::string& store) {
  return command.add_option("--store", store,
                            "Model store root: --model may then be NAME (its latest version) or NAME:N");
}

void RegisterImportLlama2c(CLI::App& app, int& exit_code) {
  auto* command =
      app.add_subcommand("import-llama2c",
                         "Convert a llama2.c checkpoint (legacy v0 format) and its tokenizer (SentencePiece .model or "
                         "llama2.c tokenizer.bin) into a Hugging Face Llama directory (fp32 safetensors, "
                         "config.json, tokenizer.model)");
  auto options = std::make_shared<std::array<std::string, 3>>();
  command->add_option("model", (*options)[0], "llama2.c checkpoint (.bin)")->required()->check(CLI::ExistingFile);
  command->add_option("tokenizer", (*options)[1], "SentencePiece model (.model) or llama2.c tokenizer.bin")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_option("out", (*options)[2], "Output directory (created)")->required();
  command->callback([options, &exit_code] {
    const absl::Status status = ImportLlama2c((*options)[0], (*options)[1], (*options)[2]);
    if (!status.ok()) {
      exit_code = client::ReportError(status);
      return;
    }
    std::cout << "imported " << (*options)[0] << " into " << (*options)[2] << "\n";
  });
}

void RegisterSynth(CLI::App& app, int& exit_code) {
  auto* command = app.add_subcommand(
      "synth",
      "Write a Hugging Face model directory with random weights in the shape of a known model (fp16 "
      "safetensors and a synthetic SentencePiece tokenizer): for tests and benchmarks, its text is noise");
  struct Options {
    std::string preset = "tiny";
    std::string out;
    uint64_t seed = 1;
  };
  auto options = std::make_shared<Options>();
  command->add_option("--preset", options->preset, "Shape: " + absl::StrJoin(SynthPresetNames(), ", "))
      ->check(CLI::IsMember(SynthPresetNames()))
      ->capture_default_str();
  command->add_option("out", options->out, "Output directory (created)")->required();
  command->add_option("--seed", options->seed, "Random seed (same seed, same weights)")->capture_default_str();
  command->callback([options, &exit_code] {
    const absl::Status status = WriteSynthModelDir(options->out, options->preset, options->seed);
    if (!status.ok()) {
      exit_code = client::ReportError(status);
      return;
    }
    std::cout << "wrote a random-weight '" << options->preset << "' model to " << options->out << "\n";
  });
}

absl::Status RunLocalGenerate(const GenerateOptions& options, const std::string& backend) {
  absl::StatusOr<LocalModel> local = LoadLocalModel(options.model, options.store, backend, ModelOptions{});
  if (!local.ok()) return local.status();
  GenerationRequest request;
  request.id = "cli";
  const int32_t bos = local->tokenizer->bos_id();  // -1 where the tokenizer has none (Qwen)
  if (options.prompt.empty()) {
    if (bos < 0)
      return absl::InvalidArgumentError("--prompt is empty and the model's tokenizer has no BOS to start from");
    request.prompt_token_ids = {bos};
  } else {
    request.prompt = options.prompt;
  }
  // A generated BOS starts a new document (llama2.c's models end stories with it): stop there, as run.c.
  request.stop_token_ids = options.stop_token_ids;
  if (bos >= 0) request.stop_token_ids.push_back(bos);
  request.stop = options.stop;
  request.max_tokens = options.max_tokens;
  request.sampling.temperature = options.temperature;
  request.sampling.top_k = options.top_k;
  request.sampling.top_p = options.top_p;
  request.sampling.min_p = options.min_p;
  request.sampling.seed = options.seed.value_or(0);
  std::cout << options.prompt << std::flush;
  absl::StatusOr<GenerationResult> result =
      Generate(*local->model, local->tokenizer.get(), std::move(request), [](const GenerationEvent& event) {
        std::cout << event.text << std::flush;
        return true;
      });
  std::cout << "\n";
  if (!result.ok()) return result.status();
  const Usage& usage = result->usage;
  const double decode_seconds = usage.total_seconds - usage.time_to_first_token_seconds.value_or(0.0);
  std::fprintf(
      stderr, "[%s] %u prompt + %u generated tokens, finish %s, TTFT %.1f ms, %.1f tokens/s\n",
      local->backend->name().c_str(), usage.prompt_tokens, usage.completion_tokens,
      std::string(FinishReasonName(result->finish_reason)).c_str(),
      usage.time_to_first_token_seconds.value_or(0.0) * 1e3,
      usage.completion_tokens > 1 && decode_seconds > 0 ? (usage.completion_tokens - 1) / decode_seconds : 0.0);
  return absl::OkStatus();
}

void RegisterPerplexity(CLI::App& app, int& exit_code) {
  auto* command = app.add_subcommand(
      "ppl",
      "Token-level perplexity of a model on a text file: each document is [BOS] + its tokens, cut into "
      "windows of --ctx tokens that each start from an empty KV cache");
  struct Options {
    std::string model;
    std::string store;
    std::string text;
    std::string separator;
    std::string backend = "auto";
    int32_t context = 512;
  };
  auto options = std::make_shared<Options>();
  command->add_option("--model", options->model, "Model directory, or NAME[:N] with --store")->required();
  AddStoreOption(*command, options->store);
  command->add_option("--text", options->text, "Text file")->required()->check(CLI::ExistingFile);
  command->add_option("--ctx", options->context, "Window length in tokens")->capture_default_str();
  command->add_option("--separator", options->separator,
                      "Split the text into documents on this string (e.g. '<|endoftext|>'); none: one document");
  AddBackendOption(*command, options->backend);
  command->callback([options, &exit_code] {
    ModelOptions model_options;
    model_options.max_step_tokens = std::max(options->context, 2048);
    model_options.max_seqs = 8;
    absl::StatusOr<LocalModel> local = LoadLocalModel(options->model, options->store, options->backend, model_options);
    if (!local.ok()) {
      exit_code = client::ReportError(local.status());
      return;
    }
    absl::StatusOr<std::string> text = ReadTextFile(options->text);
    if (!text.ok()) {
      exit_code = client::ReportError(text.status());
      return;
    }
    auto documents = TokenizeDocuments(*local->tokenizer, SplitDocuments(*text, options->separator));
    if (!documents.ok()) {
      exit_code = client::ReportError(documents.status());
      return;
    }
    absl::StatusOr<PerplexityResult> result = Perplexity(*local->model, *documents, options->context);
    if (!result.ok()) {
      exit_code = client::ReportError(result.status());
      return;
    }
    std::printf("documents %ld\nwindows %ld\npredicted tokens %ld\nmean NLL %.6f nats\nperplexity %.4f\n",
                static_cast<long>(result->documents), static_cast<long>(result->windows),
                static_cast<long>(result->predicted_tokens), result->mean_nll, result->perplexity);
  });
}

}  // namespace nibble::cli
