#include "engine/base/parallel_for.h"

#include <algorithm>

namespace nibble {

ThreadPool::ThreadPool(int threads) {
  const int count = threads > 0 ? threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  workers_.reserve(static_cast<size_t>(count - 1));
  for (int worker = 0; worker + 1 < count; ++worker) workers_.emplace_back(&ThreadPool::WorkerLoop, this, worker);
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::ParallelFor(int64_t count, int64_t min_per_thread, const std::function<void(int64_t, int64_t)>& body) {
  const int64_t chunks = std::clamp<int64_t>(count / std::max<int64_t>(min_per_thread, 1), 1, threads());
  if (chunks == 1) {
    if (count > 0) body(0, count);
    return;
  }
  std::lock_guard<std::mutex> call(call_mutex_);
  const int64_t chunk = (count + chunks - 1) / chunks;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    body_ = &body;
    count_ = count;
    chunk_ = chunk;
    // Chunk 0 is the caller's; chunk i (1..) is worker i - 1's. Rounding up can leave trailing chunks empty.
    chunks_ = static_cast<int>((count + chunk - 1) / chunk);
    pending_ = chunks_ - 1;
    ++generation_;
  }
  work_ready_.notify_all();
  body(0, std::min(count, chunk));
  std::unique_lock<std::mutex> lock(mutex_);
  work_done_.wait(lock, [&] { return pending_ == 0; });
  body_ = nullptr;
}

void ThreadPool::WorkerLoop(int worker) {
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    work_ready_.wait(lock, [&] { return stopping_ || generation_ != seen; });
    if (stopping_) return;
    seen = generation_;
    const int64_t index = worker + 1;
    if (index >= chunks_) continue;  // this call needs fewer threads
    const auto* body = body_;
    const int64_t begin = index * chunk_;
    const int64_t end = std::min(count_, begin + chunk_);
    lock.unlock();
    (*body)(begin, end);
    lock.lock();
    if (--pending_ == 0) work_done_.notify_one();
  }
}

}  // namespace nibble
