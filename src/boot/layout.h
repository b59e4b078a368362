// The guest-physical memory map Hearth gives an x86_64 guest. The low pages hold what the VMM
// writes before the first instruction; the kernel goes at 1 MiB or above; devices live in the
// MMIO hole below 4 GiB, and RAM that would overlap the hole continues above 4 GiB.
#pragma once

#include <cstdint>
#include <vector>

#include "memory/guest_memory.h"

namespace hearth::layout {

constexpr uint64_t kGdtAddr = 0x500;
constexpr uint64_t kIdtAddr = 0x520;
constexpr uint64_t kPvhStartInfoAddr = 0x6000;
constexpr uint64_t kPvhModlistAddr = 0x6040;
constexpr uint64_t kZeroPageAddr = 0x7000;  // Linux 64-bit entry only.
constexpr uint64_t kPvhMemmapAddr = 0x7000;  // PVH entry only.
constexpr uint64_t kBootStackPointer = 0x8ff0;
constexpr uint64_t kPml4Addr = 0x9000;
constexpr uint64_t kPdptAddr = 0xa000;
constexpr uint64_t kPdAddr = 0xb000;
constexpr uint64_t kCmdlineAddr = 0x20000;
constexpr uint64_t kCmdlineMaxSize = 0x10000;  // Room reserved for the command line.
constexpr uint64_t kEbdaStart = 0x9fc00;     // Holds the MP table.
constexpr uint64_t kEbdaEnd = 0xa0000;
constexpr uint64_t kHighMemoryStart = 0x100000;  // 1 MiB: kernels load here or above.

constexpr uint64_t kMmioHoleStart = 0xd0000000;  // 3.25 GiB.
constexpr uint64_t kMmioHoleEnd = 0x100000000;   // 4 GiB.
constexpr uint64_t kIoapicAddr = 0xfec00000;
constexpr uint64_t kLapicAddr = 0xfee00000;
constexpr uint64_t kTssAddr = 0xfffbd000;        // KVM_SET_TSS_ADDR: three pages.
constexpr uint64_t kIdentityMapAddr = 0xfffbc000;  // KVM_SET_IDENTITY_MAP_ADDR: one page.

// Guest RAM regions for `mem_bytes` of memory: [0, n) below the hole, the rest above 4 GiB.
std::vector<GuestRegionSpec> RamRegions(uint64_t mem_bytes);

// The top of RAM below the MMIO hole (where initrds go).
uint64_t LowMemoryEnd(const GuestMemory& memory);

}  // namespace hearth::layout
