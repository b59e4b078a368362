// hearth_rate_limit_bench: what the rate limiter costs and whether it holds its rate.
//
//  1. RateLimiter::Consume, timed per call (a tight loop of 2M calls): unlimited (the fast path
//     every device takes without a limit) and limited but never throttled (both buckets huge:
//     refill arithmetic plus one clock_gettime).
//  2. virtio-blk, Sync engine, 4 KiB reads at queue depth 32 on plain memory: ns per request
//     from publishing a batch to having the used ring back, without a limiter and with a limit
//     that never throttles. The difference is the limiter's share of a request.
//  3. A throttled virtio-blk (Sync engine, queue depth 32, requests resubmitted as soon as they
//     complete) driven by an epoll loop on the device's event sources exactly as the VMM loop
//     drives it: achieved vs configured rate, measured from the first throttle (so the initial
//     full bucket is excluded) over 1 s, and timer wake-ups per second.
//
// Each figure is the median of repeated runs with the spread (min..max). No peer: QEMU's
// throttling needs a booted guest to drive it (see benchmarks/e2e for guest-driven runs).
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "tests/virtio_support/virtio_driver.h"
#include "virtio/block/block.h"
#include "virtio/block/request.h"

namespace hearth {
namespace {

using Clock = std::chrono::steady_clock;
using testing::VirtioDriver;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

struct Stats {
  double median, min, max;
};
Stats Summarise(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

RateLimiterConfig Huge() {
  RateLimiterConfig c;
  c.bandwidth = TokenBucketConfig{uint64_t{1} << 62, 0, 1};
  c.ops = TokenBucketConfig{uint64_t{1} << 62, 0, 1};
  return c;
}

// ---- 1. Consume ----------------------------------------------------------------------------

double ConsumeNs(const std::optional<RateLimiterConfig>& config) {
  auto limiter = RateLimiter::Create(config);
  if (!limiter.ok()) std::abort();
  constexpr int kCalls = 2'000'000;
  uint64_t passed = 0;
  const auto start = Clock::now();
  for (int i = 0; i < kCalls; ++i) passed += limiter->Consume(4096, 1) ? 1 : 0;
  const double ns = Seconds(Clock::now() - start) * 1e9 / kCalls;
  if (passed != kCalls) std::abort();
  return ns;
}

// ---- Block device harness --------------------------------------------------------------------

constexpr uint64_t kImageBytes = 32ull << 20;

std::string MakeImage() {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/var/tmp") + "/hearth-rl-bench-XXXXXX";
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(kImageBytes)) != 0) std::abort();
  std::vector<uint8_t> chunk(1 << 20, 0x5a);
  for (uint64_t off = 0; off < kImageBytes; off += chunk.size()) {
    if (::pwrite(fd, chunk.data(), chunk.size(), static_cast<off_t>(off)) < 0) std::abort();
  }
  ::close(fd);
  return tmpl;
}

class NullInterrupt : public VirtioInterrupt {
 public:
  void Raise(uint32_t) override {}
  void SetNeedsReset() override {}
};

// The guest side: `depth` read requests of `block` bytes in fixed descriptor slots.
class BlockRig {
 public:
  BlockRig(const std::string& image, std::optional<RateLimiterConfig> limit, int depth,
           uint32_t block)
      : memory_(std::move(GuestMemory::Create({{0, 64ull << 20}})).value()),
        driver_(memory_, 0x1000, Block::kQueueSize, 0x100000),
        depth_(depth),
        block_(block) {
    queues_.emplace_back(Block::kQueueSize);
    driver_.Configure(queues_[0], /*event_idx=*/true, /*indirect=*/false);
    auto created = Block::Create(BlockOptions{"bench", image, false, BlockOptions::kUnsafe,
                                              BlockOptions::kSync, std::move(limit)});
    if (!created.ok()) {
      std::fprintf(stderr, "%s\n", created.error().message().c_str());
      std::abort();
    }
    device_ = std::move(created).value();
    if (!device_->Activate({&memory_, &queues_, std::make_shared<NullInterrupt>(),
                            device_->device_features() | kVirtioFVersion1})
             .ok()) {
      std::abort();
    }
    for (int j = 0; j < depth; ++j) {
      const uint64_t header = driver_.Alloc(16), data = driver_.Alloc(block), status = driver_.Alloc(1);
      (void)memory_.Fill(data, 0, block);
      const uint16_t base = static_cast<uint16_t>(3 * j);
      driver_.WriteDescriptor(base, VirtqDesc{header, 16, kVirtqDescNext, static_cast<uint16_t>(base + 1)});
      driver_.WriteDescriptor(base + 1, VirtqDesc{data, block, kVirtqDescNext | kVirtqDescWrite,
                                                  static_cast<uint16_t>(base + 2)});
      driver_.WriteDescriptor(base + 2, VirtqDesc{status, 1, kVirtqDescWrite, 0});
      (void)memory_.WriteObj(header, BlockRequestHeader{VIRTIO_BLK_T_IN, 0, (j * block / 512) % 4096});
      free_.push_back(static_cast<uint16_t>(j));
    }
  }

