// virtio-blk, device path only (no guest, no KVM): one benchmark iteration is one batch of
// `depth` requests, timed from the driver writing the request headers and publishing the heads,
// through the kick (Block::ProcessQueue(0), what the VMM loop calls on the queue's ioeventfd)
// and, for the Async engine, epoll_wait on the device's io_uring eventfd + Block::OnEvent until
// every request is on the used ring, to the driver having read the used ring and taken the
// descriptors back. Wall-clock time (UseRealTime): the file I/O happens in the kernel.
//
// The image is a regular file on a real disk (the page cache is warm; the device never uses
// O_DIRECT). Requests are header | data | status in three direct descriptors (as Linux lays
// them out), data buffers page-aligned, one slot per request in flight.
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "benchmarks/device/device_bench.h"
#include "virtio/block/block.h"
#include "virtio/block/request.h"

namespace hearth::bench {
namespace {

using testing::VirtioDriver;

constexpr uint64_t kRingBase = 0x1000;
constexpr uint64_t kDataBase = 0x100000;

struct BlockCase {
  const char* pattern;  // fio --rw name.
  uint32_t type;        // VIRTIO_BLK_T_IN / _OUT.
  uint32_t block;       // Bytes per request.
  bool random;
};

// xorshift64*: cheap and good enough to spread offsets over the image.
struct Rng {
  uint64_t s = 0x9e3779b97f4a7c15ull;
  uint64_t Next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545f4914f6cdd1dull;
  }
};

void BM_Block(benchmark::State& state, const DeviceBenchEnv* env, BlockOptions::IoEngine engine,
              BlockCase c, int depth) {
  GuestMemory& mem = *env->memory;
  std::vector<Queue> queues;
  queues.emplace_back(Block::kQueueSize);
  VirtioDriver driver(mem, kRingBase, Block::kQueueSize, kDataBase);
  driver.Configure(queues[0], /*event_idx=*/true, /*indirect=*/true);

  const std::string image = env->image();
  if (image.empty()) {
    state.SkipWithError("no block image");
    return;
  }
  auto created = Block::Create(BlockOptions{"bench", image, false, BlockOptions::kUnsafe, engine, {}});
  if (!created.ok()) {
    state.SkipWithError(created.error().message().c_str());
    return;
  }
  std::unique_ptr<Block> device = std::move(created).value();
  if (device->engine() != engine) {
    state.SkipWithError("io_uring unavailable: the Async engine fell back to Sync");
    return;
  }
  auto interrupt = std::make_shared<CountingInterrupt>();
  if (auto s = device->Activate({&mem, &queues, interrupt, device->device_features() |
                                                               kVirtioFVersion1});
      !s.ok()) {
    state.SkipWithError(s.error().message().c_str());
    return;
  }
  // The VMM loop's view of the completion eventfd.
  int epfd = -1;
  int event_fd = -1;
  if (engine == BlockOptions::kAsync) {
    auto sources = device->event_sources();
    if (sources.size() != 1) {
      state.SkipWithError("expected one event source");
      return;
    }
    event_fd = sources[0].fd;
    epfd = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = sources[0].events;
    ev.data.fd = event_fd;
    if (epfd < 0 || ::epoll_ctl(epfd, EPOLL_CTL_ADD, event_fd, &ev) != 0) {
      state.SkipWithError("epoll setup failed");
      return;
    }
  }

  struct Slot {
    uint64_t header, data, status;
  };
  std::vector<Slot> slots(depth);
  const bool read = c.type == VIRTIO_BLK_T_IN;
  for (int j = 0; j < depth; ++j) {
    slots[j] = {driver.Alloc(16), AllocAligned(driver, c.block), driver.Alloc(1)};
    (void)mem.Fill(slots[j].data, 0x5a, c.block);  // Fault the buffer in before timing.
    const uint16_t base = static_cast<uint16_t>(3 * j);
    driver.WriteDescriptor(base, VirtqDesc{slots[j].header, 16, kVirtqDescNext,
                                           static_cast<uint16_t>(base + 1)});
    driver.WriteDescriptor(
        base + 1, VirtqDesc{slots[j].data, c.block,
                            static_cast<uint16_t>(kVirtqDescNext | (read ? kVirtqDescWrite : 0)),
                            static_cast<uint16_t>(base + 2)});
    driver.WriteDescriptor(base + 2, VirtqDesc{slots[j].status, 1, kVirtqDescWrite, 0});
  }
  std::vector<uint16_t> free_slots;
  for (int j = 0; j < depth; ++j) free_slots.push_back(static_cast<uint16_t>(j));

  const uint64_t blocks = device->capacity_sectors() * kSectorSize / c.block;
  const uint32_t want_len = read ? c.block + 1 : 1;
  Rng rng;
  uint64_t next_seq = 0;
  uint16_t avail = 0;
  uint16_t last_used = 0;
  uint64_t kicks = 0;
  uint64_t bad = 0;
  epoll_event events[4];

  for (auto _ : state) {
    // Driver: fill the free slots and publish them.
    const uint16_t old_avail = avail;
    for (uint16_t j : free_slots) {
      const uint64_t blockno = c.random ? rng.Next() % blocks : (next_seq++ % blocks);
      (void)mem.WriteObj(slots[j].header, BlockRequestHeader{c.type, 0, blockno * c.block / 512});
      driver.PublishHead(static_cast<uint16_t>(3 * j));
      ++avail;
    }
    free_slots.clear();
    // VMM: the queue notification.
    if (NeedsKick(driver, old_avail, avail)) {
      ++kicks;
      device->ProcessQueue(0);
    }
    // VMM: completions on the io_uring eventfd.
    if (epfd >= 0) {
      while (driver.used_idx() != avail) {
        int n = ::epoll_wait(epfd, events, 4, 5000);
        if (n <= 0) {
          if (n < 0 && errno == EINTR) continue;
          state.SkipWithError("timed out waiting for io_uring completions");
          break;
        }
        for (int i = 0; i < n; ++i) device->OnEvent(events[i].data.fd, events[i].events);
      }
    }
    // Driver: take the used chains back.
    const uint16_t used = driver.used_idx();
    for (; last_used != used; ++last_used) {
      const VirtqUsedElem e = driver.used_elem(last_used);
      if (e.len != want_len) ++bad;
      free_slots.push_back(static_cast<uint16_t>(e.id / 3));
    }
    if (free_slots.size() != static_cast<size_t>(depth)) {
      state.SkipWithError("the device did not return every request of the batch");
      break;
    }
  }
  if (epfd >= 0) ::close(epfd);

  const BlockMetrics& m = device->metrics();
  if (bad != 0 || m.io_errors != 0 || m.invalid_requests != 0 || m.chain_errors != 0) {
    state.SkipWithError(("requests failed: bad used len " + std::to_string(bad) + ", io errors " +
                         std::to_string(m.io_errors) + ", invalid " +
                         std::to_string(m.invalid_requests))
                            .c_str());
  }
  const int64_t requests = static_cast<int64_t>(state.iterations()) * depth;
  state.SetItemsProcessed(requests);
  state.SetBytesProcessed(requests * c.block);
  state.counters["reqs"] = benchmark::Counter(static_cast<double>(requests),
                                              benchmark::Counter::kIsRate);
  state.counters["kicks_per_batch"] =
      benchmark::Counter(static_cast<double>(kicks) / static_cast<double>(state.iterations()));
  device.reset();  // In-flight I/O (none) ends before the queue goes.
}

}  // namespace

void RegisterBlockBenchmarks(const DeviceBenchEnv& env) {
  static const BlockCase kCases[] = {
      {"randread", VIRTIO_BLK_T_IN, 4096, true},
      {"randwrite", VIRTIO_BLK_T_OUT, 4096, true},
      {"read", VIRTIO_BLK_T_IN, 1 << 20, false},
      {"write", VIRTIO_BLK_T_OUT, 1 << 20, false},
  };
  for (const BlockCase& c : kCases) {
    for (auto engine : {BlockOptions::kSync, BlockOptions::kAsync}) {
      for (int depth : {1, 32}) {
        const std::string bs = c.block >= (1 << 20) ? std::to_string(c.block >> 20) + "MiB"
                                                    : std::to_string(c.block >> 10) + "KiB";
        const std::string name = std::string("Block/") +
                                 (engine == BlockOptions::kSync ? "Sync" : "Async") + "/" +
                                 c.pattern + "/" + bs + "/qd" + std::to_string(depth);
        benchmark::RegisterBenchmark(name.c_str(), BM_Block, &env, engine, c, depth)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
}

}  // namespace hearth::bench
