// ParallelFor: splits [0, count) into contiguous chunks run on std::threads (one per hardware thread, at
// most), for host-side loops whose iterations are independent: weight repacking at load time, the CPU
// backend's matmul. Each index is visited exactly once, and by one thread, so results do not depend on the
// number of threads. Blocks until every chunk is done.
#pragma once

#include <cstdint>
#include <functional>

namespace nibble {

// Calls body(begin, end) for disjoint ranges covering [0, count). Runs inline when count is below
// `min_per_thread` * 2 or the machine has one hardware thread.
void ParallelFor(int64_t count, int64_t min_per_thread, const std::function<void(int64_t, int64_t)>& body);

}  // namespace nibble
