#include "service/cli/jobs_command.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <functional>
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/client_context.h"
#include "service/client/cli_status.h"
#include "service/client/connection_flags.h"
#include "service/client/job_format.h"
#include "service/client/labels.h"
#include "service/client/watch_job.h"

namespace nibble::cli {
namespace {

struct ListFlags {
  std::string state;
  uint32_t limit = 0;
  std::string page_token;
};

struct JobFlags {
  std::string id;
  bool json = false;
};

absl::Status RunList(const client::Connection& connection, const ListFlags& flags) {
  v1::ListJobsRequest request;
  if (!flags.state.empty()) {
    absl::StatusOr<v1::JobState> state = client::ParseJobState(flags.state, "--state");
    if (!state.ok()) return state.status();
    request.set_state(*state);
  }
  request.set_page_size(flags.limit);
  request.set_page_token(flags.page_token);
  grpc::ClientContext context;
  connection.Prepare(context);
  v1::ListJobsResponse response;
  const grpc::Status status = connection.quantizer().ListJobs(&context, request, &response);
  if (!status.ok()) return connection.CallStatus(status, "ListJobs");
  std::cout << client::JobTable(response.jobs());
  if (!response.next_page_token().empty()) {
    std::cerr << "more jobs: add --page-token " << response.next_page_token() << "\n";
  }
  return absl::OkStatus();
}

absl::Status PrintJob(const v1::Job& job, bool json) {
  if (!json) {
    std::cout << client::JobSummary(job) << "\n";
    return absl::OkStatus();
  }
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  std::string text;
  // Protobuf's own Status (not absl's in this version): only its text is needed.
  if (const auto status = google::protobuf::util::MessageToJsonString(job, &text, options); !status.ok()) {
    return absl::InternalError(absl::StrCat("job ", job.id(), " as JSON: ", status.ToString()));
  }
  std::cout << text;
  return absl::OkStatus();
}

absl::Status RunGet(const client::Connection& connection, const JobFlags& flags) {
  v1::GetJobRequest request;
  request.set_id(flags.id);
  grpc::ClientContext context;
  connection.Prepare(context);
  v1::Job job;
  const grpc::Status status = connection.quantizer().GetJob(&context, request, &job);
  if (!status.ok()) return connection.CallStatus(status, "GetJob");
  return PrintJob(job, flags.json);
}

absl::Status RunCancel(const client::Connection& connection, const JobFlags& flags) {
  v1::CancelJobRequest request;
  request.set_id(flags.id);
  grpc::ClientContext context;
  connection.Prepare(context);
  v1::Job job;
  const grpc::Status status = connection.quantizer().CancelJob(&context, request, &job);
  if (!status.ok()) return connection.CallStatus(status, "CancelJob");
  std::cout << client::JobSummary(job) << "\n";
  return absl::OkStatus();
}

// Adds `nibble jobs NAME` with the connection flags; its callback opens the connection and runs `run`.
CLI::App* AddJobsSubcommand(CLI::App& jobs, const std::string& name, const std::string& description,
                            std::function<absl::Status(const client::Connection&)> run, int& exit_code) {
  CLI::App* command = jobs.add_subcommand(name, description);
  auto options = std::make_shared<client::ConnectionOptions>();
  client::AddConnectionFlags(*command, *options, /*server_required=*/true);
  command->callback([options, run = std::move(run), &exit_code] {
    absl::StatusOr<client::Connection> connection = client::Connection::Open(*options);
    absl::Status status = connection.ok() ? run(*connection) : connection.status();
    if (!status.ok()) exit_code = client::ReportError(status);
  });
  return command;
}

}  // namespace

absl::Status WatchJobToEnd(const client::Connection& connection, const std::string& id) {
  winsize window{};
  const bool terminal = isatty(STDOUT_FILENO) == 1;
  const int columns =
      terminal && ioctl(STDOUT_FILENO, TIOCGWINSZ, &window) == 0 && window.ws_col > 0 ? window.ws_col : 80;
  client::JobProgress progress(std::cout, /*redraw=*/terminal, columns);
  absl::StatusOr<v1::Job> job =
      client::FollowJob(connection, id, [&progress](const v1::Job& update) { progress.Update(update); });
  progress.Finish();
  if (!job.ok()) return job.status();
  std::cout << client::JobSummary(*job) << "\n";
  switch (job->state()) {
    case v1::JOB_STATE_SUCCEEDED:
      std::cout << job->published_path() << std::endl;
      return absl::OkStatus();
    case v1::JOB_STATE_CANCELLED:
      return absl::CancelledError(
          absl::StrCat(connection.server(), ": job ", job->id(), " was cancelled: ", job->error()));
    default:
      return absl::UnknownError(absl::StrCat(connection.server(), ": job ", job->id(), " failed: ", job->error()));
  }
}

void RegisterJobs(CLI::App& app, int& exit_code) {
  CLI::App* jobs = app.add_subcommand(
      "jobs", "The quantization jobs of a nibble-quantizer: list them, show one, follow one to its end, cancel one");
  jobs->require_subcommand(1);

  auto list = std::make_shared<ListFlags>();
  CLI::App* list_command = AddJobsSubcommand(
      *jobs, "list", "A table of the jobs, newest first",
      [list](const client::Connection& connection) { return RunList(connection, *list); }, exit_code);
  list_command->add_option("--state", list->state,
                           "Only jobs in this state: queued, running, succeeded, failed, cancelled");
  list_command->add_option("--limit", list->limit, "Jobs per page (0: the server's 50; at most 500)")
      ->check(CLI::Range(0, 500));
  list_command->add_option("--page-token", list->page_token, "The next page, as the previous page's end named it");

  auto get = std::make_shared<JobFlags>();
  CLI::App* get_command = AddJobsSubcommand(
      *jobs, "get", "One job's state, progress and outcome on one line (or all of it as JSON with --json)",
      [get](const client::Connection& connection) { return RunGet(connection, *get); }, exit_code);
  get_command->add_option("id", get->id, "The job's id (job-...)")->required();
  get_command->add_flag("--json", get->json, "Print the whole Job message as JSON (block reports included)");

  auto watch = std::make_shared<JobFlags>();
  CLI::App* watch_command = AddJobsSubcommand(
      *jobs, "watch",
      "Follow a job until it ends; exit status 0 only when it succeeded (then the published path is the last line)",
      [watch](const client::Connection& connection) { return WatchJobToEnd(connection, watch->id); }, exit_code);
  watch_command->add_option("id", watch->id, "The job's id (job-...)")->required();

  auto cancel = std::make_shared<JobFlags>();
  CLI::App* cancel_command = AddJobsSubcommand(
      *jobs, "cancel",
      "Cancel a job (a queued one at once, a running one within a block) and print what it became; a finished "
      "job stays as it was",
      [cancel](const client::Connection& connection) { return RunCancel(connection, *cancel); }, exit_code);
  cancel_command->add_option("id", cancel->id, "The job's id (job-...)")->required();
}

}  // namespace nibble::cli
