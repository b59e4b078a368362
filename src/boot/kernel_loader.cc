#include "boot/kernel_loader.h"

#include <asm/bootparam.h>
#include <elf.h>
#include <fcntl.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "base/hex.h"
#include "base/fd.h"
#include "boot/layout.h"

namespace hearth {
namespace {

constexpr uint32_t kXenElfNotePhys32Entry = 18;
constexpr size_t kMaxProgramHeaders = 128;
constexpr uint64_t kMaxNoteSize = 1 << 16;
constexpr uint64_t kBzImageLoadAddr = layout::kHighMemoryStart;
constexpr uint16_t kMinBootProtocol = 0x020c;  // 2.12: xloadflags and the 64-bit entry.


bool AddOverflows(uint64_t a, uint64_t b) { return a + b < a; }

// Ranges the kernel must stay out of: everything below 1 MiB belongs to the VMM's boot data.
Status CheckKernelRange(const GuestMemory& memory, uint64_t addr, uint64_t size,
                        const std::string& path) {
  if (AddOverflows(addr, size)) return Error("kernel " + path + ": segment address overflows");
  if (addr < layout::kHighMemoryStart) {
    return Error("kernel " + path + ": segment at " + Hex(addr) +
                 " is below 1 MiB, where the VMM keeps boot data");
  }
  if (!memory.IsValidRange(addr, size)) {
    return Error("kernel " + path + " does not fit in guest memory (needs [" + Hex(addr) + ", " +
                 Hex(addr + size) + "), guest RAM ends at " + Hex(memory.end_addr()) + ")");
  }
  return Ok();
}

// Finds the PVH entry in a PT_NOTE segment; 0 when absent.
Result<uint64_t> FindPvhEntry(int fd, const Elf64_Phdr& ph, uint64_t file_size,
                              const std::string& path) {
  if (ph.p_filesz > kMaxNoteSize || AddOverflows(ph.p_offset, ph.p_filesz) ||
      ph.p_offset + ph.p_filesz > file_size) {
    return Error("kernel " + path + ": ELF note segment lies outside the file");
  }
  std::vector<uint8_t> notes(ph.p_filesz);
  RETURN_IF_ERROR(PreadExact(fd, notes.data(), notes.size(), ph.p_offset, "kernel " + path));
  size_t pos = 0;
  auto align4 = [](uint64_t v) { return (v + 3) & ~uint64_t{3}; };
  while (pos + sizeof(Elf64_Nhdr) <= notes.size()) {
    Elf64_Nhdr nh;
    std::memcpy(&nh, notes.data() + pos, sizeof(nh));
    uint64_t name_at = pos + sizeof(nh);
    uint64_t desc_at = name_at + align4(nh.n_namesz);
    uint64_t next = desc_at + align4(nh.n_descsz);
    if (next > notes.size()) break;  // A truncated note ends the list.
    if (nh.n_type == kXenElfNotePhys32Entry && nh.n_namesz == 4 &&
        std::memcmp(notes.data() + name_at, "Xen", 4) == 0) {
      if (nh.n_descsz == 4) {
        uint32_t entry;
        std::memcpy(&entry, notes.data() + desc_at, 4);
        return uint64_t{entry};
      }
      if (nh.n_descsz == 8) {
        uint64_t entry;
        std::memcpy(&entry, notes.data() + desc_at, 8);
        return entry;
      }
      return Error("kernel " + path + ": PVH entry note has a bad size");
    }
    pos = next;
  }
  return uint64_t{0};
}

Result<LoadedKernel> LoadElf(GuestMemory& memory, int fd, uint64_t file_size,
                             const std::string& path) {
  const std::string what = "kernel " + path;
  if (file_size < sizeof(Elf64_Ehdr)) return Error(what + ": ELF header is truncated");
  Elf64_Ehdr eh;
  RETURN_IF_ERROR(PreadExact(fd, &eh, sizeof(eh), 0, what));
  if (eh.e_ident[EI_CLASS] != ELFCLASS64) return Error(what + ": not a 64-bit ELF file");
  if (eh.e_ident[EI_DATA] != ELFDATA2LSB) return Error(what + ": not a little-endian ELF file");
  if (eh.e_machine != EM_X86_64) return Error(what + ": ELF machine is not x86_64");
  if (eh.e_type != ET_EXEC) return Error(what + ": ELF file is not an executable");
  if (eh.e_phentsize != sizeof(Elf64_Phdr)) return Error(what + ": bad ELF program header size");
  if (eh.e_phnum == 0 || eh.e_phnum > kMaxProgramHeaders) {
    return Error(what + ": ELF has " + std::to_string(eh.e_phnum) + " program headers");
  }
  uint64_t ph_bytes = uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr);
  if (AddOverflows(eh.e_phoff, ph_bytes) || eh.e_phoff + ph_bytes > file_size) {
    return Error(what + ": ELF program headers lie outside the file (truncated?)");
  }
  std::vector<Elf64_Phdr> phdrs(eh.e_phnum);
  RETURN_IF_ERROR(PreadExact(fd, phdrs.data(), ph_bytes, eh.e_phoff, what));

