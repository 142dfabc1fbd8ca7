#include "engine/runtime/batch.h"

#include <gtest/gtest.h>

#include "engine/cpu/cpu_backend.h"
#include "engine/runtime/backend.h"

namespace nibble {
namespace {

std::vector<int32_t> HostCopy(Backend& backend, const Tensor& tensor) {
  std::vector<int32_t> values(static_cast<size_t>(tensor.numel()));
  EXPECT_TRUE(backend.CopyToHost(tensor, values.data()).ok());
  return values;
}

TEST(StepBatchTest, AddSequenceLaysOutTokensPositionsAndLogitRows) {
  StepBatch batch;
  const std::vector<int32_t> prompt = {1, 5, 9};
  const std::vector<int32_t> blocks_a = {3};
  const std::vector<int32_t> next = {7};
  const std::vector<int32_t> blocks_b = {0, 1};
  batch.AddSequence(prompt, 0, blocks_a, StepBatch::Logits::kAll);
  batch.AddSequence(next, 20, blocks_b, StepBatch::Logits::kLast);
  EXPECT_EQ(batch.token_ids, (std::vector<int32_t>{1, 5, 9, 7}));
  EXPECT_EQ(batch.positions, (std::vector<int32_t>{0, 1, 2, 20}));
  EXPECT_EQ(batch.seq_starts, (std::vector<int32_t>{0, 3, 4}));
  EXPECT_EQ(batch.context_lens, (std::vector<int32_t>{3, 21}));
  EXPECT_EQ(batch.logit_rows, (std::vector<int32_t>{0, 1, 2, 3}));
}

TEST(BatchUploaderTest, UploadsIntoFixedWidthBlockTables) {
  auto backend = MakeCpuBackend();
  auto uploader = BatchUploader::Create(*backend, BatchLimits{16, 4, 3, 4});
  ASSERT_TRUE(uploader.ok());
  StepBatch batch;
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5};
  const std::vector<int32_t> blocks = {7, 2};
  batch.AddSequence(tokens, 0, blocks, StepBatch::Logits::kLast);
  const auto device = uploader->Upload(batch);
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_EQ(device->max_context, 5);
  EXPECT_EQ(device->max_new_tokens, 5);
  EXPECT_EQ(HostCopy(*backend, device->block_tables), (std::vector<int32_t>{7, 2, -1}));
  EXPECT_EQ(HostCopy(*backend, device->positions), (std::vector<int32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(HostCopy(*backend, device->logit_rows), (std::vector<int32_t>{4}));
}

TEST(BatchUploaderTest, RefusesTooFewBlocksAndOversizedSteps) {
  auto backend = MakeCpuBackend();
  auto uploader = BatchUploader::Create(*backend, BatchLimits{4, 4, 2, 4});
  ASSERT_TRUE(uploader.ok());
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5};
  const std::vector<int32_t> one_block = {0};
  {
    StepBatch batch;  // 5 tokens in one block of 4
    batch.AddSequence(std::span(tokens).first(3), 2, one_block, StepBatch::Logits::kLast);
    const auto device = uploader->Upload(batch);
    ASSERT_FALSE(device.ok());
    EXPECT_NE(device.status().message().find("1 KV blocks for 5 tokens"), absl::string_view::npos) << device.status();
  }
  {
    StepBatch batch;  // 5 tokens > max_tokens 4
    const std::vector<int32_t> blocks = {0, 1};
    batch.AddSequence(tokens, 0, blocks, StepBatch::Logits::kLast);
    EXPECT_EQ(uploader->Upload(batch).status().code(), absl::StatusCode::kInvalidArgument);
  }
  {
    StepBatch batch;  // context 9 needs 3 blocks > table width 2
    const std::vector<int32_t> blocks = {0, 1, 2};
    batch.AddSequence(std::span(tokens).first(1), 8, blocks, StepBatch::Logits::kLast);
    const auto device = uploader->Upload(batch);
    ASSERT_FALSE(device.ok());
    EXPECT_NE(device.status().message().find("block-table width"), absl::string_view::npos);
  }
}

}  // namespace
}  // namespace nibble
