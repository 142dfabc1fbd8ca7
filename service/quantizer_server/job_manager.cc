#include "service/quantizer_server/job_manager.h"

#include <random>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/base/quote.h"
#include "engine/base/status_macros.h"
#include "google/protobuf/util/message_differencer.h"
#include "quantizer/job.h"
#include "quantizer/publisher.h"
#include "spdlog/spdlog.h"

namespace nibble::quantizer_server {
namespace fs = std::filesystem;
namespace {

constexpr size_t kMaxRequestIdBytes = 128;
constexpr uint32_t kDefaultPageSize = 50;
constexpr uint32_t kMaxPageSize = 500;
constexpr uint32_t kMaxResumes = 3;  // restarts of the quantizer in the middle of one job

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::Status ValidateRequestId(const std::string& request_id) {
  if (request_id.size() > kMaxRequestIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("request_id: ", request_id.size(), " bytes; at most ", kMaxRequestIdBytes));
  }
  for (char c : request_id) {
    if (!absl::ascii_isprint(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          absl::StrCat("request_id: ", QuotedPrefix(request_id), " holds a byte that is not printable ASCII"));
    }
  }
  return absl::OkStatus();
}

v1::JobPhase PhaseOf(JobPhase phase) {
  switch (phase) {
    case JobPhase::kLoading:
      return v1::JOB_PHASE_LOADING;
    case JobPhase::kCalibrating:
      return v1::JOB_PHASE_CALIBRATING;
    case JobPhase::kSearching:
      return v1::JOB_PHASE_SEARCHING;
    case JobPhase::kWriting:
      return v1::JOB_PHASE_WRITING;
    case JobPhase::kEvaluating:
      return v1::JOB_PHASE_EVALUATING;
    case JobPhase::kPublishing:
      return v1::JOB_PHASE_PUBLISHING;
  }
  return v1::JOB_PHASE_UNSPECIFIED;
}

void ToProto(const LayerReport& report, v1::BlockReport& block) {
  block.set_index(static_cast<uint32_t>(report.index));
  block.set_seconds(report.seconds);
  block.set_clip_error(report.clip_error);
  block.set_output_mse(report.output_mse);
  for (const ScaleGroupReport& group : report.scale_groups) {
    v1::ScaleGroupReport& out = *block.add_scale_groups();
    out.set_layers(group.layers);
    out.set_formula(group.formula);
    out.set_alpha(group.alpha);
    out.set_loss(group.loss);
    out.set_loss_rtn(group.loss_at_alpha0);
  }
}

// The job's fields as a progress event of the job runner leaves them.
void ApplyProgress(const JobProgress& progress, v1::Job& job) {
  job.set_phase(PhaseOf(progress.phase));
  job.set_blocks_done(static_cast<uint32_t>(progress.blocks_done));
  job.set_blocks_total(static_cast<uint32_t>(progress.blocks_total));
  job.set_seconds_per_block(progress.seconds_per_block);
  job.set_eta_seconds(progress.eta_seconds);
  job.set_peak_gpu_memory_bytes(std::max<uint64_t>(job.peak_gpu_memory_bytes(), progress.peak_device_bytes));
  if (progress.resumed_from_block) {
    job.set_resumed_from_block(static_cast<uint32_t>(*progress.resumed_from_block));
    // The blocks before the resume point as the checkpoint has them (the store may lag it by one block).
    if (job.blocks_size() != static_cast<int>(progress.resumed_blocks.size()) && progress.block == nullptr &&
        progress.blocks_done == *progress.resumed_from_block) {
      job.clear_blocks();
      for (const LayerReport& report : progress.resumed_blocks) ToProto(report, *job.add_blocks());
    }
  } else if (progress.blocks_done == 0) {
    job.clear_blocks();  // a fresh start (also after an unusable checkpoint)
  }
  if (progress.block != nullptr) ToProto(*progress.block, *job.add_blocks());
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobManager>> JobManager::Start(JobManagerOptions options,
                                                              std::unique_ptr<JobStore> store,
                                                              std::unique_ptr<Backend> backend, JobObserver* observer) {
  std::unique_ptr<JobManager> manager(
      new JobManager(std::move(options), std::move(store), std::move(backend), observer));
  NIBBLE_RETURN_IF_ERROR(manager->Recover());
  manager->worker_ = std::thread([raw = manager.get()] { raw->WorkerLoop(); });
  return manager;
}

JobManager::~JobManager() { Stop(); }

absl::Status JobManager::Recover() {
  next_id_salt_ = std::random_device{}() * 0x9E3779B97F4A7C15ull ^ static_cast<uint64_t>(NowUnixMs());
  std::error_code error;
  fs::create_directories(options_.paths.checkpoints_root, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat(options_.paths.checkpoints_root.string(), ": cannot create: ", error.message()));
  }
  NIBBLE_ASSIGN_OR_RETURN(int removed, RemoveStaleStaging(ModelStore(options_.paths.store_root)));
  if (removed > 0) spdlog::info("removed {} stale staging directories from the store", removed);
  NIBBLE_ASSIGN_OR_RETURN(std::vector<v1::Job> running, store_->InState(v1::JOB_STATE_RUNNING));
  for (const v1::Job& job : running) {
    spdlog::info("job {}: was RUNNING when the quantizer stopped; it resumes from its checkpoint", job.id());
  }
  PublishCounts();
  return absl::OkStatus();
}

absl::StatusOr<v1::Job> JobManager::Submit(const v1::JobSpec& spec, const std::string& request_id) {
  // 1. Idempotency: the request_id's job, if there is one.
  NIBBLE_RETURN_IF_ERROR(ValidateRequestId(request_id));
  auto existing = [&]() -> absl::StatusOr<std::optional<v1::Job>> {
    if (request_id.empty()) return std::nullopt;
    NIBBLE_ASSIGN_OR_RETURN(std::optional<v1::Job> job, store_->FindByRequestId(request_id));
    if (job && !google::protobuf::util::MessageDifferencer::Equals(job->spec(), spec)) {
      return absl::AlreadyExistsError(
          absl::StrCat("request_id ", QuotedPrefix(request_id), " made job ", job->id(), " with another spec"));
    }
    return job;
  };
  NIBBLE_ASSIGN_OR_RETURN(std::optional<v1::Job> earlier, existing());
  if (earlier) return *earlier;
  // 2. The queue's bound, then the spec (the cheap checks first, the files last).
  NIBBLE_RETURN_IF_ERROR(CheckQueueRoom());
  std::string id;
  {
    std::lock_guard lock(mutex_);
    id = absl::StrFormat("job-%016x", next_id_salt_ * 0xD6E8FEB86659FD93ull + ++ids_made_ * 0x9E3779B97F4A7C15ull);
  }
  NIBBLE_RETURN_IF_ERROR(ResolveJobSpec(spec, options_.paths, id).status());
  // 3. Queue it.
  v1::Job job;
  job.set_id(id);
  *job.mutable_spec() = spec;
  job.set_request_id(request_id);
  job.set_state(v1::JOB_STATE_QUEUED);
  job.set_phase(v1::JOB_PHASE_QUEUED);
  job.set_created_unix_ms(NowUnixMs());
  job.set_updated_unix_ms(job.created_unix_ms());
  {
    std::lock_guard lock(mutex_);
    NIBBLE_RETURN_IF_ERROR(CheckQueueRoom());  // again, under the lock: concurrent submissions stop at the bound
    absl::Status inserted = store_->Insert(job);
    if (absl::IsAlreadyExists(inserted) && !request_id.empty()) {
      // The same request_id submitted concurrently: the first one's job.
      NIBBLE_ASSIGN_OR_RETURN(earlier, existing());
      if (earlier) return *earlier;
    }
    NIBBLE_RETURN_IF_ERROR(inserted);
  }
  spdlog::info("job {}: queued ({} into {}, request_id {})", id, QuotedPrefix(spec.source_model()),
               QuotedPrefix(spec.name()), request_id.empty() ? "none" : QuotedPrefix(request_id));
  work_.notify_all();
  NotifyWatchers();
  PublishCounts();
  return job;
}

absl::Status JobManager::CheckQueueRoom() const {
  NIBBLE_ASSIGN_OR_RETURN(int64_t queued, store_->CountInState(v1::JOB_STATE_QUEUED));
  if (queued < options_.max_queue) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat("the job queue is full (", queued, " queued, --max-queue ", options_.max_queue, ")"));
}

