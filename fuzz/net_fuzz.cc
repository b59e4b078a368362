// virtio-net TX and RX: a hostile driver's chains on both queues against a real Net device whose
// backend is in memory. Frames arriving from the "host" (any length, up to beyond the largest
// frame) and the backend's answers to writes (taken, EAGAIN, error) come from the input too.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>

#include "fuzz/fuzz_devices.h"
#include "fuzz/guest_ring.h"
#include "fuzz/rate_limit_input.h"
#include "virtio/net/net.h"

using namespace hearth;
using namespace hearth::fuzz;

namespace {

// Frames waiting to be read, and a script of how writes go.
class MemoryBackend : public NetBackend {
 public:
  explicit MemoryBackend(FuzzedDataProvider& in) : in_(in) {}

  int fd() const override { return event_.ok() ? event_->get() : -1; }
  const std::string& name() const override { return name_; }

  Result<std::optional<size_t>> ReadFrame(std::span<const iovec> iov) override {
    if (rx_.empty()) return std::optional<size_t>();
    std::vector<uint8_t> frame = std::move(rx_.front());
    rx_.pop_front();
    size_t off = 0;
    for (const iovec& v : iov) {
      if (off == frame.size()) break;
      size_t n = std::min(v.iov_len, frame.size() - off);
      if (n == 0) continue;
      std::memcpy(v.iov_base, frame.data() + off, n);  // ASan checks the device's iovecs.
      off += n;
    }
    return std::optional<size_t>(frame.size());
  }

  Result<std::optional<size_t>> WriteFrame(std::span<const iovec> iov) override {
    size_t total = 0;
    uint8_t sink = 0;
    for (const iovec& v : iov) {
      const auto* p = static_cast<const uint8_t*>(v.iov_base);
      for (size_t i = 0; i < v.iov_len; ++i) sink ^= p[i];  // Touch every byte.
      total += v.iov_len;
    }
    (void)sink;
    if (total > kVirtioNetMaxFrame) Die("TX frame larger than the device's maximum");
    switch (in_.ConsumeIntegralInRange<int>(0, 5)) {
      case 0: return std::optional<size_t>();
      case 1: return Error("backend write failed (fuzz)");
      default: return std::optional<size_t>(total);
    }
  }

  unsigned supported_offloads() const override { return kTunFCsum | kTunFTso4 | kTunFTso6 | kTunFUfo; }
  Status SetOffloads(unsigned tun_flags) override {
    if (tun_flags & ~supported_offloads()) Die("offloads beyond what the backend supports");
    return Ok();
  }

  void Push(std::vector<uint8_t> frame) { rx_.push_back(std::move(frame)); }

 private:
  FuzzedDataProvider& in_;
  Result<EventFd> event_ = EventFd::Create();  // Only a number for event_sources().
  std::string name_ = "fuzz0";
  std::deque<std::vector<uint8_t>> rx_;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  QuietLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  auto backend_owner = std::make_unique<MemoryBackend>(in);
  MemoryBackend* backend = backend_owner.get();
  NetOptions options{"eth0", "fuzz0", MacAddress{2, 0, 0, 0, 0, 1}, ConsumeRateLimiter(in),
                     ConsumeRateLimiter(in)};
  auto rx_timer_owner = std::make_unique<hearth::testing::FakeTimer>();
  auto tx_timer_owner = std::make_unique<hearth::testing::FakeTimer>();
  hearth::testing::FakeTimer* timers[2] = {rx_timer_owner.get(), tx_timer_owner.get()};
  auto created = Net::Create(options, std::move(backend_owner), std::move(rx_timer_owner),
                             std::move(tx_timer_owner));
  if (!created.ok()) Die("Net::Create");
  Net& net = **created;

  GuestMemory* memory = &FreshGuestMemory();
  const bool event_idx = in.ConsumeBool();
  uint64_t features = kVirtioFVersion1 | (in.ConsumeIntegral<uint64_t>() & net.device_features());
  if (event_idx) {
    features |= kVirtioFRingEventIdx & net.device_features();
  } else {
    features &= ~kVirtioFRingEventIdx;
  }
  const uint16_t rx_size = static_cast<uint16_t>(1u << in.ConsumeIntegralInRange<int>(0, 8));
  const uint16_t tx_size = static_cast<uint16_t>(1u << in.ConsumeIntegralInRange<int>(0, 8));
  FuzzRing rx(*memory, 0x1000, rx_size);
  FuzzRing tx(*memory, 0x4000, tx_size);
  std::vector<Queue> queues;
  queues.emplace_back(kNetQueueMaxSize);
  queues.emplace_back(kNetQueueMaxSize);
  auto activate = [&] {
    rx.Configure(queues[kNetRxQueue], event_idx, features & kVirtioFRingIndirectDesc);
    tx.Configure(queues[kNetTxQueue], event_idx, features & kVirtioFRingIndirectDesc);
    if (!net.Activate({memory, &queues, std::make_shared<NullInterrupt>(), features}).ok()) {
      Die("Net::Activate");
    }
  };
  activate();

  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 12)) {
      case 0:
      case 1:
      case 2:
        rx.Step(in);
        break;
      case 3:
      case 4:
      case 5:
        tx.Step(in);
        break;
      case 6: {  // A frame from the host: input bytes, or a pattern of any length.
        std::vector<uint8_t> frame;
        if (in.ConsumeBool()) {
          frame = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 256));
        } else {
          frame.assign(in.ConsumeIntegralInRange<size_t>(0, kVirtioNetMaxFrame + 16), 0x5a);
        }
        backend->Push(std::move(frame));
        break;
      }
      case 7:
      case 8:
        net.ProcessQueue(in.ConsumeIntegralInRange<uint16_t>(0, 2));
        break;
      case 9:
        net.OnEvent(backend->fd(), in.ConsumeBool() ? EPOLLIN : EPOLLOUT);
        break;
      case 10: {  // Config space.
        uint8_t buf[16];
        uint64_t offset = in.ConsumeIntegralInRange<uint64_t>(0, 24);
        size_t len = in.ConsumeIntegralInRange<size_t>(0, sizeof(buf));
        if (in.ConsumeBool()) {
          net.ReadConfig(offset, std::span(buf, len));
        } else {
          auto bytes = in.ConsumeBytes<uint8_t>(len);
          net.WriteConfig(offset, bytes);
        }
        break;
      }
      case 12: {  // Time passes; a limiter's timer fires if it was armed.
        const uint64_t delay = ConsumeDelayNs(in);
        for (auto* timer : timers) {
          timer->Advance(delay);
          if (timer->readable()) net.OnEvent(timer->fd(), EPOLLIN);
        }
        break;
      }
      case 11:  // Driver reset and re-activation.
        net.Reset();
        queues[0].Reset();
        queues[1].Reset();
        activate();
        break;
    }
  }
  net.Reset();
  return 0;
}
