#include "boot/mptable.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "boot/layout.h"
#include "test_util.h"

namespace hearth {
namespace {

constexpr uint64_t kFloatingPointer = 0x9fc00;

GuestMemory MakeMemory() {
  auto mem = GuestMemory::Create(layout::RamRegions(16 << 20));
  EXPECT_TRUE(mem.ok()) << mem.error().message();
  return std::move(mem).value();
}

std::vector<uint8_t> ReadGuest(const GuestMemory& mem, uint64_t addr, size_t n) {
  std::vector<uint8_t> out(n);
  Status s = mem.Read(addr, out);
  EXPECT_TRUE(s.ok()) << s.error().message();
  return out;
}

uint8_t Sum(const std::vector<uint8_t>& bytes) {
  uint8_t s = 0;
  for (uint8_t b : bytes) s = static_cast<uint8_t>(s + b);
  return s;
}

uint16_t U16(const std::vector<uint8_t>& b, size_t at) { return static_cast<uint16_t>(b[at] | b[at + 1] << 8); }
uint32_t U32(const std::vector<uint8_t>& b, size_t at) {
  return uint32_t{b[at]} | uint32_t{b[at + 1]} << 8 | uint32_t{b[at + 2]} << 16 | uint32_t{b[at + 3]} << 24;
}

struct ParsedMpTable {
  uint32_t table_addr = 0;
  std::vector<uint8_t> table;  // Header and entries.
  struct Processor {
    uint8_t apic_id, version, flags;
  };
  std::vector<Processor> cpus;
  int buses = 0;
  struct IoApic {
    uint8_t id, version, flags;
    uint32_t addr;
  };
  std::vector<IoApic> ioapics;
  struct Interrupt {
    uint8_t type, irq_type, src_bus, src_irq, dst_apic, dst_pin;
  };
  std::vector<Interrupt> io_ints, local_ints;
};

// Reads and checks the table the way a guest kernel does.
ParsedMpTable ParseMpTable(const GuestMemory& mem) {
  ParsedMpTable out;
  auto fp = ReadGuest(mem, kFloatingPointer, 16);
  EXPECT_EQ(std::string(fp.begin(), fp.begin() + 4), "_MP_");
  EXPECT_EQ(Sum(fp), 0) << "floating pointer checksum";
  EXPECT_EQ(fp[8], 1) << "length in 16-byte units";
  EXPECT_EQ(fp[9], 4) << "spec revision 1.4";
  out.table_addr = U32(fp, 4);
  auto header = ReadGuest(mem, out.table_addr, 44);
  EXPECT_EQ(std::string(header.begin(), header.begin() + 4), "PCMP");
  uint16_t length = U16(header, 4);
  out.table = ReadGuest(mem, out.table_addr, length);
  EXPECT_EQ(Sum(out.table), 0) << "config table checksum";
  EXPECT_EQ(U32(header, 36), 0xfee00000u) << "local APIC address";
  uint16_t count = U16(header, 34);
  size_t pos = 44;
  for (uint16_t i = 0; i < count; ++i) {
    if (pos >= out.table.size()) {
      ADD_FAILURE() << "entry " << i << " beyond the table length";
      break;
    }
    const uint8_t* e = out.table.data() + pos;
    switch (e[0]) {
      case 0:
        out.cpus.push_back({e[1], e[2], e[3]});
        pos += 20;
        break;
      case 1:
        EXPECT_EQ(std::string(reinterpret_cast<const char*>(e + 2), 6), "ISA   ");
        ++out.buses;
        pos += 8;
        break;
      case 2:
        out.ioapics.push_back({e[1], e[2], e[3], U32(out.table, pos + 4)});
        pos += 8;
        break;
      case 3:
      case 4:
        (e[0] == 3 ? out.io_ints : out.local_ints).push_back({e[0], e[1], e[4], e[5], e[6], e[7]});
        pos += 8;
        break;
      default:
        ADD_FAILURE() << "unknown entry type " << int(e[0]);
        return out;
    }
  }
  EXPECT_EQ(pos, out.table.size()) << "entries must fill the table exactly";
  return out;
}

TEST(MpTable, FloatingPointerPointsAtChecksummedTable) {
  GuestMemory mem = MakeMemory();
  ASSERT_OK(WriteMpTable(mem, 2));
  ParsedMpTable t = ParseMpTable(mem);
  EXPECT_EQ(t.table_addr, 0x9fc10u);
  EXPECT_EQ(t.table[6], 4);  // Spec revision.
}

TEST(MpTable, ListsProcessorsWithBspFirst) {
  GuestMemory mem = MakeMemory();
  ASSERT_OK(WriteMpTable(mem, 4));
  ParsedMpTable t = ParseMpTable(mem);
  ASSERT_EQ(t.cpus.size(), 4u);
  for (uint8_t i = 0; i < 4; ++i) {
    EXPECT_EQ(t.cpus[i].apic_id, i);
    EXPECT_EQ(t.cpus[i].flags & 0x1, 0x1) << "enabled";
    EXPECT_EQ((t.cpus[i].flags & 0x2) != 0, i == 0) << "BSP flag only on CPU 0";
  }
}

TEST(MpTable, IoApicAndInterruptRouting) {
  GuestMemory mem = MakeMemory();
  ASSERT_OK(WriteMpTable(mem, 3));
  ParsedMpTable t = ParseMpTable(mem);
  EXPECT_EQ(t.buses, 1);
  ASSERT_EQ(t.ioapics.size(), 1u);
  const auto& ioapic = t.ioapics[0];
  EXPECT_EQ(ioapic.addr, 0xfec00000u);
  EXPECT_EQ(ioapic.flags & 1, 1);
  for (const auto& cpu : t.cpus) EXPECT_NE(cpu.apic_id, ioapic.id) << "IOAPIC id clashes with a CPU";

  ASSERT_EQ(t.io_ints.size(), 24u);
  EXPECT_EQ(t.io_ints[0].irq_type, 3) << "IRQ 0 is ExtINT";
  for (uint8_t i = 0; i < 24; ++i) {
    EXPECT_EQ(t.io_ints[i].src_irq, i);
    EXPECT_EQ(t.io_ints[i].dst_apic, ioapic.id);
    EXPECT_EQ(t.io_ints[i].dst_pin, i);
    if (i > 0) {
      EXPECT_EQ(t.io_ints[i].irq_type, 0) << "IRQ " << int(i);
    }
  }
  ASSERT_EQ(t.local_ints.size(), 2u);
  EXPECT_EQ(t.local_ints[0].irq_type, 3);  // LINT0: ExtINT.
  EXPECT_EQ(t.local_ints[0].dst_pin, 0);
  EXPECT_EQ(t.local_ints[1].irq_type, 1);  // LINT1: NMI.
  EXPECT_EQ(t.local_ints[1].dst_pin, 1);
  EXPECT_EQ(t.local_ints[0].dst_apic, 0xff);  // All local APICs.
}

TEST(MpTable, RejectsZeroAndTooManyVcpus) {
  GuestMemory mem = MakeMemory();
  EXPECT_ERROR_CONTAINS(WriteMpTable(mem, 0), "MP table: 0 vCPUs is out of range");
  EXPECT_ERROR_CONTAINS(WriteMpTable(mem, 33), "MP table: 33 vCPUs is out of range");
  EXPECT_EQ(ReadGuest(mem, kFloatingPointer, 16), std::vector<uint8_t>(16, 0));
}

TEST(MpTable, ThirtyTwoVcpusFitInEbda) {
  GuestMemory mem = MakeMemory();
  ASSERT_OK(WriteMpTable(mem, 32));
  ParsedMpTable t = ParseMpTable(mem);
  ASSERT_EQ(t.cpus.size(), 32u);
  EXPECT_EQ(t.cpus[31].apic_id, 31);
  EXPECT_LE(t.table_addr + t.table.size(), 0xa0000u);
}

TEST(MpTable, SingleVcpu) {
  GuestMemory mem = MakeMemory();
  ASSERT_OK(WriteMpTable(mem, 1));
  ParsedMpTable t = ParseMpTable(mem);
  ASSERT_EQ(t.cpus.size(), 1u);
  EXPECT_EQ(t.cpus[0].flags, 0x3);
}

}  // namespace
}  // namespace hearth
