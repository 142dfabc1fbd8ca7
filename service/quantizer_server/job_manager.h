// nibble-quantizer's core: takes jobs from submission to a terminal state. The RPC handlers
// (quantizer_service.h) only translate to and from these calls.
//
// Jobs live in the JobStore (SQLite); nothing about a job is only in memory except a pending cancellation.
// One worker thread runs one job at a time on the manager's backend, oldest first, through the quantizer's own
// job runner (quantizer/job.h) with a checkpoint directory per job (<state-dir>/jobs/<id>/), writing each
// phase and block into the store as it happens. At start the jobs a killed quantizer left RUNNING are run
// first, resuming from their checkpoints (resumes + 1; a job that was running at 3 such restarts is marked
// FAILED instead, since it may be what brings the quantizer down); stale staging directories in the store
// are removed.
// A graceful stop puts the running job back to QUEUED with its checkpoint, so the next start resumes it too.
// No job stays RUNNING without a worker running it, except across a crash, which the next start repairs.
//
// Threading: every public method may be called from any thread (gRPC's); the worker thread is the manager's.
// Lifetime: the manager owns the store and the backend; Stop (or the destructor) joins the worker.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/runtime/backend.h"
#include "nibble/v1/quantizer.pb.h"
#include "service/quantizer_server/job_spec.h"
#include "service/quantizer_server/job_store.h"

namespace nibble::quantizer_server {

// What the metrics hear (quantizer_metrics.h); called on the worker thread and on RPC threads.
class JobObserver {
 public:
  virtual ~JobObserver() = default;
  virtual void OnJobCounts(const std::map<v1::JobState, int64_t>& counts) = 0;  // after every state change
  virtual void OnBlockDone(double seconds) = 0;
  virtual void OnJobFinished(v1::JobState state, double seconds) = 0;  // seconds from start to the end
  virtual void OnPeakDeviceBytes(uint64_t bytes) = 0;                  // the running job's peak so far
};

struct JobManagerOptions {
  JobSpecContext paths;  // source roots, store, checkpoints root
  int32_t max_queue = 16;
};

class JobManager {
 public:
  // Recovers the store's jobs (see above) and starts the worker. `observer` may be null; it must outlive the
  // manager.
  static absl::StatusOr<std::unique_ptr<JobManager>> Start(JobManagerOptions options, std::unique_ptr<JobStore> store,
                                                           std::unique_ptr<Backend> backend, JobObserver* observer);
  ~JobManager();

  // Checks (job_spec.h), then queues. An existing request_id returns its job (ALREADY_EXISTS when the spec
  // differs); RESOURCE_EXHAUSTED when max_queue jobs are queued.
  absl::StatusOr<v1::Job> Submit(const v1::JobSpec& spec, const std::string& request_id);
  absl::StatusOr<v1::Job> Get(const std::string& id) const;
  // Newest first; `page_token` is a previous response's next_page_token.
  absl::StatusOr<v1::ListJobsResponse> List(v1::JobState state, uint32_t page_size,
                                            const std::string& page_token) const;
  // A queued job ends CANCELLED now; a running one at its next block; a finished one is returned as it is.
  absl::StatusOr<v1::Job> Cancel(const std::string& id);

  // A counter that grows whenever any job changes: WaitForChange returns once it differs from `seen` or at
  // `deadline`, with its value then. Watchers re-read their job when it moves.
  uint64_t changes() const;
  uint64_t WaitForChange(uint64_t seen, std::chrono::steady_clock::time_point deadline) const;

  // Stops the worker: a running job is interrupted at its next block and queued again with its checkpoint.
  void Stop();

 private:
  JobManager(JobManagerOptions options, std::unique_ptr<JobStore> store, std::unique_ptr<Backend> backend,
             JobObserver* observer)
      : options_(std::move(options)), store_(std::move(store)), backend_(std::move(backend)), observer_(observer) {}
  absl::Status Recover();
  // RESOURCE_EXHAUSTED when max_queue jobs are queued.
  absl::Status CheckQueueRoom() const;
  void WorkerLoop();
  // The next job to run (RUNNING ones left by a crash first, then the oldest QUEUED), marked RUNNING; nullopt
  // when stopping.
  std::optional<v1::Job> NextJob();
  void RunJob(v1::Job job);
  // Writes `job` (updated now) into the store; Save also wakes the watchers.
  absl::Status Store(v1::Job& job);
  absl::Status Save(v1::Job& job);
  void NotifyWatchers();
  // Ends `job` in `state`: stored, counted in the metrics, and only then shown to the watchers, so that a
  // client that sees the terminal state finds the metrics updated.
  void Finish(v1::Job& job, v1::JobState state, const std::string& error);
  void PublishCounts();
  void RemoveCheckpoint(const std::string& id);

  const JobManagerOptions options_;
  const std::unique_ptr<JobStore> store_;
  const std::unique_ptr<Backend> backend_;
  JobObserver* const observer_;

  mutable std::mutex mutex_;  // guards what follows, and the pick-and-mark of the next job
  std::condition_variable work_;
  bool stopping_ = false;
  std::string running_id_;       // the job the worker runs; empty when idle
  bool cancel_running_ = false;  // CancelJob asked for running_id_
  uint64_t next_id_salt_;        // mixed into job ids (random at start)
  uint64_t ids_made_ = 0;

  mutable std::mutex watch_mutex_;  // guards changes_ (taken after mutex_, never before)
  mutable std::condition_variable changed_;
  uint64_t changes_ = 0;

  std::thread worker_;
};

}  // namespace nibble::quantizer_server
