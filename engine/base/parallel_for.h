// ThreadPool::ParallelFor: splits [0, count) into contiguous chunks run on a pool of threads that live as
// long as the pool (one per hardware thread by default), for host-side loops whose iterations are
// independent: weight repacking at load time, the CPU backend's matmul and attention, the clip search. Each
// index is visited exactly once, and by one thread, so results do not depend on the number of threads.
//
// Threading: ParallelFor may be called from any thread; calls on one pool run one at a time (a second
// caller waits for the first). The calling thread runs the first chunk itself. A body must not call
// ParallelFor on the pool that runs it (it would wait for itself). Destroying the pool joins its threads;
// no call may be in flight then.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace nibble {

class ThreadPool {
 public:
  // `threads` <= 0: one per hardware thread. The pool starts threads - 1 workers (the caller is the last).
  explicit ThreadPool(int threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls body(begin, end) for disjoint ranges covering [0, count), at least `min_per_thread` indices each
  // (runs inline when count is below min_per_thread * 2 or the pool has one thread). Returns when every
  // range is done.
  void ParallelFor(int64_t count, int64_t min_per_thread, const std::function<void(int64_t, int64_t)>& body);

 private:
  void WorkerLoop(int worker);

  std::mutex call_mutex_;  // one ParallelFor at a time
  std::mutex mutex_;       // guards everything below
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  const std::function<void(int64_t, int64_t)>* body_ = nullptr;
  int64_t count_ = 0;
  int64_t chunk_ = 0;
  int chunks_ = 0;           // chunks of the current call, the caller's included
  int pending_ = 0;          // worker chunks not finished yet
  uint64_t generation_ = 0;  // bumped by every call, so a worker runs each call's chunk once
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace nibble
