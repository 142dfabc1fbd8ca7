#include "engine/runtime/kv_cache.h"

#include <gtest/gtest.h>

#include <set>

#include "engine/cpu/cpu_backend.h"

namespace nibble {
namespace {

TEST(KvBlockPoolTest, AllocatesDistinctBlocksAndRefusesWhenDry) {
  KvBlockPool pool(8, 16);
  EXPECT_EQ(pool.BlocksFor(1), 1);
  EXPECT_EQ(pool.BlocksFor(16), 1);
  EXPECT_EQ(pool.BlocksFor(17), 2);
  auto first = pool.Allocate(5);
  ASSERT_TRUE(first.ok());
  EXPECT_DOUBLE_EQ(pool.usage(), 5.0 / 8);
  const auto too_many = pool.Allocate(4);
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(pool.num_free(), 3);  // a refused request takes nothing
  auto second = pool.Allocate(3);
  ASSERT_TRUE(second.ok());
  std::set<int32_t> ids(first->begin(), first->end());
  ids.insert(second->begin(), second->end());
  EXPECT_EQ(ids.size(), 8u);
  EXPECT_EQ(*ids.begin(), 0);
  EXPECT_EQ(*ids.rbegin(), 7);
  pool.Free(*first);
  pool.Free(*second);
  EXPECT_EQ(pool.usage(), 0.0);
}

TEST(KvSequenceTest, GrowsByBlocksAndReturnsThemWhenDestroyed) {
  auto pool = std::make_shared<KvBlockPool>(4, 16);
  {
    KvSequence sequence(pool);
    ASSERT_TRUE(sequence.Reserve(10).ok());
    EXPECT_EQ(sequence.blocks().size(), 1u);
    ASSERT_TRUE(sequence.Reserve(33).ok());
    EXPECT_EQ(sequence.blocks().size(), 3u);
    EXPECT_EQ(pool->num_free(), 1);
    const auto status = sequence.Reserve(80);  // needs 5 blocks: 2 more than free
    EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(sequence.blocks().size(), 3u);
  }
  EXPECT_EQ(pool->num_free(), 4);
}

TEST(KvCacheTest, LaysOutLayersWithoutOverlap) {
  ModelConfig config;
  config.num_kv_heads = 2;
  config.head_dim = 8;
  auto backend = MakeCpuBackend();
  auto cache = KvCache::Create(*backend, backend->activation_dtype(), config, 3, 10, 16);
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_EQ(cache->bytes(), KvCache::BytesPerBlock(config, 3, 16, DType::kF32) * 10);
  const size_t half_layer = 10 * 16 * 2 * 8 * sizeof(float);
  auto* base = static_cast<char*>(cache->layer(0).k.data);
  for (int l = 0; l < 3; ++l) {
    EXPECT_EQ(static_cast<char*>(cache->layer(l).k.data), base + (2 * l) * half_layer);
    EXPECT_EQ(static_cast<char*>(cache->layer(l).v.data), base + (2 * l + 1) * half_layer);
    EXPECT_EQ(cache->layer(l).k.shape, (Shape{10, 16, 2, 8}));
  }
}

}  // namespace
}  // namespace nibble
