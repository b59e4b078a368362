#include "boot/kernel_loader.h"

#include <asm/bootparam.h>
#include <elf.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "boot/layout.h"
#include "test_util.h"

namespace hearth {
namespace {

using unit::Pattern;
using unit::TempDir;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kRam = 32 * kMiB;
constexpr uint64_t kPayloadBase = 0x1000;  // Segment data starts here in crafted ELF files.

GuestMemory MakeMemory(uint64_t bytes = kRam) {
  auto mem = GuestMemory::Create(layout::RamRegions(bytes));
  EXPECT_TRUE(mem.ok()) << mem.error().message();
  return std::move(mem).value();
}

std::vector<uint8_t> ReadGuest(const GuestMemory& mem, uint64_t addr, size_t n) {
  std::vector<uint8_t> out(n);
  Status s = mem.Read(addr, out);
  EXPECT_TRUE(s.ok()) << s.error().message();
  return out;
}

// An ELF64 executable under construction: tests adjust any field before serialising.
struct ElfImage {
  Elf64_Ehdr eh{};
  std::vector<Elf64_Phdr> ph;
  std::vector<uint8_t> payload;  // Placed at file offset kPayloadBase.

  ElfImage() {
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_entry = 0x100000;
    eh.e_phoff = sizeof(Elf64_Ehdr);
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
  }

  // Appends `data` to the payload (16-byte aligned) and returns its file offset.
  uint64_t AddData(const std::vector<uint8_t>& data) {
    while (payload.size() % 16 != 0) payload.push_back(0);
    uint64_t offset = kPayloadBase + payload.size();
    payload.insert(payload.end(), data.begin(), data.end());
    return offset;
  }

  Elf64_Phdr& AddLoad(uint64_t paddr, const std::vector<uint8_t>& data, uint64_t memsz = 0) {
    Elf64_Phdr p{};
    p.p_type = PT_LOAD;
    p.p_flags = PF_R | PF_X;
    p.p_offset = AddData(data);
    p.p_vaddr = 0xffffffff80000000ull + paddr;
    p.p_paddr = paddr;
    p.p_filesz = data.size();
    p.p_memsz = memsz != 0 ? memsz : data.size();
    p.p_align = 0x1000;
    ph.push_back(p);
    eh.e_phnum = static_cast<Elf64_Half>(ph.size());
    return ph.back();
  }

  Elf64_Phdr& AddNoteSegment(const std::vector<uint8_t>& notes) {
    Elf64_Phdr p{};
    p.p_type = PT_NOTE;
    p.p_offset = AddData(notes);
    p.p_filesz = notes.size();
    p.p_memsz = notes.size();
    p.p_align = 4;
    ph.push_back(p);
    eh.e_phnum = static_cast<Elf64_Half>(ph.size());
    return ph.back();
  }