  // Publishes every free slot; kicks the device.
  void SubmitAndKick() {
    for (uint16_t j : free_) driver_.PublishHead(static_cast<uint16_t>(3 * j));
    free_.clear();
    device_->ProcessQueue(0);
  }
  // Takes completed requests back; returns how many.
  uint64_t Reap() {
    uint64_t n = 0;
    for (const uint16_t used = driver_.used_idx(); last_used_ != used; ++last_used_, ++n) {
      free_.push_back(static_cast<uint16_t>(driver_.used_elem(last_used_).id / 3));
    }
    return n;
  }
  Block& device() { return *device_; }
  uint32_t block() const { return block_; }
  int depth() const { return depth_; }

 private:
  GuestMemory memory_;
  std::vector<Queue> queues_;
  VirtioDriver driver_;
  std::unique_ptr<Block> device_;
  int depth_;
  uint32_t block_;
  std::vector<uint16_t> free_;
  uint16_t last_used_ = 0;
};

// ---- 2. Unthrottled device path --------------------------------------------------------------

double RequestNs(const std::string& image, std::optional<RateLimiterConfig> limit) {
  BlockRig rig(image, std::move(limit), 32, 4096);
  constexpr int kBatches = 2000;
  uint64_t done = 0;
  const auto start = Clock::now();
  for (int i = 0; i < kBatches; ++i) {
    rig.SubmitAndKick();
    done += rig.Reap();
  }
  const double ns = Seconds(Clock::now() - start) * 1e9 / static_cast<double>(done);
  if (done != uint64_t{kBatches} * 32) std::abort();
  return ns;
}

// ---- 3. Throttled device ---------------------------------------------------------------------

struct ThrottledRun {
  double achieved;  // bytes (or requests) per second after the first throttle
  double wakeups;   // timer events per second
};

ThrottledRun RunThrottled(const std::string& image, const RateLimiterConfig& limit,
                          uint32_t block, bool count_ops) {
  BlockRig rig(image, limit, 32, block);
  Block& dev = rig.device();
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  for (const auto& s : dev.event_sources()) {
    epoll_event ev{};
    ev.events = s.events;
    ev.data.fd = s.fd;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, s.fd, &ev);
  }
  // Until the first throttle: the initial full bucket.
  for (int i = 0; i < 1'000'000 && dev.metrics().rate_limiter_throttled_events == 0; ++i) {
    rig.SubmitAndKick();
    rig.Reap();
  }
  const uint64_t base = count_ops ? dev.metrics().read_requests : dev.metrics().read_bytes;
  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds(1);
  uint64_t wakeups = 0;
  epoll_event events[4];
  while (Clock::now() < end) {
    const int wait_ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count()) + 1;
    const int n = ::epoll_wait(ep, events, 4, wait_ms);
    for (int i = 0; i < n; ++i) {
      ++wakeups;
      dev.OnEvent(events[i].data.fd, events[i].events);  // The limiter's timer: resume.
    }
    rig.Reap();
    rig.SubmitAndKick();  // The guest resubmits what completed (a kick).
    rig.Reap();
  }
  const double elapsed = Seconds(Clock::now() - start);
  ::close(ep);
  const uint64_t total = count_ops ? dev.metrics().read_requests : dev.metrics().read_bytes;
  return {static_cast<double>(total - base) / elapsed, static_cast<double>(wakeups) / elapsed};
}

