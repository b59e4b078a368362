#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "snapshot/state_codec.h"
#include "test_util.h"
#include "vmm/snapshot_state.h"

namespace hearth {
namespace {

template <typename T>
bool SameBytes(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

template <typename T>
T Pattern(uint8_t seed) {
  T v;
  auto* p = reinterpret_cast<uint8_t*>(&v);
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<uint8_t>(seed + i * 13);
  return v;
}

MicroVmState SampleState() {
  MicroVmState s;
  s.machine.vcpu_count = 2;
  s.machine.mem_size_mib = 128;
  s.machine.smt = false;
  s.machine.track_dirty_pages = true;
  s.kernel_image_path = "/k/vmlinux";
  s.cmdline = "console=ttyS0 reboot=k";
  DriveConfig d;
  d.drive_id = "rootfs";
  d.path_on_host = "/img/rootfs.ext4";
  d.is_root_device = true;
  d.partuuid = "abcd-01";
  d.cache_type = CacheType::kWriteback;
  d.io_engine = IoEngine::kAsync;
  d.rate_limiter = RateLimiterConfig{TokenBucketConfig{1000, 10, 100}, std::nullopt};
  s.drives.push_back(d);
  NetworkInterfaceConfig n;
  n.iface_id = "eth0";
  n.host_dev_name = "tap0";
  n.guest_mac = std::array<uint8_t, 6>{0x06, 0, 0xac, 0x10, 0, 2};
  n.mtu = 1400;
  n.tx_rate_limiter = RateLimiterConfig{std::nullopt, TokenBucketConfig{5, 0, 1000}};
  s.network_interfaces.push_back(n);
  s.memory_regions = {{0, 128ull << 20}};
  s.vm.pic_master = Pattern<kvm_irqchip>(1);
  s.vm.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
  s.vm.pic_slave = Pattern<kvm_irqchip>(2);
  s.vm.ioapic = Pattern<kvm_irqchip>(3);
  s.vm.pit = Pattern<kvm_pit_state2>(4);
  s.vm.clock = Pattern<kvm_clock_data>(5);
  for (uint32_t id = 0; id < 2; ++id) {
    VcpuState v;
    v.id = id;
    v.cpuid = {Pattern<kvm_cpuid_entry2>(6), Pattern<kvm_cpuid_entry2>(7)};
    v.msrs = {{0x10, 12345}, {0x4b564d01, 0x1001}};
    v.regs = Pattern<kvm_regs>(8);
    v.sregs = Pattern<kvm_sregs>(9);
    v.fpu = Pattern<kvm_fpu>(10);
    v.xsave.assign(4096 + 64 * id, static_cast<uint8_t>(id + 1));
    v.has_xcrs = true;
    v.xcrs = kvm_xcrs{};
    v.xcrs.nr_xcrs = 1;
    v.debugregs = Pattern<kvm_debugregs>(11);
    v.lapic = Pattern<kvm_lapic_state>(12);
    v.mp_state = KVM_MP_STATE_RUNNABLE;
    v.events = Pattern<kvm_vcpu_events>(13);
    s.vcpus.push_back(v);
  }
  s.serial.ier = 3;
  s.serial.lcr = 3;
  s.serial.rx_fifo = {'a', 'b'};
  s.i8042.control = 0x47;
  s.i8042.output = {0xfa};
  VirtioDeviceSnapshot vd;
  vd.id = "rootfs";
  vd.device_type = 2;
  vd.mmio_addr = 0xd0000000;
  vd.irq = 5;
  vd.transport.status = 15;
  vd.transport.acked_features = (1ull << 32) | (1ull << 29);
  QueueState q;
  q.ready = true;
  q.desc_table = 0x10000;
  q.avail_ring = 0x11000;
  q.used_ring = 0x12000;
  q.next_avail = 7;
  q.next_used = 7;
  q.event_idx = true;
  vd.transport.queues = {q};
  vd.device_state = {1, 2, 3};
  s.virtio.push_back(vd);
  return s;
}

TEST(MicroVmStateCodec, RoundTrip) {
  MicroVmState s = SampleState();
  auto bytes = EncodeMicroVmState(s);
  auto back = DecodeMicroVmState(bytes);
  ASSERT_OK(back);
  const MicroVmState& r = *back;
  EXPECT_EQ(r.machine.vcpu_count, 2u);
  EXPECT_EQ(r.machine.mem_size_mib, 128u);
  EXPECT_TRUE(r.machine.track_dirty_pages);
  EXPECT_EQ(r.cmdline, s.cmdline);
  ASSERT_EQ(r.drives.size(), 1u);
  EXPECT_EQ(r.drives[0].path_on_host, "/img/rootfs.ext4");
  EXPECT_EQ(r.drives[0].partuuid, s.drives[0].partuuid);
  EXPECT_EQ(r.drives[0].cache_type, CacheType::kWriteback);
  EXPECT_EQ(r.drives[0].io_engine, IoEngine::kAsync);
  EXPECT_EQ(r.drives[0].rate_limiter, s.drives[0].rate_limiter);
  ASSERT_EQ(r.network_interfaces.size(), 1u);
  EXPECT_EQ(r.network_interfaces[0].guest_mac, s.network_interfaces[0].guest_mac);
  EXPECT_EQ(r.network_interfaces[0].mtu, s.network_interfaces[0].mtu);
  EXPECT_EQ(r.network_interfaces[0].tx_rate_limiter, s.network_interfaces[0].tx_rate_limiter);
  ASSERT_EQ(r.memory_regions.size(), 1u);
  EXPECT_EQ(r.memory_regions[0].size, 128ull << 20);
  EXPECT_TRUE(SameBytes(r.vm.pic_master, s.vm.pic_master));
  EXPECT_TRUE(SameBytes(r.vm.pit, s.vm.pit));
  EXPECT_TRUE(SameBytes(r.vm.clock, s.vm.clock));
  ASSERT_EQ(r.vcpus.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(r.vcpus[i].id, i);
    EXPECT_EQ(r.vcpus[i].msrs, s.vcpus[i].msrs);
    EXPECT_EQ(r.vcpus[i].xsave, s.vcpus[i].xsave);
    EXPECT_TRUE(SameBytes(r.vcpus[i].regs, s.vcpus[i].regs));
    EXPECT_TRUE(SameBytes(r.vcpus[i].sregs, s.vcpus[i].sregs));
    EXPECT_TRUE(SameBytes(r.vcpus[i].lapic, s.vcpus[i].lapic));
    EXPECT_TRUE(SameBytes(r.vcpus[i].events, s.vcpus[i].events));
    ASSERT_EQ(r.vcpus[i].cpuid.size(), 2u);
    EXPECT_TRUE(SameBytes(r.vcpus[i].cpuid[1], s.vcpus[i].cpuid[1]));
  }
  EXPECT_EQ(r.serial.rx_fifo, s.serial.rx_fifo);
  EXPECT_EQ(r.serial.ier, 3);
  EXPECT_EQ(r.i8042.output, s.i8042.output);
  ASSERT_EQ(r.virtio.size(), 1u);
  EXPECT_EQ(r.virtio[0].transport.acked_features, s.virtio[0].transport.acked_features);
  ASSERT_EQ(r.virtio[0].transport.queues.size(), 1u);
  EXPECT_EQ(r.virtio[0].transport.queues[0].next_avail, 7);
  EXPECT_TRUE(r.virtio[0].transport.queues[0].event_idx);
  EXPECT_EQ(r.virtio[0].device_state, s.virtio[0].device_state);
  // Encoding is deterministic.
  EXPECT_EQ(EncodeMicroVmState(r), bytes);
  EXPECT_NE(DescribeMicroVmState(r).find("vCPU 1:"), std::string::npos);
}

TEST(MicroVmStateCodec, RefusesEveryTruncation) {
  auto bytes = EncodeMicroVmState(SampleState());
  for (size_t n = 0; n < bytes.size(); n += (n < 512 ? 1 : 97)) {
    EXPECT_FALSE(DecodeMicroVmState(std::span(bytes.data(), n)).ok()) << n;
  }
}

TEST(MicroVmStateCodec, SurvivesRandomCorruption) {
  auto bytes = EncodeMicroVmState(SampleState());
  std::mt19937 rng(42);
  for (int i = 0; i < 2000; ++i) {
    auto copy = bytes;
    for (int k = 0; k < 3; ++k) copy[rng() % copy.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
    (void)DecodeMicroVmState(copy).ok();  // Must neither crash nor over-read (ASan build).
  }
}

TEST(MicroVmStateCodec, RefusesMismatchedMemoryLayout) {
  MicroVmState s = SampleState();
  s.memory_regions = {{0, 64ull << 20}};
  EXPECT_ERROR_CONTAINS(DecodeMicroVmState(EncodeMicroVmState(s)),
                        "regions total 67108864 bytes, the machine config says 128 MiB");
  s.memory_regions = {{0, 64ull << 20}, {0x1000, 64ull << 20}};
  EXPECT_ERROR_CONTAINS(DecodeMicroVmState(EncodeMicroVmState(s)), "overlapping");
}

TEST(MicroVmStateCodec, RefusesVcpuCountMismatch) {
  MicroVmState s = SampleState();
  s.machine.vcpu_count = 3;
  EXPECT_ERROR_CONTAINS(DecodeMicroVmState(EncodeMicroVmState(s)),
                        "the state holds 2 vCPUs, the machine config says 3");
}

TEST(MicroVmStateCodec, RefusesOverlongSerialFifo) {
  MicroVmState s = SampleState();
  s.serial.rx_fifo.assign(65, 'x');
  EXPECT_ERROR_CONTAINS(DecodeMicroVmState(EncodeMicroVmState(s)), "serial rx_fifo: length 65 exceeds 64");
}

TEST(MicroVmStateCodec, RefusesTrailingBytes) {
  auto bytes = EncodeMicroVmState(SampleState());
  bytes.push_back(0);
  EXPECT_ERROR_CONTAINS(DecodeMicroVmState(bytes), "unexpected trailing bytes");
}

TEST(StateReader, HostileCountDoesNotAllocate) {
  StateWriter w;
  w.U64(~0ull >> 1);
  StateReader r(w.bytes());
  EXPECT_ERROR_CONTAINS(r.Count("items", ~0ull, 8), "does not fit in the rest of the state");
}

TEST(StateReader, BlobOfOtherSizeIsRefused) {
  StateWriter w;
  w.Blob(uint32_t{7});
  StateReader r(w.bytes());
  EXPECT_ERROR_CONTAINS(r.Blob<uint64_t>("regs"), "regs: saved as 4 bytes, expected 8");
}

}  // namespace
}  // namespace hearth
