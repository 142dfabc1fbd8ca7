#include "tests/e2e/server_test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "engine/backends/backend_factory.h"
#include "engine/tools/llama2c.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/byte_buffer.h"
#include "quantizer/job.h"
#include "quantizer/publisher.h"

extern char** environ;

namespace nibble::e2e {

std::optional<std::filesystem::path> StoriesDir() {
  static std::once_flag once;
  static std::optional<testing::TempDir> dir;
  static std::optional<std::filesystem::path> path;
  std::call_once(once, [] {
    const auto bin = testing::SharedFile("models/stories260K/stories260K.bin");
    const auto tokenizer = testing::SharedFile("models/stories260K/tok512.model");
    if (!bin || !tokenizer) return;
    dir.emplace();
    const std::filesystem::path out = dir->path() / "stories260K";
    const absl::Status imported = ImportLlama2c(*bin, *tokenizer, out);
    if (imported.ok()) path = out;
  });
  return path;
}

absl::StatusOr<uint64_t> PublishStories(const std::filesystem::path& root, const std::string& model) {
  const std::optional<std::filesystem::path> source = StoriesDir();
  if (!source) return absl::NotFoundError("stories260K is not in ../shared");
  return PublishDirectory(ModelStore(root), model, *source, {{"source", {{"path", "stories260K.bin"}}}});
}

absl::StatusOr<uint64_t> PublishStoriesAwq(const std::filesystem::path& root, const std::string& model) {
  const std::optional<std::filesystem::path> source = StoriesDir();
  const std::optional<std::filesystem::path> text = testing::SharedFile("data/tinystories-dev-50.txt");
  if (!source || !text) return absl::NotFoundError("stories260K or tinystories-dev-50.txt is not in ../shared");
  QuantizeJobSpec spec;
  spec.model_dir = *source;
  spec.calibration_path = *text;
  spec.calibration.separator = "<|endoftext|>";
  spec.calibration.n_samples = 8;  // few and short: a test needs a valid artifact, not its best quality
  spec.calibration.seqlen = 128;
  spec.quantize.method = QuantMethod::kAwq;
  spec.quantize.spec.group_size = 32;
  spec.store_root = root;
  spec.model_name = model;
  absl::StatusOr<std::unique_ptr<Backend>> backend = MakeBackend(BackendKind::kCpu);
  if (!backend.ok()) return backend.status();
  absl::StatusOr<QuantizeJobResult> result = RunQuantizeJob(**backend, spec, {});
  if (!result.ok()) return result.status();
  if (!result->version) return absl::InternalError("the AWQ job published nothing");
  return *result->version;
}

server::ServerOptions LoopbackOptions(const std::filesystem::path& store) {
  server::ServerOptions options;
  options.store = store.string();
  options.listen = "127.0.0.1:0";
  options.metrics_port = 0;
  options.backend = "cpu";
  options.poll_interval_seconds = 0.1;
  options.allow_loopback_admin = true;  // LoadModel and UnloadModel from the test's own client
  return options;
}

std::string TestServer::address() const { return absl::StrCat("127.0.0.1:", server->port()); }

absl::StatusOr<TestServer> StartServer(const server::ServerOptions& options) {
  TestServer test;
  absl::StatusOr<std::unique_ptr<server::Server>> server = server::Server::Start(options);
  if (!server.ok()) return server.status();
  test.server = std::move(server).value();
  test.channel = grpc::CreateChannel(test.address(), grpc::InsecureChannelCredentials());
  test.stub = v1::Inference::NewStub(test.channel);
  return test;
}

std::vector<int32_t> StreamResult::tokens() const {
  std::vector<int32_t> tokens;
  for (const v1::TokenChunk& chunk : chunks)
    tokens.insert(tokens.end(), chunk.token_ids().begin(), chunk.token_ids().end());
  return tokens;
}

std::string StreamResult::text() const {
  std::string text;
  for (const v1::TokenChunk& chunk : chunks) text += chunk.text();
  return text;
}

v1::GenerateRequest GreedyRequest(const std::string& prompt, uint32_t max_tokens) {
  v1::GenerateRequest request;
  request.set_model(kModel);
  request.set_text(prompt);
  request.set_max_tokens(max_tokens);
  request.mutable_sampling()->set_temperature(0.0f);
  request.add_stop_token_ids(kBos);
  return request;
}

GenerationRequest OfflineGreedyRequest(const std::string& prompt, int32_t max_tokens) {
  GenerationRequest request;
  request.prompt = prompt;
  request.max_tokens = max_tokens;
  request.sampling.temperature = 0.0f;
  request.stop_token_ids = {kBos};
  return request;
}

StreamResult RunStream(v1::Inference::Stub& stub, const v1::GenerateRequest& request, grpc::ClientContext* context,
                       std::atomic<int>* started) {
  grpc::ClientContext own;
  if (context == nullptr) context = &own;
  StreamResult result;
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader = stub.Generate(context, request);
  v1::GenerateResponse response;
  bool first = true;
  while (reader->Read(&response)) {
    if (first && started != nullptr) ++*started;
    first = false;
    if (response.has_chunk()) result.chunks.push_back(response.chunk());
    if (response.has_final()) result.final = response.final();
  }
  result.status = reader->Finish();
  return result;
}

absl::StatusOr<std::string> HttpGet(int port, const std::string& path, const std::string& headers) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n", headers, "\r\n");
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buffer[65536];
      for (ssize_t n; (n = read(fd, buffer, sizeof(buffer))) > 0;) reply.append(buffer, static_cast<size_t>(n));
    }
  }
  close(fd);
  const size_t body = reply.find("\r\n\r\n");
  if (reply.rfind("HTTP/1.1 200", 0) != 0 && reply.rfind("HTTP/1.0 200", 0) != 0) {
    return absl::InternalError(absl::StrCat("GET ", path, " on port ", port, ": ", reply.substr(0, 64)));
  }
  return reply.substr(body + 4);
}

