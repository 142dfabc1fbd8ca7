#include "service/quantizer_server/job_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <iterator>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/base/quote.h"
#include "engine/base/status_macros.h"

namespace nibble::quantizer_server {
namespace {

constexpr int kBusyTimeoutMs = 10'000;

// Migration N (1-based) takes the schema from version N - 1 to N. Append only: a released step never changes.
constexpr const char* kMigrations[] = {
    // 1: the jobs table; request_id is unique only where a client gave one.
    "CREATE TABLE jobs ("
    "  sequence INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT NOT NULL UNIQUE,"
    "  request_id TEXT NOT NULL DEFAULT '',"
    "  state INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  job BLOB NOT NULL);"
    "CREATE UNIQUE INDEX jobs_request_id ON jobs (request_id) WHERE request_id <> '';",
    // 2: List and InState filter by state and walk in sequence order.
    "CREATE INDEX jobs_state_sequence ON jobs (state, sequence);",
};
static_assert(std::size(kMigrations) == JobStore::kSchemaVersion, "one migration per schema version");

absl::Status SqliteError(sqlite3* db, int code, const std::filesystem::path& path, absl::string_view operation) {
  const char* message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(code);
  return absl::InternalError(
      absl::StrCat(path.string(), ": ", operation, ": ", message, " (SQLite result code ", code, ")"));
}

// One prepared statement on `db`, finalized when it dies; its errors name the file and the operation.
class Statement {
 public:
  static absl::StatusOr<Statement> Prepare(sqlite3* db, const std::filesystem::path& path, std::string operation,
                                           absl::string_view sql) {
    sqlite3_stmt* statement = nullptr;
    const int code = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &statement, nullptr);
    if (code != SQLITE_OK) return SqliteError(db, code, path, operation);
    return Statement(db, path, std::move(operation), statement);
  }
  Statement(Statement&& other) noexcept
      : db_(other.db_), path_(other.path_), operation_(std::move(other.operation_)), statement_(other.statement_) {
    other.statement_ = nullptr;
  }
  Statement& operator=(Statement&&) = delete;
  ~Statement() { sqlite3_finalize(statement_); }

