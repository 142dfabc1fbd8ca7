#include "service/quantizer_server/job_store.h"

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "tests/support/shared_data.h"

namespace nibble::quantizer_server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The schema as a version-1 nibble-quantizer wrote it: the fixture of the migration test, frozen on purpose.
constexpr const char* kSchemaV1 =
    "CREATE TABLE jobs (sequence INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
    " request_id TEXT NOT NULL DEFAULT '', state INTEGER NOT NULL, created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL, job BLOB NOT NULL);"
    "CREATE UNIQUE INDEX jobs_request_id ON jobs (request_id) WHERE request_id <> '';"
    "PRAGMA user_version = 1;";

// A second connection to the database file, through the sqlite3 C API, to see what JobStore wrote.
class RawDatabase {
 public:
  explicit RawDatabase(const std::filesystem::path& path) {
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr), SQLITE_OK);
  }
  ~RawDatabase() { sqlite3_close_v2(db_); }
  RawDatabase(const RawDatabase&) = delete;
  RawDatabase& operator=(const RawDatabase&) = delete;

  void Exec(const char* sql) { ASSERT_EQ(sqlite3_exec(db_, sql, nullptr, nullptr, nullptr), SQLITE_OK) << Error(); }
  // The first column of the first row of `sql` as text, with `text` bound to ?1 (when given); "" when no row.
  std::string Query(const char* sql, const std::string& text = "") {
    sqlite3_stmt* statement = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql, -1, &statement, nullptr), SQLITE_OK) << Error();
    if (!text.empty()) sqlite3_bind_text(statement, 1, text.c_str(), -1, SQLITE_TRANSIENT);
    std::string answer;
    if (sqlite3_step(statement) == SQLITE_ROW)
      answer = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
    sqlite3_finalize(statement);
    return answer;
  }
  void InsertRow(const v1::Job& job) {
    sqlite3_stmt* statement = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db_,
                                 "INSERT INTO jobs (id, request_id, state, created_ms, updated_ms, job) "
                                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                                 -1, &statement, nullptr),
              SQLITE_OK)
        << Error();
    const std::string blob = job.SerializeAsString();
    sqlite3_bind_text(statement, 1, job.id().c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(statement, 2, job.request_id().c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(statement, 3, job.state());
    sqlite3_bind_int64(statement, 4, job.created_unix_ms());
    sqlite3_bind_int64(statement, 5, job.updated_unix_ms());
    sqlite3_bind_blob(statement, 6, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(statement), SQLITE_DONE) << Error();
    sqlite3_finalize(statement);
  }

 private:
  std::string Error() const { return sqlite3_errmsg(db_); }
  sqlite3* db_ = nullptr;
};

v1::Job MakeJob(int n, v1::JobState state, const std::string& request_id = "") {
  v1::Job job;
  job.set_id(absl::StrFormat("job-%016x", n));
  job.set_request_id(request_id);
  job.set_state(state);
  job.set_created_unix_ms(1'700'000'000'000 + n);
  job.set_updated_unix_ms(1'700'000'000'000 + n);
  job.mutable_spec()->set_source_model(absl::StrCat("models/source-", n));
  job.mutable_spec()->set_name(absl::StrCat("model-", n));
  return job;
}

// A job with every kind of field set: nested messages, repeated messages, optionals, enums.
v1::Job FullJob() {
  v1::Job job = MakeJob(42, v1::JOB_STATE_RUNNING, "request-42");
  v1::JobSpec& spec = *job.mutable_spec();
  spec.set_method(v1::QUANT_METHOD_AWQ);
  spec.set_bits(4);
  spec.set_group_size(64);
  spec.set_calibration_file("calibration/pile.jsonl");
  spec.set_separator("\n\n");
  spec.set_n_samples(128);
  spec.set_seqlen(512);
  spec.set_scale_search(v1::SCALE_SEARCH_DUO);
  job.set_phase(v1::JOB_PHASE_SEARCHING);
  job.set_blocks_done(2);
  job.set_blocks_total(22);
  for (uint32_t index = 0; index < 2; ++index) {
    v1::BlockReport& block = *job.add_blocks();
    block.set_index(index);
    block.set_seconds(1.5 + index);
    block.set_clip_error(0.01 * (index + 1));
    block.set_output_mse(0.002 * (index + 1));
    for (const char* layers : {"q,k,v", "o", "gate,up", "down"}) {
      v1::ScaleGroupReport& group = *block.add_scale_groups();
      group.set_layers(layers);
      group.set_formula("duo");
      group.set_alpha(0.35);
      group.set_loss(1e-4);
      group.set_loss_rtn(3e-4);
    }
  }
  job.set_seconds_per_block(2.0);
  job.set_eta_seconds(40.0);
  job.set_resumes(1);
  job.set_resumed_from_block(1);
  job.set_started_unix_ms(1'700'000'000'100);
  job.set_peak_gpu_memory_bytes(uint64_t{3} << 30);
  job.set_perplexity_source(7.25);
  return job;
}

