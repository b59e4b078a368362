#include "devices/guest_signals.h"

#include <gtest/gtest.h>

#include <vector>

namespace hearth {
namespace {

void Out(BusDevice& dev, uint64_t offset, std::vector<uint8_t> bytes) {
  dev.Write(offset, std::span<const uint8_t>(bytes));
}

TEST(BootTimer, FiresOnlyOn123AtOffsetZero) {
  int calls = 0;
  BootTimer timer([&] { ++calls; });
  Out(timer, 0, {122});
  Out(timer, 0, {124});
  Out(timer, 1, {123});
  Out(timer, 0, {123, 0});  // Two-byte write.
  EXPECT_EQ(calls, 0);
  Out(timer, 0, {123});
  EXPECT_EQ(calls, 1);
  uint8_t v = 0;
  timer.Read(0, std::span(&v, 1));
  EXPECT_EQ(v, 0xff);
}

TEST(PowerPort, ZeroPowersOffOneIsPanic) {
  int off = 0, panic = 0;
  PowerPort port([&] { ++off; }, [&] { ++panic; });
  Out(port, 0, {0});
  EXPECT_EQ(off, 1);
  EXPECT_EQ(panic, 0);
  Out(port, 0, {1});
  EXPECT_EQ(off, 1);
  EXPECT_EQ(panic, 1);
}

TEST(PowerPort, OtherWritesDoNothing) {
  int off = 0, panic = 0;
  PowerPort port([&] { ++off; }, [&] { ++panic; });
  Out(port, 0, {2});
  Out(port, 0, {0xff});
  Out(port, 1, {0});     // Wrong offset.
  Out(port, 0, {0, 0});  // Wrong width.
  Out(port, 0, {});
  EXPECT_EQ(off, 0);
  EXPECT_EQ(panic, 0);
  uint8_t v[2] = {};
  port.Read(0, v);
  EXPECT_EQ(v[0], 0xff);
  EXPECT_EQ(v[1], 0xff);
}

}  // namespace
}  // namespace hearth