  std::vector<uint8_t> Bytes() const {
    std::vector<uint8_t> out(kPayloadBase, 0);
    std::memcpy(out.data(), &eh, sizeof(eh));
    EXPECT_LE(sizeof(eh) + ph.size() * sizeof(Elf64_Phdr), kPayloadBase);
    if (!ph.empty()) std::memcpy(out.data() + sizeof(eh), ph.data(), ph.size() * sizeof(Elf64_Phdr));
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
  }
};

template <typename T>
std::vector<uint8_t> Bytes(const T& value) {
  std::vector<uint8_t> out;
  out.reserve(256);
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  out.insert(out.end(), p, p + sizeof(T));
  return out;
}

// One ELF note: header, name padded to 4, descriptor padded to 4.
std::vector<uint8_t> Note(const std::string& name_with_nul, uint32_t type,
                          const std::vector<uint8_t>& desc) {
  Elf64_Nhdr nh{};
  nh.n_namesz = static_cast<Elf64_Word>(name_with_nul.size());
  nh.n_descsz = static_cast<Elf64_Word>(desc.size());
  nh.n_type = type;
  std::vector<uint8_t> out = Bytes(nh);
  out.insert(out.end(), name_with_nul.begin(), name_with_nul.end());
  while (out.size() % 4 != 0) out.push_back(0);
  out.insert(out.end(), desc.begin(), desc.end());
  while (out.size() % 4 != 0) out.push_back(0);
  return out;
}

std::vector<uint8_t> Le(uint64_t v, size_t n) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
  return out;
}

std::vector<uint8_t> XenPvhNote(uint64_t entry, size_t desc_size) {
  return Note(std::string("Xen\0", 4), 18, Le(entry, desc_size));
}

std::vector<uint8_t> Concat(std::vector<uint8_t> a, const std::vector<uint8_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// --- ELF -----------------------------------------------------------------------------------

TEST(KernelLoader, LoadsElfSegmentAndZeroesBss) {
  TempDir dir;
  ElfImage elf;
  auto text = Pattern(0x3000, 5);
  elf.AddLoad(0x100000, text, 0x5000);
  elf.eh.e_entry = 0x100010;
  std::string path = dir.Write("vmlinux", elf.Bytes());

  GuestMemory mem = MakeMemory();
  // Dirty the bss and one page beyond, to see what the loader zeroes and what it leaves.
  ASSERT_OK(mem.Fill(0x100000, 0xff, 0x6000));
  auto kernel = LoadKernel(mem, path);
  ASSERT_OK(kernel);
  EXPECT_EQ(kernel->mode, EntryMode::kLinux64);
  EXPECT_EQ(kernel->entry, 0x100010u);
  EXPECT_EQ(kernel->end, 0x105000u);
  EXPECT_TRUE(kernel->setup_header.empty());
  EXPECT_EQ(kernel->cmdline_capacity, 2048u);
  EXPECT_EQ(ReadGuest(mem, 0x100000, 0x3000), text);
  EXPECT_EQ(ReadGuest(mem, 0x103000, 0x2000), std::vector<uint8_t>(0x2000, 0));
  EXPECT_EQ(ReadGuest(mem, 0x105000, 0x1000), std::vector<uint8_t>(0x1000, 0xff));
}

TEST(KernelLoader, LoadsEveryElfSegmentAndEndIsHighest) {
  TempDir dir;
  ElfImage elf;
  auto a = Pattern(0x800, 1);
  auto b = Pattern(0x400, 77);
  elf.AddLoad(0x400000, b, 0x1000);
  elf.AddLoad(0x100000, a);
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  auto kernel = LoadKernel(mem, path);
  ASSERT_OK(kernel);
  EXPECT_EQ(kernel->end, 0x401000u);
  EXPECT_EQ(ReadGuest(mem, 0x100000, a.size()), a);
  EXPECT_EQ(ReadGuest(mem, 0x400000, b.size()), b);
}

TEST(KernelLoader, ElfWithPvhNote4ByteDescUsesPvhEntry) {
  TempDir dir;
  ElfImage elf;
  elf.AddLoad(0x100000, Pattern(0x1000));
  // An unrelated note first: the loader must walk past it.
  elf.AddNoteSegment(Concat(Note(std::string("GNU\0", 4), 3, Pattern(20)),
                            XenPvhNote(0x100400, 4)));
  elf.eh.e_entry = 0x100800;
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  auto kernel = LoadKernel(mem, path);
  ASSERT_OK(kernel);
  EXPECT_EQ(kernel->mode, EntryMode::kPvh);
  EXPECT_EQ(kernel->entry, 0x100400u);
}

TEST(KernelLoader, ElfWithPvhNote8ByteDescUsesPvhEntry) {
  TempDir dir;
  ElfImage elf;
  elf.AddNoteSegment(XenPvhNote(0x100c00, 8));
  elf.AddLoad(0x100000, Pattern(0x1000));
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  auto kernel = LoadKernel(mem, path);
  ASSERT_OK(kernel);
  EXPECT_EQ(kernel->mode, EntryMode::kPvh);
  EXPECT_EQ(kernel->entry, 0x100c00u);
}

TEST(KernelLoader, ElfXenNoteOfOtherTypeIsNotPvh) {
  TempDir dir;
  ElfImage elf;
  elf.AddNoteSegment(Note(std::string("Xen\0", 4), 17, Le(0x100400, 4)));
  elf.AddLoad(0x100000, Pattern(0x1000));
  elf.eh.e_entry = 0x100200;
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  auto kernel = LoadKernel(mem, path);
  ASSERT_OK(kernel);
  EXPECT_EQ(kernel->mode, EntryMode::kLinux64);
  EXPECT_EQ(kernel->entry, 0x100200u);
}

TEST(KernelLoader, ElfPvhNoteWithBadDescSizeRejected) {
  TempDir dir;
  ElfImage elf;
  elf.AddNoteSegment(XenPvhNote(0x100400, 2));
  elf.AddLoad(0x100000, Pattern(0x1000));
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "PVH entry note has a bad size");
}

TEST(KernelLoader, ElfNoteWithGarbageSizesIsIgnoredSafely) {
  TempDir dir;
  ElfImage elf;
  // Sizes far beyond the segment: the walk must stop, not read past the buffer.
  Elf64_Nhdr nh{0xfffffffc, 0xfffffff0, 18};
  std::vector<uint8_t> notes = Bytes(nh);
  notes.insert(notes.end(), {'X', 'e', 'n', 0});
  elf.AddNoteSegment(notes);
  // A second note segment that is too short for even a header.
  elf.AddNoteSegment({1, 2, 3, 4, 5});
  // A note whose name size reaches exactly one byte past the segment.
  Elf64_Nhdr nh2{5, 0, 18};
  std::vector<uint8_t> notes2 = Bytes(nh2);
  notes2.insert(notes2.end(), {'X', 'e', 'n', 0});
  elf.AddNoteSegment(notes2);
  elf.AddLoad(0x100000, Pattern(0x1000));
  elf.eh.e_entry = 0x100000;
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  auto kernel = LoadKernel(mem, path);
  ASSERT_OK(kernel);
  EXPECT_EQ(kernel->mode, EntryMode::kLinux64);
  EXPECT_EQ(kernel->entry, 0x100000u);
}

TEST(KernelLoader, ElfNoteSegmentOutsideFileRejected) {
  TempDir dir;
  ElfImage elf;
  Elf64_Phdr& note = elf.AddNoteSegment(XenPvhNote(0x100400, 4));
  note.p_filesz = 0x100000;  // Far past the end of the file.
  elf.AddLoad(0x100000, Pattern(0x1000));
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "ELF note segment lies outside the file");
}