absl::StatusOr<v1::Job> JobManager::Get(const std::string& id) const { return store_->Get(id); }

absl::StatusOr<v1::ListJobsResponse> JobManager::List(v1::JobState state, uint32_t page_size,
                                                      const std::string& page_token) const {
  if (!v1::JobState_IsValid(state)) {
    return absl::InvalidArgumentError(absl::StrCat("state: ", static_cast<int>(state), " is not a job state"));
  }
  if (page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat("page_size: ", page_size, "; at most ", kMaxPageSize));
  }
  int64_t before = 0;
  if (!page_token.empty() && (!absl::SimpleAtoi(page_token, &before) || before <= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token: ", QuotedPrefix(page_token), " is not one ListJobs gave"));
  }
  NIBBLE_ASSIGN_OR_RETURN(JobStore::Page page,
                          store_->List(state, static_cast<int>(page_size == 0 ? kDefaultPageSize : page_size), before));
  v1::ListJobsResponse response;
  for (v1::Job& job : page.jobs) *response.add_jobs() = std::move(job);
  if (page.more) response.set_next_page_token(absl::StrCat(page.last_sequence));
  return response;
}

absl::StatusOr<v1::Job> JobManager::Cancel(const std::string& id) {
  std::lock_guard lock(mutex_);
  NIBBLE_ASSIGN_OR_RETURN(v1::Job job, store_->Get(id));
  if (job.state() == v1::JOB_STATE_QUEUED) {
    RemoveCheckpoint(id);  // a job queued again by a graceful stop has one
    Finish(job, v1::JOB_STATE_CANCELLED, "cancelled while queued");
  } else if (job.state() == v1::JOB_STATE_RUNNING && running_id_ == id) {
    cancel_running_ = true;
    spdlog::info("job {}: cancellation asked; it stops at its next block", id);
  }
  return job;
}

