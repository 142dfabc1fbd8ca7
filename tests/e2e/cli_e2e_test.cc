// End to end over loopback gRPC with the real binaries: nibble-server (a subprocess on the CPU backend) on a
// temporary store holding stories260K (imported with `nibble import-llama2c`, published with
// quantizer/publisher.h), driven by `nibble generate --server`, `nibble models` and nibble-load.
//   - greedy text through the server is exactly the text of offline `nibble generate --model DIR`;
//   - `nibble models` lists the model as available; errors print their gRPC code and exit 1;
//   - a server with a token refuses calls without it (UNAUTHENTICATED) and serves those with --token-file;
//   - nibble-load's table counts every request it sent as completed;
//   - `nibble quantize` without --server publishes here; each mode refuses the other's flags; the job commands
//     reach the Quantizer service on the same channel (nibble-server answers UNIMPLEMENTED);
//   - with a nibble-quantizer on the same store: `nibble quantize --server --watch` follows an AWQ job block by
//     block and nibble-server serves the result; `nibble jobs list|get|cancel|watch`; refusals print the code;
//   - the Grafana dashboard's expressions find both services' series in a real Prometheus;
//   - the server exits 0 on SIGTERM.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/base/file_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "quantizer/publisher.h"
#include "tests/support/shared_data.h"

extern char** environ;