TEST(KernelLoader, ElfWithoutNoteUsesElfEntry) {
  TempDir dir;
  ElfImage elf;
  elf.AddLoad(0x200000, Pattern(0x2000));
  elf.eh.e_entry = 0x201000;
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  auto kernel = LoadKernel(mem, path);
  ASSERT_OK(kernel);
  EXPECT_EQ(kernel->mode, EntryMode::kLinux64);
  EXPECT_EQ(kernel->entry, 0x201000u);
}

TEST(KernelLoader, ElfEntryOutsideRamRejected) {
  TempDir dir;
  ElfImage elf;
  elf.AddLoad(0x100000, Pattern(0x1000));
  elf.eh.e_entry = 0x50;
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "entry point 0x50 is not in the loaded kernel");
  elf.eh.e_entry = 0xffffffff81000000ull;  // A virtual address.
  path = dir.Write("vmlinux2", elf.Bytes());
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "entry point 0xffffffff81000000");
}

TEST(KernelLoader, ElfTruncatedHeaderRejected) {
  TempDir dir;
  ElfImage elf;
  elf.AddLoad(0x100000, Pattern(0x100));
  auto bytes = elf.Bytes();
  bytes.resize(40);
  std::string path = dir.Write("vmlinux", bytes);
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "kernel " + path + ": ELF header is truncated");
}

TEST(KernelLoader, ElfTruncatedProgramHeadersRejected) {
  TempDir dir;
  ElfImage elf;
  elf.AddLoad(0x100000, Pattern(0x100));
  elf.AddLoad(0x200000, Pattern(0x100));
  auto bytes = elf.Bytes();
  bytes.resize(sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr) + 10);
  std::string path = dir.Write("vmlinux", bytes);
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "ELF program headers lie outside the file");
}

