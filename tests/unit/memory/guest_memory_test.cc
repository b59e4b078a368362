#include "memory/guest_memory.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <vector>

#include "base/fd.h"
#include "test_util.h"

namespace hearth {
namespace {

using unit::Pattern;

constexpr uint64_t kPage = 4096;

// Two regions with a hole: [0x0, 0x4000) and [0x10000, 0x12000).
GuestMemory TwoRegions() {
  auto mem = GuestMemory::Create({{0x10000, 0x2000}, {0, 0x4000}});  // Unsorted on purpose.
  EXPECT_TRUE(mem.ok()) << mem.error().message();
  return std::move(mem).value();
}

std::vector<uint8_t> ReadBack(const GuestMemory& mem, uint64_t addr, size_t n) {
  std::vector<uint8_t> out(n, 0xcc);
  Status s = mem.Read(addr, out);
  EXPECT_TRUE(s.ok()) << s.error().message();
  return out;
}

TEST(GuestMemory, SingleRegionWriteReadRoundTrip) {
  auto mem = GuestMemory::Create({{0, 16 * kPage}});
  ASSERT_OK(mem);
  EXPECT_EQ(mem->regions().size(), 1u);
  EXPECT_EQ(mem->total_size(), 16 * kPage);
  EXPECT_EQ(mem->end_addr(), 16 * kPage);

  auto data = Pattern(100);
  ASSERT_OK(mem->Write(0x1234, data));
  EXPECT_EQ(ReadBack(*mem, 0x1234, 100), data);
  // Fresh memory reads as zeros around the write.
  EXPECT_EQ(ReadBack(*mem, 0x1234 - 4, 4), std::vector<uint8_t>(4, 0));
  EXPECT_EQ(ReadBack(*mem, 0x1234 + 100, 4), std::vector<uint8_t>(4, 0));
}

TEST(GuestMemory, RegionsSortedWithHole) {
  GuestMemory mem = TwoRegions();
  ASSERT_EQ(mem.regions().size(), 2u);
  EXPECT_EQ(mem.regions()[0].guest_addr, 0u);
  EXPECT_EQ(mem.regions()[0].size(), 0x4000u);
  EXPECT_EQ(mem.regions()[1].guest_addr, 0x10000u);
  EXPECT_EQ(mem.regions()[1].end(), 0x12000u);
  EXPECT_EQ(mem.total_size(), 0x6000u);
  EXPECT_EQ(mem.end_addr(), 0x12000u);
}

TEST(GuestMemory, AccessesAtRegionEdges) {
  GuestMemory mem = TwoRegions();
  // Last 8 bytes of the first region, first 8 bytes of the second.
  auto a = Pattern(8, 10);
  auto b = Pattern(8, 90);
  ASSERT_OK(mem.Write(0x4000 - 8, a));
  ASSERT_OK(mem.Write(0x10000, b));
  EXPECT_EQ(ReadBack(mem, 0x4000 - 8, 8), a);
  EXPECT_EQ(ReadBack(mem, 0x10000, 8), b);
  // The very last byte of guest RAM.
  std::array<uint8_t, 1> last = {0x5a};
  ASSERT_OK(mem.Write(0x12000 - 1, last));
  EXPECT_EQ(ReadBack(mem, 0x12000 - 1, 1), std::vector<uint8_t>{0x5a});
  EXPECT_TRUE(mem.IsValidRange(0x4000 - 8, 8));
  EXPECT_TRUE(mem.IsValidRange(0, 0x4000));
}

TEST(GuestMemory, RejectsAccessAcrossRegionEnd) {
  GuestMemory mem = TwoRegions();
  std::vector<uint8_t> buf(16, 0xab);
  EXPECT_ERROR_CONTAINS(mem.Write(0x4000 - 8, buf), "guest memory access [0x3ff8, +0x10) is outside guest RAM");
  EXPECT_ERROR_CONTAINS(mem.Read(0x12000 - 8, buf), "[0x11ff8, +0x10) is outside guest RAM");
  EXPECT_FALSE(mem.IsValidRange(0x4000 - 8, 9));
  // Nothing was written by the refused write.
  EXPECT_EQ(ReadBack(mem, 0x4000 - 8, 8), std::vector<uint8_t>(8, 0));
}

TEST(GuestMemory, RejectsAccessSpanningTheHole) {
  GuestMemory mem = TwoRegions();
  // From inside region 0 to inside region 1: both ends are RAM, the middle is not.
  std::vector<uint8_t> buf(0x10000 - 0x3000 + 0x10, 1);
  EXPECT_FALSE(mem.Write(0x3000, buf).ok());
  EXPECT_FALSE(mem.IsValidRange(0x3000, buf.size()));
  // Inside the hole.
  std::array<uint8_t, 1> one{};
  EXPECT_ERROR_CONTAINS(mem.Read(0x8000, one), "[0x8000, +0x1) is outside guest RAM");
  EXPECT_FALSE(mem.IsValidRange(0x4000, 1));
  EXPECT_FALSE(mem.IsValidRange(0x12000, 1));
}

// Fails (under HEARTH_SANITIZE) until src/memory/guest_memory.cc: Read/Write call memcpy with the
// empty span's null data() pointer, which is undefined behaviour even for 0 bytes.
TEST(GuestMemory, ZeroLengthAccessValidOnlyInsideRam) {
  GuestMemory mem = TwoRegions();
  EXPECT_TRUE(mem.IsValidRange(0x100, 0));
  EXPECT_OK(mem.Read(0x100, std::span<uint8_t>()));
  EXPECT_OK(mem.Write(0x10000, std::span<const uint8_t>()));
  EXPECT_FALSE(mem.IsValidRange(0x8000, 0));
  EXPECT_FALSE(mem.Read(0x8000, std::span<uint8_t>()).ok());
  EXPECT_FALSE(mem.IsValidRange(0x12000, 0));  // One past the end is not inside a region.
}

TEST(GuestMemory, RejectsOverflowingAddressPlusLength) {
  GuestMemory mem = TwoRegions();
  std::vector<uint8_t> buf(0x20, 0xee);
  EXPECT_ERROR_CONTAINS(mem.Write(0xfffffffffffffff0ull, buf),
                        "[0xfffffffffffffff0, +0x20) is outside guest RAM");
  EXPECT_FALSE(mem.IsValidRange(0xfffffffffffffff0ull, 0x20));
  // A huge length from a valid start must not wrap around into a "valid" range.
  EXPECT_FALSE(mem.IsValidRange(0x10, 0xfffffffffffffff8ull));
  EXPECT_FALSE(mem.Fill(0x10, 0, 0xffffffffffffffffull).ok());
}

TEST(GuestMemory, ReadObjWriteObjRoundTrip) {
  GuestMemory mem = TwoRegions();
  struct Obj {
    uint32_t a;
    uint16_t b;
    uint8_t c[10];
  };
  Obj in{0xdeadbeef, 0x1234, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}};
  ASSERT_OK(mem.WriteObj(0x10100, in));
  auto out = mem.ReadObj<Obj>(0x10100);
  ASSERT_OK(out);
  EXPECT_EQ(out->a, 0xdeadbeefu);
  EXPECT_EQ(out->b, 0x1234);
  EXPECT_EQ(out->c[9], 10);
  // Little-endian bytes in memory.
  EXPECT_EQ(ReadBack(mem, 0x10100, 4), (std::vector<uint8_t>{0xef, 0xbe, 0xad, 0xde}));