MATCHER_P(EqualsJob, expected, "") {
  std::string difference;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&difference);
  if (differencer.Compare(expected, arg)) return true;
  *result_listener << difference;
  return false;
}

std::vector<std::string> Ids(const std::vector<v1::Job>& jobs) {
  std::vector<std::string> ids;
  for (const v1::Job& job : jobs) ids.push_back(job.id());
  return ids;
}

class JobStoreTest : public ::testing::Test {
 protected:
  std::filesystem::path DatabasePath() const { return directory_.path() / "jobs.db"; }
  std::unique_ptr<JobStore> OpenStore() {
    absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(DatabasePath());
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  nibble::testing::TempDir directory_;
};

TEST_F(JobStoreTest, InsertThenGetReturnsTheWholeJob) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->schema_version(), JobStore::kSchemaVersion);
  const v1::Job job = FullJob();
  ASSERT_TRUE(store->Insert(job).ok());
  absl::StatusOr<v1::Job> read = store->Get(job.id());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_THAT(*read, EqualsJob(job));
  EXPECT_EQ(read->blocks(1).scale_groups(2).layers(), "gate,up");
  EXPECT_FALSE(read->has_perplexity_quantized());
}

TEST_F(JobStoreTest, UpdateReplacesTheBlobAndTheQueriedColumns) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  v1::Job job = MakeJob(1, v1::JOB_STATE_QUEUED);
  ASSERT_TRUE(store->Insert(job).ok());
  job.set_state(v1::JOB_STATE_SUCCEEDED);
  job.set_updated_unix_ms(1'800'000'000'000);
  job.set_published_path("/store/model-1/3");
  job.set_published_version(3);
  ASSERT_TRUE(store->Update(job).ok());

  absl::StatusOr<v1::Job> read = store->Get(job.id());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_THAT(*read, EqualsJob(job));
  RawDatabase raw(DatabasePath());
  EXPECT_EQ(raw.Query("SELECT state FROM jobs WHERE id = ?1", job.id()), std::to_string(v1::JOB_STATE_SUCCEEDED));
  EXPECT_EQ(raw.Query("SELECT updated_ms FROM jobs WHERE id = ?1", job.id()), "1800000000000");
  EXPECT_EQ(*store->CountInState(v1::JOB_STATE_QUEUED), 0);
  EXPECT_EQ(*store->CountInState(v1::JOB_STATE_SUCCEEDED), 1);
}

