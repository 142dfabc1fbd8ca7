#include "engine/base/parallel_for.h"

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nibble {
namespace {

// Counts visits per index; every index must be visited exactly once, ranges disjoint and in bounds.
std::vector<int> Visits(ThreadPool& pool, int64_t count, int64_t min_per_thread) {
  std::vector<std::atomic<int>> visits(static_cast<size_t>(count));
  pool.ParallelFor(count, min_per_thread, [&](int64_t begin, int64_t end) {
    EXPECT_LE(0, begin);
    EXPECT_LT(begin, end);
    EXPECT_LE(end, count);
    for (int64_t i = begin; i < end; ++i) visits[static_cast<size_t>(i)]++;
  });
  std::vector<int> result;
  for (const auto& v : visits) result.push_back(v.load());
  return result;
}

TEST(ThreadPoolTest, EveryIndexOnceForManySizes) {
  ThreadPool pool(4);
  EXPECT_EQ(pool.threads(), 4);
  for (int64_t count : {0, 1, 2, 3, 5, 7, 8, 9, 100, 1001}) {
    for (int64_t min_per_thread : {1, 2, 64}) {
      EXPECT_THAT(Visits(pool, count, min_per_thread), ::testing::Each(1)) << count << " " << min_per_thread;
    }
  }
}

TEST(ThreadPoolTest, RunsOnSeveralThreadsAndReusesThem) {
  ThreadPool pool(3);
  for (int call = 0; call < 200; ++call) {
    std::mutex mutex;
    std::vector<std::thread::id> ids;
    pool.ParallelFor(3, 1, [&](int64_t, int64_t) {
      std::lock_guard<std::mutex> lock(mutex);
      ids.push_back(std::this_thread::get_id());
    });
    ASSERT_EQ(ids.size(), 3u);
  }
}

TEST(ThreadPoolTest, SmallCountsRunInlineOnTheCaller) {
  ThreadPool pool(4);
  std::thread::id seen;
  pool.ParallelFor(5, 4, [&](int64_t begin, int64_t end) {
    EXPECT_EQ(begin, 0);
    EXPECT_EQ(end, 5);
    seen = std::this_thread::get_id();
  });
  EXPECT_EQ(seen, std::this_thread::get_id());
}

TEST(ThreadPoolTest, ConcurrentCallersEachGetTheirWholeRange) {
  ThreadPool pool(2);
  std::vector<std::thread> callers;
  std::atomic<int64_t> total{0};
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        pool.ParallelFor(100, 1, [&](int64_t begin, int64_t end) { total += end - begin; });
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  EXPECT_EQ(total.load(), 4 * 50 * 100);
}

}  // namespace
}  // namespace nibble
