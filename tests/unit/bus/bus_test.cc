#include "bus/bus.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "test_util.h"

namespace hearth {
namespace {

// Records accesses and answers reads with a fixed byte.
class FakeDevice : public BusDevice {
 public:
  explicit FakeDevice(uint8_t fill) : fill_(fill) {}
  void Read(uint64_t offset, std::span<uint8_t> data) override {
    reads.push_back({offset, data.size()});
    for (auto& b : data) b = fill_;
  }
  void Write(uint64_t offset, std::span<const uint8_t> data) override {
    writes.push_back({offset, std::vector<uint8_t>(data.begin(), data.end())});
  }
  struct ReadAccess {
    uint64_t offset;
    size_t len;
  };
  struct WriteAccess {
    uint64_t offset;
    std::vector<uint8_t> bytes;
  };
  std::vector<ReadAccess> reads;
  std::vector<WriteAccess> writes;

 private:
  uint8_t fill_;
};

TEST(Bus, RoutesToDeviceWithRelativeOffset) {
  Bus bus("pio");
  auto a = std::make_shared<FakeDevice>(0xa1);
  auto b = std::make_shared<FakeDevice>(0xb2);
  ASSERT_OK(bus.Insert(a, 0x3f8, 8));
  ASSERT_OK(bus.Insert(b, 0x60, 5));

  uint8_t v = 0;
  ASSERT_TRUE(bus.Read(0x3fd, std::span(&v, 1)));
  EXPECT_EQ(v, 0xa1);
  ASSERT_EQ(a->reads.size(), 1u);
  EXPECT_EQ(a->reads[0].offset, 5u);
  EXPECT_EQ(a->reads[0].len, 1u);

  uint8_t w[2] = {0x12, 0x34};
  ASSERT_TRUE(bus.Write(0x64, std::span<const uint8_t>(w, 1)));
  ASSERT_TRUE(bus.Write(0x60, std::span<const uint8_t>(w, 2)));
  ASSERT_EQ(b->writes.size(), 2u);
  EXPECT_EQ(b->writes[0].offset, 4u);
  EXPECT_EQ(b->writes[0].bytes, std::vector<uint8_t>{0x12});
  EXPECT_EQ(b->writes[1].offset, 0u);
  EXPECT_EQ(b->writes[1].bytes, (std::vector<uint8_t>{0x12, 0x34}));
  EXPECT_TRUE(a->writes.empty());
  EXPECT_TRUE(b->reads.empty());
}

TEST(Bus, FirstAndLastByteOfRange) {
  Bus bus("mmio");
  auto d = std::make_shared<FakeDevice>(1);
  ASSERT_OK(bus.Insert(d, 0xd0000000, 0x1000));
  uint8_t v[4];
  EXPECT_TRUE(bus.Read(0xd0000000, v));
  EXPECT_TRUE(bus.Read(0xd0000ffc, v));
  EXPECT_TRUE(bus.Read(0xd0000fff, std::span(v, 1)));
  EXPECT_FALSE(bus.Read(0xcfffffff, std::span(v, 1)));
  EXPECT_FALSE(bus.Read(0xd0001000, std::span(v, 1)));
  ASSERT_EQ(d->reads.size(), 3u);
  EXPECT_EQ(d->reads[1].offset, 0xffcu);
  EXPECT_EQ(d->reads[2].offset, 0xfffu);
}

TEST(Bus, AccessStraddlingDeviceEndRefused) {
  Bus bus("pio");
  auto d = std::make_shared<FakeDevice>(1);
  auto next = std::make_shared<FakeDevice>(2);
  ASSERT_OK(bus.Insert(d, 0x70, 2));
  ASSERT_OK(bus.Insert(next, 0x72, 2));
  uint8_t v[4] = {};
  EXPECT_FALSE(bus.Read(0x71, std::span(v, 2)));  // Half in each device.
  EXPECT_FALSE(bus.Write(0x70, std::span<const uint8_t>(v, 4)));
  EXPECT_TRUE(d->reads.empty());
  EXPECT_TRUE(d->writes.empty());
  EXPECT_TRUE(next->reads.empty());
}

TEST(Bus, UnmappedAccessReturnsFalse) {
  Bus bus("pio");
  uint8_t v = 0x5a;
  EXPECT_FALSE(bus.Read(0x80, std::span(&v, 1)));
  EXPECT_EQ(v, 0x5a);  // Untouched: the caller decides what unclaimed reads return.
  auto d = std::make_shared<FakeDevice>(1);
  ASSERT_OK(bus.Insert(d, 0x100, 0x10));
  EXPECT_FALSE(bus.Read(0x80, std::span(&v, 1)));
  EXPECT_FALSE(bus.Write(0x110, std::span<const uint8_t>(&v, 1)));
  EXPECT_FALSE(bus.Read(0xffffffffffffffffull, std::span(&v, 1)));
}

TEST(Bus, InsertRejectsOverlap) {
  Bus bus("pio");
  auto d = std::make_shared<FakeDevice>(1);
  ASSERT_OK(bus.Insert(d, 0x3f8, 8));
  EXPECT_ERROR_CONTAINS(bus.Insert(d, 0x3fc, 8), "pio bus: range 0x3fc+0x8 overlaps the device at 0x3f8");
  EXPECT_ERROR_CONTAINS(bus.Insert(d, 0x3f0, 9), "overlaps the device at 0x3f8");   // Ends inside.
  EXPECT_ERROR_CONTAINS(bus.Insert(d, 0x300, 0x200), "overlaps the device at 0x3f8");  // Covers it.
  EXPECT_ERROR_CONTAINS(bus.Insert(d, 0x3f9, 1), "overlaps the device at 0x3f8");  // Inside it.
}

TEST(Bus, InsertAcceptsAdjacentRanges) {
  Bus bus("pio");
  auto a = std::make_shared<FakeDevice>(0xa);
  auto b = std::make_shared<FakeDevice>(0xb);
  auto c = std::make_shared<FakeDevice>(0xc);
  ASSERT_OK(bus.Insert(b, 0x3f8, 8));
  ASSERT_OK(bus.Insert(a, 0x3f0, 8));  // Ends where b starts.
  ASSERT_OK(bus.Insert(c, 0x400, 8));  // Starts where b ends.
  uint8_t v = 0;
  ASSERT_TRUE(bus.Read(0x3f7, std::span(&v, 1)));
  EXPECT_EQ(v, 0xa);
  ASSERT_TRUE(bus.Read(0x3f8, std::span(&v, 1)));
  EXPECT_EQ(v, 0xb);
  ASSERT_TRUE(bus.Read(0x3ff, std::span(&v, 1)));
  EXPECT_EQ(v, 0xb);
  ASSERT_TRUE(bus.Read(0x400, std::span(&v, 1)));
  EXPECT_EQ(v, 0xc);
}

TEST(Bus, InsertRejectsEmptyOrWrappingRange) {
  Bus bus("mmio");
  auto d = std::make_shared<FakeDevice>(1);
  EXPECT_ERROR_CONTAINS(bus.Insert(d, 0x1000, 0), "mmio bus: invalid range 0x1000+0x0");
  EXPECT_ERROR_CONTAINS(bus.Insert(d, 0xfffffffffffffff0ull, 0x20), "invalid range");
}

}  // namespace
}  // namespace hearth
