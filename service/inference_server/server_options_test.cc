// Flags and their NIBBLE_* environment variables, the checks flags alone cannot make, and --pin parsing.
#include "service/inference_server/server_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

#include "service/inference_server/model_manager.h"
#include "tests/support/shared_data.h"

namespace nibble::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Parses `args` (after the program name) into options, as main does.
ServerOptions Parse(std::vector<std::string> args) {
  CLI::App app;
  ServerOptions options;
  RegisterServerFlags(app, options);
  args.insert(args.begin(), "nibble-server");
  std::vector<const char*> argv;
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
  return options;
}

TEST(ServerOptionsTest, DefaultsAreTheDocumentedOnes) {
  const ServerOptions options = Parse({"--store", "/models"});
  EXPECT_EQ(options.store, "/models");
  EXPECT_EQ(options.listen, "0.0.0.0:8600");
  EXPECT_EQ(options.metrics_port, 8601);
  EXPECT_EQ(options.backend, "auto");
  EXPECT_EQ(options.max_queue, 256);
  EXPECT_EQ(options.drain_timeout_seconds, 30);
  EXPECT_EQ(options.metrics_listen, "");
  EXPECT_EQ(options.admin_token_file, "");
  EXPECT_FALSE(options.allow_loopback_admin);
  EXPECT_EQ(options.prompt_threads, 2);
  EXPECT_EQ(options.max_pending_prompts, 64);
  EXPECT_EQ(options.inline_prompt_bytes, 4096);
  EXPECT_TRUE(ValidateServerOptions(options).ok());
}

TEST(ServerOptionsTest, EveryFlagReadsItsEnvironmentVariableAndTheFlagWins) {
  setenv("NIBBLE_STORE", "/env-store", 1);
  setenv("NIBBLE_LISTEN", "127.0.0.1:9000", 1);
  setenv("NIBBLE_METRICS_PORT", "9001", 1);
  setenv("NIBBLE_BACKEND", "cpu", 1);
  setenv("NIBBLE_MAX_QUEUE", "7", 1);
  setenv("NIBBLE_DRAIN_TIMEOUT", "2.5", 1);
  setenv("NIBBLE_POLL_INTERVAL", "0.5", 1);
  setenv("NIBBLE_MAX_SEQS", "3", 1);
  setenv("NIBBLE_PIN", "a:1,b:2", 1);
  setenv("NIBBLE_ALLOW_LOOPBACK_ADMIN", "true", 1);
  setenv("NIBBLE_PROMPT_THREADS", "4", 1);
  setenv("NIBBLE_MAX_PENDING_PROMPTS", "5", 1);
  setenv("NIBBLE_INLINE_PROMPT_BYTES", "0", 1);
  ServerOptions options = Parse({});
  EXPECT_EQ(options.prompt_threads, 4);
  EXPECT_EQ(options.max_pending_prompts, 5);
  EXPECT_EQ(options.inline_prompt_bytes, 0);
  EXPECT_TRUE(options.allow_loopback_admin);
  EXPECT_EQ(options.store, "/env-store");
  EXPECT_EQ(options.listen, "127.0.0.1:9000");
  EXPECT_EQ(options.metrics_port, 9001);
  EXPECT_EQ(options.backend, "cpu");
  EXPECT_EQ(options.max_queue, 7);
  EXPECT_EQ(options.drain_timeout_seconds, 2.5);
  EXPECT_EQ(options.poll_interval_seconds, 0.5);
  EXPECT_EQ(options.max_seqs, 3);
  EXPECT_THAT(options.pins, ElementsAre("a:1", "b:2"));
  options = Parse({"--max-queue", "9", "--store", "/flag-store"});
  EXPECT_EQ(options.max_queue, 9);
  EXPECT_EQ(options.store, "/flag-store");
  for (const char* name :
       {"NIBBLE_STORE", "NIBBLE_LISTEN", "NIBBLE_METRICS_PORT", "NIBBLE_BACKEND", "NIBBLE_MAX_QUEUE",
        "NIBBLE_DRAIN_TIMEOUT", "NIBBLE_POLL_INTERVAL", "NIBBLE_MAX_SEQS", "NIBBLE_PIN", "NIBBLE_ALLOW_LOOPBACK_ADMIN",
        "NIBBLE_PROMPT_THREADS", "NIBBLE_MAX_PENDING_PROMPTS", "NIBBLE_INLINE_PROMPT_BYTES"}) {
    unsetenv(name);
  }
}

