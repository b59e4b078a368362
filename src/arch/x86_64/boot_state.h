// The architectural state a vCPU starts in: registers, segments and page tables for the
// Linux 64-bit entry or the PVH 32-bit entry, boot MSRs, the FPU, and the local APIC's LINT
// pins wired to the PIC (ExtINT) and NMI.
#pragma once

#include "kvm/kvm_uapi.h"

#include <cstdint>
#include <utility>
#include <vector>

#include "base/result.h"
#include "boot/kernel_loader.h"
#include "memory/guest_memory.h"

namespace hearth {

class KvmVcpu;

// A 64-bit GDT descriptor from flags (access byte and flags nibble), base and limit.
constexpr uint64_t GdtEntry(uint16_t flags, uint32_t base, uint32_t limit) {
  return ((uint64_t{base} & 0xff000000) << 32) | ((uint64_t{flags} & 0xf0ff) << 40) |
         ((uint64_t{limit} & 0x000f0000) << 32) | ((uint64_t{base} & 0x00ffffff) << 16) |
         (uint64_t{limit} & 0x0000ffff);
}
kvm_segment SegmentFromGdt(uint64_t entry, uint8_t table_index);

// Writes the GDT/IDT (and page tables for long mode) and returns the segment registers.
Result<kvm_sregs> BootSregs(GuestMemory& memory, EntryMode mode, kvm_sregs base);
kvm_regs BootRegs(EntryMode mode, uint64_t entry);
std::vector<std::pair<uint32_t, uint64_t>> BootMsrs();
kvm_fpu BootFpu();
// LVT0 = ExtINT, LVT1 = NMI, like firmware leaves them.
kvm_lapic_state WireLapicLints(kvm_lapic_state lapic);

// Sets up vCPU `vcpu` for boot: the bootstrap processor gets registers for the kernel entry;
// the others wait for INIT/SIPI from it, as on real hardware.
Status ConfigureBootVcpu(KvmVcpu& vcpu, GuestMemory& memory, const LoadedKernel& kernel);

}  // namespace hearth