TEST_F(JobStoreTest, UnknownIdsAreNotFound) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<v1::Job> read = store->Get("job-missing");
  EXPECT_EQ(read.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(read.status().message(), HasSubstr("job-missing"));
  const absl::Status update = store->Update(MakeJob(5, v1::JOB_STATE_RUNNING));
  EXPECT_EQ(update.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(update.message(), HasSubstr(MakeJob(5, v1::JOB_STATE_RUNNING).id()));
  EXPECT_EQ(*store->CountInState(v1::JOB_STATE_UNSPECIFIED), 0);  // the failed update added nothing
}

TEST_F(JobStoreTest, DuplicateIdsAndRequestIdsAreRefused) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Insert(MakeJob(1, v1::JOB_STATE_QUEUED, "request-a")).ok());

  v1::Job same_id = MakeJob(1, v1::JOB_STATE_QUEUED, "request-b");
  const absl::Status id_taken = store->Insert(same_id);
  EXPECT_EQ(id_taken.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(id_taken.message(), HasSubstr(same_id.id()));

  const absl::Status request_taken = store->Insert(MakeJob(2, v1::JOB_STATE_QUEUED, "request-a"));
  EXPECT_EQ(request_taken.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(request_taken.message(), HasSubstr("request-a"));
  EXPECT_THAT(request_taken.message(), HasSubstr(MakeJob(1, v1::JOB_STATE_QUEUED).id()));  // the job holding it

  EXPECT_TRUE(store->Insert(MakeJob(3, v1::JOB_STATE_QUEUED)).ok());
  EXPECT_TRUE(store->Insert(MakeJob(4, v1::JOB_STATE_QUEUED)).ok());  // a second empty request_id
  const absl::Status update_taken = store->Update(MakeJob(3, v1::JOB_STATE_QUEUED, "request-a"));
  EXPECT_EQ(update_taken.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store->Insert(v1::Job()).code(), absl::StatusCode::kInvalidArgument);  // no id
  EXPECT_EQ(*store->CountInState(v1::JOB_STATE_UNSPECIFIED), 3);
}

TEST_F(JobStoreTest, FindByRequestId) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Insert(MakeJob(1, v1::JOB_STATE_QUEUED)).ok());
  const v1::Job job = MakeJob(2, v1::JOB_STATE_QUEUED, "client-7");
  ASSERT_TRUE(store->Insert(job).ok());

  absl::StatusOr<std::optional<v1::Job>> found = store->FindByRequestId("client-7");
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_THAT(**found, EqualsJob(job));
  EXPECT_EQ(store->FindByRequestId("client-8")->has_value(), false);
  EXPECT_EQ(store->FindByRequestId("")->has_value(), false);  // job 1 has no request_id, not the empty one
}

TEST_F(JobStoreTest, ListPagesNewestFirstWithoutGapsOrRepeats) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (int n = 0; n < 7; ++n) {
    ASSERT_TRUE(store->Insert(MakeJob(n, n % 2 == 0 ? v1::JOB_STATE_QUEUED : v1::JOB_STATE_FAILED)).ok());
  }
  std::vector<std::string> seen;
  std::vector<bool> more;
  int64_t before = 0;
  for (int page_number = 0; page_number < 3; ++page_number) {
    absl::StatusOr<JobStore::Page> page = store->List(v1::JOB_STATE_UNSPECIFIED, 3, before);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const std::string& id : Ids(page->jobs)) seen.push_back(id);
    more.push_back(page->more);
    before = page->last_sequence;
  }
  std::vector<std::string> newest_first;
  for (int n = 6; n >= 0; --n) newest_first.push_back(MakeJob(n, v1::JOB_STATE_QUEUED).id());
  EXPECT_EQ(seen, newest_first);
  EXPECT_THAT(more, ElementsAre(true, true, false));

  // Only QUEUED (jobs 0, 2, 4, 6): a page of exactly the rest says no more.
  absl::StatusOr<JobStore::Page> queued = store->List(v1::JOB_STATE_QUEUED, 2, 0);
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_EQ(Ids(queued->jobs), (std::vector<std::string>{newest_first[0], newest_first[2]}));
  EXPECT_TRUE(queued->more);
  queued = store->List(v1::JOB_STATE_QUEUED, 2, queued->last_sequence);
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_EQ(Ids(queued->jobs), (std::vector<std::string>{newest_first[4], newest_first[6]}));
  EXPECT_FALSE(queued->more);

  absl::StatusOr<JobStore::Page> none = store->List(v1::JOB_STATE_RUNNING, 10, 0);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->jobs.empty());
  EXPECT_FALSE(none->more);
  EXPECT_EQ(store->List(v1::JOB_STATE_UNSPECIFIED, 0, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->List(v1::JOB_STATE_UNSPECIFIED, 5, -1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(JobStoreTest, InStateIsOldestFirstAndCountsMatch) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const v1::JobState states[] = {v1::JOB_STATE_RUNNING, v1::JOB_STATE_QUEUED, v1::JOB_STATE_QUEUED,
                                 v1::JOB_STATE_CANCELLED, v1::JOB_STATE_QUEUED};
  for (int n = 0; n < 5; ++n) ASSERT_TRUE(store->Insert(MakeJob(n, states[n])).ok());

  absl::StatusOr<std::vector<v1::Job>> queued = store->InState(v1::JOB_STATE_QUEUED);
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_THAT(Ids(*queued),
              ElementsAre(MakeJob(1, states[1]).id(), MakeJob(2, states[2]).id(), MakeJob(4, states[4]).id()));
  EXPECT_EQ(store->InState(v1::JOB_STATE_UNSPECIFIED)->size(), 5);
  EXPECT_TRUE(store->InState(v1::JOB_STATE_SUCCEEDED)->empty());

  absl::StatusOr<std::map<v1::JobState, int64_t>> counts = store->CountByState();
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(*counts, (std::map<v1::JobState, int64_t>{
                         {v1::JOB_STATE_QUEUED, 3}, {v1::JOB_STATE_RUNNING, 1}, {v1::JOB_STATE_CANCELLED, 1}}));
  EXPECT_EQ(*store->CountInState(v1::JOB_STATE_QUEUED), 3);
  EXPECT_EQ(*store->CountInState(v1::JOB_STATE_FAILED), 0);
  EXPECT_EQ(*store->CountInState(v1::JOB_STATE_UNSPECIFIED), 5);
}

TEST_F(JobStoreTest, ReopeningKeepsEveryJob) {
  const v1::Job full = FullJob();
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Insert(MakeJob(1, v1::JOB_STATE_QUEUED, "first")).ok());
    ASSERT_TRUE(store->Insert(full).ok());
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->schema_version(), JobStore::kSchemaVersion);
  absl::StatusOr<v1::Job> read = store->Get(full.id());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_THAT(*read, EqualsJob(full));
  EXPECT_TRUE(store->FindByRequestId("first")->has_value());
  // Sequences go on after the old ones: the new job is the newest.
  ASSERT_TRUE(store->Insert(MakeJob(2, v1::JOB_STATE_QUEUED)).ok());
  absl::StatusOr<JobStore::Page> page = store->List(v1::JOB_STATE_UNSPECIFIED, 10, 0);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(Ids(page->jobs),
              ElementsAre(MakeJob(2, v1::JOB_STATE_QUEUED).id(), full.id(), MakeJob(1, v1::JOB_STATE_QUEUED).id()));
}