TEST(KernelLoader, ElfProgramHeaderOffsetOverflowRejected) {
  TempDir dir;
  ElfImage elf;
  elf.AddLoad(0x100000, Pattern(0x100));
  elf.eh.e_phoff = 0xffffffffffffffe0ull;
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "ELF program headers lie outside the file");
}

TEST(KernelLoader, ElfSegmentBeyondFileEndRejected) {
  TempDir dir;
  ElfImage elf;
  Elf64_Phdr& seg = elf.AddLoad(0x100000, Pattern(0x100));
  seg.p_filesz = 0x200;  // 0x100 bytes more than the file has.
  seg.p_memsz = 0x200;
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "ELF segment lies outside the file");
}

TEST(KernelLoader, ElfSegmentOffsetOverflowRejected) {
  TempDir dir;
  ElfImage elf;
  Elf64_Phdr& seg = elf.AddLoad(0x100000, Pattern(0x100));
  seg.p_offset = 0xffffffffffffff80ull;
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "ELF segment lies outside the file");
}

TEST(KernelLoader, ElfFileSizeAboveMemorySizeRejected) {
  TempDir dir;
  ElfImage elf;
  Elf64_Phdr& seg = elf.AddLoad(0x100000, Pattern(0x100));
  seg.p_memsz = 0x80;
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "ELF segment's file size exceeds its memory size");
}

TEST(KernelLoader, ElfSegmentBelow1MiBRejected) {
  TempDir dir;
  ElfImage elf;
  elf.AddLoad(0x80000, Pattern(0x100));
  elf.eh.e_entry = 0x80000;
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "segment at 0x80000 is below 1 MiB");
  // The VMM's boot area stays untouched.
  EXPECT_EQ(ReadGuest(mem, 0x80000, 0x100), std::vector<uint8_t>(0x100, 0));
}

TEST(KernelLoader, ElfSegmentBeyondGuestRamRejected) {
  TempDir dir;
  ElfImage elf;
  elf.AddLoad(kRam - 0x1000, Pattern(0x100), 0x2000);  // bss runs past the end of RAM.
  elf.eh.e_entry = kRam - 0x1000;
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "kernel " + path + " does not fit in guest memory");
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "guest RAM ends at 0x2000000");
}

TEST(KernelLoader, ElfHugeMemorySizeOverflowRejected) {
  TempDir dir;
  ElfImage elf;
  elf.AddLoad(0x100000, Pattern(0x100), 0xffffffffffff0000ull);
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "segment address overflows");
}

TEST(KernelLoader, Elf32BitRejected) {
  TempDir dir;
  ElfImage elf;
  elf.AddLoad(0x100000, Pattern(0x100));
  elf.eh.e_ident[EI_CLASS] = ELFCLASS32;
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "not a 64-bit ELF file");
}

TEST(KernelLoader, ElfBigEndianRejected) {
  TempDir dir;
  ElfImage elf;
  elf.AddLoad(0x100000, Pattern(0x100));
  elf.eh.e_ident[EI_DATA] = ELFDATA2MSB;
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "not a little-endian ELF file");
}

TEST(KernelLoader, ElfWrongMachineRejected) {
  TempDir dir;
  ElfImage elf;
  elf.AddLoad(0x100000, Pattern(0x100));
  elf.eh.e_machine = EM_AARCH64;
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "ELF machine is not x86_64");
}

TEST(KernelLoader, ElfNotExecutableRejected) {
  TempDir dir;
  ElfImage elf;
  elf.AddLoad(0x100000, Pattern(0x100));
  elf.eh.e_type = ET_DYN;
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "ELF file is not an executable");
}

TEST(KernelLoader, ElfBadProgramHeaderSizeRejected) {
  TempDir dir;
  ElfImage elf;
  elf.AddLoad(0x100000, Pattern(0x100));
  elf.eh.e_phentsize = 32;
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "bad ELF program header size");
}

