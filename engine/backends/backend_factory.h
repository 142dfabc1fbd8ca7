// Picking a backend by name: "cpu", "cuda", or "auto" (CUDA when this build has it and a GPU is present).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/runtime/backend.h"

namespace nibble {

enum class BackendKind { kAuto, kCpu, kCuda };

// "auto", "cpu" or "cuda"; anything else is InvalidArgument.
absl::StatusOr<BackendKind> ParseBackendKind(absl::string_view name);
// Whether this build has the CUDA backend and the CUDA runtime sees at least one GPU.
bool CudaAvailable();
// A new backend of that kind on GPU `device` (CUDA only). "cuda" without a GPU is FailedPrecondition.
absl::StatusOr<std::unique_ptr<Backend>> MakeBackend(BackendKind kind, int device = 0);

}  // namespace nibble
