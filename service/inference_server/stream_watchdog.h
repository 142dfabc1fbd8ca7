// Cuts Generate streams whose client stopped reading (--write-timeout), and gives the freed heap back.
//
// Watch registers an accepted stream (held weakly: a finished stream drops out on the next sweep). A thread
// sweeps every quarter of the timeout (at least every second, at most every 50 ms) and calls
// GenerateStream::CutIfWriteStalled on each. When a sweep finds that the last watched stream has ended, it
// calls glibc's malloc_trim, so that the memory slow clients held goes back to the system instead of
// staying in the allocator's arenas (RSS falls after a burst of clients).
//
// A timeout of zero cuts nothing (the heap is still trimmed as streams end). Thread-safe; the destructor
// stops and joins the thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "service/inference_server/generate_stream.h"

namespace nibble::server {

class StreamWatchdog {
 public:
  explicit StreamWatchdog(std::chrono::milliseconds write_timeout);
  ~StreamWatchdog();
  StreamWatchdog(const StreamWatchdog&) = delete;
  StreamWatchdog& operator=(const StreamWatchdog&) = delete;

  void Watch(std::weak_ptr<GenerateStream> stream);

 private:
  void Loop();

  const std::chrono::milliseconds write_timeout_;
  const std::chrono::milliseconds period_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::weak_ptr<GenerateStream>> streams_;  // guarded by mutex_
  bool stopping_ = false;                               // guarded by mutex_
  std::thread thread_;                                  // last: starts once the rest is built
};

}  // namespace nibble::server
