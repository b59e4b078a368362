#include "arch/x86_64/boot_state.h"

#include <cstring>

#include "base/log.h"
#include "boot/layout.h"
#include "kvm/kvm.h"

namespace hearth {
namespace {

constexpr uint64_t kCr0Pe = 1u << 0;
constexpr uint64_t kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1u << 5;
constexpr uint64_t kEferLme = 1u << 8;
constexpr uint64_t kEferLma = 1u << 10;

constexpr uint64_t kPageTablePresentWrite = 0x3;
constexpr uint64_t kPageHuge = 0x80;

constexpr uint32_t kApicLvt0 = 0x350;
constexpr uint32_t kApicLvt1 = 0x360;
constexpr uint32_t kApicModeNmi = 0x4;
constexpr uint32_t kApicModeExtInt = 0x7;

}  // namespace

kvm_segment SegmentFromGdt(uint64_t entry, uint8_t table_index) {
  kvm_segment seg{};
  seg.base = static_cast<uint64_t>(((entry >> 16) & 0xffffff) | ((entry >> 32) & 0xff000000));
  uint32_t limit = static_cast<uint32_t>((entry & 0xffff) | ((entry >> 32) & 0xf0000));
  seg.g = static_cast<uint8_t>((entry >> 55) & 1);
  seg.limit = seg.g ? (limit << 12) | 0xfff : limit;
  seg.selector = static_cast<uint16_t>(table_index * 8);
  seg.type = static_cast<uint8_t>((entry >> 40) & 0xf);
  seg.present = static_cast<uint8_t>((entry >> 47) & 1);
  seg.dpl = static_cast<uint8_t>((entry >> 45) & 0x3);
  seg.db = static_cast<uint8_t>((entry >> 54) & 1);
  seg.s = static_cast<uint8_t>((entry >> 44) & 1);
  seg.l = static_cast<uint8_t>((entry >> 53) & 1);
  seg.avl = static_cast<uint8_t>((entry >> 52) & 1);
  seg.unusable = seg.present ? 0 : 1;
  return seg;
}

Result<kvm_sregs> BootSregs(GuestMemory& memory, EntryMode mode, kvm_sregs sregs) {
  const bool long_mode = mode == EntryMode::kLinux64;
  const uint64_t gdt[4] = {
      0,
      long_mode ? GdtEntry(0xa09b, 0, 0xfffff) : GdtEntry(0xc09b, 0, 0xfffff),  // Code.
      GdtEntry(0xc093, 0, 0xfffff),                                              // Data.
      GdtEntry(0x808b, 0, 0xfffff),                                              // TSS.
  };
  RETURN_IF_ERROR(memory.WriteObj(layout::kGdtAddr, gdt));
  RETURN_IF_ERROR(memory.WriteObj(layout::kIdtAddr, uint64_t{0}));

  sregs.gdt.base = layout::kGdtAddr;
  sregs.gdt.limit = sizeof(gdt) - 1;
  sregs.idt.base = layout::kIdtAddr;
  sregs.idt.limit = 7;
  sregs.cs = SegmentFromGdt(gdt[1], 1);
  kvm_segment data = SegmentFromGdt(gdt[2], 2);
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
  sregs.tr = SegmentFromGdt(gdt[3], 3);

  if (!long_mode) {
    // PVH: protected mode, paging off, as the x86/HVM direct boot ABI requires.
    sregs.cr0 = (sregs.cr0 | kCr0Pe) & ~kCr0Pg;
    sregs.cr4 = 0;
    sregs.efer = 0;
    return sregs;
  }
  // Identity-map the first 1 GiB with 2 MiB pages: enough for the kernel's early code.
  RETURN_IF_ERROR(memory.WriteObj(layout::kPml4Addr, layout::kPdptAddr | kPageTablePresentWrite));
  RETURN_IF_ERROR(memory.WriteObj(layout::kPdptAddr, layout::kPdAddr | kPageTablePresentWrite));
  uint64_t pd[512];
  for (uint64_t i = 0; i < 512; ++i) pd[i] = (i << 21) | kPageTablePresentWrite | kPageHuge;
  RETURN_IF_ERROR(memory.WriteObj(layout::kPdAddr, pd));
  sregs.cr3 = layout::kPml4Addr;
  sregs.cr4 |= kCr4Pae;
  sregs.cr0 |= kCr0Pe | kCr0Pg;
  sregs.efer |= kEferLme | kEferLma;
  return sregs;
}

kvm_regs BootRegs(EntryMode mode, uint64_t entry) {
  kvm_regs regs{};
  regs.rflags = 0x2;  // Bit 1 is reserved and always set.
  regs.rip = entry;
  if (mode == EntryMode::kPvh) {
    regs.rbx = layout::kPvhStartInfoAddr;
  } else {
    regs.rsp = regs.rbp = layout::kBootStackPointer;
    regs.rsi = layout::kZeroPageAddr;
  }
  return regs;
}

std::vector<std::pair<uint32_t, uint64_t>> BootMsrs() {
  return {
      {0x174, 0},                 // IA32_SYSENTER_CS
      {0x175, 0},                 // IA32_SYSENTER_ESP
      {0x176, 0},                 // IA32_SYSENTER_EIP
      {0xc0000081, 0},            // STAR
      {0xc0000082, 0},            // LSTAR
      {0xc0000083, 0},            // CSTAR
      {0xc0000084, 0},            // SYSCALL_MASK
      {0xc0000102, 0},            // KERNEL_GS_BASE
      {0x10, 0},                  // IA32_TSC
      {0x1a0, 1},                 // IA32_MISC_ENABLE: fast strings.
      {0x2ff, (1u << 11) | 0x6},  // MTRR_DEF_TYPE: MTRRs on, write-back by default.
  };
}

kvm_fpu BootFpu() {
  kvm_fpu fpu{};
  fpu.fcw = 0x37f;
  fpu.mxcsr = 0x1f80;
  return fpu;
}

kvm_lapic_state WireLapicLints(kvm_lapic_state lapic) {
  auto set_mode = [&](uint32_t reg, uint32_t mode) {
    uint32_t value;
    std::memcpy(&value, lapic.regs + reg, 4);
    value = (value & ~0x700u) | (mode << 8);
    std::memcpy(lapic.regs + reg, &value, 4);
  };
  set_mode(kApicLvt0, kApicModeExtInt);
  set_mode(kApicLvt1, kApicModeNmi);
  return lapic;
}

Status ConfigureBootVcpu(KvmVcpu& vcpu, GuestMemory& memory, const LoadedKernel& kernel) {
  // One call for all boot MSRs. Some hosts refuse some MSRs; the kernel copes, so then each is
  // set on its own and a refusal is only worth a note.
  if (!vcpu.SetMsrs(BootMsrs()).ok()) {
    for (const auto& msr : BootMsrs()) {
      auto set = vcpu.SetMsrs({msr});
      if (!set.ok()) LOG_DEBUG("vCPU " << vcpu.id() << ": " << set.error().message());
    }
  }
  RETURN_IF_ERROR(vcpu.SetFpu(BootFpu()));
  ASSIGN_OR_RETURN(kvm_lapic_state lapic, vcpu.GetLapic());
  RETURN_IF_ERROR(vcpu.SetLapic(WireLapicLints(lapic)));
  if (vcpu.id() != 0) return Ok();
  ASSIGN_OR_RETURN(kvm_sregs current, vcpu.GetSregs());
  ASSIGN_OR_RETURN(kvm_sregs sregs, BootSregs(memory, kernel.mode, current));
  RETURN_IF_ERROR(vcpu.SetSregs(sregs));
  return vcpu.SetRegs(BootRegs(kernel.mode, kernel.entry));
}

}  // namespace hearth
