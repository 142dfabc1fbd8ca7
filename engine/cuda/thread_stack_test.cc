// What the engine's CUDA link leaves of a small thread stack. civetweb, the HTTP server under nibble-server's
// /metrics, starts every thread with a fixed 100 KiB stack (Debian's build: USE_STACK_SIZE=102400), and glibc
// takes each thread's static TLS (the TLS of every library the program is linked against) out of that stack.
// Linked, libcublasLt's 94 KiB of TLS made those threads fail to start; cublas_library.h opens cuBLAS at run
// time instead. These tests need no GPU: dlopen of cuBLAS and thread creation happen on the host.
#include <gtest/gtest.h>
#include <pthread.h>

#include "engine/cuda/cublas_library.h"

namespace nibble::cuda {
namespace {

constexpr size_t kCivetwebStackBytes = 102400;

// pthread_create's result for a thread with civetweb's stack size (0 when it starts).
int StartSmallStackThread() {
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setstacksize(&attributes, kCivetwebStackBytes);
  pthread_t thread;
  const int result = pthread_create(
      &thread, &attributes, [](void*) -> void* { return nullptr; }, nullptr);
  pthread_attr_destroy(&attributes);
  if (result == 0) pthread_join(thread, nullptr);
  return result;
}

TEST(ThreadStackTest, ACivetwebSizedThreadStartsInAProcessLinkedWithTheCudaEngine) {
  EXPECT_EQ(StartSmallStackThread(), 0) << "the static TLS of the libraries linked with nibble_engine no longer "
                                           "fits civetweb's 100 KiB thread stack";
}

TEST(ThreadStackTest, OpeningCublasLeavesSmallStackThreadsStarting) {
  absl::StatusOr<std::unique_ptr<CublasLibrary>> cublas = CublasLibrary::Open();
  ASSERT_TRUE(cublas.ok()) << cublas.status();
  EXPECT_EQ(StartSmallStackThread(), 0);
}

TEST(ThreadStackTest, CublasStatusesBecomeErrorsNamingTheCallAndTheStatus) {
  absl::StatusOr<std::unique_ptr<CublasLibrary>> cublas = CublasLibrary::Open();
  ASSERT_TRUE(cublas.ok()) << cublas.status();
  EXPECT_TRUE((*cublas)->Check(CUBLAS_STATUS_SUCCESS, "cublasGemmEx").ok());
  const absl::Status failed = (*cublas)->Check(CUBLAS_STATUS_NOT_INITIALIZED, "cublasGemmEx");
  EXPECT_EQ(failed.code(), absl::StatusCode::kInternal);
  EXPECT_NE(failed.message().find("cublasGemmEx"), absl::string_view::npos) << failed;
  EXPECT_NE(failed.message().find("CUBLAS_STATUS_NOT_INITIALIZED"), absl::string_view::npos) << failed;
}

}  // namespace
}  // namespace nibble::cuda
