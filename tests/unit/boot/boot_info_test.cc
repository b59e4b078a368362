#include "boot/boot_info.h"

#include <asm/bootparam.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "boot/layout.h"
#include "test_util.h"

namespace hearth {
namespace {

constexpr uint64_t kMiB = 1 << 20;

GuestMemory MakeMemory(const std::vector<GuestRegionSpec>& regions) {
  auto mem = GuestMemory::Create(regions);
  EXPECT_TRUE(mem.ok()) << mem.error().message();
  return std::move(mem).value();
}

void ExpectEntry(const E820Entry& e, uint64_t addr, uint64_t size, E820Type type) {
  EXPECT_EQ(e.addr, addr);
  EXPECT_EQ(e.size, size);
  EXPECT_EQ(e.type, type);
}

std::string ReadCString(const GuestMemory& mem, uint64_t addr, size_t max) {
  std::vector<uint8_t> buf(max);
  EXPECT_TRUE(mem.Read(addr, buf).ok());
  auto nul = std::find(buf.begin(), buf.end(), 0);
  EXPECT_NE(nul, buf.end()) << "no NUL within " << max << " bytes";
  return std::string(buf.begin(), nul);
}

TEST(BootInfo, E820MapFor128MiB) {
  GuestMemory mem = MakeMemory(layout::RamRegions(128 * kMiB));
  auto map = BuildE820Map(mem);
  ASSERT_EQ(map.size(), 3u);
  ExpectEntry(map[0], 0, 0x9fc00, E820Type::kRam);
  ExpectEntry(map[1], 0x9fc00, 0x400, E820Type::kReserved);
  ExpectEntry(map[2], 0x100000, 127 * kMiB, E820Type::kRam);
}

TEST(BootInfo, E820MapIncludesRegionAbove4GiB) {
  // The shape RamRegions gives a large guest, with the low part kept small.
  GuestMemory mem = MakeMemory({{0, 64 * kMiB}, {0x100000000ull, 16 * kMiB}});
  auto map = BuildE820Map(mem);
  ASSERT_EQ(map.size(), 4u);
  ExpectEntry(map[0], 0, 0x9fc00, E820Type::kRam);
  ExpectEntry(map[1], 0x9fc00, 0x400, E820Type::kReserved);
  ExpectEntry(map[2], 0x100000, 63 * kMiB, E820Type::kRam);
  ExpectEntry(map[3], 0x100000000ull, 16 * kMiB, E820Type::kRam);
}

TEST(BootInfo, E820MapForRealLayoutAbove4GiB) {
  auto mem = GuestMemory::Create(layout::RamRegions(uint64_t{4} << 30));
  if (!mem.ok()) GTEST_SKIP() << "host cannot reserve 4 GiB: " << mem.error().message();
  auto map = BuildE820Map(*mem);
  ASSERT_EQ(map.size(), 4u);
  ExpectEntry(map[2], 0x100000, 0xd0000000u - 0x100000, E820Type::kRam);
  ExpectEntry(map[3], 0x100000000ull, 0x30000000u, E820Type::kRam);
}

// A kernel as LoadKernel returns for an ELF vmlinux.
LoadedKernel ElfKernel(EntryMode mode) {
  LoadedKernel k;
  k.mode = mode;
  k.entry = 0x1000000;
  k.end = 0x2000000;
  return k;
}

TEST(BootInfo, ZeroPageForElfKernel) {
  GuestMemory mem = MakeMemory(layout::RamRegions(128 * kMiB));
  BootInfo info;
  info.cmdline = "console=ttyS0 reboot=k";
  info.e820 = BuildE820Map(mem);
  ASSERT_OK(WriteBootInfo(mem, ElfKernel(EntryMode::kLinux64), info));

  auto params = mem.ReadObj<boot_params>(0x7000);
  ASSERT_OK(params);
  const setup_header& hdr = params->hdr;
  EXPECT_EQ(hdr.header, 0x53726448u);  // "HdrS"
  EXPECT_EQ(hdr.boot_flag, 0xaa55);
  EXPECT_EQ(hdr.type_of_loader, 0xff);
  EXPECT_EQ(hdr.cmd_line_ptr, 0x20000u);
  EXPECT_EQ(hdr.ramdisk_image, 0u);
  EXPECT_EQ(hdr.ramdisk_size, 0u);
  ASSERT_EQ(params->e820_entries, 3);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(params->e820_table[i].addr, info.e820[i].addr) << i;
    EXPECT_EQ(params->e820_table[i].size, info.e820[i].size) << i;
    EXPECT_EQ(params->e820_table[i].type, static_cast<uint32_t>(info.e820[i].type)) << i;
  }
  EXPECT_EQ(params->e820_table[1].type, 2u);
  EXPECT_EQ(ReadCString(mem, 0x20000, 64), "console=ttyS0 reboot=k");
}

TEST(BootInfo, ZeroPageRecordsInitrd) {
  GuestMemory mem = MakeMemory(layout::RamRegions(128 * kMiB));
  BootInfo info;
  info.cmdline = "x";
  info.initrd = LoadedInitrd{0x7f00000, 0x12345};
  info.e820 = BuildE820Map(mem);
  ASSERT_OK(WriteBootInfo(mem, ElfKernel(EntryMode::kLinux64), info));
  auto params = mem.ReadObj<boot_params>(0x7000);
  ASSERT_OK(params);
  EXPECT_EQ(params->hdr.ramdisk_image, 0x7f00000u);
  EXPECT_EQ(params->hdr.ramdisk_size, 0x12345u);
  EXPECT_EQ(params->ext_ramdisk_image, 0u);
  EXPECT_EQ(params->ext_ramdisk_size, 0u);
}

TEST(BootInfo, ZeroPageStartsFromBzImageSetupHeader) {
  // A setup header as a bzImage carries it (boot_params offsets 0x1f1..0x268).
  boot_params image{};
  std::memset(&image, 0, sizeof(image));
  image.hdr.setup_sects = 27;
  image.hdr.boot_flag = 0xaa55;
  image.hdr.jump = 0x66eb;
  image.hdr.header = 0x53726448;
  image.hdr.version = 0x020f;
  image.hdr.loadflags = LOADED_HIGH;
  image.hdr.kernel_alignment = 0x200000;
  image.hdr.relocatable_kernel = 1;
  image.hdr.xloadflags = XLF_KERNEL_64;
  image.hdr.init_size = 0x1234000;
  image.hdr.pref_address = 0x1000000;
  image.hdr.type_of_loader = 0;
  const auto* raw = reinterpret_cast<const uint8_t*>(&image);
  LoadedKernel kernel;
  kernel.mode = EntryMode::kLinux64;
  kernel.entry = 0x100200;
  kernel.setup_header.assign(raw + 0x1f1, raw + 0x268);

  GuestMemory mem = MakeMemory(layout::RamRegions(128 * kMiB));
  BootInfo info;
  info.cmdline = "quiet";
  info.initrd = LoadedInitrd{0x6000000, 0x1000};
  info.e820 = BuildE820Map(mem);
  ASSERT_OK(WriteBootInfo(mem, kernel, info));

  auto params = mem.ReadObj<boot_params>(0x7000);
  ASSERT_OK(params);
  EXPECT_EQ(params->hdr.setup_sects, 27);
  EXPECT_EQ(params->hdr.version, 0x020f);
  EXPECT_EQ(params->hdr.loadflags, LOADED_HIGH);
  EXPECT_EQ(params->hdr.kernel_alignment, 0x200000u);  // The image's, not the ELF default.
  EXPECT_EQ(params->hdr.init_size, 0x1234000u);
  EXPECT_EQ(params->hdr.pref_address, 0x1000000u);
  EXPECT_EQ(params->hdr.xloadflags, XLF_KERNEL_64);
  EXPECT_EQ(params->hdr.header, 0x53726448u);
  EXPECT_EQ(params->hdr.boot_flag, 0xaa55);
  // What the loader fills in on top.
  EXPECT_EQ(params->hdr.type_of_loader, 0xff);
  EXPECT_EQ(params->hdr.cmd_line_ptr, 0x20000u);
  EXPECT_EQ(params->hdr.ramdisk_image, 0x6000000u);
  EXPECT_EQ(params->hdr.ramdisk_size, 0x1000u);
  EXPECT_EQ(params->e820_entries, 3);
  EXPECT_EQ(ReadCString(mem, 0x20000, 16), "quiet");
}

TEST(BootInfo, ZeroPageRejectsTooManyE820Entries) {
  GuestMemory mem = MakeMemory(layout::RamRegions(128 * kMiB));
  BootInfo info;
  info.e820.assign(129, E820Entry{0x100000, 0x1000, E820Type::kRam});
  EXPECT_ERROR_CONTAINS(WriteBootInfo(mem, ElfKernel(EntryMode::kLinux64), info),
                        "e820 map has too many entries");
  info.e820.resize(128);
  EXPECT_OK(WriteBootInfo(mem, ElfKernel(EntryMode::kLinux64), info));
}

TEST(BootInfo, CommandLineNulTerminated) {
  GuestMemory mem = MakeMemory(layout::RamRegions(128 * kMiB));
  ASSERT_OK(mem.Fill(0x20000, 'Z', 0x100));  // Leftovers that must not extend the string.
  BootInfo info;
  info.cmdline = "root=/dev/vda";
  info.e820 = BuildE820Map(mem);
  ASSERT_OK(WriteBootInfo(mem, ElfKernel(EntryMode::kPvh), info));
  std::vector<uint8_t> got(14);
  ASSERT_OK(mem.Read(0x20000, got));
  EXPECT_EQ(std::string(got.begin(), got.end() - 1), "root=/dev/vda");
  EXPECT_EQ(got.back(), 0);
}

TEST(BootInfo, EmptyCommandLineIsJustNul) {
  GuestMemory mem = MakeMemory(layout::RamRegions(128 * kMiB));
  ASSERT_OK(mem.Fill(0x20000, 'Z', 0x10));
  BootInfo info;
  info.e820 = BuildE820Map(mem);
  ASSERT_OK(WriteBootInfo(mem, ElfKernel(EntryMode::kLinux64), info));
  auto b = mem.ReadObj<uint8_t>(0x20000);
  ASSERT_OK(b);
  EXPECT_EQ(*b, 0);
}

TEST(BootInfo, CommandLineTooLongRejected) {
  GuestMemory mem = MakeMemory(layout::RamRegions(128 * kMiB));
  BootInfo info;
  info.cmdline.assign(0x10000, 'a');  // No room for the NUL in the reserved area.
  EXPECT_ERROR_CONTAINS(WriteBootInfo(mem, ElfKernel(EntryMode::kLinux64), info),
                        "command line too long");
  info.cmdline.assign(0xffff, 'a');
  EXPECT_OK(WriteBootInfo(mem, ElfKernel(EntryMode::kLinux64), info));
}

TEST(BootInfo, PvhStartInfo) {
  GuestMemory mem = MakeMemory(layout::RamRegions(128 * kMiB));
  BootInfo info;
  info.cmdline = "console=ttyS0";
  info.e820 = BuildE820Map(mem);
  ASSERT_OK(WriteBootInfo(mem, ElfKernel(EntryMode::kPvh), info));

  auto start = mem.ReadObj<HvmStartInfo>(0x6000);
  ASSERT_OK(start);
  EXPECT_EQ(start->magic, 0x336ec578u);
  EXPECT_EQ(start->version, 1u);
  EXPECT_EQ(start->cmdline_paddr, 0x20000u);
  EXPECT_EQ(start->memmap_paddr, 0x7000u);
  EXPECT_EQ(start->memmap_entries, 3u);
  EXPECT_EQ(start->nr_modules, 0u);
  EXPECT_EQ(start->modlist_paddr, 0u);
  EXPECT_EQ(start->rsdp_paddr, 0u);
  for (size_t i = 0; i < 3; ++i) {
    auto entry = mem.ReadObj<HvmMemmapEntry>(0x7000 + i * sizeof(HvmMemmapEntry));
    ASSERT_OK(entry);
    EXPECT_EQ(entry->addr, info.e820[i].addr) << i;
    EXPECT_EQ(entry->size, info.e820[i].size) << i;
    EXPECT_EQ(entry->type, static_cast<uint32_t>(info.e820[i].type)) << i;
    EXPECT_EQ(entry->reserved, 0u);
  }
  EXPECT_EQ(ReadCString(mem, 0x20000, 32), "console=ttyS0");
  // No zero page in PVH mode: the bytes after the memmap stay clear.
  auto after = mem.ReadObj<uint64_t>(0x7000 + 3 * sizeof(HvmMemmapEntry));
  ASSERT_OK(after);
  EXPECT_EQ(*after, 0u);
}

TEST(BootInfo, PvhModuleListForInitrd) {
  GuestMemory mem = MakeMemory(layout::RamRegions(128 * kMiB));
  BootInfo info;
  info.initrd = LoadedInitrd{0x7e00000, 0x54321};
  info.e820 = BuildE820Map(mem);
  ASSERT_OK(WriteBootInfo(mem, ElfKernel(EntryMode::kPvh), info));
  auto start = mem.ReadObj<HvmStartInfo>(0x6000);
  ASSERT_OK(start);
  EXPECT_EQ(start->nr_modules, 1u);
  EXPECT_EQ(start->modlist_paddr, 0x6040u);
  auto module = mem.ReadObj<HvmModlistEntry>(0x6040);
  ASSERT_OK(module);
  EXPECT_EQ(module->paddr, 0x7e00000u);
  EXPECT_EQ(module->size, 0x54321u);
  EXPECT_EQ(module->cmdline_paddr, 0u);
  // The start info (56 bytes at 0x6000) and the module list do not overlap.
  EXPECT_LE(0x6000u + sizeof(HvmStartInfo), 0x6040u);
}

}  // namespace
}  // namespace hearth
