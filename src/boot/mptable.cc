#include "boot/mptable.h"

#include <cstring>
#include <vector>

#include "boot/layout.h"

namespace hearth {
namespace {

struct __attribute__((packed)) MpFloatingPointer {
  char signature[4];  // "_MP_"
  uint32_t config_table;
  uint8_t length;  // In 16-byte units.
  uint8_t spec_rev;
  uint8_t checksum;
  uint8_t features[5];
};
static_assert(sizeof(MpFloatingPointer) == 16);

struct __attribute__((packed)) MpConfigHeader {
  char signature[4];  // "PCMP"
  uint16_t length;
  uint8_t spec_rev;
  uint8_t checksum;
  char oem[8];
  char product[12];
  uint32_t oem_table;
  uint16_t oem_table_size;
  uint16_t entry_count;
  uint32_t lapic_addr;
  uint16_t ext_length;
  uint8_t ext_checksum;
  uint8_t reserved;
};
static_assert(sizeof(MpConfigHeader) == 44);

struct __attribute__((packed)) MpProcessor {
  uint8_t type;  // 0
  uint8_t apic_id;
  uint8_t apic_version;
  uint8_t flags;  // Bit 0: enabled; bit 1: bootstrap processor.
  uint32_t signature;
  uint32_t features;
  uint32_t reserved[2];
};
static_assert(sizeof(MpProcessor) == 20);

struct __attribute__((packed)) MpBus {
  uint8_t type;  // 1
  uint8_t bus_id;
  char bus_type[6];
};
static_assert(sizeof(MpBus) == 8);

struct __attribute__((packed)) MpIoApic {
  uint8_t type;  // 2
  uint8_t apic_id;
  uint8_t apic_version;
  uint8_t flags;
  uint32_t addr;
};
static_assert(sizeof(MpIoApic) == 8);

struct __attribute__((packed)) MpInterrupt {
  uint8_t type;  // 3: I/O interrupt; 4: local interrupt.
  uint8_t irq_type;  // 0: INT, 1: NMI, 3: ExtINT.
  uint16_t flags;  // Polarity and trigger mode; 0 = conforms to the bus.
  uint8_t src_bus;
  uint8_t src_irq;
  uint8_t dst_apic;
  uint8_t dst_pin;
};
static_assert(sizeof(MpInterrupt) == 8);

constexpr uint8_t kApicVersion = 0x14;
constexpr uint8_t kIoApicVersion = 0x11;
constexpr uint8_t kIoApicPins = 24;
constexpr uint8_t kIrqInt = 0;
constexpr uint8_t kIrqNmi = 1;
constexpr uint8_t kIrqExtInt = 3;
constexpr uint32_t kCpuSignature = 0x600;        // Family 6.
constexpr uint32_t kCpuFeatures = (1 << 9) | 1;  // APIC, FPU.

uint8_t Checksum(const uint8_t* bytes, size_t n) {
  uint8_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum = static_cast<uint8_t>(sum + bytes[i]);
  return static_cast<uint8_t>(-sum);
}

template <typename T>
void Append(std::vector<uint8_t>& out, const T& value) {
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  out.insert(out.end(), p, p + sizeof(T));
}

}  // namespace

Status WriteMpTable(GuestMemory& memory, uint32_t vcpu_count) {
  if (vcpu_count == 0 || vcpu_count > kMaxVcpus) {
    return Error("MP table: " + std::to_string(vcpu_count) + " vCPUs is out of range");
  }
  const uint8_t ioapic_id = static_cast<uint8_t>(vcpu_count);
  std::vector<uint8_t> entries;
  uint16_t count = 0;
  for (uint32_t i = 0; i < vcpu_count; ++i, ++count) {
    MpProcessor cpu{0, static_cast<uint8_t>(i), kApicVersion,
                    static_cast<uint8_t>(i == 0 ? 0x3 : 0x1), kCpuSignature, kCpuFeatures, {0, 0}};
    Append(entries, cpu);
  }
  MpBus isa{1, 0, {'I', 'S', 'A', ' ', ' ', ' '}};
  Append(entries, isa);
  ++count;
  Append(entries, MpIoApic{2, ioapic_id, kIoApicVersion, 1, static_cast<uint32_t>(layout::kIoapicAddr)});
  ++count;
  // ISA IRQ 0 arrives as ExtINT on pin 0 (the PIC's output); every IRQ maps to its own pin.
  Append(entries, MpInterrupt{3, kIrqExtInt, 0, 0, 0, ioapic_id, 0});
  ++count;
  for (uint8_t irq = 1; irq < kIoApicPins; ++irq, ++count) {
    Append(entries, MpInterrupt{3, kIrqInt, 0, 0, irq, ioapic_id, irq});
  }
  // LINT0 takes the PIC (ExtINT) and LINT1 NMIs, on every local APIC.
  Append(entries, MpInterrupt{4, kIrqExtInt, 0, 0, 0, 0xff, 0});
  Append(entries, MpInterrupt{4, kIrqNmi, 0, 0, 0, 0xff, 1});
  count += 2;

  const uint64_t fp_addr = layout::kEbdaStart;
  const uint64_t table_addr = fp_addr + sizeof(MpFloatingPointer);
  MpConfigHeader header{};
  std::memcpy(header.signature, "PCMP", 4);
  header.length = static_cast<uint16_t>(sizeof(header) + entries.size());
  header.spec_rev = 4;
  std::memcpy(header.oem, "HEARTH  ", 8);
  std::memcpy(header.product, "MICROVM     ", 12);
  header.entry_count = count;
  header.lapic_addr = static_cast<uint32_t>(layout::kLapicAddr);
  std::vector<uint8_t> table;
  Append(table, header);
  table.insert(table.end(), entries.begin(), entries.end());
  table[offsetof(MpConfigHeader, checksum)] = Checksum(table.data(), table.size());
  if (table_addr + table.size() > layout::kEbdaEnd) return Error("MP table overflows the EBDA");

  MpFloatingPointer fp{};
  std::memcpy(fp.signature, "_MP_", 4);
  fp.config_table = static_cast<uint32_t>(table_addr);
  fp.length = 1;
  fp.spec_rev = 4;
  fp.checksum = Checksum(reinterpret_cast<const uint8_t*>(&fp), sizeof(fp));

  RETURN_IF_ERROR(memory.WriteObj(fp_addr, fp));
  return memory.Write(table_addr, table);
}

}  // namespace hearth
