// The virtio-mmio register interface: a sequence of register reads and writes of any width and
// offset (feature negotiation, status transitions, queue programming, notifies, interrupt acks,
// config space, resets) decoded from the input, in front of a real virtio-blk or virtio-net
// device, with a hostile driver writing the rings it points the queues at.
#include <fuzzer/FuzzedDataProvider.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "fuzz/fuzz_devices.h"
#include "fuzz/guest_ring.h"
#include "fuzz/memfd_file.h"
#include "virtio/block/block.h"
#include "virtio/mmio_transport.h"
#include "virtio/net/net.h"

using namespace hearth;
using namespace hearth::fuzz;

namespace {

class NullTrigger : public Trigger {
 public:
  void Fire() override {}
};

constexpr uint64_t kRegisters[] = {
    mmio::kMagic,          mmio::kVersion,        mmio::kDeviceId,       mmio::kVendorId,
    mmio::kDeviceFeatures, mmio::kDeviceFeaturesSel, mmio::kDriverFeatures, mmio::kDriverFeaturesSel,
    mmio::kQueueSel,       mmio::kQueueNumMax,    mmio::kQueueNum,       mmio::kQueueReady,
    mmio::kQueueNotify,    mmio::kInterruptStatus, mmio::kInterruptAck,  mmio::kStatus,
    mmio::kQueueDescLow,   mmio::kQueueDescHigh,  mmio::kQueueDriverLow, mmio::kQueueDriverHigh,
    mmio::kQueueDeviceLow, mmio::kQueueDeviceHigh, mmio::kConfigGeneration, mmio::kConfig,
};

constexpr uint64_t kRingBase[2] = {0x1000, 0x4000};

void WriteRegister(MmioTransport& transport, uint64_t offset, uint32_t value) {
  transport.Write(offset, std::span(reinterpret_cast<const uint8_t*>(&value), 4));
}

uint32_t ReadRegister(MmioTransport& transport, uint64_t offset) {
  uint32_t value = 0;
  transport.Read(offset, std::span(reinterpret_cast<uint8_t*>(&value), 4));
  return value;
}

// A whole driver initialisation (reset, ACKNOWLEDGE, DRIVER, a subset of the offered features,
// FEATURES_OK, some queues set up and made ready, DRIVER_OK), so that the fuzzer spends its
// time on activated devices as well as on the state machine's corners.
void Initialise(MmioTransport& transport, FuzzedDataProvider& in, FuzzRing (&rings)[2]) {
  WriteRegister(transport, mmio::kStatus, 0);
  WriteRegister(transport, mmio::kStatus, kStatusAcknowledge);
  WriteRegister(transport, mmio::kStatus, kStatusAcknowledge | kStatusDriver);
  for (uint32_t sel = 0; sel < 2; ++sel) {
    WriteRegister(transport, mmio::kDeviceFeaturesSel, sel);
    uint32_t offered = ReadRegister(transport, mmio::kDeviceFeatures);
    WriteRegister(transport, mmio::kDriverFeaturesSel, sel);
    WriteRegister(transport, mmio::kDriverFeatures, offered & in.ConsumeIntegral<uint32_t>());
  }
  WriteRegister(transport, mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  for (uint32_t q = 0; q < 2; ++q) {
    const int setup = in.ConsumeIntegralInRange<int>(0, 2);  // none, addresses only, ready
    if (setup == 0) continue;
    WriteRegister(transport, mmio::kQueueSel, q);
    WriteRegister(transport, mmio::kQueueNum, rings[q].size());
    WriteRegister(transport, mmio::kQueueDescLow, static_cast<uint32_t>(rings[q].desc()));
    WriteRegister(transport, mmio::kQueueDriverLow, static_cast<uint32_t>(rings[q].avail()));
    WriteRegister(transport, mmio::kQueueDeviceLow, static_cast<uint32_t>(rings[q].used()));
    if (setup == 2) WriteRegister(transport, mmio::kQueueReady, 1);
  }
  WriteRegister(transport, mmio::kStatus,
                kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
}

// A queue the driver has not made ready belongs to no one: the device must not touch it.
void CheckUnreadyQueuesUntouched(MmioTransport& transport) {
  for (const Queue& q : transport.queues()) {
    if (!q.ready() && (q.state().next_avail != 0 || q.state().next_used != 0)) {
      Die("the device used a queue the driver did not make ready");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static MemfdFile image("fuzz-mmio-disk");
  FuzzedDataProvider in(data, size);
  GuestMemory* memory = &FreshGuestMemory();

  std::shared_ptr<VirtioDevice> device;
  if (in.ConsumeBool()) {
    image.Set(nullptr, 16 << 10);
    BlockOptions options;
    options.drive_id = "fuzz";
    options.path = image.path();
    auto block = Block::Create(options);
    if (!block.ok()) Die("Block::Create");
    device = std::move(block).value();
  } else {
    NetOptions options;
    options.iface_id = "eth0";
    options.host_dev_name = "sink0";
    auto net = Net::Create(options, std::make_unique<SinkBackend>());
    if (!net.ok()) Die("Net::Create");
    device = std::move(net).value();
  }
  auto transport = std::make_unique<MmioTransport>(device, memory, std::make_shared<NullTrigger>());
  // The driver lays its rings out for up to 64 entries per queue at fixed places.
  FuzzRing rings[2] = {FuzzRing(*memory, kRingBase[0], 64), FuzzRing(*memory, kRingBase[1], 64)};

  while (in.remaining_bytes() > 0) {
    const int op = in.ConsumeIntegralInRange<int>(0, 11);
    if (op <= 2) {
      rings[in.ConsumeBool()].Step(in);
      continue;
    }
    if (op == 10) {
      Initialise(*transport, in, rings);
      CheckUnreadyQueuesUntouched(*transport);
      continue;
    }
    if (op == 11) {  // A kick, as from the queue's ioeventfd.
      transport->Notify(in.ConsumeIntegralInRange<uint32_t>(0, 2));
      CheckUnreadyQueuesUntouched(*transport);
      continue;
    }
    uint64_t offset = in.ConsumeBool() ? in.PickValueInArray(kRegisters)
                                       : in.ConsumeIntegralInRange<uint64_t>(0, mmio::kWindowSize);
    if (offset == mmio::kConfig) offset += in.ConsumeIntegralInRange<uint64_t>(0, 32);
    static constexpr size_t kWidths[] = {4, 4, 4, 1, 2, 8};
    const size_t width = in.PickValueInArray(kWidths);
    uint8_t buf[8] = {};
    if (op <= 4) {
      transport->Read(offset, std::span(buf, width));
      continue;
    }
    if (op == 9 && in.ConsumeIntegralInRange<int>(0, 7) == 0) {  // A fresh device reset.
      uint32_t zero = 0;
      transport->Write(mmio::kStatus, std::span(reinterpret_cast<const uint8_t*>(&zero), 4));
      continue;
    }
    uint64_t value;
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
      case 0: {  // One of the driver's ring addresses (low half; the high half is 0).
        const FuzzRing& r = rings[in.ConsumeBool()];
        static constexpr int kWhich[] = {0, 1, 2};
        int which = in.PickValueInArray(kWhich);
        value = which == 0 ? r.desc() : which == 1 ? r.avail() : r.used();
        break;
      }
      case 1:  // Small values: status bits, selectors, sizes, feature words.
        value = in.ConsumeIntegralInRange<uint64_t>(0, 256);
        break;
      default:
        value = in.ConsumeIntegral<uint64_t>();
        break;
    }
    std::memcpy(buf, &value, sizeof(value));
    transport->Write(offset, std::span<const uint8_t>(buf, width));
    CheckUnreadyQueuesUntouched(*transport);
  }
  transport.reset();
  return 0;
}
