#include "boot/layout.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace hearth {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;

TEST(Layout, RamRegionsBelowHoleIsOneRegion) {
  auto regions = layout::RamRegions(128 * kMiB);
  ASSERT_EQ(regions.size(), 1u);
  EXPECT_EQ(regions[0].guest_addr, 0u);
  EXPECT_EQ(regions[0].size, 128 * kMiB);
}

TEST(Layout, RamRegionsExactlyUpToHoleIsOneRegion) {
  auto regions = layout::RamRegions(0xd0000000);
  ASSERT_EQ(regions.size(), 1u);
  EXPECT_EQ(regions[0].size, 0xd0000000u);
}

TEST(Layout, RamRegionsAboveHoleContinueAt4GiB) {
  auto regions = layout::RamRegions(4 * kGiB);
  ASSERT_EQ(regions.size(), 2u);
  EXPECT_EQ(regions[0].guest_addr, 0u);
  EXPECT_EQ(regions[0].size, 0xd0000000u);
  EXPECT_EQ(regions[1].guest_addr, 0x100000000u);
  EXPECT_EQ(regions[1].size, 4 * kGiB - 0xd0000000u);  // 768 MiB moved above 4 GiB.
  EXPECT_EQ(regions[0].size + regions[1].size, 4 * kGiB);
}

TEST(Layout, LowMemoryEndStopsAtHole) {
  auto small = GuestMemory::Create(layout::RamRegions(128 * kMiB));
  ASSERT_OK(small);
  EXPECT_EQ(layout::LowMemoryEnd(*small), 128 * kMiB);

  // Only the address space matters here (the host commits nothing until touched).
  auto big = GuestMemory::Create(layout::RamRegions(4 * kGiB));
  ASSERT_OK(big);
  EXPECT_EQ(layout::LowMemoryEnd(*big), 0xd0000000u);
  EXPECT_EQ(big->end_addr(), 0x100000000u + 0x30000000u);
}

TEST(Layout, LowMemoryEndIgnoresRegionsAboveHole) {
  auto mem = GuestMemory::Create({{0, 0x100000}, {0x100000000ull, 0x100000}});
  ASSERT_OK(mem);
  EXPECT_EQ(layout::LowMemoryEnd(*mem), 0x100000u);
}

}  // namespace
}  // namespace hearth
