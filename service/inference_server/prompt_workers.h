// A fixed set of threads for the Generate calls whose text prompt is long: tokenizing costs time linear in
// the prompt's bytes (up to the context x the tokenizer's longest piece), so those calls are submitted here,
// off gRPC's callback threads, and at most `threads` prompts are tokenized at once. Short prompts and token
// ids are submitted on the handler's thread, so no long prompt ever holds them up.
//
// Bounded: at most `max_pending` tasks are queued or running; TryPost refuses beyond that (the caller answers
// RESOURCE_EXHAUSTED at once). Threading: TryPost from any thread; tasks run on the pool's threads, in the
// order posted. Lifetime: the destructor runs every task already posted, then joins the threads; whatever a
// task uses must outlive the pool.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace nibble::server {

class PromptWorkers {
 public:
  // `threads` >= 1, `max_pending` >= 1.
  PromptWorkers(int32_t threads, int32_t max_pending);
  ~PromptWorkers();
  PromptWorkers(const PromptWorkers&) = delete;
  PromptWorkers& operator=(const PromptWorkers&) = delete;

  // Queues `task` unless max_pending tasks are already queued or running: then returns false and drops it.
  bool TryPost(std::function<void()> task);
  int32_t max_pending() const { return max_pending_; }

 private:
  void Work();

  const int32_t max_pending_;
  std::mutex mutex_;
  std::condition_variable posted_;
  std::deque<std::function<void()>> queue_;  // guarded by mutex_
  int32_t pending_ = 0;                      // queued + running, guarded by mutex_
  bool stopping_ = false;                    // guarded by mutex_
  std::vector<std::thread> threads_;
};

}  // namespace nibble::server
