// The ELF and bzImage loaders on a hostile kernel image, followed by what the VMM does next with
// what they return: the command line under the kernel's stated capacity, an initrd placed under
// its stated limit, and the boot data (zero page or PVH start info). The image is a memfd that
// LoadKernel opens by its /proc path, as it would open a file.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "boot/boot_info.h"
#include "boot/cmdline.h"
#include "boot/kernel_loader.h"
#include "boot/layout.h"
#include "config/vm_resources.h"
#include "fuzz/memfd_file.h"

using namespace hearth;

namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "fuzz harness: %s\n", what);
  std::abort();
}

constexpr uint64_t kGuestRam = 16 << 20;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::MemfdFile kernel_file("fuzz-kernel");
  static fuzz::MemfdFile initrd_file("fuzz-initrd");
  // 16 MiB of guest RAM, reused: the loaders only write it.
  static GuestMemory* memory = [] {
    auto m = GuestMemory::Create(layout::RamRegions(kGuestRam));
    if (!m.ok()) Die("guest memory");
    return new GuestMemory(std::move(m).value());
  }();

  kernel_file.Set(data, size);
  auto kernel = LoadKernel(*memory, kernel_file.path());
  if (!kernel.ok()) return 0;
  if (kernel->entry < layout::kHighMemoryStart || !memory->IsValidRange(kernel->entry, 1)) {
    Die("loaded kernel's entry point is outside RAM above 1 MiB");
  }

  Cmdline cmdline(kernel->cmdline_capacity);
  if (!cmdline.Append(kDefaultBootArgs).ok()) return 0;

  BootInfo info;
  info.cmdline = cmdline.str();
  info.e820 = BuildE820Map(*memory);
  // A small initrd (its bytes are the image's tail): placed under the kernel's limit or refused.
  initrd_file.Set(data, size < 4096 ? size : 4096);
  auto initrd = LoadInitrd(*memory, initrd_file.path(), kernel->end, kernel->initrd_addr_max);
  if (initrd.ok()) {
    if (initrd->addr < kernel->end || initrd->addr + initrd->size - 1 > kernel->initrd_addr_max ||
        !memory->IsValidRange(initrd->addr, initrd->size)) {
      Die("initrd placed over the kernel, above its limit or outside RAM");
    }
    info.initrd = *initrd;
  }
  (void)WriteBootInfo(*memory, *kernel, info);
  return 0;
}