uint64_t JobManager::changes() const {
  std::lock_guard lock(watch_mutex_);
  return changes_;
}

uint64_t JobManager::WaitForChange(uint64_t seen, std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock lock(watch_mutex_);
  changed_.wait_until(lock, deadline, [&] { return changes_ != seen; });
  return changes_;
}

void JobManager::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void JobManager::WorkerLoop() {
  while (std::optional<v1::Job> job = NextJob()) RunJob(std::move(*job));
}

std::optional<v1::Job> JobManager::NextJob() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    absl::StatusOr<std::vector<v1::Job>> running = store_->InState(v1::JOB_STATE_RUNNING);
    absl::StatusOr<std::vector<v1::Job>> queued = store_->InState(v1::JOB_STATE_QUEUED);
    if (!running.ok() || !queued.ok()) {
      spdlog::error("cannot read the job queue: {}", (running.ok() ? queued.status() : running.status()).ToString());
      work_.wait_for(lock, std::chrono::seconds(5));
      continue;
    }
    if (running->empty() && queued->empty()) {
      work_.wait(lock);
      continue;
    }
    const bool resumed = !running->empty();
    v1::Job job = resumed ? running->front() : queued->front();
    if (resumed) job.set_resumes(job.resumes() + 1);
    if (job.resumes() > kMaxResumes) {
      // A job that brings the quantizer down every time it runs (out of memory, a driver fault) must not do so
      // forever.
      RemoveCheckpoint(job.id());
      Finish(job, v1::JOB_STATE_FAILED,
             absl::StrCat("the quantizer stopped while running it ", job.resumes(), " times; not resumed again"));
      continue;
    }
    if (job.started_unix_ms() == 0) job.set_started_unix_ms(NowUnixMs());
    job.set_state(v1::JOB_STATE_RUNNING);
    job.set_phase(v1::JOB_PHASE_LOADING);
    if (absl::Status saved = Save(job); !saved.ok()) {
      spdlog::error("job {}: cannot mark it RUNNING: {}", job.id(), saved.ToString());
      work_.wait_for(lock, std::chrono::seconds(5));
      continue;
    }
    running_id_ = job.id();
    cancel_running_ = false;
    return job;
  }
  return std::nullopt;
}

