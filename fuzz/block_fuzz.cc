// The virtio-blk request path: a hostile driver's chains (headers, data and status buffers in
// any framing) against a real Block device on a small memfd image, with the sync or the
// io_uring engine, read-only or not, and resets in between.
#include <fuzzer/FuzzedDataProvider.h>
#include <linux/virtio_blk.h>
#include <poll.h>
#include <sys/epoll.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "fuzz/fuzz_devices.h"
#include "fuzz/guest_ring.h"
#include "fuzz/memfd_file.h"
#include "fuzz/rate_limit_input.h"
#include "virtio/block/block.h"

using namespace hearth;
using namespace hearth::fuzz;

namespace {

constexpr uint64_t kRingBase = 0x1000;
constexpr uint64_t kImageBytes = 64 << 10;

// Serves every event source of the device (the rate limiter's timer and the io_uring
// completion eventfd, as the VMM loop watches both) until no request is in flight.
void WaitIdle(Block& block) {
  for (int i = 0; i < 100 && block.in_flight() > 0; ++i) {
    std::vector<pollfd> fds;
    for (const auto& source : block.event_sources()) fds.push_back({source.fd, POLLIN, 0});
    if (fds.empty()) Die("requests in flight with no completion fd");
    // EINTR: libFuzzer's timer interrupts.
    if (::poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) Die("poll");
    for (const pollfd& p : fds) {
      if (p.revents & POLLIN) block.OnEvent(p.fd, EPOLLIN);
    }
  }
  if (block.in_flight() > 0) Die("io_uring requests never completed");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static MemfdFile image("fuzz-disk");
  FuzzedDataProvider in(data, size);
  image.Set(nullptr, kImageBytes + in.ConsumeIntegralInRange<uint64_t>(0, 1) * 300);

  BlockOptions options;
  options.drive_id = "fuzz";
  options.path = image.path();
  options.read_only = in.ConsumeBool();
  options.cache = in.ConsumeBool() ? BlockOptions::kWriteback : BlockOptions::kUnsafe;
  options.engine = in.ConsumeIntegralInRange<int>(0, 3) == 3 ? BlockOptions::kAsync : BlockOptions::kSync;
  options.rate_limiter = ConsumeRateLimiter(in);
  auto timer_owner = std::make_unique<hearth::testing::FakeTimer>();
  hearth::testing::FakeTimer* timer = timer_owner.get();
  auto device = Block::Create(options, std::move(timer_owner));
  if (!device.ok()) Die("Block::Create");
  Block& block = **device;

  GuestMemory* memory = &FreshGuestMemory();
  const uint16_t qsize = static_cast<uint16_t>(1u << in.ConsumeIntegralInRange<int>(0, 8));
  const bool event_idx = in.ConsumeBool();
  FuzzRing ring(*memory, kRingBase, qsize);
  std::vector<Queue> queues;
  queues.emplace_back(Block::kQueueSize);
  auto activate = [&] {
    ring.Configure(queues[0], event_idx, /*indirect=*/true);
    uint64_t features = kVirtioFVersion1 | block.device_features();
    if (!event_idx) features &= ~kVirtioFRingEventIdx;
    if (!block.Activate({memory, &queues, std::make_shared<NullInterrupt>(), features}).ok()) {
      Die("Block::Activate");
    }
  };
  activate();

  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 10)) {
      case 0:
      case 1:
      case 2:
      case 3:
        ring.Step(in);
        break;
      case 4:
      case 5: {  // A request header somewhere.
        static constexpr uint32_t kTypes[] = {VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH,
                                              VIRTIO_BLK_T_GET_ID, 0xdead};
        BlockRequestHeader h{};
        h.type = in.ConsumeBool() ? in.PickValueInArray(kTypes) : in.ConsumeIntegral<uint32_t>();
        h.sector = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint64_t>(0, (kImageBytes >> 9) + 2)
                                    : in.ConsumeIntegral<uint64_t>();
        (void)memory->WriteObj(ConsumeAddr(in), h);
        break;
      }
      case 6:
      case 7:
        block.ProcessQueue(in.ConsumeIntegralInRange<uint16_t>(0, 1));
        if (block.in_flight() > 0 && in.ConsumeBool()) WaitIdle(block);
        break;
      case 8: {  // Config space, as the transport forwards it.
        uint8_t buf[16];
        uint64_t offset = in.ConsumeIntegralInRange<uint64_t>(0, 80);
        size_t len = in.ConsumeIntegralInRange<size_t>(0, sizeof(buf));
        if (in.ConsumeBool()) {
          block.ReadConfig(offset, std::span(buf, len));
        } else {
          auto bytes = in.ConsumeBytes<uint8_t>(len);
          block.WriteConfig(offset, bytes);
        }
        break;
      }
      case 10:  // Time passes; the limiter's timer fires if it was armed.
        timer->Advance(ConsumeDelayNs(in));
        if (timer->readable()) block.OnEvent(timer->fd(), EPOLLIN);
        break;
      case 9:  // Driver reset and re-activation (drops in-flight requests).
        block.Reset();
        queues[0].Reset();
        activate();
        break;
    }
  }
  WaitIdle(block);
  block.Reset();
  return 0;
}
