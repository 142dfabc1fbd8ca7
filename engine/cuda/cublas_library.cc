#include "engine/cuda/cublas_library.h"

#include <dlfcn.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace nibble::cuda {
namespace {

// Where libcublas is looked for, in order: its soname (the dynamic loader's own search), then the CUDA
// toolkit's library directory CMake found (NIBBLE_CUBLAS_SONAME and NIBBLE_CUDA_LIBRARY_DIR come from
// engine/cuda/CMakeLists.txt).
std::vector<std::string> Candidates() {
  return {NIBBLE_CUBLAS_SONAME, absl::StrCat(NIBBLE_CUDA_LIBRARY_DIR, "/", NIBBLE_CUBLAS_SONAME)};
}

// Resolves `symbol` into `*function`; false (with the reason in *error) when the library lacks it.
template <typename Function>
bool Resolve(void* handle, const char* symbol, Function* function, std::string* error) {
  *function = reinterpret_cast<Function>(dlsym(handle, symbol));
  if (*function == nullptr) *error = absl::StrCat(NIBBLE_CUBLAS_SONAME, " has no ", symbol);
  return *function != nullptr;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CublasLibrary>> CublasLibrary::Open() {
  std::vector<std::string> failures;
  void* handle = nullptr;
  for (const std::string& candidate : Candidates()) {
    handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle != nullptr) break;
    failures.push_back(dlerror());
  }
  if (handle == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("cuda backend: cannot open cuBLAS (", absl::StrJoin(failures, "; "), ")"));
  }
  auto library = std::unique_ptr<CublasLibrary>(new CublasLibrary(handle));
  std::string error;
  const bool resolved = Resolve(handle, "cublasCreate_v2", &library->create, &error) &&
                        Resolve(handle, "cublasDestroy_v2", &library->destroy, &error) &&
                        Resolve(handle, "cublasSetStream_v2", &library->set_stream, &error) &&
                        Resolve(handle, "cublasSetWorkspace_v2", &library->set_workspace, &error) &&
                        Resolve(handle, "cublasGemmEx", &library->gemm_ex, &error) &&
                        Resolve(handle, "cublasGetStatusName", &library->status_name_, &error) &&
                        Resolve(handle, "cublasGetStatusString", &library->status_string_, &error);
  if (!resolved) return absl::FailedPreconditionError(absl::StrCat("cuda backend: ", error));
  return library;
}

CublasLibrary::~CublasLibrary() { dlclose(handle_); }

absl::Status CublasLibrary::Check(cublasStatus_t status, absl::string_view what) const {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": cuBLAS error ", status_name_(status), ": ", status_string_(status)));
}

}  // namespace nibble::cuda
