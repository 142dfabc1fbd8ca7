// nibble-quantizer's durable job table: SQLite (Debian's libsqlite3) in WAL mode with synchronous=FULL, so
// that a job written before a kill -9 or a lost node is there after it.
//
// Schema: one row per job in `jobs`: `sequence` (INTEGER PRIMARY KEY AUTOINCREMENT: submission order),
// `id` (unique), `request_id` (unique where not empty: idempotent submission), `state`, `created_ms`,
// `updated_ms`, and `job`, the whole v1::Job serialized (spec, progress, block reports, error, version). The
// columns are what is queried; the blob is what is returned. The schema is versioned through SQLite's
// `PRAGMA user_version`: Open applies each missing migration in order, each in its own transaction, so a
// database made by an older nibble-quantizer is upgraded in place and one made by a newer one is refused.
//
// Errors: every SQLite error is an absl::Status naming the database file and the operation (Internal, unless
// said otherwise below); a stored blob that does not parse is DataLoss. Values reach SQLite only as bound
// parameters of prepared statements.
//
// Threading: every method may be called from any thread (one connection behind a mutex). Lifetime: the
// store owns its connection; it closes with the store.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nibble/v1/quantizer.pb.h"

struct sqlite3;

namespace nibble::quantizer_server {

class JobStore {
 public:
  static constexpr int kSchemaVersion = 2;  // 1: the jobs table; 2: an index on (state, sequence)

  // Opens or creates the database at `path` and migrates it to kSchemaVersion. FailedPrecondition naming the
  // file when its schema is newer than this binary's (both versions named) or it cannot be put in WAL mode;
  // Internal naming the file for SQLite errors (a file that is not a database, a missing or read-only
  // directory, a failed migration, which leaves the file as it was).
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::filesystem::path& path);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Adds a job (its id, request_id, state and created_unix_ms set by the caller). InvalidArgument when the id
  // is empty; AlreadyExists when the id, or a non-empty request_id, is already there.
  absl::Status Insert(const v1::Job& job);
  // Replaces the job with the same id; every column is set from `job`, so the columns always describe the
  // blob. NotFound when there is none; AlreadyExists when a changed request_id is another job's.
  absl::Status Update(const v1::Job& job);

  absl::StatusOr<v1::Job> Get(absl::string_view id) const;  // NotFound naming the id
  absl::StatusOr<std::optional<v1::Job>> FindByRequestId(absl::string_view request_id) const;

  struct Page {
    std::vector<v1::Job> jobs;
    int64_t last_sequence = 0;  // the sequence of the last job returned: the next page starts below it
    bool more = false;          // jobs remain after this page
  };
  // Newest first: jobs in `state` (UNSPECIFIED: every state) submitted before `before_sequence` (0: from the
  // newest), at most `limit`. InvalidArgument when limit < 1 or before_sequence < 0.
  absl::StatusOr<Page> List(v1::JobState state, int limit, int64_t before_sequence) const;
  // Oldest first, every job in `state`: the worker's queue (QUEUED), and the jobs a restart must resume (RUNNING).
  // UNSPECIFIED: every job, as in List and CountInState.
  absl::StatusOr<std::vector<v1::Job>> InState(v1::JobState state) const;
  absl::StatusOr<int64_t> CountInState(v1::JobState state) const;
  absl::StatusOr<std::map<v1::JobState, int64_t>> CountByState() const;  // only states with jobs

  int schema_version() const { return schema_version_; }  // the database's, after Open: kSchemaVersion

 private:
  JobStore(std::filesystem::path path, sqlite3* db, int schema_version)
      : path_(std::move(path)), db_(db), schema_version_(schema_version) {}
  const std::filesystem::path path_;
  mutable std::mutex mu_;  // guards db_: one statement at a time on the connection
  sqlite3* const db_;
  const int schema_version_;
};

}  // namespace nibble::quantizer_server