TEST(ServerOptionsTest, BadValuesAreRefusedNamingTheFlag) {
  EXPECT_THROW(Parse({"--store", "s", "--backend", "tpu"}), CLI::ValidationError);
  EXPECT_THROW(Parse({"--store", "s", "--max-queue", "0"}), CLI::ValidationError);
  EXPECT_THROW(Parse({"--store", "s", "--prompt-threads", "0"}), CLI::ValidationError);
  EXPECT_THROW(Parse({"--store", "s", "--max-pending-prompts", "0"}), CLI::ValidationError);
  EXPECT_THROW(Parse({"--store", "s", "--inline-prompt-bytes", "-1"}), CLI::ValidationError);
  EXPECT_THROW(Parse({}), CLI::RequiredError);
  ServerOptions options = Parse({"--store", "s", "--listen", "nohostport"});
  EXPECT_THAT(ValidateServerOptions(options).message(), HasSubstr("--listen"));
}

TEST(ServerOptionsTest, MetricsListenMustBeHostPortAndReplacesMetricsPort) {
  setenv("NIBBLE_METRICS_LISTEN", "127.0.0.1:9101", 1);
  EXPECT_EQ(Parse({"--store", "s"}).metrics_listen, "127.0.0.1:9101");
  unsetenv("NIBBLE_METRICS_LISTEN");
  for (const char* good : {"0.0.0.0:9101", "127.0.0.1:0", "[::1]:9101", "metrics.internal:65535"}) {
    EXPECT_TRUE(ValidateServerOptions(Parse({"--store", "s", "--metrics-listen", good})).ok()) << good;
  }
  for (const char* bad : {"9101", ":9101", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:65536", "127.0.0.1:-1",
                          "127.0.0.1:+80", "127.0.0.1:123456"}) {
    const absl::Status status = ValidateServerOptions(Parse({"--store", "s", "--metrics-listen", bad}));
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(status.message(), HasSubstr("--metrics-listen")) << bad;
  }
  // Two places for one endpoint: refused at parse time.
  EXPECT_THROW(Parse({"--store", "s", "--metrics-port", "9001", "--metrics-listen", "127.0.0.1:9101"}),
               CLI::ExcludesError);
}

TEST(ServerOptionsTest, AdminCallsAreEnabledOneWayAtATime) {
  const nibble::testing::TempDir dir;
  const std::string token = (dir.path() / "admin-token").string();
  std::ofstream(token) << "admin\n";
  setenv("NIBBLE_ADMIN_TOKEN_FILE", token.c_str(), 1);
  ServerOptions options = Parse({"--store", "s"});
  unsetenv("NIBBLE_ADMIN_TOKEN_FILE");
  EXPECT_EQ(options.admin_token_file, token);
  EXPECT_TRUE(ValidateServerOptions(options).ok());
  EXPECT_TRUE(Parse({"--store", "s", "--allow-loopback-admin"}).allow_loopback_admin);
  options = Parse({"--store", "s", "--admin-token-file", token, "--allow-loopback-admin"});
  EXPECT_THAT(ValidateServerOptions(options).message(), HasSubstr("--admin-token-file and --allow-loopback-admin"));
  EXPECT_THROW(Parse({"--store", "s", "--admin-token-file", (dir.path() / "absent").string()}), CLI::ValidationError);
}

TEST(ParsePinTest, ModelColonVersion) {
  EXPECT_EQ(ParsePin("llama-7b:3").value(), std::make_pair(std::string("llama-7b"), uint64_t{3}));
  for (const char* bad : {"llama", "llama:", "llama:0", "llama:x", ":3", "../x:1"}) {
    EXPECT_EQ(ParsePin(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(ParsePin(bad).status().message(), HasSubstr("--pin")) << bad;
  }
}

}  // namespace
}  // namespace nibble::server