TEST(KernelLoader, ElfWithoutLoadSegmentRejected) {
  TempDir dir;
  ElfImage elf;
  elf.AddNoteSegment(Note(std::string("GNU\0", 4), 3, Pattern(8)));
  Elf64_Phdr& empty = elf.AddLoad(0x100000, {});  // memsz 0: nothing to load.
  empty.p_memsz = 0;
  std::string path = dir.Write("vmlinux", elf.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "ELF file has no loadable segment");
}

TEST(KernelLoader, ElfProgramHeaderCountLimits) {
  TempDir dir;
  GuestMemory mem = MakeMemory();
  ElfImage none;
  none.AddData(Pattern(0x100));
  std::string path = dir.Write("none", none.Bytes());
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "ELF has 0 program headers");

  ElfImage many;
  many.AddLoad(0x100000, Pattern(0x100));
  many.eh.e_phnum = 129;
  path = dir.Write("many", many.Bytes());
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "ELF has 129 program headers");
}

// --- bzImage -------------------------------------------------------------------------------

struct BzImage {
  boot_params params{};
  std::vector<uint8_t> kernel;

  BzImage() {
    std::memset(&params, 0, sizeof(params));
    setup_header& h = params.hdr;
    h.setup_sects = 4;
    h.boot_flag = 0xaa55;
    h.jump = 0x66eb;  // "jmp short 0x268": the header ends at 0x202 + 0x66.
    h.header = 0x53726448;
    h.version = 0x020f;
    h.loadflags = LOADED_HIGH;
    h.initrd_addr_max = 0x7fffffff;
    h.kernel_alignment = 0x1000000;
    h.relocatable_kernel = 1;
    h.xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G;
    h.cmdline_size = 2047;
    h.pref_address = 0x1000000;
    h.init_size = 0x800000;
    kernel = Pattern(0x3000, 11);
  }
  uint64_t setup_size() const {
    return (uint64_t{params.hdr.setup_sects == 0 ? 4u : params.hdr.setup_sects} + 1) * 512;
  }
  std::vector<uint8_t> Bytes() const {
    std::vector<uint8_t> out(setup_size(), 0);
    std::memcpy(out.data(), &params, std::min<size_t>(out.size(), 0x290));
    out.insert(out.end(), kernel.begin(), kernel.end());
    return out;
  }
};

TEST(KernelLoader, LoadsBzImage) {
  TempDir dir;
  BzImage bz;
  auto bytes = bz.Bytes();
  std::string path = dir.Write("bzImage", bytes);
  GuestMemory mem = MakeMemory();
  auto kernel = LoadKernel(mem, path);
  ASSERT_OK(kernel);
  EXPECT_EQ(kernel->mode, EntryMode::kLinux64);
  EXPECT_EQ(kernel->entry, 0x100200u);
  EXPECT_EQ(ReadGuest(mem, 0x100000, bz.kernel.size()), bz.kernel);
  // The decompressor's room (init_size at pref_address) counts as the kernel's.
  EXPECT_EQ(kernel->end, 0x1000000u + 0x800000u);
  EXPECT_EQ(kernel->cmdline_capacity, 2048u);
  EXPECT_EQ(kernel->initrd_addr_max, 0x7fffffffu);
  // Setup header: from 0x1f1 to 0x268, byte for byte as in the file.
  std::vector<uint8_t> want(bytes.begin() + 0x1f1, bytes.begin() + 0x268);
  EXPECT_EQ(kernel->setup_header, want);
  // The setup code itself is not loaded anywhere in guest memory.
  EXPECT_EQ(ReadGuest(mem, 0x100000 + bz.kernel.size(), 0x10), std::vector<uint8_t>(0x10, 0));
}

TEST(KernelLoader, BzImageCmdlineCapacityFromHeader) {
  TempDir dir;
  BzImage bz;
  bz.params.hdr.cmdline_size = 0xffff;
  bz.params.hdr.initrd_addr_max = 0x37ffffff;
  std::string path = dir.Write("bzImage", bz.Bytes());
  GuestMemory mem = MakeMemory();
  auto kernel = LoadKernel(mem, path);
  ASSERT_OK(kernel);
  EXPECT_EQ(kernel->cmdline_capacity, 0x10000u);
  EXPECT_EQ(kernel->initrd_addr_max, 0x37ffffffu);
}

