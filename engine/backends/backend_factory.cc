#include "engine/backends/backend_factory.h"

#include "absl/strings/str_cat.h"
#include "engine/cpu/cpu_backend.h"
#ifdef NIBBLE_HAVE_CUDA
#include "engine/cuda/cuda_backend.h"
#endif

namespace nibble {

absl::StatusOr<BackendKind> ParseBackendKind(absl::string_view name) {
  if (name == "auto") return BackendKind::kAuto;
  if (name == "cpu") return BackendKind::kCpu;
  if (name == "cuda") return BackendKind::kCuda;
  return absl::InvalidArgumentError(absl::StrCat("unknown backend \"", name, "\" (expected auto, cpu or cuda)"));
}

bool CudaAvailable() {
#ifdef NIBBLE_HAVE_CUDA
  return CudaDeviceCount() > 0;
#else
  return false;
#endif
}

absl::StatusOr<std::unique_ptr<Backend>> MakeBackend(BackendKind kind, int device) {
  if (kind == BackendKind::kCpu || (kind == BackendKind::kAuto && !CudaAvailable())) return MakeCpuBackend();
#ifdef NIBBLE_HAVE_CUDA
  if (!CudaAvailable()) return absl::FailedPreconditionError("backend cuda: no CUDA GPU is visible");
  return MakeCudaBackend(device);
#else
  (void)device;
  return absl::FailedPreconditionError("backend cuda: this build has no CUDA backend (configure with NIBBLE_CUDA=ON)");
#endif
}

}  // namespace nibble
