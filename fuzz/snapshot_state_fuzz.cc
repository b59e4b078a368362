// The snapshot state reader: a hostile state file through DecodeStateFile (header, version, CRC),
// its payload through DecodeMicroVmState, and then everything a restore does with it that needs
// no KVM: the serial and i8042 state, and each virtio-blk / virtio-net device's state and
// transport (queues re-checked against guest memory, the device re-activated) followed by a kick
// of every queue. What decodes must encode and decode again to the same bytes.
//
// The input is the payload; the first byte picks whether it is wrapped in a valid header and CRC
// (so the fuzzer reaches the decoder) or read as a whole file as it is (the header checks).
//   HEARTH_FUZZ_WRITE_SEED=<file> fuzz_snapshot_state   writes a well-formed state as a seed.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>

#include "devices/i8042.h"
#include "devices/serial.h"
#include "fuzz/fuzz_devices.h"
#include "fuzz/guest_ring.h"
#include "fuzz/memfd_file.h"
#include "snapshot/state_file.h"
#include "virtio/block/block.h"
#include "virtio/mmio_transport.h"
#include "virtio/net/net.h"
#include "vmm/snapshot_state.h"

using namespace hearth;
using namespace hearth::fuzz;

namespace {

class NullTrigger : public Trigger {
 public:
  void Fire() override {}
};

class NullSink : public ByteSink {
 public:
  void Write(std::span<const uint8_t>) override {}
};

// A state a real VM could have saved: one vCPU, a drive and an interface whose queues live in
// the harness's guest memory, both DRIVER_OK.
MicroVmState SeedState() {
  MicroVmState s;
  s.machine.vcpu_count = 1;
  s.machine.mem_size_mib = 128;
  s.kernel_image_path = "vmlinux";
  s.cmdline = "console=ttyS0 reboot=k panic=1";
  DriveConfig drive;
  drive.drive_id = "rootfs";
  drive.path_on_host = "rootfs.ext4";
  drive.is_root_device = true;
  s.drives.push_back(drive);
  NetworkInterfaceConfig iface;
  iface.iface_id = "eth0";
  iface.host_dev_name = "tap0";
  s.network_interfaces.push_back(iface);
  s.memory_regions = {{0, 128ull << 20}};
  s.vcpus.resize(1);
  auto transport = [](std::vector<uint64_t> rings, uint64_t features) {
    MmioTransportState t;
    t.status = kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk;
    t.acked_features = features;
    for (uint64_t base : rings) {
      QueueState q;
      q.size = 16;
      q.ready = true;
      q.desc_table = base;
      q.avail_ring = base + 16 * 16;
      q.used_ring = (q.avail_ring + 6 + 2 * 16 + 3) & ~3ull;
      q.indirect = features & kVirtioFRingIndirectDesc;
      q.event_idx = features & kVirtioFRingEventIdx;
      q.next_avail = q.next_used = 3;
      t.queues.push_back(q);
    }
    return t;
  };
  s.virtio.push_back({"rootfs", kVirtioIdBlock, 0xd0000000, 5,
                      transport({0x1000}, kVirtioFVersion1 | kVirtioFRingIndirectDesc), {}});
  s.virtio.push_back({"eth0", kVirtioIdNet, 0xd0001000, 6,
                      transport({0x2000, 0x3000}, kVirtioFVersion1 | kVirtioFRingEventIdx), {}});
  return s;
}

void RestoreVirtio(const VirtioDeviceSnapshot& saved) {
  static MemfdFile image("fuzz-snapshot-disk");
  std::shared_ptr<VirtioDevice> device;
  if (saved.device_type == kVirtioIdBlock) {
    image.Set(nullptr, 16 << 10);
    BlockOptions options;
    options.drive_id = "fuzz";
    options.path = image.path();
    auto block = Block::Create(options);
    if (!block.ok()) Die("Block::Create");
    device = std::move(block).value();
  } else if (saved.device_type == kVirtioIdNet) {
    NetOptions options;
    options.iface_id = "eth0";
    options.host_dev_name = "sink0";
    auto net = Net::Create(options, std::make_unique<SinkBackend>());
    if (!net.ok()) Die("Net::Create");
    device = std::move(net).value();
  } else {
    return;  // The restore refuses it (no such device is configured).
  }
  GuestMemory& memory = FreshGuestMemory();
  MmioTransport transport(device, &memory, std::make_shared<NullTrigger>());
  if (!device->RestoreState(saved.device_state).ok()) return;
  if (!transport.Restore(saved.transport).ok()) {
    if (device->activated()) Die("a refused transport restore left the device activated");
    return;
  }
  for (uint32_t q = 0; q < transport.queues().size(); ++q) transport.Notify(q);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  QuietLogs();
  if (const char* path = std::getenv("HEARTH_FUZZ_WRITE_SEED")) {
    const std::vector<uint8_t> payload = EncodeMicroVmState(SeedState());
    std::ofstream out(path, std::ios::binary);
    out.put(0);  // Wrapped in a valid header and CRC.
    out.write(reinterpret_cast<const char*>(payload.data()), static_cast<std::streamsize>(payload.size()));
    std::exit(out ? 0 : 1);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool raw_file = data[0] & 1;
  std::span<const uint8_t> input(data + 1, size - 1);
  std::vector<uint8_t> payload;
  if (raw_file) {
    auto decoded = DecodeStateFile(input, "fuzz");
    if (!decoded.ok()) return 0;
    payload = std::move(decoded).value();
  } else {
    const std::vector<uint8_t> file = EncodeStateFile(input);
    auto decoded = DecodeStateFile(file, "fuzz");
    if (!decoded.ok() || *decoded != std::vector<uint8_t>(input.begin(), input.end())) {
      Die("a state file the writer made does not read back");
    }
    payload = std::move(decoded).value();
  }

  auto state = DecodeMicroVmState(payload);
  if (!state.ok()) return 0;
  (void)DescribeMicroVmState(*state);
  const std::vector<uint8_t> encoded = EncodeMicroVmState(*state);
  auto again = DecodeMicroVmState(encoded);
  if (!again.ok()) Die("a decoded state does not decode again after encoding");
  if (EncodeMicroVmState(*again) != encoded) Die("a decoded state changes on a round trip");

  Serial serial(std::make_shared<NullTrigger>(), std::make_shared<NullSink>());
  (void)serial.Restore(state->serial);
  I8042 i8042(std::make_shared<NullTrigger>(), [] {});
  (void)i8042.Restore(state->i8042);
  for (const auto& saved : state->virtio) RestoreVirtio(saved);
  return 0;
}
