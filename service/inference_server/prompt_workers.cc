#include "service/inference_server/prompt_workers.h"

#include <algorithm>
#include <utility>

namespace nibble::server {

PromptWorkers::PromptWorkers(int32_t threads, int32_t max_pending) : max_pending_(std::max(max_pending, 1)) {
  for (int32_t i = 0; i < std::max(threads, 1); ++i) threads_.emplace_back([this] { Work(); });
}

PromptWorkers::~PromptWorkers() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  posted_.notify_all();
  for (std::thread& thread : threads_) thread.join();
}

bool PromptWorkers::TryPost(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || pending_ >= max_pending_) return false;
    ++pending_;
    queue_.push_back(std::move(task));
  }
  posted_.notify_one();
  return true;
}

void PromptWorkers::Work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    posted_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and every posted task has run
    std::function<void()> task = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    task();
    lock.lock();
    --pending_;
  }
}

}  // namespace nibble::server