  EXPECT_ERROR_CONTAINS(mem.ReadObj<uint64_t>(0x4000 - 4), "is outside guest RAM");
  EXPECT_FALSE(mem.WriteObj(0x12000 - 2, uint32_t{1}).ok());
}

TEST(GuestMemory, FillSetsExactRange) {
  GuestMemory mem = TwoRegions();
  ASSERT_OK(mem.Fill(0x100, 0x7e, 0x20));
  auto got = ReadBack(mem, 0xff, 0x22);
  EXPECT_EQ(got[0], 0);
  for (size_t i = 1; i <= 0x20; ++i) EXPECT_EQ(got[i], 0x7e) << i;
  EXPECT_EQ(got[0x21], 0);
  EXPECT_ERROR_CONTAINS(mem.Fill(0x3ff0, 1, 0x20), "[0x3ff0, +0x20)");
  EXPECT_EQ(ReadBack(mem, 0x3ff0, 0x10), std::vector<uint8_t>(0x10, 0));
}

TEST(GuestMemory, ReadFromFileCopiesBytes) {
  unit::TempDir dir;
  auto content = Pattern(10000, 3);
  std::string path = dir.Write("blob", content);
  auto fd = Fd::Open(path, O_RDONLY);
  ASSERT_OK(fd);
  GuestMemory mem = TwoRegions();
  ASSERT_OK(mem.ReadFromFile(0x10010, fd->get(), 100, 5000, "blob"));
  std::vector<uint8_t> want(content.begin() + 100, content.begin() + 5100);
  EXPECT_EQ(ReadBack(mem, 0x10010, 5000), want);
  EXPECT_EQ(ReadBack(mem, 0x10010 + 5000, 1), std::vector<uint8_t>{0});
}

TEST(GuestMemory, ReadFromFileRejectsShortFile) {
  unit::TempDir dir;
  std::string path = dir.Write("short", Pattern(100));
  auto fd = Fd::Open(path, O_RDONLY);
  ASSERT_OK(fd);
  GuestMemory mem = TwoRegions();
  EXPECT_ERROR_CONTAINS(mem.ReadFromFile(0x1000, fd->get(), 0, 200, "my file"),
                        "read my file: file is truncated");
}

TEST(GuestMemory, ReadFromFileOutOfRangeWritesNothing) {
  unit::TempDir dir;
  std::string path = dir.Write("blob", Pattern(0x2000, 9));
  auto fd = Fd::Open(path, O_RDONLY);
  ASSERT_OK(fd);
  GuestMemory mem = TwoRegions();
  EXPECT_ERROR_CONTAINS(mem.ReadFromFile(0x3000, fd->get(), 0, 0x2000, "my file"),
                        "my file: guest memory access [0x3000, +0x2000) is outside guest RAM");
  EXPECT_EQ(ReadBack(mem, 0x3000, 0x1000), std::vector<uint8_t>(0x1000, 0));
}

TEST(GuestMemory, WriteToFileCopiesGuestBytes) {
  unit::TempDir dir;
  std::string path = dir.Write("out", std::vector<uint8_t>(16, 0xee));
  auto fd = Fd::Open(path, O_RDWR);
  ASSERT_OK(fd);
  GuestMemory mem = TwoRegions();
  auto data = Pattern(0x1800, 4);
  ASSERT_OK(mem.Write(0x10100, data));
  ASSERT_OK(mem.WriteToFile(0x10100, fd->get(), 8, data.size(), "out"));
  std::vector<uint8_t> got(8 + data.size());
  ASSERT_OK(PreadExact(fd->get(), got.data(), got.size(), 0, "out"));
  EXPECT_EQ(std::vector<uint8_t>(got.begin(), got.begin() + 8), std::vector<uint8_t>(8, 0xee));
  EXPECT_EQ(std::vector<uint8_t>(got.begin() + 8, got.end()), data);
}

TEST(GuestMemory, WriteToFileOutOfRangeWritesNothing) {
  unit::TempDir dir;
  std::string path = dir.Write("out", {});
  auto fd = Fd::Open(path, O_RDWR);
  ASSERT_OK(fd);
  GuestMemory mem = TwoRegions();
  EXPECT_ERROR_CONTAINS(mem.WriteToFile(0x11000, fd->get(), 0, 0x2000, "disk"),
                        "disk: guest memory access [0x11000, +0x2000) is outside guest RAM");
  auto size = RegularFileSize(fd->get(), path);
  ASSERT_OK(size);
  EXPECT_EQ(*size, 0u);
}

TEST(GuestMemory, AppendIoVecsCoversCheckedRange) {
  GuestMemory mem = TwoRegions();
  auto data = Pattern(0x30, 6);
  ASSERT_OK(mem.Write(0x10010, data));
  std::vector<iovec> iov;
  ASSERT_OK(mem.AppendIoVecs(0x10010, 0x30, iov));
  ASSERT_OK(mem.AppendIoVecs(0x10000, 0, iov));  // Zero length: valid, adds nothing.
  ASSERT_EQ(iov.size(), 1u);
  EXPECT_EQ(iov[0].iov_len, 0x30u);
  const auto* p = static_cast<const uint8_t*>(iov[0].iov_base);
  EXPECT_EQ(std::vector<uint8_t>(p, p + 0x30), data);
  EXPECT_ERROR_CONTAINS(mem.AppendIoVecs(0x3ff0, 0x20, iov), "[0x3ff0, +0x20) is outside guest RAM");
  EXPECT_ERROR_CONTAINS(mem.AppendIoVecs(0xfffffffffffffff0ull, 0x20, iov), "is outside guest RAM");
  EXPECT_EQ(iov.size(), 1u);  // Failed calls append nothing.
}

TEST(GuestMemory, CreateRejectsUnalignedRegions) {
  EXPECT_ERROR_CONTAINS(GuestMemory::Create({{0x800, kPage}}),
                        "guest memory region 0x800+0x1000 is empty or not page-aligned");
  EXPECT_ERROR_CONTAINS(GuestMemory::Create({{0, kPage + 1}}), "not page-aligned");
}

TEST(GuestMemory, CreateRejectsEmptyRegion) {
  EXPECT_ERROR_CONTAINS(GuestMemory::Create({{0x1000, 0}}), "0x1000+0x0 is empty");
}

TEST(GuestMemory, CreateRejectsOverlappingRegions) {
  EXPECT_ERROR_CONTAINS(GuestMemory::Create({{0, 0x3000}, {0x2000, 0x1000}}),
                        "guest memory regions overlap at 0x2000");
  // Same start.
  EXPECT_ERROR_CONTAINS(GuestMemory::Create({{0x1000, 0x1000}, {0x1000, 0x1000}}),
                        "overlap at 0x1000");
}

TEST(GuestMemory, CreateAcceptsAdjacentRegions) {
  auto mem = GuestMemory::Create({{0, 0x1000}, {0x1000, 0x1000}});
  ASSERT_OK(mem);
  EXPECT_EQ(mem->total_size(), 0x2000u);
  // Adjacent regions are still separate mappings: one access may not span both.
  EXPECT_FALSE(mem->IsValidRange(0xff8, 0x10));
  EXPECT_TRUE(mem->IsValidRange(0x1000, 0x10));
}

TEST(GuestMemory, CreateRejectsWrappingRegion) {
  EXPECT_ERROR_CONTAINS(GuestMemory::Create({{0xfffffffffffff000ull, 0x2000}}), "wraps around");
}

}  // namespace
}  // namespace hearth
