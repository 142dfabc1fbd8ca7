// The CPU backend: fp32 reference implementations of every op, in plain loops whose order of summation
// follows llama2.c's run.c (so greedy text matches it). Used by CI, the quantizer without a GPU, and as
// the reference the CUDA backend's parity tests compare against.
//
// Contract: as Backend (backend.h). Work runs synchronously on the calling thread; memory is host memory.
#pragma once

#include <memory>

#include "engine/runtime/backend.h"

namespace nibble {

std::unique_ptr<Backend> MakeCpuBackend();

}  // namespace nibble
