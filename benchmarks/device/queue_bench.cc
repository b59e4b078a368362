// The split virtqueue alone: Queue::Pop (read avail idx and ring entry, walk and check every
// descriptor against guest memory, build the DescriptorChain) + Queue::AddUsed (used element,
// used idx) per chain, for chains of 1, 3 and 16 descriptors, direct or through one indirect
// table. The descriptors and ring entries are written once; each iteration the driver only
// bumps avail idx by a batch of K chains (one 2-byte write) and the device pops and returns all
// K, so the time per chain is the device's queue work. CPU time.
#include <string>
#include <vector>

#include "benchmarks/device/device_bench.h"

namespace hearth::bench {
namespace {

using testing::VirtioDriver;

constexpr uint16_t kSize = 256;
constexpr uint64_t kRingBase = 0x1000;
constexpr uint64_t kDataBase = 0x100000;

void BM_QueuePopAddUsed(benchmark::State& state, const DeviceBenchEnv* env, int descs,
                        bool indirect) {
  GuestMemory& mem = *env->memory;
  Queue queue(kSize);
  VirtioDriver driver(mem, kRingBase, kSize, kDataBase);
  driver.Configure(queue, /*event_idx=*/true, /*indirect=*/true);

  // K chains, K a power of two so that ring slot s always holds chain s % K.
  const int k = indirect ? 64 : (descs == 16 ? 16 : 64);
  std::vector<uint16_t> heads(k);
  auto buffer = [&](int i) {
    // A block-request-like chain: device-readable buffers, the last one device-writable.
    const bool last = i + 1 == descs;
    const uint32_t len = descs == 1 ? 1514 : (i == 0 ? 16 : (last ? 1 : 4096));
    return VirtqDesc{driver.Alloc(len), len,
                     static_cast<uint16_t>((last ? 0 : kVirtqDescNext) |
                                           (last && descs > 1 ? kVirtqDescWrite : 0)),
                     0};
  };
  for (int c = 0; c < k; ++c) {
    if (indirect) {
      const uint64_t table = driver.Alloc(16ull * descs);
      for (int i = 0; i < descs; ++i) {
        VirtqDesc d = buffer(i);
        d.next = static_cast<uint16_t>(i + 1);
        driver.WriteDescriptorAt(table, static_cast<uint16_t>(i), d);
      }
      heads[c] = static_cast<uint16_t>(c);
      driver.WriteDescriptor(heads[c], VirtqDesc{table, static_cast<uint32_t>(16 * descs),
                                                 kVirtqDescIndirect, 0});
    } else {
      heads[c] = static_cast<uint16_t>(c * descs);
      for (int i = 0; i < descs; ++i) {
        VirtqDesc d = buffer(i);
        d.next = static_cast<uint16_t>(heads[c] + i + 1);
        driver.WriteDescriptor(static_cast<uint16_t>(heads[c] + i), d);
      }
    }
  }
  for (uint16_t s = 0; s < kSize; ++s) driver.PublishHead(heads[s % k]);
  driver.SetAvailIdx(0);

  uint16_t avail = 0;
  uint64_t errors = 0;
  for (auto _ : state) {
    avail = static_cast<uint16_t>(avail + k);
    driver.SetAvailIdx(avail);
    for (int i = 0; i < k; ++i) {
      Queue::PopResult pop = queue.Pop(mem);
      if (!pop.chain) {
        ++errors;
        break;
      }
      benchmark::DoNotOptimize(pop.chain->readable_bytes);
      if (!queue.AddUsed(mem, pop.chain->head, 0).ok()) ++errors;
    }
  }
  if (errors) state.SkipWithError("Pop or AddUsed failed");
  const int64_t chains = static_cast<int64_t>(state.iterations()) * k;
  state.SetItemsProcessed(chains);
  // Seconds per chain (the console prints e.g. "63.4n"; the JSON has 6.34e-08).
  state.counters["time_per_chain"] = benchmark::Counter(
      static_cast<double>(chains), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

}  // namespace

void RegisterQueueBenchmarks(const DeviceBenchEnv& env) {
  for (bool indirect : {false, true}) {
    for (int descs : {1, 3, 16}) {
      const std::string name = std::string("Queue/PopAddUsed/") +
                               (indirect ? "indirect" : "direct") + "/" + std::to_string(descs) +
                               "desc";
      benchmark::RegisterBenchmark(name.c_str(), BM_QueuePopAddUsed, &env, descs, indirect);
    }
  }
}

}  // namespace hearth::bench
