// What the VMM writes into guest memory for the kernel to find at its entry point: the e820
// memory map, the command line, and either the Linux zero page (boot_params) or the PVH
// hvm_start_info, plus the MP table that lists the vCPUs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "boot/kernel_loader.h"
#include "memory/guest_memory.h"

namespace hearth {

enum class E820Type : uint32_t { kRam = 1, kReserved = 2 };

struct E820Entry {
  uint64_t addr;
  uint64_t size;
  E820Type type;
};

// The map of RAM the guest may use (everything else is reserved or a hole).
std::vector<E820Entry> BuildE820Map(const GuestMemory& memory);

struct BootInfo {
  std::string cmdline;
  std::optional<LoadedInitrd> initrd;
  std::vector<E820Entry> e820;
};

// Writes the command line at layout::kCmdlineAddr and the entry structure the mode needs.
Status WriteBootInfo(GuestMemory& memory, const LoadedKernel& kernel, const BootInfo& info);

// hvm_start_info as the x86/HVM direct boot ABI defines it (version 1).
struct __attribute__((packed)) HvmStartInfo {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;
  uint32_t memmap_entries;
  uint32_t reserved;
};
static_assert(sizeof(HvmStartInfo) == 56);
constexpr uint32_t kHvmStartMagic = 0x336ec578;

struct __attribute__((packed)) HvmMemmapEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
};
static_assert(sizeof(HvmMemmapEntry) == 24);

struct __attribute__((packed)) HvmModlistEntry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
};
static_assert(sizeof(HvmModlistEntry) == 32);

}  // namespace hearth
