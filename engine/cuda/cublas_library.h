// cuBLAS opened at run time (dlopen) instead of linked.
//
// Why: libcublasLt.so carries 94 KiB of thread-local storage. Every library a program is *linked* against
// puts its TLS in each thread's static TLS block, which glibc carves out of the thread's stack; civetweb
// (the HTTP server under prometheus-cpp's /metrics Exposer) starts its threads with a fixed 100 KiB stack
// (Debian's build: USE_STACK_SIZE=102400), so linking cuBLAS into nibble-server made pthread_create fail
// with EINVAL and /metrics never came up. A dlopen'ed library's TLS is allocated per thread on first use
// instead, so opening cuBLAS here keeps every thread's stack free. engine/cuda/thread_stack_test.cc holds
// that line.
//
// Contract:
// - Open() loads libcublas.so.<CUDA major> by soname (the loader's usual search: RUNPATH, ld.so.cache),
//   then from the toolkit's library directory seen at build time; the error names every place tried.
//   It needs no GPU.
// - The returned object owns the library handle (dlclose on destruction): it must outlive every cuBLAS
//   handle created through it.
// - The function pointers are cuBLAS's own: as thread-safe as cuBLAS is (one handle per stream).
#pragma once

#include <cublas_v2.h>

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace nibble::cuda {

class CublasLibrary {
 public:
  static absl::StatusOr<std::unique_ptr<CublasLibrary>> Open();
  ~CublasLibrary();
  CublasLibrary(const CublasLibrary&) = delete;
  CublasLibrary& operator=(const CublasLibrary&) = delete;

  // OK for CUBLAS_STATUS_SUCCESS, else an InternalError naming `what` and the status (name and text).
  absl::Status Check(cublasStatus_t status, absl::string_view what) const;

  // The entry points the CUDA backend calls (cublas_v2.h's cublasCreate is cublasCreate_v2, and so on).
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSetWorkspace_v2) set_workspace = nullptr;
  // cublasGemmEx's C entry point, spelled out: cublas_api.h also declares a C++ overload (compute type as a
  // cudaDataType), which decltype cannot pick between.
  using GemmEx = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                                    const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                                    cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
  GemmEx gemm_ex = nullptr;

 private:
  explicit CublasLibrary(void* handle) : handle_(handle) {}

  void* handle_;
  decltype(&cublasGetStatusName) status_name_ = nullptr;
  decltype(&cublasGetStatusString) status_string_ = nullptr;
};

}  // namespace nibble::cuda