TEST(KernelLoader, BzImageZeroSetupSectsMeansFour) {
  TempDir dir;
  BzImage bz;
  bz.params.hdr.setup_sects = 0;
  auto bytes = bz.Bytes();
  ASSERT_EQ(bytes.size(), 5 * 512 + bz.kernel.size());
  std::string path = dir.Write("bzImage", bytes);
  GuestMemory mem = MakeMemory();
  auto kernel = LoadKernel(mem, path);
  ASSERT_OK(kernel);
  EXPECT_EQ(ReadGuest(mem, 0x100000, bz.kernel.size()), bz.kernel);
}

TEST(KernelLoader, BzImageLargerSetupLoadsKernelFromRightOffset) {
  TempDir dir;
  BzImage bz;
  bz.params.hdr.setup_sects = 30;  // Setup is 31 * 512 bytes: more than a page.
  std::string path = dir.Write("bzImage", bz.Bytes());
  GuestMemory mem = MakeMemory();
  auto kernel = LoadKernel(mem, path);
  ASSERT_OK(kernel);
  EXPECT_EQ(ReadGuest(mem, 0x100000, bz.kernel.size()), bz.kernel);
}

TEST(KernelLoader, BzImageOldProtocolRejected) {
  TempDir dir;
  BzImage bz;
  bz.params.hdr.version = 0x020b;
  std::string path = dir.Write("bzImage", bz.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "boot protocol 2.11 is too old (need 2.12 or later)");
}

TEST(KernelLoader, BzImageWithout64BitEntryRejected) {
  TempDir dir;
  BzImage bz;
  bz.params.hdr.xloadflags = XLF_CAN_BE_LOADED_ABOVE_4G;
  std::string path = dir.Write("bzImage", bz.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "bzImage has no 64-bit entry point (XLF_KERNEL_64)");
}

TEST(KernelLoader, BzImageWithNothingAfterSetupRejected) {
  TempDir dir;
  BzImage bz;
  bz.kernel.clear();
  std::string path = dir.Write("bzImage", bz.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "bzImage is truncated (no kernel after setup)");
}

TEST(KernelLoader, BzImageTruncatedHeaderRejected) {
  TempDir dir;
  BzImage bz;
  auto bytes = bz.Bytes();
  bytes.resize(0x240);  // "HdrS" is there, the fields after 0x240 are not.
  std::string path = dir.Write("bzImage", bytes);
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "bzImage header is truncated");
}

TEST(KernelLoader, BzImageInitSizeBeyondRamRejected) {
  TempDir dir;
  BzImage bz;
  bz.params.hdr.init_size = 64 * kMiB;
  std::string path = dir.Write("bzImage", bz.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "kernel " + path + " does not fit in guest memory");
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "needs 64 MiB at 0x1000000");
}

TEST(KernelLoader, BzImageHugePrefAddressRejected) {
  TempDir dir;
  BzImage bz;
  bz.params.hdr.pref_address = 0xfffffffffffff000ull;
  std::string path = dir.Write("bzImage", bz.Bytes());
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "does not fit in guest memory");
}

// --- Neither -------------------------------------------------------------------------------

TEST(KernelLoader, RandomBytesAreNeitherFormat) {
  TempDir dir;
  std::string path = dir.Write("junk", Pattern(0x1000, 42));
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path),
                        "kernel " + path + " is neither an ELF vmlinux nor a bzImage");
}

TEST(KernelLoader, EmptyFileIsNeitherFormat) {
  TempDir dir;
  std::string path = dir.Write("empty", {});
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "is neither an ELF vmlinux nor a bzImage");
}

TEST(KernelLoader, DirectoryRejectedNamingPath) {
  TempDir dir;
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, dir.path()), dir.path() + ": not a regular file");
}