void JobManager::RunJob(v1::Job job) {
  const std::string id = job.id();
  spdlog::info("job {}: running{}", id, job.resumes() > 0 ? absl::StrCat(" (resume ", job.resumes(), ")") : "");
  PublishCounts();
  absl::StatusOr<QuantizeJobSpec> spec = ResolveJobSpec(job.spec(), options_.paths, id);
  absl::StatusOr<QuantizeJobResult> result = absl::UnknownError("not run");
  if (!spec.ok()) {
    result = spec.status();
  } else {
    JobHooks hooks;
    hooks.log = [&](const std::string& line) { spdlog::info("job {}: {}", id, line); };
    hooks.progress = [&](const JobProgress& progress) {
      ApplyProgress(progress, job);
      if (progress.block != nullptr && observer_) observer_->OnBlockDone(progress.block->seconds);
      if (observer_) observer_->OnPeakDeviceBytes(job.peak_gpu_memory_bytes());
      if (absl::Status saved = Save(job); !saved.ok()) spdlog::error("job {}: {}", id, saved.ToString());
    };
    hooks.keep_going = [&]() -> absl::Status {
      std::lock_guard lock(mutex_);
      if (cancel_running_) return absl::CancelledError("cancelled by CancelJob");
      if (stopping_) return absl::UnavailableError("nibble-quantizer is stopping");
      return absl::OkStatus();
    };
    result = RunQuantizeJob(*backend_, *spec, hooks);
  }
  std::lock_guard lock(mutex_);
  if (result.ok()) {
    if (result->version) {
      job.set_published_version(*result->version);
      job.set_published_path(result->version_dir.string());
    }
    if (result->source_perplexity) job.set_perplexity_source(*result->source_perplexity);
    if (result->quantized_perplexity) job.set_perplexity_quantized(*result->quantized_perplexity);
    RemoveCheckpoint(id);  // before the terminal state is visible: a watcher that sees it sees no checkpoint
    Finish(job, v1::JOB_STATE_SUCCEEDED, "");
  } else if (cancel_running_ && absl::IsCancelled(result.status())) {
    RemoveCheckpoint(id);
    Finish(job, v1::JOB_STATE_CANCELLED, "cancelled by CancelJob while running");
  } else if (stopping_ && absl::IsUnavailable(result.status())) {
    job.set_state(v1::JOB_STATE_QUEUED);
    job.set_phase(v1::JOB_PHASE_QUEUED);
    if (absl::Status saved = Save(job); !saved.ok()) spdlog::error("job {}: {}", id, saved.ToString());
    spdlog::info("job {}: queued again with its checkpoint (the quantizer is stopping)", id);
    PublishCounts();
  } else {
    RemoveCheckpoint(id);
    Finish(job, v1::JOB_STATE_FAILED, std::string(result.status().message()));
  }
  running_id_.clear();
  cancel_running_ = false;
}

absl::Status JobManager::Store(v1::Job& job) {
  job.set_updated_unix_ms(NowUnixMs());
  return store_->Update(job);
}

absl::Status JobManager::Save(v1::Job& job) {
  absl::Status status = Store(job);
  NotifyWatchers();
  return status;
}

void JobManager::NotifyWatchers() {
  {
    std::lock_guard lock(watch_mutex_);
    ++changes_;
  }
  changed_.notify_all();
}

void JobManager::Finish(v1::Job& job, v1::JobState state, const std::string& error) {
  job.set_state(state);
  job.set_phase(v1::JOB_PHASE_DONE);
  job.set_error(error);
  job.set_eta_seconds(0);
  job.set_finished_unix_ms(NowUnixMs());
  if (absl::Status saved = Store(job); !saved.ok()) spdlog::error("job {}: {}", job.id(), saved.ToString());
  spdlog::info("job {}: {}{}{}", job.id(), v1::JobState_Name(state), error.empty() ? "" : ": ", error);
  if (observer_ && job.started_unix_ms() > 0) {
    observer_->OnJobFinished(state, (job.finished_unix_ms() - job.started_unix_ms()) / 1000.0);
  }
  PublishCounts();
  NotifyWatchers();
}

void JobManager::PublishCounts() {
  if (observer_ == nullptr) return;
  absl::StatusOr<std::map<v1::JobState, int64_t>> counts = store_->CountByState();
  if (counts.ok()) observer_->OnJobCounts(*counts);
}

void JobManager::RemoveCheckpoint(const std::string& id) {
  std::error_code error;
  fs::remove_all(options_.paths.checkpoints_root / id, error);
  if (error) spdlog::warn("job {}: cannot remove its checkpoint: {}", id, error.message());
}

}  // namespace nibble::quantizer_server
