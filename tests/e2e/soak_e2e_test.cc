// nibble-load's soak and never-reading modes against the real nibble-server binary (a child process on the
// CPU backend serving stories260K from a temporary store): the soak prints its table with every request
// completed, no errors and the server's RSS at each mark; the never-reading streams are held, closed by the
// client (CANCELLED) and the server's RSS is printed before, during and after. Short runs (seconds): the
// figures themselves are bench/results/cpu-soak.md's job.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/e2e/server_test_support.h"

namespace nibble::e2e {
namespace {

using ::testing::HasSubstr;

class SoakTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!StoriesDir()) GTEST_SKIP() << "stories260K not found in ../shared (set NIBBLE_SHARED)";
    ASSERT_TRUE(PublishStories(store_.path()).ok());
    auto child = Subprocess::Spawn({NIBBLE_SERVER_BINARY, "--listen", "127.0.0.1:0", "--metrics-port", "0"},
                                   {"NIBBLE_STORE=" + store_.path().string(), "NIBBLE_BACKEND=cpu"});
    ASSERT_TRUE(child.ok()) << child.status();
    server_.emplace(*std::move(child));
    const auto listening = server_->WaitForLine("gRPC listening");
    ASSERT_TRUE(listening.ok()) << server_->output();
    const size_t at = listening->find("(port ");
    int port = 0;
    ASSERT_TRUE(absl::SimpleAtoi(listening->substr(at + 6, listening->find(')', at) - at - 6), &port)) << *listening;
    address_ = absl::StrCat("127.0.0.1:", port);
    ASSERT_TRUE(server_->WaitForLine("version 1: serving").ok()) << server_->output();
  }

  // Runs nibble-load against the server with `flags` added (and the server's pid, unless `pid` says another);
  // returns its exit code and output.
  std::pair<int, std::string> Load(const std::vector<std::string>& flags, pid_t pid = 0) {
    std::vector<std::string> argv = {NIBBLE_LOAD_BINARY,
                                     "--server",
                                     address_,
                                     "--model",
                                     kModel,
                                     "--server-pid",
                                     absl::StrCat(pid > 0 ? pid : server_->pid()),
                                     "--settle",
                                     "1"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto load = Subprocess::Spawn(argv);
    if (!load.ok()) return {-1, std::string(load.status().message())};
    const int code = load->Wait();
    return {code, load->output()};
  }

  testing::TempDir store_;
  std::optional<Subprocess> server_;
  std::string address_;
};

// The MiB figures of the line after the one starting "server RSS (MiB)".
std::vector<double> RssFigures(const std::string& table) {
  std::istringstream lines(table);
  std::string line;
  while (std::getline(lines, line) && line.rfind("server RSS (MiB)", 0) != 0) {
  }
  std::vector<double> figures;
  if (!std::getline(lines, line)) return figures;
  std::istringstream values(line);
  for (double value; values >> value;) figures.push_back(value);
  return figures;
}

TEST_F(SoakTest, SoakPrintsThroughputLatencyAndServerRssWithNoErrors) {
  const auto [code, out] =
      Load({"--duration", "3", "--concurrency", "4", "--prompt-tokens", "8", "--max-tokens", "32"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("4 concurrent for 3 s"));
  EXPECT_THAT(out, ::testing::ContainsRegex("requests +[1-9][0-9]* completed, 0 failed"));
  EXPECT_THAT(out, HasSubstr("errors           none"));
  EXPECT_THAT(out, ::testing::ContainsRegex("inter-token +[0-9.]+ +[0-9.]+"));
  EXPECT_THAT(out, ::testing::ContainsRegex("server RSS \\(MiB\\) +start +warm-up +middle +end +\\+1 s idle"));
  const std::vector<double> rss = RssFigures(out);
  ASSERT_EQ(rss.size(), 5u) << out;
  for (double mib : rss) EXPECT_GT(mib, 0.0) << out;
  EXPECT_THAT(out, HasSubstr("after warm-up    min "));
}

TEST_F(SoakTest, NeverReadingStreamsAreHeldClosedAndMeasured) {
  const auto [code, out] =
      Load({"--never-read", "8", "--hold", "2", "--prompt-tokens", "8", "--max-tokens", "400", "--logprobs", "20"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("8 streams never read, held 2 s"));
  const std::vector<double> rss = RssFigures(out);
  ASSERT_EQ(rss.size(), 5u) << out;
  for (double mib : rss) EXPECT_GT(mib, 0.0) << out;
  EXPECT_THAT(out, HasSubstr("at close         CANCELLED 8"));
}

TEST_F(SoakTest, RefusesAPidThatIsNoProcess) {
  const auto [code, out] = Load({"--duration", "1"}, 999999999);
  EXPECT_EQ(code, 1) << out;
  EXPECT_THAT(out, HasSubstr("--server-pid: /proc/999999999/status: cannot open"));
}

}  // namespace
}  // namespace nibble::e2e
