// Loads a guest kernel into guest memory: an ELF vmlinux (entered through its PVH note when it
// has one, else at its 64-bit entry point) or a bzImage (entered at its 64-bit entry point).
// Every size and offset in the file is checked against the file and against guest RAM.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "memory/guest_memory.h"

namespace hearth {

enum class EntryMode {
  kPvh,      // 32-bit protected mode, EBX = hvm_start_info (x86/HVM direct boot ABI).
  kLinux64,  // 64-bit long mode, RSI = boot_params (Linux boot protocol).
};

struct LoadedKernel {
  EntryMode mode = EntryMode::kLinux64;
  uint64_t entry = 0;
  uint64_t end = 0;  // One past the highest byte the kernel occupies (or will, decompressed).
  // bzImage only: the image's setup header (boot_params offset 0x1f1 onwards) for the zero page.
  std::vector<uint8_t> setup_header;
  // The longest command line the kernel accepts, counting the NUL.
  uint64_t cmdline_capacity = 2048;
  // Highest address the initrd may end at (inclusive), as the kernel states it.
  uint64_t initrd_addr_max = 0x7fffffff;
};

// `path` names the file in errors. The file is read with pread straight into guest memory.
Result<LoadedKernel> LoadKernel(GuestMemory& memory, const std::string& path);

// Places `path` in the highest page-aligned spot below both the end of low RAM and
// `addr_max`, above `kernel_end`. Returns the guest address and size.
struct LoadedInitrd {
  uint64_t addr;
  uint64_t size;
};
Result<LoadedInitrd> LoadInitrd(GuestMemory& memory, const std::string& path,
                                uint64_t kernel_end, uint64_t addr_max);

}  // namespace hearth