namespace nibble {
namespace {

using ::testing::HasSubstr;

constexpr char kModel[] = "stories260K";
constexpr char kPrompt[] = "Once upon a time, there was a little girl";

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream file(path);
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

// Starts `args` (argv[0] found on PATH unless it has a slash) with stdout and stderr sent to files; returns
// its pid (or -1).
pid_t Spawn(const std::vector<std::string>& args, const std::filesystem::path& out, const std::filesystem::path& err) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// The exit status of `pid` (-1 when it did not exit normally).
int Wait(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

struct Output {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `args` to completion, capturing its output in files under `dir`.
Output RunToEnd(const std::vector<std::string>& args, const std::filesystem::path& dir) {
  const std::filesystem::path out = dir / "run.out", err = dir / "run.err";
  Output result;
  const pid_t pid = Spawn(args, out, err);
  if (pid < 0) return result;
  result.exit_code = Wait(pid);
  result.out = ReadFile(out);
  result.err = ReadFile(err);
  return result;
}

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

// Copies the files of `hf_dir` into a new version of kModel in `store` and publishes it.
absl::StatusOr<uint64_t> Publish(const std::filesystem::path& hf_dir, const std::filesystem::path& store) {
  absl::StatusOr<StagingVersion> staging = StagingVersion::Begin(ModelStore(store), kModel);
  if (!staging.ok()) return staging.status();
  for (const auto& entry : std::filesystem::directory_iterator(hf_dir)) {
    std::filesystem::copy_file(entry.path(), staging->dir() / entry.path().filename());
  }
  return staging->Commit({{"source", {{"path", hf_dir.string()}}}});
}

// One nibble-server for the whole suite.
class CliEndToEndTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto checkpoint = testing::SharedFile("models/stories260K/stories260K.bin");
    const auto tokenizer = testing::SharedFile("models/stories260K/tok512.model");
    if (!checkpoint || !tokenizer) {
      skip_reason_ = new std::string("stories260K not found in the shared folder (set NIBBLE_SHARED)");
      return;
    }
    temp_ = new testing::TempDir();
    hf_dir_ = temp_->path() / "hf";
    const Output imported = RunToEnd(
        {NIBBLE_CLI_BIN, "import-llama2c", checkpoint->string(), tokenizer->string(), hf_dir_.string()}, temp_->path());
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
    ASSERT_TRUE(Publish(hf_dir_, temp_->path() / "store").ok());
    server_ = new Server(StartServer(temp_->path() / "server", {}));
    ASSERT_NO_FATAL_FAILURE(WaitServing(*server_, {}));
    quantizer_ = new Server(StartQuantizer());
    ASSERT_NO_FATAL_FAILURE(WaitAnswering(*quantizer_, {"jobs", "list"}));
  }

  static void TearDownTestSuite() {
    if (server_ != nullptr) StopServer(*server_);
    if (quantizer_ != nullptr) StopServer(*quantizer_);
    delete server_;
    delete quantizer_;
    delete temp_;
    delete skip_reason_;
  }

  struct Server {
    std::string address;
    std::string metrics_address;
    pid_t pid = -1;
    std::filesystem::path log;
  };

  // Starts nibble-server on the suite's store, on free loopback ports, with `flags` added.
  static Server StartServer(const std::filesystem::path& name, const std::vector<std::string>& flags) {
    Server server;
    server.address = absl::StrCat("127.0.0.1:", FreePort());
    const int metrics_port = FreePort();
    server.metrics_address = absl::StrCat("127.0.0.1:", metrics_port);
    server.log = name.string() + ".log";
    std::vector<std::string> args = {NIBBLE_SERVER_BIN,
                                     "--store",
                                     (temp_->path() / "store").string(),
                                     "--listen",
                                     server.address,
                                     "--metrics-port",
                                     absl::StrCat(metrics_port),
                                     "--backend",
                                     "cpu"};
    args.insert(args.end(), flags.begin(), flags.end());
    server.pid = Spawn(args, name.string() + ".out", server.log);
    return server;
  }

  // Starts nibble-quantizer on the suite's store, reading from the suite's directory and ../shared/data.
  static Server StartQuantizer() {
    Server quantizer;
    quantizer.address = absl::StrCat("127.0.0.1:", FreePort());
    const int metrics_port = FreePort();
    quantizer.metrics_address = absl::StrCat("127.0.0.1:", metrics_port);
    quantizer.log = (temp_->path() / "quantizer.log").string();
    quantizer.pid = Spawn({NIBBLE_QUANTIZER_BIN, "--store", (temp_->path() / "store").string(), "--state-dir",
                           (temp_->path() / "quantizer-state").string(), "--source-root", temp_->path().string(),
                           "--source-root", testing::SharedFile("data")->string(), "--listen", quantizer.address,
                           "--metrics-port", absl::StrCat(metrics_port), "--backend", "cpu"},
                          temp_->path() / "quantizer.out", quantizer.log);
    return quantizer;
  }

  // Returns once `nibble <command> --server ADDR` succeeds; fails when the service exits or takes over 60 s.
  static void WaitAnswering(Server& service, const std::vector<std::string>& command) {
    ASSERT_GT(service.pid, 0) << "cannot start " << NIBBLE_QUANTIZER_BIN;
    std::vector<std::string> args = {NIBBLE_CLI_BIN};
    args.insert(args.end(), command.begin(), command.end());
    args.insert(args.end(), {"--server", service.address});
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      if (RunToEnd(args, temp_->path()).exit_code == 0) return;
      if (waitpid(service.pid, nullptr, WNOHANG) == service.pid) {
        service.pid = -1;
        FAIL() << "the service exited:\n" << ReadFile(service.log);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    FAIL() << "no answer within 60 s:\n" << ReadFile(service.log);
  }

  // Returns once `nibble models` (with `client_flags`) shows the model available: the server loads it in the
  // background. Fails when the server exits or takes over 60 s.
  static void WaitServing(Server& server, const std::vector<std::string>& client_flags) {
    ASSERT_GT(server.pid, 0) << "cannot start " << NIBBLE_SERVER_BIN;
    std::vector<std::string> args = {NIBBLE_CLI_BIN, "models", "--server", server.address};
    args.insert(args.end(), client_flags.begin(), client_flags.end());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      const Output models = RunToEnd(args, temp_->path());
      if (models.exit_code == 0 && models.out.find("available") != std::string::npos) return;
      if (waitpid(server.pid, nullptr, WNOHANG) == server.pid) {
        server.pid = -1;
        FAIL() << "nibble-server exited:\n" << ReadFile(server.log);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    FAIL() << "nibble-server did not serve " << kModel << " within 60 s:\n" << ReadFile(server.log);
  }

  // SIGTERM, then expects exit status 0 (the drain).
  static void StopServer(Server& server) {
    if (server.pid <= 0) return;
    kill(server.pid, SIGTERM);
    EXPECT_EQ(Wait(server.pid), 0) << "nibble-server on SIGTERM:\n" << ReadFile(server.log);
    server.pid = -1;
  }

  void SetUp() override {
    if (skip_reason_ != nullptr) GTEST_SKIP() << *skip_reason_;
    ASSERT_TRUE(server_ != nullptr && server_->pid > 0) << "no server (see the suite's setup failure)";
  }

  Output Nibble(std::vector<std::string> args) {
    args.insert(args.begin(), NIBBLE_CLI_BIN);
    return RunToEnd(args, temp_->path());
  }

  static inline testing::TempDir* temp_ = nullptr;
  static inline std::string* skip_reason_ = nullptr;
  static inline std::filesystem::path hf_dir_;
  static inline Server* server_ = nullptr;
  static inline Server* quantizer_ = nullptr;
};

TEST_F(CliEndToEndTest, GreedyTextThroughTheServerIsTheOfflineText) {
  const Output offline = Nibble({"generate", "--model", hf_dir_.string(), "--prompt", kPrompt, "--max-tokens", "48",
                                 "--temperature", "0", "--backend", "cpu"});
  ASSERT_EQ(offline.exit_code, 0) << offline.err;
  // Offline generation also stops at BOS (llama2.c's document separator, id 1 in tok512): ask the server too.
  const Output served = Nibble({"generate", "--server", server_->address, "--model", kModel, "--prompt", kPrompt,
                                "--max-tokens", "48", "--temperature", "0", "--stop-token-id", "1"});
  ASSERT_EQ(served.exit_code, 0) << served.err;
  EXPECT_GT(offline.out.size(), std::string(kPrompt).size() + 20) << offline.out;
  EXPECT_EQ(served.out, offline.out);
  EXPECT_THAT(served.err, HasSubstr("TTFT"));
  EXPECT_THAT(served.err, HasSubstr("tokens/s"));
  EXPECT_THAT(served.err, HasSubstr(absl::StrCat(kModel, ":1]")));

  // The same prompt from a file (prompts too long for one argument come this way).
  const std::filesystem::path prompt_file = temp_->path() / "prompt.txt";
  ASSERT_TRUE(WriteFileContents(prompt_file, kPrompt).ok());
  const Output from_file =
      Nibble({"generate", "--server", server_->address, "--model", kModel, "--prompt-file", prompt_file.string(),
              "--max-tokens", "48", "--temperature", "0", "--stop-token-id", "1"});
  ASSERT_EQ(from_file.exit_code, 0) << from_file.err;
  EXPECT_EQ(from_file.out, offline.out);
  const Output both = Nibble({"generate", "--server", server_->address, "--model", kModel, "--prompt", kPrompt,
                              "--prompt-file", prompt_file.string()});
  EXPECT_NE(both.exit_code, 0);
  EXPECT_THAT(both.err, HasSubstr("excludes"));
}

TEST_F(CliEndToEndTest, ModelsListsTheModelAvailable) {
  const Output models = Nibble({"models", "--server", server_->address});
  ASSERT_EQ(models.exit_code, 0) << models.err;
  EXPECT_THAT(models.out, ::testing::ContainsRegex(absl::StrCat(kModel, " +1 +available +yes")));
}

// `nibble health`, the images' probe: SERVING exits 0, for the server, a served model and the quantizer; an
// unknown model is NOT_FOUND and a dead address UNAVAILABLE, both non-zero.
TEST_F(CliEndToEndTest, HealthAnswersForTheServerItsModelsAndTheQuantizer) {
  const Output server = Nibble({"health", "--server", server_->address});
  ASSERT_EQ(server.exit_code, 0) << server.err;
  EXPECT_EQ(server.out, "server: SERVING\n");
  const Output model = Nibble({"health", "--server", server_->address, "--service", kModel});
  ASSERT_EQ(model.exit_code, 0) << model.err;
  EXPECT_EQ(model.out, absl::StrCat(kModel, ": SERVING\n"));
  EXPECT_EQ(Nibble({"health", "--server", quantizer_->address}).exit_code, 0);
  const Output unknown = Nibble({"health", "--server", server_->address, "--service", "no-such-model"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("error: NOT_FOUND: "));
  const Output dead = Nibble({"health", "--server", "127.0.0.1:1", "--timeout", "2"});
  EXPECT_EQ(dead.exit_code, 1);
  EXPECT_THAT(dead.err, HasSubstr("error: UNAVAILABLE: "));
}

TEST_F(CliEndToEndTest, ErrorsPrintTheStatusCodeAndExitNonZero) {
  const Output unknown =
      Nibble({"generate", "--server", server_->address, "--model", "no-such-model", "--prompt", "hello"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr(absl::StrCat("error: NOT_FOUND: ", server_->address, ": Generate: ")));
  const Output bad =
      Nibble({"generate", "--server", server_->address, "--model", kModel, "--prompt", "hello", "--top-p", "1.5"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("error: INVALID_ARGUMENT: "));
  EXPECT_THAT(bad.err, HasSubstr("top_p"));
}

TEST_F(CliEndToEndTest, TokenFileAuthenticatesAgainstATokenServer) {
  const std::filesystem::path token = temp_->path() / "token";
  std::ofstream(token) << "s3cret-token\n";
  Server guarded = StartServer(temp_->path() / "token-server", {"--auth-token-file", token.string()});
  ASSERT_NO_FATAL_FAILURE(WaitServing(guarded, {"--token-file", token.string()}));
  const Output without = Nibble({"models", "--server", guarded.address});
  EXPECT_EQ(without.exit_code, 1);
  EXPECT_THAT(without.err, HasSubstr("error: UNAUTHENTICATED: "));
  const std::filesystem::path wrong = temp_->path() / "wrong-token";
  std::ofstream(wrong) << "guess";
  EXPECT_THAT(Nibble({"models", "--server", guarded.address, "--token-file", wrong.string()}).err,
              HasSubstr("error: UNAUTHENTICATED: "));
  const Output served = Nibble({"generate", "--server", guarded.address, "--token-file", token.string(), "--model",
                                kModel, "--prompt", kPrompt, "--max-tokens", "8"});
  EXPECT_EQ(served.exit_code, 0) << served.err;
  StopServer(guarded);
}

TEST_F(CliEndToEndTest, LoadGeneratorCountsEveryRequest) {
  if (std::string(NIBBLE_LOAD_BIN).empty()) GTEST_SKIP() << "nibble-load is not built (NIBBLE_BENCH=OFF)";
  const Output load = RunToEnd({NIBBLE_LOAD_BIN, "--server", server_->address, "--model", kModel, "--requests", "12",
                                "--concurrency", "4", "--prompt-tokens", "8", "--max-tokens", "16"},
                               temp_->path());
  ASSERT_EQ(load.exit_code, 0) << load.out << load.err;
  EXPECT_THAT(load.out, HasSubstr("12 completed, 0 failed, of 12"));
  EXPECT_THAT(load.out, HasSubstr("finish reasons   length 12"));
  EXPECT_THAT(load.out, HasSubstr("errors           none"));
}

// `nibble quantize` without --server runs here and publishes as before (RTN: seconds on stories260K), and each
// mode refuses the other's flags instead of ignoring them.
TEST_F(CliEndToEndTest, QuantizeRunsHereWithoutServerAndRefusesTheOtherModesFlags) {
  const std::filesystem::path store = temp_->path() / "quantize-store";
  const Output local = Nibble({"quantize", "--model", hf_dir_.string(), "--method", "rtn", "--group-size", "32",
                               "--store", store.string(), "--name", "local", "--backend", "cpu"});
  ASSERT_EQ(local.exit_code, 0) << local.err;
  EXPECT_THAT(local.out, HasSubstr((store / "local" / "1").string()));
  EXPECT_TRUE(std::filesystem::is_regular_file(store / "local" / "1" / "nibble.json"));

  const Output watch_here = Nibble({"quantize", "--model", hf_dir_.string(), "--method", "rtn", "--store",
                                    store.string(), "--name", "x", "--watch"});
  EXPECT_EQ(watch_here.exit_code, 1);
  EXPECT_THAT(watch_here.err, HasSubstr("error: INVALID_ARGUMENT: --watch applies only with --server ADDR"));
  const Output missing = Nibble({"quantize", "--model", (temp_->path() / "no-such-model").string(), "--method", "rtn",
                                 "--store", store.string(), "--name", "x"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("error: NOT_FOUND: --model: "));

  const Output backend_there =
      Nibble({"quantize", "--server", server_->address, "--model", "/models/m", "--name", "x", "--backend", "cpu"});
  EXPECT_EQ(backend_there.exit_code, 1);
  EXPECT_THAT(backend_there.err, HasSubstr("error: INVALID_ARGUMENT: --backend applies only to quantizing here"));
}

// The job commands call nibble.v1.Quantizer on the connection's channel: a nibble-server, which serves only
// Inference, answers UNIMPLEMENTED, reported with the server and the RPC like every other call's error.
// An AWQ checkpoint made elsewhere (here: a local quantize's artifact without its manifest, as a hub gives it)
// enters the running server's store through `nibble publish` and is served; with a NaN scale it is refused and
// nothing is published.
TEST_F(CliEndToEndTest, PublishPutsAnAwqCheckpointIntoTheStoreAndTheServerServesIt) {
  const std::filesystem::path made = temp_->path() / "made-elsewhere";
  const Output quantized = Nibble({"quantize", "--model", hf_dir_.string(), "--method", "rtn", "--group-size", "32",
                                   "--store", made.string(), "--name", "q", "--backend", "cpu"});
  ASSERT_EQ(quantized.exit_code, 0) << quantized.err;
  const std::filesystem::path hub = temp_->path() / "hub-download";
  std::filesystem::copy(made / "q" / "1", hub);
  std::filesystem::remove(hub / "nibble.json");
  // Older AutoAWQ checkpoints carry their quantization in a legacy quant_config.json instead of config.json.
  nlohmann::json config = nlohmann::json::parse(ReadTextFile(hub / "config.json").value());
  ASSERT_TRUE(config.contains("quantization_config"));
  config.erase("quantization_config");
  ASSERT_TRUE(WriteFileContents(hub / "config.json", config.dump(2)).ok());
  const nlohmann::json legacy = {{"zero_point", true}, {"q_group_size", 32}, {"w_bit", 4}, {"version", "GEMM"}};
  ASSERT_TRUE(WriteFileContents(hub / "quant_config.json", legacy.dump(2)).ok());

  const std::filesystem::path store = temp_->path() / "store";
  const Output published = Nibble({"publish", hub.string(), "--store", store.string(), "--name", "from-hub"});
  ASSERT_EQ(published.exit_code, 0) << published.err;
  EXPECT_THAT(published.out, HasSubstr((store / "from-hub" / "1").string()));
  const nlohmann::json manifest = nlohmann::json::parse(ReadTextFile(store / "from-hub" / "1" / "nibble.json").value());
  EXPECT_EQ(manifest["quantization"]["group_size"], 32) << "read from quant_config.json";
  const Output local = Nibble({"generate", "--model", "from-hub:1", "--store", store.string(), "--prompt", kPrompt,
                               "--max-tokens", "32", "--backend", "cpu"});
  ASSERT_EQ(local.exit_code, 0) << local.err;
  Output served;
  for (int attempt = 0; attempt < 100; ++attempt) {  // the server finds the new model at its next poll
    served = Nibble({"generate", "--server", server_->address, "--model", "from-hub", "--prompt", kPrompt,
                     "--max-tokens", "32", "--temperature", "0", "--stop-token-id", "1"});
    if (served.exit_code == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(served.exit_code, 0) << served.err;
  EXPECT_EQ(served.out, local.out);

  // The same checkpoint with one scale NaN (fp16 0x7E00 written over the first of q_proj's scales in layer 0).
  const std::filesystem::path broken = temp_->path() / "broken-download";
  std::filesystem::copy(hub, broken);
  std::string weights = ReadTextFile(broken / "model.safetensors").value();
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, weights.data(), sizeof(header_bytes));  // little-endian, as safetensors is
  const nlohmann::json header = nlohmann::json::parse(weights.substr(8, header_bytes));
  const uint64_t offset = header.at("model.layers.0.self_attn.q_proj.scales").at("data_offsets").at(0);
  weights[8 + header_bytes + offset] = '\x00';
  weights[8 + header_bytes + offset + 1] = '\x7E';
  ASSERT_TRUE(WriteFileContents(broken / "model.safetensors", weights).ok());
  const Output refused = Nibble({"publish", broken.string(), "--store", store.string(), "--name", "from-hub"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("model.layers.0.self_attn.q_proj.scales holds a non-finite value"));
  EXPECT_FALSE(std::filesystem::exists(store / "from-hub" / "2"));
}

TEST_F(CliEndToEndTest, JobCommandsCallTheQuantizerServiceAndReportItsStatus) {
  const Output list = Nibble({"jobs", "list", "--server", server_->address});
  EXPECT_EQ(list.exit_code, 1);
  EXPECT_THAT(list.err, HasSubstr(absl::StrCat("error: UNIMPLEMENTED: ", server_->address, ": ListJobs: ")));
  const Output watch = Nibble({"jobs", "watch", "--server", server_->address, "job-0000000000000001"});
  EXPECT_EQ(watch.exit_code, 1);
  EXPECT_THAT(watch.err, HasSubstr(absl::StrCat("error: UNIMPLEMENTED: ", server_->address, ": WatchJob: ")));
  const Output submit =
      Nibble({"quantize", "--server", server_->address, "--model", "/models/m", "--name", "x", "--watch"});
  EXPECT_EQ(submit.exit_code, 1);
  EXPECT_THAT(submit.err, HasSubstr(absl::StrCat("error: UNIMPLEMENTED: ", server_->address, ": SubmitJob: ")));
  const Output state = Nibble({"jobs", "list", "--server", server_->address, "--state", "done"});
  EXPECT_EQ(state.exit_code, 1);
  EXPECT_THAT(state.err, HasSubstr("error: INVALID_ARGUMENT: --state: \"done\" is not a job state"));
}

// `nibble quantize --server --watch` runs an AWQ job on nibble-quantizer: one line per block (stdout is not a
// terminal), the published path last, exit 0; `nibble jobs` lists and shows it; nibble-server serves the new
// model from the shared store.
TEST_F(CliEndToEndTest, QuantizeOnTheQuantizerWatchesEachBlockAndTheServerServesTheResult) {
  std::vector<std::string> submit = {"quantize",
                                     "--server",
                                     quantizer_->address,
                                     "--model",
                                     hf_dir_.string(),
                                     "--calib",
                                     testing::SharedFile("data/tinystories-dev-50.txt")->string(),
                                     "--separator",
                                     "<|endoftext|>",
                                     "--n-samples",
                                     "4",
                                     "--seqlen",
                                     "64",
                                     "--group-size",
                                     "32",
                                     "--name",
                                     "stories-awq",
                                     "--request-id",
                                     "cli-e2e-1"};
  std::vector<std::string> watched = submit;
  watched.push_back("--watch");
  const Output job = Nibble(watched);
  ASSERT_EQ(job.exit_code, 0) << job.out << job.err;
  for (int block = 1; block <= 5; ++block) EXPECT_THAT(job.out, HasSubstr(absl::StrCat("block ", block, "/5")));
  const std::string published = (temp_->path() / "store" / "stories-awq" / "1").string();
  EXPECT_THAT(job.out, HasSubstr(published));
  const Output list = Nibble({"jobs", "list", "--server", quantizer_->address});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("stories-awq"));
  EXPECT_THAT(list.out, HasSubstr("succeeded"));
  const std::string id = list.out.substr(list.out.find("job-"), 20);
  const Output get = Nibble({"jobs", "get", id, "--json", "--server", quantizer_->address});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  const nlohmann::json got = nlohmann::json::parse(get.out);
  EXPECT_EQ(got.at("state"), "JOB_STATE_SUCCEEDED");
  EXPECT_EQ(got.at("requestId"), "cli-e2e-1");
  EXPECT_EQ(got.at("blocks").size(), 5u);
  // The same request id again is the same job, already done.
  const Output again = Nibble(submit);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.out, HasSubstr(id));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  Output models;
  while (std::chrono::steady_clock::now() < deadline) {
    models = Nibble({"models", "--server", server_->address});
    if (models.out.find("stories-awq") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_THAT(models.out, HasSubstr("stories-awq")) << "nibble-server picks the new model up from the store";
}

// A job refused at submission prints the quantizer's message and exits 1; `jobs cancel` ends a queued job.
TEST_F(CliEndToEndTest, QuantizerRefusalsAndCancellationThroughTheCommandLine) {
  const Output outside =
      Nibble({"quantize", "--server", quantizer_->address, "--model", "/etc", "--method", "rtn", "--name", "refused"});
  EXPECT_EQ(outside.exit_code, 1);
  EXPECT_THAT(outside.err, HasSubstr("PERMISSION_DENIED"));
  EXPECT_THAT(outside.err, HasSubstr("spec.source_model"));
  const std::vector<std::string> slow_job = {"quantize",
                                             "--server",
                                             quantizer_->address,
                                             "--model",
                                             hf_dir_.string(),
                                             "--calib",
                                             testing::SharedFile("data/tinystories-dev-50.txt")->string(),
                                             "--separator",
                                             "<|endoftext|>",
                                             "--n-samples",
                                             "32",
                                             "--seqlen",
                                             "256",
                                             "--group-size",
                                             "32",
                                             "--name",
                                             "busy"};
  const Output first = Nibble(slow_job);
  const Output second = Nibble(slow_job);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ASSERT_EQ(second.exit_code, 0) << second.err;
  const std::string queued_id = second.out.substr(second.out.find("job-"), 20);
  const Output cancelled = Nibble({"jobs", "cancel", queued_id, "--server", quantizer_->address});
  ASSERT_EQ(cancelled.exit_code, 0) << cancelled.err;
  EXPECT_THAT(cancelled.out, HasSubstr("cancelled"));
  const std::string running_id = first.out.substr(first.out.find("job-"), 20);
  ASSERT_EQ(Nibble({"jobs", "cancel", running_id, "--server", quantizer_->address}).exit_code, 0);
  const Output watched = Nibble({"jobs", "watch", running_id, "--server", quantizer_->address});
  EXPECT_NE(watched.exit_code, 0) << "a cancelled job is not a success";
  EXPECT_THAT(watched.out + watched.err, HasSubstr("cancelled"));
}

// The Grafana dashboard against a real Prometheus scraping this server after some load and the quantizer after
// a job: every expression finds series (the GPU panels excepted: no GPU here), so the dashboard's metric and
// label names are the services'. Skips where the `prometheus` binary is absent (scripts/install-deps.sh installs it).
TEST_F(CliEndToEndTest, DashboardQueriesFindTheServicesSeries) {
  if (std::string(NIBBLE_LOAD_BIN).empty()) GTEST_SKIP() << "nibble-load is not built (NIBBLE_BENCH=OFF)";
  const std::filesystem::path dir = temp_->path() / "prometheus";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "prometheus.yml") << "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                                        << "scrape_configs:\n  - job_name: nibble-server\n"
                                        << "    static_configs: [{targets: [\"" << server_->metrics_address
                                        << "\"]}]\n  - job_name: nibble-quantizer\n"
                                        << "    static_configs: [{targets: [\"" << quantizer_->metrics_address
                                        << "\"]}]\n";
  const std::string prometheus_address = absl::StrCat("127.0.0.1:", FreePort());
  const pid_t prometheus =
      Spawn({"prometheus", "--config.file=" + (dir / "prometheus.yml").string(),
             "--storage.tsdb.path=" + (dir / "data").string(), "--web.listen-address=" + prometheus_address},
            dir / "out", dir / "log");
  if (prometheus < 0) GTEST_SKIP() << "prometheus not found on PATH";
  const Output load = RunToEnd({NIBBLE_LOAD_BIN, "--server", server_->address, "--model", kModel, "--requests", "16",
                                "--concurrency", "4", "--prompt-tokens", "8", "--max-tokens", "16"},
                               temp_->path());
  ASSERT_EQ(load.exit_code, 0) << load.out << load.err;
  const Output job = Nibble({"quantize", "--server", quantizer_->address, "--model", hf_dir_.string(), "--method",
                             "rtn", "--group-size", "32", "--name", "dashboard-rtn", "--watch"});
  ASSERT_EQ(job.exit_code, 0) << job.out << job.err;

  std::ifstream file(std::filesystem::path(NIBBLE_DEPLOY_DIR) / "grafana/nibble-dashboard.json");
  const nlohmann::json dashboard = nlohmann::json::parse(file);
  std::vector<std::string> pending;
  for (const nlohmann::json& panel : dashboard.at("panels")) {
    for (const nlohmann::json& target : panel.at("targets")) {
      std::string expr = target.at("expr");
      if (expr.find("nibble_gpu_") != std::string::npos) continue;  // no GPU here
      expr = std::regex_replace(expr, std::regex("\\$__rate_interval"), "1m");
      pending.push_back(std::regex_replace(expr, std::regex("\\$model"), ".*"));
    }
  }
  // A few scrapes after the load, every expression has series; poll for up to 30 s.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!pending.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    std::erase_if(pending, [&](const std::string& expr) {
      const Output result =
          RunToEnd({"promtool", "query", "instant", "http://" + prometheus_address, expr}, temp_->path());
      return result.exit_code == 0 && result.out.find("=>") != std::string::npos;
    });
  }
  kill(prometheus, SIGTERM);
  Wait(prometheus);
  EXPECT_THAT(pending, ::testing::IsEmpty()) << "expressions with no series; Prometheus log:\n"
                                             << ReadFile(dir / "log");
}

}  // namespace
}  // namespace nibble
