// End to end over loopback gRPC with the real binaries: nibble-server (a subprocess on the CPU backend) on a
// temporary store holding stories260K (imported with `nibble import-llama2c`, published with
// quantizer/publisher.h), driven by `nibble generate --server`, `nibble models` and nibble-load.
//   - greedy text through the server is exactly the text of offline `nibble generate --model DIR`;
//   - `nibble models` lists the model as available; errors print their gRPC code and exit 1;
//   - nibble-load's table counts every request it sent as completed;
//   - the server exits 0 on SIGTERM.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
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

// Starts `args` with stdout and stderr sent to files; returns its pid (or -1).
pid_t Spawn(const std::vector<std::string>& args, const std::filesystem::path& out, const std::filesystem::path& err) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid = -1;
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
    const Output imported = RunToEnd({NIBBLE_CLI_BIN, "import-llama2c", checkpoint->string(), tokenizer->string(),
                                 hf_dir_.string()}, temp_->path());
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
    ASSERT_TRUE(Publish(hf_dir_, temp_->path() / "store").ok());
    server_address_ = absl::StrCat("127.0.0.1:", FreePort());
    server_pid_ = Spawn({NIBBLE_SERVER_BIN, "--store", (temp_->path() / "store").string(), "--listen",
                         server_address_, "--metrics-port", absl::StrCat(FreePort()), "--backend", "cpu",
                         "--poll-interval", "0.5"},
                        temp_->path() / "server.out", temp_->path() / "server.log");
    ASSERT_GT(server_pid_, 0);
    // Ready once `nibble models` shows the model available (the server loads it in the background).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      const Output models = RunToEnd({NIBBLE_CLI_BIN, "models", "--server", server_address_}, temp_->path());
      if (models.exit_code == 0 && models.out.find("available") != std::string::npos) return;
      if (waitpid(server_pid_, nullptr, WNOHANG) == server_pid_) {
        server_pid_ = -1;
        FAIL() << "nibble-server exited:\n" << ReadFile(temp_->path() / "server.log");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    FAIL() << "nibble-server did not serve " << kModel << " within 60 s:\n" << ReadFile(temp_->path() / "server.log");
  }

  static void TearDownTestSuite() {
    if (server_pid_ > 0) {
      kill(server_pid_, SIGTERM);
      const int exit_code = Wait(server_pid_);
      EXPECT_EQ(exit_code, 0) << "nibble-server on SIGTERM:\n" << ReadFile(temp_->path() / "server.log");
    }
    delete temp_;
    delete skip_reason_;
  }

  void SetUp() override {
    if (skip_reason_ != nullptr) GTEST_SKIP() << *skip_reason_;
    ASSERT_GT(server_pid_, 0) << "no server (see the suite's setup failure)";
  }

  Output Nibble(std::vector<std::string> args) {
    args.insert(args.begin(), NIBBLE_CLI_BIN);
    return RunToEnd(args, temp_->path());
  }

  static inline testing::TempDir* temp_ = nullptr;
  static inline std::string* skip_reason_ = nullptr;
  static inline std::filesystem::path hf_dir_;
  static inline std::string server_address_;
  static inline pid_t server_pid_ = -1;
};

TEST_F(CliEndToEndTest, GreedyTextThroughTheServerIsTheOfflineText) {
  const Output offline = Nibble({"generate", "--model", hf_dir_.string(), "--prompt", kPrompt, "--max-tokens", "48",
                                 "--temperature", "0", "--backend", "cpu"});
  ASSERT_EQ(offline.exit_code, 0) << offline.err;
  // Offline generation also stops at BOS (llama2.c's document separator, id 1 in tok512): ask the server too.
  const Output served = Nibble({"generate", "--server", server_address_, "--model", kModel, "--prompt", kPrompt,
                                "--max-tokens", "48", "--temperature", "0", "--stop-token-id", "1"});
  ASSERT_EQ(served.exit_code, 0) << served.err;
  EXPECT_GT(offline.out.size(), std::string(kPrompt).size() + 20) << offline.out;
  EXPECT_EQ(served.out, offline.out);
  EXPECT_THAT(served.err, HasSubstr("TTFT"));
  EXPECT_THAT(served.err, HasSubstr("tokens/s"));
  EXPECT_THAT(served.err, HasSubstr(absl::StrCat(kModel, ":1]")));
}

TEST_F(CliEndToEndTest, ModelsListsTheModelAvailable) {
  const Output models = Nibble({"models", "--server", server_address_});
  ASSERT_EQ(models.exit_code, 0) << models.err;
  EXPECT_THAT(models.out, ::testing::ContainsRegex(absl::StrCat(kModel, " +1 +available +yes")));
}

TEST_F(CliEndToEndTest, ErrorsPrintTheStatusCodeAndExitNonZero) {
  const Output unknown =
      Nibble({"generate", "--server", server_address_, "--model", "no-such-model", "--prompt", "hello"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr(absl::StrCat("error: NOT_FOUND: ", server_address_, ": Generate: ")));
  const Output bad = Nibble({"generate", "--server", server_address_, "--model", kModel, "--prompt", "hello",
                             "--top-p", "1.5"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.err, HasSubstr("error: INVALID_ARGUMENT: "));
  EXPECT_THAT(bad.err, HasSubstr("top_p"));
}

TEST_F(CliEndToEndTest, LoadGeneratorCountsEveryRequest) {
  if (std::string(NIBBLE_LOAD_BIN).empty()) GTEST_SKIP() << "nibble-load is not built (NIBBLE_BENCH=OFF)";
  const Output load = RunToEnd({NIBBLE_LOAD_BIN, "--server", server_address_, "--model", kModel, "--requests", "12",
                           "--concurrency", "4", "--prompt-tokens", "8", "--max-tokens", "16"},
                          temp_->path());
  ASSERT_EQ(load.exit_code, 0) << load.out << load.err;
  EXPECT_THAT(load.out, HasSubstr("12 completed, 0 failed, of 12"));
  EXPECT_THAT(load.out, HasSubstr("finish reasons   length 12"));
  EXPECT_THAT(load.out, HasSubstr("errors           none"));
}

}  // namespace
}  // namespace nibble