  LoadedKernel kernel;
  uint64_t pvh_entry = 0;
  bool loaded_any = false;
  for (const auto& ph : phdrs) {
    if (ph.p_type == PT_NOTE && pvh_entry == 0) {
      ASSIGN_OR_RETURN(pvh_entry, FindPvhEntry(fd, ph, file_size, path));
      continue;
    }
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    if (ph.p_filesz > ph.p_memsz) return Error(what + ": ELF segment's file size exceeds its memory size");
    if (AddOverflows(ph.p_offset, ph.p_filesz) || ph.p_offset + ph.p_filesz > file_size) {
      return Error(what + ": ELF segment lies outside the file (truncated?)");
    }
    RETURN_IF_ERROR(CheckKernelRange(memory, ph.p_paddr, ph.p_memsz, path));
    RETURN_IF_ERROR(memory.ReadFromFile(ph.p_paddr, fd, ph.p_offset, ph.p_filesz, what));
    RETURN_IF_ERROR(memory.Fill(ph.p_paddr + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz));
    kernel.end = std::max(kernel.end, ph.p_paddr + ph.p_memsz);
    loaded_any = true;
  }
  if (!loaded_any) return Error(what + ": ELF file has no loadable segment");
  kernel.mode = pvh_entry != 0 ? EntryMode::kPvh : EntryMode::kLinux64;
  kernel.entry = pvh_entry != 0 ? pvh_entry : eh.e_entry;
  if (!memory.IsValidRange(kernel.entry, 1) || kernel.entry < layout::kHighMemoryStart) {
    return Error(what + ": entry point " + Hex(kernel.entry) + " is not in the loaded kernel");
  }
  return kernel;
}

Result<LoadedKernel> LoadBzImage(GuestMemory& memory, int fd, uint64_t file_size,
                                 const std::string& path) {
  const std::string what = "kernel " + path;
  boot_params params;
  std::memset(&params, 0, sizeof(params));
  uint64_t head = std::min<uint64_t>(file_size, sizeof(params));
  RETURN_IF_ERROR(PreadExact(fd, &params, head, 0, what));
  const setup_header& hdr = params.hdr;
  if (hdr.version < kMinBootProtocol) {
    std::ostringstream s;
    s << what << ": boot protocol " << (hdr.version >> 8) << "." << (hdr.version & 0xff)
      << " is too old (need 2.12 or later)";
    return Error(s.str());
  }
  if ((hdr.xloadflags & XLF_KERNEL_64) == 0) {
    return Error(what + ": bzImage has no 64-bit entry point (XLF_KERNEL_64)");
  }
  uint64_t setup_sects = hdr.setup_sects == 0 ? 4 : hdr.setup_sects;
  uint64_t setup_size = (setup_sects + 1) * 512;
  if (setup_size >= file_size) return Error(what + ": bzImage is truncated (no kernel after setup)");
  uint64_t kernel_size = file_size - setup_size;
  // syssize counts the protected-mode part in 16-byte units; the 64-bit entry is at +0x200.
  uint64_t promised = uint64_t{hdr.syssize} * 16;
  if (kernel_size < promised || kernel_size <= 0x200) {
    return Error(what + ": bzImage is truncated (the header promises " + std::to_string(promised) +
                 " bytes of kernel after setup, the file has " + std::to_string(kernel_size) + ")");
  }
  // The decompressor needs init_size bytes from where it runs; it runs at the load address or,
  // relocated, at pref_address.
  uint64_t run_addr = std::max<uint64_t>(kBzImageLoadAddr, hdr.pref_address);
  uint64_t need = std::max<uint64_t>(kernel_size, hdr.init_size);
  if (AddOverflows(run_addr, need) || !memory.IsValidRange(run_addr, need) ||
      !memory.IsValidRange(kBzImageLoadAddr, kernel_size)) {
    return Error(what + " does not fit in guest memory (needs " + std::to_string(need >> 20) +
                 " MiB at " + Hex(run_addr) + ", guest RAM ends at " + Hex(memory.end_addr()) + ")");
  }
  RETURN_IF_ERROR(memory.ReadFromFile(kBzImageLoadAddr, fd, setup_size, kernel_size, what));

  LoadedKernel kernel;
  kernel.mode = EntryMode::kLinux64;
  kernel.entry = kBzImageLoadAddr + 0x200;  // startup_64.
  kernel.end = std::max(kBzImageLoadAddr + kernel_size, run_addr + need);
  // The setup header runs from 0x1f1 to the end given by the jump at 0x200.
  const auto* raw = reinterpret_cast<const uint8_t*>(&params);
  uint64_t header_end = std::min<uint64_t>(0x202 + raw[0x201], sizeof(params));
  header_end = std::min(header_end, head);
  kernel.setup_header.assign(raw + 0x1f1, raw + header_end);
  kernel.cmdline_capacity = uint64_t{hdr.cmdline_size} + 1;
  kernel.initrd_addr_max = hdr.initrd_addr_max;
  return kernel;
}

}  // namespace

