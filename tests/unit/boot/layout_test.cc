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

TEST(Layout, LowMemoryEndIsEndOfLowRam) {
  auto small = GuestMemory::Create(layout::RamRegions(128 * kMiB));
  ASSERT_OK(small);
  EXPECT_EQ(layout::LowMemoryEnd(*small), 128 * kMiB);
}

TEST(Layout, LowMemoryEndStopsAtHole) {
  // The tail of the low region and the start of the high one, as RamRegions lays out a guest
  // of more than 3.25 GiB (kept small so the test maps little).
  auto mem = GuestMemory::Create({{0xcf000000, 0x1000000}, {0x100000000ull, 0x100000}});
  ASSERT_OK(mem);
  EXPECT_EQ(layout::LowMemoryEnd(*mem), 0xd0000000u);
  // A region that runs into the hole counts only up to the hole.
  auto straddling = GuestMemory::Create({{0xcff00000, 0x200000}});
  ASSERT_OK(straddling);
  EXPECT_EQ(layout::LowMemoryEnd(*straddling), 0xd0000000u);
}

TEST(Layout, LowMemoryEndIgnoresRegionsAboveHole) {
  auto mem = GuestMemory::Create({{0, 0x100000}, {0x100000000ull, 0x100000}});
  ASSERT_OK(mem);
  EXPECT_EQ(layout::LowMemoryEnd(*mem), 0x100000u);
}

}  // namespace
}  // namespace hearth
