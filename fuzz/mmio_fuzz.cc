// The virtio-mmio register interface: a sequence of register reads and writes of any width and
// offset (feature negotiation, status transitions, queue programming, notifies, interrupt acks,
// config space, resets) decoded from the input, in front of a real virtio-blk or virtio-net
// device, with a hostile driver writing the rings it points the queues at.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <memory>

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

// A backend that has no frames and takes every write.
class SinkBackend : public NetBackend {
 public:
  ~SinkBackend() override { ::close(fd_); }
  int fd() const override { return fd_; }
  const std::string& name() const override { return name_; }
  Result<std::optional<size_t>> ReadFrame(std::span<const iovec>) override {
    return std::optional<size_t>();
  }
  Result<std::optional<size_t>> WriteFrame(std::span<const iovec> iov) override {
    size_t total = 0;
    for (const iovec& v : iov) total += v.iov_len;
    return std::optional<size_t>(total);
  }
  unsigned supported_offloads() const override { return kTunFCsum; }
  Status SetOffloads(unsigned) override { return Ok(); }

 private:
  int fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  std::string name_ = "sink0";
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
    auto net = Net::Create(NetOptions{"eth0", "sink0", std::nullopt}, std::make_unique<SinkBackend>());
    if (!net.ok()) Die("Net::Create");
    device = std::move(net).value();
  }
  auto transport = std::make_unique<MmioTransport>(device, memory, std::make_shared<NullTrigger>());
  // The driver lays its rings out for up to 64 entries per queue at fixed places.
  FuzzRing rings[2] = {FuzzRing(*memory, kRingBase[0], 64), FuzzRing(*memory, kRingBase[1], 64)};

  while (in.remaining_bytes() > 0) {
    const int op = in.ConsumeIntegralInRange<int>(0, 9);
    if (op <= 2) {
      rings[in.ConsumeBool()].Step(in);
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
  }
  transport.reset();
  return 0;
}