TEST(KernelLoader, MissingFileRejectedNamingPath) {
  TempDir dir;
  GuestMemory mem = MakeMemory();
  std::string path = dir.File("absent");
  EXPECT_ERROR_CONTAINS(LoadKernel(mem, path), "open " + path + ": No such file or directory");
}

// --- initrd --------------------------------------------------------------------------------

TEST(KernelLoader, InitrdPlacedPageAlignedAtTopOfLowMemory) {
  TempDir dir;
  auto content = Pattern(10000, 3);
  std::string path = dir.Write("initrd", content);
  GuestMemory mem = MakeMemory();
  auto initrd = LoadInitrd(mem, path, 0x200000, 0x7fffffff);
  ASSERT_OK(initrd);
  EXPECT_EQ(initrd->size, 10000u);
  EXPECT_EQ(initrd->addr, (kRam - 10000) & ~uint64_t{0xfff});
  EXPECT_EQ(initrd->addr, 0x1ffd000u);
  EXPECT_EQ(ReadGuest(mem, initrd->addr, content.size()), content);
}

TEST(KernelLoader, InitrdRespectsAddrMax) {
  TempDir dir;
  auto content = Pattern(0x1800, 8);
  std::string path = dir.Write("initrd", content);
  GuestMemory mem = MakeMemory();
  auto initrd = LoadInitrd(mem, path, 0x200000, 0xffffff);
  ASSERT_OK(initrd);
  EXPECT_EQ(initrd->addr, 0xffe000u);  // Ends at or below 16 MiB.
  EXPECT_LE(initrd->addr + initrd->size - 1, 0xffffffu);
  EXPECT_EQ(ReadGuest(mem, initrd->addr, content.size()), content);
}

TEST(KernelLoader, InitrdStaysBelowMmioHole) {
  TempDir dir;
  auto content = Pattern(0x2000, 8);
  std::string path = dir.Write("initrd", content);
  // The top of a guest with more than 3.25 GiB (kept small so the test maps little).
  auto mem = GuestMemory::Create({{0xcf000000, 0x1000000}, {0x100000000ull, 0x1000000}});
  ASSERT_OK(mem);
  auto initrd = LoadInitrd(*mem, path, 0xcf000000, 0xffffffff);
  ASSERT_OK(initrd);
  EXPECT_EQ(initrd->addr, 0xd0000000u - 0x2000);
}

TEST(KernelLoader, InitrdThatOverlapsKernelRejected) {
  TempDir dir;
  std::string path = dir.Write("initrd", Pattern(kMiB));
  GuestMemory mem = MakeMemory();
  // Only 0.5 MiB between the kernel's end and the end of RAM.
  EXPECT_ERROR_CONTAINS(LoadInitrd(mem, path, kRam - kMiB / 2, 0x7fffffff),
                        "initrd " + path + " (1024 KiB) does not fit in guest memory above the kernel");
  // Larger than all of RAM.
  std::string big = dir.Write("big", Pattern(kRam + 0x1000));
  EXPECT_ERROR_CONTAINS(LoadInitrd(mem, big, 0x200000, 0x7fffffff), "does not fit");
}

TEST(KernelLoader, InitrdJustAboveKernelEndFits) {
  TempDir dir;
  std::string path = dir.Write("initrd", Pattern(0x1000));
  GuestMemory mem = MakeMemory();
  // The kernel ends mid-page one page below the top: the initrd takes the last page.
  auto initrd = LoadInitrd(mem, path, kRam - 0x1800, 0x7fffffff);
  ASSERT_OK(initrd);
  EXPECT_EQ(initrd->addr, kRam - 0x1000);
}

TEST(KernelLoader, EmptyInitrdRejected) {
  TempDir dir;
  std::string path = dir.Write("initrd", {});
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadInitrd(mem, path, 0x200000, 0x7fffffff), "initrd " + path + " is empty");
}

TEST(KernelLoader, MissingInitrdRejected) {
  TempDir dir;
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(LoadInitrd(mem, dir.File("nope"), 0x200000, 0x7fffffff),
                        "open " + dir.File("nope"));
}

}  // namespace
}  // namespace hearth
