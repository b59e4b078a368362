#include "arch/x86_64/boot_state.h"

#include <gtest/gtest.h>

#include <cstring>

#include "boot/layout.h"
#include "test_util.h"

namespace hearth {
namespace {

GuestMemory MakeMemory() {
  auto mem = GuestMemory::Create(layout::RamRegions(16 << 20));
  EXPECT_TRUE(mem.ok()) << mem.error().message();
  return std::move(mem).value();
}

uint64_t Read64(const GuestMemory& mem, uint64_t addr) {
  auto v = mem.ReadObj<uint64_t>(addr);
  EXPECT_TRUE(v.ok());
  return v.ok() ? *v : 0;
}

TEST(BootState, GdtEntryEncodesKnownDescriptors) {
  EXPECT_EQ(GdtEntry(0xa09b, 0, 0xfffff), 0x00af9b000000ffffull);
  EXPECT_EQ(GdtEntry(0xc09b, 0, 0xfffff), 0x00cf9b000000ffffull);
  EXPECT_EQ(GdtEntry(0xc093, 0, 0xfffff), 0x00cf93000000ffffull);
  EXPECT_EQ(GdtEntry(0x808b, 0, 0xfffff), 0x008f8b000000ffffull);
}

TEST(BootState, SegmentFromLongModeCode) {
  kvm_segment s = SegmentFromGdt(GdtEntry(0xa09b, 0, 0xfffff), 1);
  EXPECT_EQ(s.selector, 8);
  EXPECT_EQ(s.base, 0u);
  EXPECT_EQ(s.limit, 0xffffffffu);
  EXPECT_EQ(s.type, 0xb);
  EXPECT_EQ(s.present, 1);
  EXPECT_EQ(s.dpl, 0);
  EXPECT_EQ(s.s, 1);
  EXPECT_EQ(s.l, 1);
  EXPECT_EQ(s.db, 0);
  EXPECT_EQ(s.g, 1);
  EXPECT_EQ(s.avl, 0);
  EXPECT_EQ(s.unusable, 0);
}

TEST(BootState, SegmentFromFlatData) {
  kvm_segment s = SegmentFromGdt(GdtEntry(0xc093, 0, 0xfffff), 2);
  EXPECT_EQ(s.selector, 0x10);
  EXPECT_EQ(s.limit, 0xffffffffu);
  EXPECT_EQ(s.type, 0x3);
  EXPECT_EQ(s.s, 1);
  EXPECT_EQ(s.l, 0);
  EXPECT_EQ(s.db, 1);
  EXPECT_EQ(s.g, 1);
  EXPECT_EQ(s.present, 1);
}

TEST(BootState, SegmentFromTss) {
  kvm_segment s = SegmentFromGdt(GdtEntry(0x808b, 0, 0xfffff), 3);
  EXPECT_EQ(s.selector, 0x18);
  EXPECT_EQ(s.limit, 0xffffffffu);
  EXPECT_EQ(s.type, 0xb);  // Busy 64-bit TSS.
  EXPECT_EQ(s.s, 0);       // A system segment.
  EXPECT_EQ(s.db, 0);
  EXPECT_EQ(s.l, 0);
  EXPECT_EQ(s.g, 1);
  EXPECT_EQ(s.present, 1);
}

TEST(BootState, SegmentBaseAndByteLimitRoundTrip) {
  kvm_segment s = SegmentFromGdt(GdtEntry(0x00f3, 0x12345678, 0xabcde), 5);
  EXPECT_EQ(s.base, 0x12345678u);
  EXPECT_EQ(s.limit, 0xabcdeu);  // g = 0: a byte limit.
  EXPECT_EQ(s.g, 0);
  EXPECT_EQ(s.dpl, 3);
  EXPECT_EQ(s.selector, 0x28);
  kvm_segment absent = SegmentFromGdt(GdtEntry(0x0013, 0, 0), 6);
  EXPECT_EQ(absent.present, 0);
  EXPECT_EQ(absent.unusable, 1);
}

TEST(BootState, LongModeSregsAndPageTables) {
  GuestMemory mem = MakeMemory();
  kvm_sregs base{};
  base.cr0 = 0x60000010;  // Reset value: CD, NW, ET. Kept.
  auto sregs = BootSregs(mem, EntryMode::kLinux64, base);
  ASSERT_OK(sregs);
  EXPECT_EQ(sregs->cr0, 0x60000010u | 0x1 | 0x80000000u);
  EXPECT_EQ(sregs->cr4 & 0x20, 0x20u);  // PAE.
  EXPECT_EQ(sregs->efer & 0x500, 0x500u);  // LME | LMA.
  EXPECT_EQ(sregs->cr3, 0x9000u);
  EXPECT_EQ(sregs->gdt.base, 0x500u);
  EXPECT_EQ(sregs->gdt.limit, 31);
  EXPECT_EQ(sregs->idt.base, 0x520u);
  EXPECT_EQ(sregs->idt.limit, 7);
  EXPECT_EQ(sregs->cs.selector, 8);
  EXPECT_EQ(sregs->cs.l, 1);
  EXPECT_EQ(sregs->cs.db, 0);
  for (const kvm_segment* s : {&sregs->ds, &sregs->es, &sregs->fs, &sregs->gs, &sregs->ss}) {
    EXPECT_EQ(s->selector, 0x10);
    EXPECT_EQ(s->type, 3);
  }
  EXPECT_EQ(sregs->tr.selector, 0x18);

  // The GDT in guest memory matches the segment registers.
  EXPECT_EQ(Read64(mem, 0x500), 0u);
  EXPECT_EQ(Read64(mem, 0x508), 0x00af9b000000ffffull);
  EXPECT_EQ(Read64(mem, 0x510), 0x00cf93000000ffffull);
  EXPECT_EQ(Read64(mem, 0x518), 0x008f8b000000ffffull);
  EXPECT_EQ(Read64(mem, 0x520), 0u);

  // PML4[0] -> PDPT, PDPT[0] -> PD, PD: 512 identity-mapped 2 MiB pages (first 1 GiB).
  EXPECT_EQ(Read64(mem, 0x9000), 0xa003u);
  EXPECT_EQ(Read64(mem, 0x9008), 0u);
  EXPECT_EQ(Read64(mem, 0xa000), 0xb003u);
  EXPECT_EQ(Read64(mem, 0xa008), 0u);
  EXPECT_EQ(Read64(mem, 0xb000), 0x83u);
  EXPECT_EQ(Read64(mem, 0xb008), 0x200083u);
  EXPECT_EQ(Read64(mem, 0xb000 + 511 * 8), (uint64_t{511} << 21) | 0x83);
}

TEST(BootState, PvhSregsProtectedModeWithoutPaging) {
  GuestMemory mem = MakeMemory();
  kvm_sregs base{};
  base.cr0 = 0x80000011;  // Paging on from a previous state must be turned off.
  base.cr4 = 0x20;
  base.efer = 0x500;
  auto sregs = BootSregs(mem, EntryMode::kPvh, base);
  ASSERT_OK(sregs);
  EXPECT_EQ(sregs->cr0 & 0x1, 0x1u);
  EXPECT_EQ(sregs->cr0 & 0x80000000u, 0u);
  EXPECT_EQ(sregs->cr4, 0u);
  EXPECT_EQ(sregs->efer, 0u);
  EXPECT_EQ(sregs->cs.selector, 8);
  EXPECT_EQ(sregs->cs.db, 1);
  EXPECT_EQ(sregs->cs.l, 0);
  EXPECT_EQ(sregs->cs.limit, 0xffffffffu);
  EXPECT_EQ(sregs->ds.db, 1);
  EXPECT_EQ(Read64(mem, 0x508), 0x00cf9b000000ffffull);
  EXPECT_EQ(Read64(mem, 0x9000), 0u);  // No page tables for PVH.
}

TEST(BootState, BootSregsFailsWithoutLowMemory) {
  auto mem = GuestMemory::Create({{0x100000, 0x100000}});
  ASSERT_OK(mem);
  EXPECT_ERROR_CONTAINS(BootSregs(*mem, EntryMode::kLinux64, kvm_sregs{}), "outside guest RAM");
}

TEST(BootState, BootRegsLinux64) {
  kvm_regs r = BootRegs(EntryMode::kLinux64, 0x1000000);
  EXPECT_EQ(r.rip, 0x1000000u);
  EXPECT_EQ(r.rsi, 0x7000u);
  EXPECT_EQ(r.rsp, 0x8ff0u);
  EXPECT_EQ(r.rbp, 0x8ff0u);
  EXPECT_EQ(r.rflags, 0x2u);
  EXPECT_EQ(r.rbx, 0u);
}

TEST(BootState, BootRegsPvh) {
  kvm_regs r = BootRegs(EntryMode::kPvh, 0x1000400);
  EXPECT_EQ(r.rip, 0x1000400u);
  EXPECT_EQ(r.rbx, 0x6000u);
  EXPECT_EQ(r.rflags, 0x2u);
  EXPECT_EQ(r.rsi, 0u);
}

TEST(BootState, BootFpuDefaults) {
  kvm_fpu fpu = BootFpu();
  EXPECT_EQ(fpu.fcw, 0x37f);
  EXPECT_EQ(fpu.mxcsr, 0x1f80u);
}

TEST(BootState, BootMsrsEnableFastStrings) {
  bool found = false;
  for (const auto& [index, value] : BootMsrs()) {
    if (index == 0x1a0) {
      found = true;
      EXPECT_EQ(value & 1, 1u);
    }
  }
  EXPECT_TRUE(found);
}

uint32_t LapicReg(const kvm_lapic_state& l, uint32_t offset) {
  uint32_t v;
  std::memcpy(&v, l.regs + offset, 4);
  return v;
}
void SetLapicReg(kvm_lapic_state& l, uint32_t offset, uint32_t v) { std::memcpy(l.regs + offset, &v, 4); }

TEST(BootState, WireLapicLints) {
  kvm_lapic_state in{};
  SetLapicReg(in, 0x350, 0x000105ff);  // Masked, some mode, vector bits set.
  SetLapicReg(in, 0x360, 0x00010700);
  SetLapicReg(in, 0x340, 0xdeadbeef);
  SetLapicReg(in, 0x370, 0xcafef00d);
  kvm_lapic_state out = WireLapicLints(in);
  EXPECT_EQ(LapicReg(out, 0x350), 0x000107ffu);  // ExtINT (7), other bits kept.
  EXPECT_EQ(LapicReg(out, 0x360), 0x00010400u);  // NMI (4).
  EXPECT_EQ(LapicReg(out, 0x340), 0xdeadbeefu);
  EXPECT_EQ(LapicReg(out, 0x370), 0xcafef00du);
}

}  // namespace
}  // namespace hearth