TEST_F(JobStoreTest, MigratesAVersionOneDatabaseKeepingItsRows) {
  const v1::Job old_job = FullJob();
  {
    RawDatabase raw(DatabasePath());
    raw.Exec(kSchemaV1);
    raw.InsertRow(old_job);
    ASSERT_EQ(raw.Query("PRAGMA user_version"), "1");
  }
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->schema_version(), 2);
  absl::StatusOr<v1::Job> read = store->Get(old_job.id());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_THAT(*read, EqualsJob(old_job));
  EXPECT_EQ(*store->CountInState(v1::JOB_STATE_RUNNING), 1);
  RawDatabase raw(DatabasePath());
  EXPECT_EQ(raw.Query("PRAGMA user_version"), "2");
  EXPECT_EQ(raw.Query("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'jobs_state_sequence'"),
            "jobs_state_sequence");
}

TEST_F(JobStoreTest, AFailedMigrationLeavesTheDatabaseAsItWas) {
  {
    // Someone else's database, with an index of the name migration 1 gives its second object: the jobs table
    // is made, then the index fails.
    RawDatabase raw(DatabasePath());
    raw.Exec(
        "CREATE TABLE other (x TEXT); CREATE INDEX jobs_request_id ON other (x); INSERT INTO other VALUES ('kept')");
  }
  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(DatabasePath());
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr(DatabasePath().string()));
  EXPECT_THAT(store.status().message(), HasSubstr("migrate to schema version 1"));
  RawDatabase raw(DatabasePath());
  EXPECT_EQ(raw.Query("PRAGMA user_version"), "0");
  EXPECT_EQ(raw.Query("SELECT name FROM sqlite_master WHERE name = 'jobs'"), "");  // rolled back
  EXPECT_EQ(raw.Query("SELECT x FROM other"), "kept");
}