  // Parameters are 1-based (?1, ?2, ...). The bytes are copied.
  absl::Status BindInt(int index, int64_t value) { return Check(sqlite3_bind_int64(statement_, index, value)); }
  absl::Status BindText(int index, absl::string_view text) {
    return Check(sqlite3_bind_text64(statement_, index, NonNull(text), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  absl::Status BindBlob(int index, absl::string_view bytes) {
    return Check(sqlite3_bind_blob64(statement_, index, NonNull(bytes), bytes.size(), SQLITE_TRANSIENT));
  }

  // True with a row to read, false when the statement is done.
  absl::StatusOr<bool> Step() {
    last_code_ = sqlite3_step(statement_);
    if (last_code_ == SQLITE_ROW) return true;
    if (last_code_ == SQLITE_DONE) return false;
    return SqliteError(db_, last_code_, *path_, operation_);
  }
  int last_code() const { return last_code_; }  // the extended result code of the last Step

  // Columns are 0-based; the bytes stay valid until the next Step.
  int64_t Int(int column) const { return sqlite3_column_int64(statement_, column); }
  absl::string_view Bytes(int column) const {
    const void* bytes = sqlite3_column_blob(statement_, column);  // NULL for an empty value
    if (bytes == nullptr) return {};
    return absl::string_view(static_cast<const char*>(bytes), sqlite3_column_bytes(statement_, column));
  }

 private:
  Statement(sqlite3* db, const std::filesystem::path& path, std::string operation, sqlite3_stmt* statement)
      : db_(db), path_(&path), operation_(std::move(operation)), statement_(statement) {}
  // SQLite binds NULL for a null pointer, even with a length of 0; the columns are NOT NULL.
  static const char* NonNull(absl::string_view bytes) { return bytes.data() != nullptr ? bytes.data() : ""; }
  absl::Status Check(int code) const {
    return code == SQLITE_OK ? absl::OkStatus() : SqliteError(db_, code, *path_, operation_);
  }

  sqlite3* db_;
  const std::filesystem::path* path_;
  std::string operation_;
  sqlite3_stmt* statement_;
  int last_code_ = SQLITE_OK;
};

// Runs SQL that takes no parameters (pragmas, transactions, migrations).
absl::Status Exec(sqlite3* db, const std::filesystem::path& path, absl::string_view operation, const char* sql) {
  const int code = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  return code == SQLITE_OK ? absl::OkStatus() : SqliteError(db, code, path, operation);
}

absl::Status EnableWal(sqlite3* db, const std::filesystem::path& path) {
  NIBBLE_ASSIGN_OR_RETURN(Statement pragma,
                          Statement::Prepare(db, path, "set journal_mode=WAL", "PRAGMA journal_mode=WAL"));
  NIBBLE_ASSIGN_OR_RETURN(const bool row, pragma.Step());
  const absl::string_view mode = row ? pragma.Bytes(0) : absl::string_view("(no answer)");
  if (!absl::EqualsIgnoreCase(mode, "wal")) {
    return absl::FailedPreconditionError(absl::StrCat(path.string(), ": journal_mode=WAL answered ", QuotedPrefix(mode),
                                                      ": the job database must be in WAL mode"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> UserVersion(sqlite3* db, const std::filesystem::path& path) {
  NIBBLE_ASSIGN_OR_RETURN(Statement pragma, Statement::Prepare(db, path, "read user_version", "PRAGMA user_version"));
  NIBBLE_ASSIGN_OR_RETURN(const bool row, pragma.Step());
  return row ? static_cast<int>(pragma.Int(0)) : 0;
}

absl::Status RefuseNewer(const std::filesystem::path& path, int version) {
  if (version <= JobStore::kSchemaVersion) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(path.string(), ": the job database has schema version ", version,
                                                    ", newer than this nibble-quantizer's ", JobStore::kSchemaVersion,
                                                    " (it was written by a newer nibble-quantizer)"));
}

// Inside the caller's transaction: applies migration `version` unless the database has it already (another
// process may have migrated it since the caller last looked).
absl::Status ApplyMigration(sqlite3* db, const std::filesystem::path& path, int version) {
  NIBBLE_ASSIGN_OR_RETURN(const int current, UserVersion(db, path));
  NIBBLE_RETURN_IF_ERROR(RefuseNewer(path, current));
  if (current >= version) return absl::OkStatus();
  const std::string operation = absl::StrCat("migrate to schema version ", version);
  NIBBLE_RETURN_IF_ERROR(Exec(db, path, operation, kMigrations[version - 1]));
  // A pragma takes no bound parameters; the version is this file's constant, never outside input.
  return Exec(db, path, operation, absl::StrCat("PRAGMA user_version = ", version).c_str());
}

// Brings the schema to kSchemaVersion, one transaction per migration; returns the version it ends at.
absl::StatusOr<int> Migrate(sqlite3* db, const std::filesystem::path& path) {
  NIBBLE_ASSIGN_OR_RETURN(const int start, UserVersion(db, path));
  NIBBLE_RETURN_IF_ERROR(RefuseNewer(path, start));
  for (int version = std::max(start, 0) + 1; version <= JobStore::kSchemaVersion; ++version) {
    NIBBLE_RETURN_IF_ERROR(
        Exec(db, path, absl::StrCat("begin migration to schema version ", version), "BEGIN IMMEDIATE"));
    if (absl::Status status = ApplyMigration(db, path, version); !status.ok()) {
      // A failed statement may have rolled the transaction back already; then ROLLBACK fails harmlessly.
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      return status;
    }
    NIBBLE_RETURN_IF_ERROR(Exec(db, path, absl::StrCat("commit migration to schema version ", version), "COMMIT"));
  }
  return UserVersion(db, path);
}

absl::StatusOr<v1::Job> ParseJob(const Statement& select, int column, const std::filesystem::path& path,
                                 int64_t sequence) {
  v1::Job job;
  const absl::string_view bytes = select.Bytes(column);
  if (!job.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(
        absl::StrCat(path.string(), ": the job at sequence ", sequence, " is not a valid nibble.v1.Job"));
  }
  return job;
}

// Steps `select` (columns: sequence, job) to its end.
absl::StatusOr<std::vector<v1::Job>> ReadJobs(Statement& select, const std::filesystem::path& path,
                                              std::vector<int64_t>* sequences) {
  std::vector<v1::Job> jobs;
  while (true) {
    NIBBLE_ASSIGN_OR_RETURN(const bool row, select.Step());
    if (!row) return jobs;
    const int64_t sequence = select.Int(0);
    NIBBLE_ASSIGN_OR_RETURN(v1::Job job, ParseJob(select, 1, path, sequence));
    jobs.push_back(std::move(job));
    if (sequences != nullptr) sequences->push_back(sequence);
  }
}

// Binds ?1 id, ?2 request_id, ?3 state, ?4 created_ms, ?5 updated_ms, ?6 job: the columns of `job`.
absl::Status BindColumns(Statement& statement, const v1::Job& job) {
  NIBBLE_RETURN_IF_ERROR(statement.BindText(1, job.id()));
  NIBBLE_RETURN_IF_ERROR(statement.BindText(2, job.request_id()));
  NIBBLE_RETURN_IF_ERROR(statement.BindInt(3, job.state()));
  NIBBLE_RETURN_IF_ERROR(statement.BindInt(4, job.created_unix_ms()));
  NIBBLE_RETURN_IF_ERROR(statement.BindInt(5, job.updated_unix_ms()));
  return statement.BindBlob(6, job.SerializeAsString());
}

absl::StatusOr<bool> IdExists(sqlite3* db, const std::filesystem::path& path, absl::string_view id) {
  NIBBLE_ASSIGN_OR_RETURN(Statement select,
                          Statement::Prepare(db, path, "look up a job id", "SELECT 1 FROM jobs WHERE id = ?1"));
  NIBBLE_RETURN_IF_ERROR(select.BindText(1, id));
  return select.Step();
}

// After writing `job` broke a unique constraint: which one, as AlreadyExists. `new_id` when the row was new
// (Insert), so that its id may be the one taken.
absl::Status UniqueViolation(sqlite3* db, const std::filesystem::path& path, const v1::Job& job, bool new_id) {
  if (new_id) {
    NIBBLE_ASSIGN_OR_RETURN(const bool taken, IdExists(db, path, job.id()));
    if (taken) {
      return absl::AlreadyExistsError(absl::StrCat(path.string(), ": job ", QuotedPrefix(job.id()), " already exists"));
    }
  }
  NIBBLE_ASSIGN_OR_RETURN(Statement owner,
                          Statement::Prepare(db, path, "find the job holding a request_id",
                                             "SELECT id FROM jobs WHERE request_id = ?1 AND request_id <> ''"));
  NIBBLE_RETURN_IF_ERROR(owner.BindText(1, job.request_id()));
  NIBBLE_ASSIGN_OR_RETURN(const bool row, owner.Step());
  return absl::AlreadyExistsError(absl::StrCat(path.string(), ": request_id ", QuotedPrefix(job.request_id()),
                                               " already belongs to job ",
                                               row ? QuotedPrefix(owner.Bytes(0)) : "(unknown)"));
}

bool EveryState(v1::JobState state) { return state == v1::JOB_STATE_UNSPECIFIED; }

}  // namespace

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::filesystem::path& path) {
  sqlite3* raw = nullptr;
  const int code = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  // The handle must be closed even when opening failed.
  std::unique_ptr<sqlite3, decltype(&sqlite3_close_v2)> db(raw, &sqlite3_close_v2);
  if (code != SQLITE_OK) return SqliteError(db.get(), code, path, "open");
  sqlite3_extended_result_codes(db.get(), 1);
  if (const int busy = sqlite3_busy_timeout(db.get(), kBusyTimeoutMs); busy != SQLITE_OK) {
    return SqliteError(db.get(), busy, path, "set the busy timeout");
  }
  NIBBLE_RETURN_IF_ERROR(EnableWal(db.get(), path));
  NIBBLE_RETURN_IF_ERROR(Exec(db.get(), path, "set synchronous=FULL", "PRAGMA synchronous=FULL"));
  NIBBLE_ASSIGN_OR_RETURN(const int version, Migrate(db.get(), path));
  return std::unique_ptr<JobStore>(new JobStore(path, db.release(), version));
}

JobStore::~JobStore() { sqlite3_close_v2(db_); }

absl::Status JobStore::Insert(const v1::Job& job) {
  if (job.id().empty()) return absl::InvalidArgumentError(absl::StrCat(path_.string(), ": insert: the job has no id"));
  std::lock_guard lock(mu_);
  NIBBLE_ASSIGN_OR_RETURN(Statement insert,
                          Statement::Prepare(db_, path_, absl::StrCat("insert job ", QuotedPrefix(job.id())),
                                             "INSERT INTO jobs (id, request_id, state, created_ms, updated_ms, job) "
                                             "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
  NIBBLE_RETURN_IF_ERROR(BindColumns(insert, job));
  const absl::StatusOr<bool> done = insert.Step();
  if (done.ok() || insert.last_code() != SQLITE_CONSTRAINT_UNIQUE) return done.status();
  return UniqueViolation(db_, path_, job, /*new_id=*/true);
}

absl::Status JobStore::Update(const v1::Job& job) {
  std::lock_guard lock(mu_);
  NIBBLE_ASSIGN_OR_RETURN(
      Statement update,
      Statement::Prepare(db_, path_, absl::StrCat("update job ", QuotedPrefix(job.id())),
                         "UPDATE jobs SET request_id = ?2, state = ?3, created_ms = ?4, updated_ms = ?5, job = ?6 "
                         "WHERE id = ?1"));
  NIBBLE_RETURN_IF_ERROR(BindColumns(update, job));
  const absl::StatusOr<bool> done = update.Step();
  if (!done.ok()) {
    if (update.last_code() != SQLITE_CONSTRAINT_UNIQUE) return done.status();
    return UniqueViolation(db_, path_, job, /*new_id=*/false);
  }
  if (sqlite3_changes(db_) == 0) {
    return absl::NotFoundError(absl::StrCat(path_.string(), ": update: no job ", QuotedPrefix(job.id())));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Job> JobStore::Get(absl::string_view id) const {
  std::lock_guard lock(mu_);
  NIBBLE_ASSIGN_OR_RETURN(Statement select, Statement::Prepare(db_, path_, absl::StrCat("get job ", QuotedPrefix(id)),
                                                               "SELECT sequence, job FROM jobs WHERE id = ?1"));
  NIBBLE_RETURN_IF_ERROR(select.BindText(1, id));
  NIBBLE_ASSIGN_OR_RETURN(std::vector<v1::Job> jobs, ReadJobs(select, path_, nullptr));
  if (jobs.empty()) return absl::NotFoundError(absl::StrCat(path_.string(), ": no job ", QuotedPrefix(id)));
  return std::move(jobs.front());
}

absl::StatusOr<std::optional<v1::Job>> JobStore::FindByRequestId(absl::string_view request_id) const {
  if (request_id.empty()) return std::nullopt;  // no request_id: never a match (many jobs have none)
  std::lock_guard lock(mu_);
  NIBBLE_ASSIGN_OR_RETURN(
      Statement select,
      Statement::Prepare(db_, path_, absl::StrCat("find request_id ", QuotedPrefix(request_id)),
                         "SELECT sequence, job FROM jobs WHERE request_id = ?1 AND request_id <> ''"));
  NIBBLE_RETURN_IF_ERROR(select.BindText(1, request_id));
  NIBBLE_ASSIGN_OR_RETURN(std::vector<v1::Job> jobs, ReadJobs(select, path_, nullptr));
  if (jobs.empty()) return std::nullopt;
  return std::move(jobs.front());
}

absl::StatusOr<JobStore::Page> JobStore::List(v1::JobState state, int limit, int64_t before_sequence) const {
  if (limit < 1 || before_sequence < 0) {
    return absl::InvalidArgumentError(absl::StrCat(path_.string(), ": list: limit ", limit, " and before_sequence ",
                                                   before_sequence, " (want limit >= 1, before_sequence >= 0)"));
  }
  std::lock_guard lock(mu_);
  NIBBLE_ASSIGN_OR_RETURN(
      Statement select,
      Statement::Prepare(db_, path_, "list jobs",
                         EveryState(state) ? "SELECT sequence, job FROM jobs WHERE sequence < ?2 "
                                             "ORDER BY sequence DESC LIMIT ?3"
                                           : "SELECT sequence, job FROM jobs WHERE state = ?1 AND sequence < ?2 "
                                             "ORDER BY sequence DESC LIMIT ?3"));
  if (!EveryState(state)) NIBBLE_RETURN_IF_ERROR(select.BindInt(1, state));
  NIBBLE_RETURN_IF_ERROR(
      select.BindInt(2, before_sequence == 0 ? std::numeric_limits<int64_t>::max() : before_sequence));
  NIBBLE_RETURN_IF_ERROR(select.BindInt(3, int64_t{limit} + 1));  // one more than asked: whether more remain
  std::vector<int64_t> sequences;
  Page page;
  NIBBLE_ASSIGN_OR_RETURN(page.jobs, ReadJobs(select, path_, &sequences));
  page.more = page.jobs.size() > static_cast<size_t>(limit);
  if (page.more) {
    page.jobs.pop_back();
    sequences.pop_back();
  }
  if (!sequences.empty()) page.last_sequence = sequences.back();
  return page;
}

absl::StatusOr<std::vector<v1::Job>> JobStore::InState(v1::JobState state) const {
  std::lock_guard lock(mu_);
  NIBBLE_ASSIGN_OR_RETURN(
      Statement select,
      Statement::Prepare(db_, path_, absl::StrCat("read the jobs in state ", v1::JobState_Name(state)),
                         EveryState(state) ? "SELECT sequence, job FROM jobs ORDER BY sequence"
                                           : "SELECT sequence, job FROM jobs WHERE state = ?1 ORDER BY sequence"));
  if (!EveryState(state)) NIBBLE_RETURN_IF_ERROR(select.BindInt(1, state));
  return ReadJobs(select, path_, nullptr);
}

absl::StatusOr<int64_t> JobStore::CountInState(v1::JobState state) const {
  std::lock_guard lock(mu_);
  NIBBLE_ASSIGN_OR_RETURN(
      Statement select,
      Statement::Prepare(
          db_, path_, absl::StrCat("count the jobs in state ", v1::JobState_Name(state)),
          EveryState(state) ? "SELECT COUNT(*) FROM jobs" : "SELECT COUNT(*) FROM jobs WHERE state = ?1"));
  if (!EveryState(state)) NIBBLE_RETURN_IF_ERROR(select.BindInt(1, state));
  NIBBLE_ASSIGN_OR_RETURN(const bool row, select.Step());
  return row ? select.Int(0) : 0;
}

absl::StatusOr<std::map<v1::JobState, int64_t>> JobStore::CountByState() const {
  std::lock_guard lock(mu_);
  NIBBLE_ASSIGN_OR_RETURN(Statement select, Statement::Prepare(db_, path_, "count the jobs by state",
                                                               "SELECT state, COUNT(*) FROM jobs GROUP BY state"));
  std::map<v1::JobState, int64_t> counts;
  while (true) {
    NIBBLE_ASSIGN_OR_RETURN(const bool row, select.Step());
    if (!row) return counts;
    counts[static_cast<v1::JobState>(select.Int(0))] = select.Int(1);
  }
}

}  // namespace nibble::quantizer_server