Result<LoadedKernel> LoadKernel(GuestMemory& memory, const std::string& path) {
  ASSIGN_OR_RETURN(Fd fd, Fd::Open(path, O_RDONLY));
  ASSIGN_OR_RETURN(uint64_t size, RegularFileSize(fd.get(), path));
  uint8_t magic[4] = {};
  if (size >= 4) RETURN_IF_ERROR(PreadExact(fd.get(), magic, 4, 0, "kernel " + path));
  if (size >= 4 && std::memcmp(magic, ELFMAG, SELFMAG) == 0) {
    return LoadElf(memory, fd.get(), size, path);
  }
  uint32_t hdrs = 0;
  if (size >= 0x206) RETURN_IF_ERROR(PreadExact(fd.get(), &hdrs, 4, 0x202, "kernel " + path));
  if (hdrs == 0x53726448) {  // "HdrS"
    if (size < 0x264) return Error("kernel " + path + ": bzImage header is truncated");
    return LoadBzImage(memory, fd.get(), size, path);
  }
  return Error("kernel " + path + " is neither an ELF vmlinux nor a bzImage");
}

Result<LoadedInitrd> LoadInitrd(GuestMemory& memory, const std::string& path,
                                uint64_t kernel_end, uint64_t addr_max) {
  ASSIGN_OR_RETURN(Fd fd, Fd::Open(path, O_RDONLY));
  ASSIGN_OR_RETURN(uint64_t size, RegularFileSize(fd.get(), path));
  if (size == 0) return Error("initrd " + path + " is empty");
  uint64_t top = std::min(layout::LowMemoryEnd(memory), addr_max + 1);
  uint64_t lowest = (kernel_end + 0xfff) & ~uint64_t{0xfff};
  if (size > top || ((top - size) & ~uint64_t{0xfff}) < lowest) {
    return Error("initrd " + path + " (" + std::to_string(size >> 10) +
                 " KiB) does not fit in guest memory above the kernel");
  }
  uint64_t addr = (top - size) & ~uint64_t{0xfff};
  RETURN_IF_ERROR(memory.ReadFromFile(addr, fd.get(), 0, size, "initrd " + path));
  return LoadedInitrd{addr, size};
}

}  // namespace hearth
