#include "service/inference_server/prompt_workers.h"

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace nibble::server {
namespace {

using std::chrono::seconds;

TEST(PromptWorkersTest, TasksRunOffThePostingThreadInTheOrderPosted) {
  std::vector<int> order;
  std::thread::id ran_on;
  {
    PromptWorkers workers(/*threads=*/1, /*max_pending=*/8);
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(workers.TryPost([&order, &ran_on, i] {
        order.push_back(i);
        ran_on = std::this_thread::get_id();
      }));
    }
  }  // the destructor runs what was posted
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_NE(ran_on, std::this_thread::get_id());
}

TEST(PromptWorkersTest, RefusesBeyondMaxPendingAndTakesMoreOnceTasksFinish) {
  PromptWorkers workers(/*threads=*/2, /*max_pending=*/3);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> started = 0;
  std::atomic<int> finished = 0;
  auto blocked_task = [&] {
    ++started;
    released.wait();
    ++finished;
  };
  // Two run (one per thread), one waits: three pending, the limit.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(workers.TryPost(blocked_task)) << i;
  EXPECT_FALSE(workers.TryPost([] {})) << "a fourth task while three are pending";
  for (int waited = 0; started < 2 && waited < 500; ++waited)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(started, 2) << "both threads run a task while the third waits";

  release.set_value();
  for (int waited = 0; finished < 3 && waited < 500; ++waited)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(finished, 3);
  std::promise<void> ran;
  ASSERT_TRUE(workers.TryPost([&] { ran.set_value(); })) << "room again once the three finished";
  EXPECT_EQ(ran.get_future().wait_for(seconds(5)), std::future_status::ready);
}

TEST(PromptWorkersTest, ALongTaskOnOneThreadDoesNotHoldUpTheOther) {
  PromptWorkers workers(/*threads=*/2, /*max_pending=*/4);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  ASSERT_TRUE(workers.TryPost([released] { released.wait(); }));
  std::promise<void> ran;
  ASSERT_TRUE(workers.TryPost([&] { ran.set_value(); }));
  EXPECT_EQ(ran.get_future().wait_for(seconds(5)), std::future_status::ready);
  release.set_value();
}

}  // namespace
}  // namespace nibble::server
