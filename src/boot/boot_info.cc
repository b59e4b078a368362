#include "boot/boot_info.h"

#include <asm/bootparam.h>

#include <algorithm>
#include <cstring>

#include "boot/layout.h"

namespace hearth {

std::vector<E820Entry> BuildE820Map(const GuestMemory& memory) {
  std::vector<E820Entry> map;
  for (const auto& r : memory.regions()) {
    uint64_t start = r.guest_addr;
    uint64_t end = r.end();
    if (start < layout::kEbdaStart) {
      // Base memory up to the EBDA (which holds the MP table), then the BIOS area is not RAM.
      map.push_back({start, layout::kEbdaStart - start, E820Type::kRam});
      map.push_back({layout::kEbdaStart, layout::kEbdaEnd - layout::kEbdaStart,
                     E820Type::kReserved});
      start = std::max(start, layout::kHighMemoryStart);
    }
    if (end > start) map.push_back({start, end - start, E820Type::kRam});
  }
  return map;
}

namespace {

Status WriteZeroPage(GuestMemory& memory, const LoadedKernel& kernel, const BootInfo& info) {
  boot_params params;
  std::memset(&params, 0, sizeof(params));
  if (!kernel.setup_header.empty()) {
    // bzImage: start from the image's own header, as its boot protocol asks.
    size_t n = std::min(kernel.setup_header.size(), sizeof(params) - 0x1f1);
    std::memcpy(reinterpret_cast<uint8_t*>(&params) + 0x1f1, kernel.setup_header.data(), n);
  } else {
    params.hdr.boot_flag = 0xaa55;
    params.hdr.header = 0x53726448;  // "HdrS"
    params.hdr.kernel_alignment = 0x1000000;
  }
  params.hdr.type_of_loader = 0xff;  // "Undefined" boot loader.
  params.hdr.cmd_line_ptr = static_cast<uint32_t>(layout::kCmdlineAddr);
  params.hdr.cmdline_size = static_cast<uint32_t>(info.cmdline.size());
  if (info.initrd) {
    params.hdr.ramdisk_image = static_cast<uint32_t>(info.initrd->addr);
    params.hdr.ramdisk_size = static_cast<uint32_t>(info.initrd->size);
    params.ext_ramdisk_image = static_cast<uint32_t>(info.initrd->addr >> 32);
    params.ext_ramdisk_size = static_cast<uint32_t>(info.initrd->size >> 32);
  }
  if (info.e820.size() > E820_MAX_ENTRIES_ZEROPAGE) return Error("e820 map has too many entries");
  params.e820_entries = static_cast<uint8_t>(info.e820.size());
  for (size_t i = 0; i < info.e820.size(); ++i) {
    params.e820_table[i].addr = info.e820[i].addr;
    params.e820_table[i].size = info.e820[i].size;
    params.e820_table[i].type = static_cast<uint32_t>(info.e820[i].type);
  }
  return memory.WriteObj(layout::kZeroPageAddr, params);
}

Status WritePvhStartInfo(GuestMemory& memory, const BootInfo& info) {
  HvmStartInfo start{};
  start.magic = kHvmStartMagic;
  start.version = 1;
  start.cmdline_paddr = layout::kCmdlineAddr;
  start.memmap_paddr = layout::kPvhMemmapAddr;
  start.memmap_entries = static_cast<uint32_t>(info.e820.size());
  if (info.initrd) {
    HvmModlistEntry module{info.initrd->addr, info.initrd->size, 0, 0};
    RETURN_IF_ERROR(memory.WriteObj(layout::kPvhModlistAddr, module));
    start.nr_modules = 1;
    start.modlist_paddr = layout::kPvhModlistAddr;
  }
  for (size_t i = 0; i < info.e820.size(); ++i) {
    HvmMemmapEntry entry{info.e820[i].addr, info.e820[i].size,
                         static_cast<uint32_t>(info.e820[i].type), 0};
    RETURN_IF_ERROR(memory.WriteObj(layout::kPvhMemmapAddr + i * sizeof(entry), entry));
  }
  return memory.WriteObj(layout::kPvhStartInfoAddr, start);
}

}  // namespace

Status WriteBootInfo(GuestMemory& memory, const LoadedKernel& kernel, const BootInfo& info) {
  if (info.cmdline.size() + 1 > layout::kCmdlineMaxSize) return Error("command line too long");
  std::vector<uint8_t> cmdline(info.cmdline.begin(), info.cmdline.end());
  cmdline.push_back(0);
  RETURN_IF_ERROR(memory.Write(layout::kCmdlineAddr, cmdline));
  if (kernel.mode == EntryMode::kPvh) return WritePvhStartInfo(memory, info);
  return WriteZeroPage(memory, kernel, info);
}

}  // namespace hearth
