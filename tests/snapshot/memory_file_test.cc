#include "memory/memory_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "base/fd.h"
#include "test_util.h"

namespace hearth {
namespace {

using unit::TempDir;

constexpr uint64_t kPage = 4096;
const std::vector<GuestRegionSpec> kLayout = {{0, 16 * kPage}, {0x100000, 8 * kPage}};

GuestMemory Filled() {
  auto mem = GuestMemory::Create(kLayout);
  EXPECT_TRUE(mem.ok());
  GuestMemory m = std::move(mem).value();
  EXPECT_TRUE(m.WriteObj<uint64_t>(3 * kPage + 8, 0x1122334455667788ull).ok());
  EXPECT_TRUE(m.WriteObj<uint32_t>(0x100000 + 5 * kPage, 0xdeadbeef).ok());
  return m;
}

Fd OpenRw(const std::string& path) {
  auto fd = Fd::Open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  EXPECT_TRUE(fd.ok());
  return std::move(fd).value();
}

TEST(MemoryFile, FullRoundTripThroughPrivateMapping) {
  TempDir dir;
  GuestMemory m = Filled();
  {
    Fd fd = OpenRw(dir.File("mem"));
    ASSERT_OK(SaveFullMemory(m, fd.get(), "mem"));
  }
  EXPECT_EQ(std::filesystem::file_size(dir.File("mem")), 24 * kPage);
  auto fd = Fd::Open(dir.File("mem"), O_RDONLY);
  ASSERT_OK(fd);
  auto restored = GuestMemory::CreateFromFile(kLayout, fd->get(), "mem");
  ASSERT_OK(restored);
  EXPECT_EQ(*restored->ReadObj<uint64_t>(3 * kPage + 8), 0x1122334455667788ull);
  EXPECT_EQ(*restored->ReadObj<uint32_t>(0x100000 + 5 * kPage), 0xdeadbeefu);
  EXPECT_EQ(*restored->ReadObj<uint64_t>(0), 0u);
  // Writes stay private: the file is unchanged, and a second mapping does not see them.
  ASSERT_OK(restored->WriteObj<uint64_t>(3 * kPage + 8, 1));
  auto fd2 = Fd::Open(dir.File("mem"), O_RDONLY);
  auto clone = GuestMemory::CreateFromFile(kLayout, fd2->get(), "mem");
  ASSERT_OK(clone);
  EXPECT_EQ(*clone->ReadObj<uint64_t>(3 * kPage + 8), 0x1122334455667788ull);
}

TEST(MemoryFile, WrongSizeIsRefused) {
  TempDir dir;
  std::string path = dir.Write("mem", std::vector<uint8_t>(23 * kPage));
  auto fd = Fd::Open(path, O_RDONLY);
  ASSERT_OK(fd);
  EXPECT_ERROR_CONTAINS(GuestMemory::CreateFromFile(kLayout, fd->get(), path),
                        "holds 94208 bytes, the snapshot's guest memory is 98304 bytes");
}

TEST(MemoryFile, DiffMergedOntoBaseEqualsNewState) {
  TempDir dir;
  GuestMemory m = Filled();
  {
    Fd fd = OpenRw(dir.File("base"));
    ASSERT_OK(SaveFullMemory(m, fd.get(), "base"));
  }
  // Change two pages (one in each region), including one back to zero.
  ASSERT_OK(m.WriteObj<uint64_t>(3 * kPage + 8, 0));
  ASSERT_OK(m.WriteObj<uint64_t>(0x100000 + 7 * kPage, 42));
  std::vector<std::vector<uint64_t>> dirty = {{1ull << 3}, {1ull << 7}};
  {
    Fd fd = OpenRw(dir.File("diff"));
    ASSERT_OK(SaveDirtyMemory(m, fd.get(), dirty, "diff"));
  }
  ASSERT_OK(MergeDiffMemoryFile(dir.File("diff"), dir.File("base")));
  auto fd = Fd::Open(dir.File("base"), O_RDONLY);
  auto merged = GuestMemory::CreateFromFile(kLayout, fd->get(), "base");
  ASSERT_OK(merged);
  EXPECT_EQ(*merged->ReadObj<uint64_t>(3 * kPage + 8), 0u);
  EXPECT_EQ(*merged->ReadObj<uint64_t>(0x100000 + 7 * kPage), 42u);
  EXPECT_EQ(*merged->ReadObj<uint32_t>(0x100000 + 5 * kPage), 0xdeadbeefu);  // Untouched page kept.
}

TEST(MemoryFile, MergeRefusesSizeMismatch) {
  TempDir dir;
  std::string a = dir.Write("a", std::vector<uint8_t>(kPage));
  std::string b = dir.Write("b", std::vector<uint8_t>(2 * kPage));
  EXPECT_ERROR_CONTAINS(MergeDiffMemoryFile(a, b), "does not match base");
}

TEST(MemoryFile, DirtyBitmapCountMustMatchRegions) {
  TempDir dir;
  GuestMemory m = Filled();
  Fd fd = OpenRw(dir.File("diff"));
  EXPECT_ERROR_CONTAINS(SaveDirtyMemory(m, fd.get(), {{0}}, "diff"), "1 dirty bitmaps for 2 memory regions");
}

}  // namespace
}  // namespace hearth

namespace hearth {
namespace {

TEST(GuestMemoryWriteTracking, MarksWrittenPagesAndClears) {
  auto mem = GuestMemory::Create(kLayout);
  ASSERT_OK(mem);
  ASSERT_OK(mem->WriteObj<uint32_t>(2 * kPage, 1));  // Not tracked yet.
  mem->EnableWriteTracking();
  ASSERT_OK(mem->WriteObj<uint64_t>(5 * kPage - 4, 1));  // Straddles pages 4 and 5.
  ASSERT_OK(mem->Fill(0x100000 + kPage, 0xff, 10));
  std::vector<iovec> iov;
  ASSERT_OK(mem->AppendIoVecs(0x100000 + 6 * kPage, 2 * kPage, iov));
  auto bits = mem->TakeWrittenBitmaps();
  ASSERT_EQ(bits.size(), 2u);
  EXPECT_EQ(bits[0][0], (1ull << 4) | (1ull << 5));
  EXPECT_EQ(bits[1][0], (1ull << 1) | (1ull << 6) | (1ull << 7));
  auto again = mem->TakeWrittenBitmaps();
  EXPECT_EQ(again[0][0], 0u);
  EXPECT_EQ(again[1][0], 0u);
}

}  // namespace
}  // namespace hearth