std::optional<double> MetricValue(const std::string& exposition, const std::string& sample) {
  std::istringstream lines(exposition);
  const std::string prefix = sample + " ";
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) == 0) return std::stod(line.substr(prefix.size()));
  }
  return std::nullopt;
}

bool HasFamily(const std::string& exposition, const std::string& family) {
  return exposition.find(absl::StrCat("# TYPE ", family, " ")) != std::string::npos;
}

namespace {

std::string BufferBytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  (void)buffer.Dump(&slices);
  std::string bytes;
  for (const grpc::Slice& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes;
}

}  // namespace

absl::StatusOr<int> HealthStatus(grpc::Channel& channel, const std::string& service) {
  // HealthCheckRequest{string service = 1}; HealthCheckResponse{ServingStatus status = 1}, encoded by hand.
  std::string request = "\x0a";
  request += static_cast<char>(service.size());
  request += service;
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  grpc::GenericStub stub(std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request_buffer, &response_buffer,
                 [&done](grpc::Status status) { done.set_value(status); });
  const grpc::Status status = done.get_future().get();
  if (!status.ok()) return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  const std::string response = BufferBytes(response_buffer);
  if (response.size() == 2 && response[0] == '\x08') return static_cast<int>(response[1]);
  return 0;  // UNKNOWN (the default value is not sent)
}

absl::StatusOr<std::string> ReflectionListServices(grpc::Channel& channel, const std::string& token) {
  // ServerReflectionRequest{string list_services = 7}, encoded by hand; one request, one response.
  grpc::GenericStub stub(std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  grpc::CompletionQueue queue;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  auto call = stub.PrepareCall(&context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &queue);
  auto step = [&queue](auto&& start) {
    void* tag = nullptr;
    bool ok = false;
    start(reinterpret_cast<void*>(1));
    return queue.Next(&tag, &ok) && ok;
  };
  grpc::Slice slice(std::string("\x3a\x01*", 3));
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  const bool exchanged =
      step([&](void* tag) { call->StartCall(tag); }) && step([&](void* tag) { call->Write(request, tag); }) &&
      step([&](void* tag) { call->WritesDone(tag); }) && step([&](void* tag) { call->Read(&response, tag); });
  step([&](void* tag) { call->Finish(&status, tag); });
  queue.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (queue.Next(&tag, &ok)) {
  }
  if (!status.ok()) return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  if (!exchanged) return absl::InternalError("the reflection call ended early");
  return BufferBytes(response);
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// --- Subprocess ----------------------------------------------------------------------------------------------

absl::StatusOr<Subprocess> Subprocess::Spawn(const std::vector<std::string>& argv,
                                             const std::vector<std::string>& env) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return absl::InternalError("pipe2 failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> environment(env);
  for (char** e = environ; *e != nullptr; ++e) environment.emplace_back(*e);
  std::vector<char*> envp;
  for (const std::string& e : environment) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = -1;
  const int error = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (error != 0) {
    close(fds[0]);
    return absl::InternalError(absl::StrCat("posix_spawn ", argv[0], " failed: ", strerror(error)));
  }
  return Subprocess(pid, fds[0]);
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      fd_(std::exchange(other.fd_, -1)),
      output_(std::move(other.output_)),
      scanned_(other.scanned_) {}

Subprocess::~Subprocess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<std::string> Subprocess::WaitForLine(const std::string& needle, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (size_t end; (end = output_.find('\n', scanned_)) != std::string::npos;) {
      const std::string line = output_.substr(scanned_, end - scanned_);
      scanned_ = end + 1;
      if (line.find(needle) != std::string::npos) return line;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return absl::DeadlineExceededError(absl::StrCat("no line with \"", needle, "\""));
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buffer[4096];
    const ssize_t n = read(fd_, buffer, sizeof(buffer));
    if (n <= 0) return absl::NotFoundError(absl::StrCat("output ended without \"", needle, "\""));
    output_.append(buffer, static_cast<size_t>(n));
  }
}

void Subprocess::Signal(int signal) const { kill(pid_, signal); }

int Subprocess::Wait() {
  char buffer[4096];
  for (ssize_t n; (n = read(fd_, buffer, sizeof(buffer))) > 0;) output_.append(buffer, static_cast<size_t>(n));
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace nibble::e2e
