#include "engine/parallel.h"

#include <algorithm>
#include <thread>
#include <vector>

namespace nibble {

void ParallelFor(int64_t count, int64_t min_per_thread, const std::function<void(int64_t, int64_t)>& body) {
  const int64_t hardware = std::max<int64_t>(1, std::thread::hardware_concurrency());
  const int64_t threads = std::clamp<int64_t>(count / std::max<int64_t>(min_per_thread, 1), 1, hardware);
  if (threads == 1) {
    if (count > 0) body(0, count);
    return;
  }
  const int64_t chunk = (count + threads - 1) / threads;
  std::vector<std::thread> workers;
  for (int64_t begin = chunk; begin < count; begin += chunk) {
    workers.emplace_back(body, begin, std::min(count, begin + chunk));
  }
  body(0, std::min(count, chunk));
  for (std::thread& worker : workers) worker.join();
}

}  // namespace nibble
