#include "service/inference_server/stream_watchdog.h"

#include <malloc.h>

#include <algorithm>

namespace nibble::server {

StreamWatchdog::StreamWatchdog(std::chrono::milliseconds write_timeout)
    : write_timeout_(write_timeout),
      period_(std::clamp(write_timeout / 4, std::chrono::milliseconds(50), std::chrono::milliseconds(1000))),
      thread_([this] { Loop(); }) {}

StreamWatchdog::~StreamWatchdog() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void StreamWatchdog::Watch(std::weak_ptr<GenerateStream> stream) {
  std::lock_guard lock(mutex_);
  streams_.push_back(std::move(stream));
}

void StreamWatchdog::Loop() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, period_, [this] { return stopping_; })) {
    const size_t before = streams_.size();
    std::erase_if(streams_, [](const std::weak_ptr<GenerateStream>& stream) { return stream.expired(); });
    const bool last_ended = before > 0 && streams_.empty();
    std::vector<std::shared_ptr<GenerateStream>> live;
    if (write_timeout_.count() > 0) {
      for (const auto& weak : streams_) {
        if (auto stream = weak.lock()) live.push_back(std::move(stream));
      }
    }
    lock.unlock();  // streams call into gRPC, and Watch must not wait for a sweep
    const auto now = std::chrono::steady_clock::now();
    for (const auto& stream : live) stream->CutIfWriteStalled(now, write_timeout_);
    live.clear();
    if (last_ended) malloc_trim(0);
    lock.lock();
  }
}

}  // namespace nibble::server