TEST_F(JobStoreTest, RefusesADatabaseFromANewerQuantizer) {
  {
    RawDatabase raw(DatabasePath());
    raw.Exec("PRAGMA user_version = 99");
  }
  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(DatabasePath());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr(DatabasePath().string()));
  EXPECT_THAT(store.status().message(), HasSubstr("99"));
  EXPECT_THAT(store.status().message(), HasSubstr(absl::StrCat(JobStore::kSchemaVersion)));
}

TEST_F(JobStoreTest, RefusesAFileThatIsNotADatabase) {
  std::mt19937 random(11);
  std::string garbage(4096, '\0');
  for (char& byte : garbage) byte = static_cast<char>(random());
  std::ofstream(DatabasePath(), std::ios::binary) << garbage;

  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(DatabasePath());
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr(DatabasePath().string()));
  EXPECT_THAT(store.status().message(), HasSubstr("not a database"));
}

TEST_F(JobStoreTest, RefusesADirectoryItCannotWriteTo) {
  absl::StatusOr<std::unique_ptr<JobStore>> store = JobStore::Open(directory_.path() / "missing" / "jobs.db");
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr((directory_.path() / "missing" / "jobs.db").string()));
}

TEST_F(JobStoreTest, TheDatabaseIsInWalMode) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Insert(MakeJob(1, v1::JOB_STATE_QUEUED)).ok());
  EXPECT_TRUE(std::filesystem::exists(DatabasePath().string() + "-wal"));
  RawDatabase raw(DatabasePath());
  EXPECT_EQ(raw.Query("PRAGMA journal_mode"), "wal");
}

// 4 threads, thread t writing through stores[t % stores.size()]: each inserts its jobs and updates each once.
// Afterwards every job is there once, with its own update.
void WriteConcurrently(const std::vector<JobStore*>& stores) {
  constexpr int kThreads = 4;
  constexpr int kJobsPerThread = 50;
  std::vector<std::thread> threads;
  std::vector<absl::Status> failures(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([store = stores[t % stores.size()], &failures, t] {
      for (int i = 0; i < kJobsPerThread; ++i) {
        v1::Job job = MakeJob(t * kJobsPerThread + i, v1::JOB_STATE_QUEUED, absl::StrCat("request-", t, "-", i));
        if (absl::Status status = store->Insert(job); !status.ok()) failures[t].Update(status);
        job.set_state(v1::JOB_STATE_RUNNING);
        job.set_blocks_done(i);
        if (absl::Status status = store->Update(job); !status.ok()) failures[t].Update(status);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& failure : failures) EXPECT_TRUE(failure.ok()) << failure;

  JobStore& store = *stores.front();
  EXPECT_EQ(*store.CountInState(v1::JOB_STATE_RUNNING), kThreads * kJobsPerThread);
  EXPECT_EQ(*store.CountInState(v1::JOB_STATE_QUEUED), 0);
  absl::StatusOr<std::vector<v1::Job>> running = store.InState(v1::JOB_STATE_RUNNING);
  ASSERT_TRUE(running.ok()) << running.status();
  std::set<std::string> ids;
  for (const v1::Job& job : *running) {
    ids.insert(job.id());
    const int n = static_cast<int>(job.created_unix_ms() - MakeJob(0, v1::JOB_STATE_QUEUED).created_unix_ms());
    EXPECT_EQ(job.id(), MakeJob(n, v1::JOB_STATE_QUEUED).id());
    EXPECT_EQ(job.request_id(), absl::StrCat("request-", n / kJobsPerThread, "-", n % kJobsPerThread));
    EXPECT_EQ(job.blocks_done(), n % kJobsPerThread);  // its own update, no other thread's
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kThreads * kJobsPerThread));
}

TEST_F(JobStoreTest, ConcurrentInsertsAndUpdatesLoseNothing) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  WriteConcurrently({store.get()});
}

// Two connections on one file (as two processes would have): SQLite's locks and the busy timeout, not the
// store's mutex, keep the writers apart.
TEST_F(JobStoreTest, TwoStoresOnOneFileLoseNothing) {
  auto first = OpenStore();
  auto second = OpenStore();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  WriteConcurrently({first.get(), second.get()});
}

}  // namespace
}  // namespace nibble::quantizer_server