void PrintStats(const char* what, const Stats& s, const char* unit) {
  std::printf("  %-44s median %10.1f %s   (min %.1f, max %.1f)\n", what, s.median, unit, s.min,
              s.max);
}

int Main() {
  constexpr int kRepeats = 9;
  std::printf("1. RateLimiter::Consume, ns per call (%d runs of 2M calls)\n", kRepeats);
  std::vector<double> unlimited, limited;
  for (int i = 0; i < kRepeats; ++i) {
    unlimited.push_back(ConsumeNs(std::nullopt));
    limited.push_back(ConsumeNs(Huge()));
  }
  PrintStats("unlimited", Summarise(unlimited), "ns");
  PrintStats("limited, never throttled", Summarise(limited), "ns");

  const std::string image = MakeImage();
  std::printf("\n2. virtio-blk Sync 4 KiB reads, qd 32, ns per request (%d runs of 64000)\n",
              kRepeats);
  std::vector<double> none, huge, diff;
  for (int i = 0; i < kRepeats; ++i) {
    none.push_back(RequestNs(image, std::nullopt));
    huge.push_back(RequestNs(image, Huge()));
    diff.push_back(huge.back() - none.back());
  }
  PrintStats("no rate limiter", Summarise(none), "ns");
  PrintStats("rate limiter, never throttled", Summarise(huge), "ns");
  PrintStats("difference (paired runs)", Summarise(diff), "ns");

  constexpr int kThrottledRepeats = 5;
  std::printf("\n3. Throttled virtio-blk (Sync, qd 32), 1 s after the first throttle, %d runs\n",
              kThrottledRepeats);
  struct Case {
    const char* name;
    RateLimiterConfig limit;
    uint32_t block;
    bool ops;
    double configured;
  };
  auto bw = [](uint64_t bytes_per_s) {
    RateLimiterConfig c;
    c.bandwidth = TokenBucketConfig{bytes_per_s / 10, 0, 100};
    return c;
  };
  RateLimiterConfig iops;
  iops.ops = TokenBucketConfig{100, 0, 100};
  const Case cases[] = {
      {"bandwidth 1 MiB/s, 64 KiB reads", bw(1 << 20), 65536, false, 1 << 20},
      {"bandwidth 10 MiB/s, 64 KiB reads", bw(10 << 20), 65536, false, 10 << 20},
      {"bandwidth 100 MiB/s, 64 KiB reads", bw(100 << 20), 65536, false, 100 << 20},
      {"bandwidth 1 MiB/s, 256 KiB reads (> 102 KiB bucket)", bw(1 << 20), 262144, false, 1 << 20},
      {"ops 1000/s, 4 KiB reads", iops, 4096, true, 1000},
  };
  for (const Case& c : cases) {
    std::vector<double> ratio, wake;
    for (int i = 0; i < kThrottledRepeats; ++i) {
      ThrottledRun r = RunThrottled(image, c.limit, c.block, c.ops);
      ratio.push_back(r.achieved / c.configured);
      wake.push_back(r.wakeups);
    }
    const Stats s = Summarise(ratio);
    const Stats w = Summarise(wake);
    std::printf("  %-48s achieved/configured median %.4f (min %.4f, max %.4f); %.0f wake-ups/s\n",
                c.name, s.median, s.min, s.max, w.median);
  }
  ::unlink(image.c_str());
  return 0;
}

}  // namespace
}  // namespace hearth

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  return hearth::Main();
}
