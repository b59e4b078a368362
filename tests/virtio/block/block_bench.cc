// Throughput of the virtio-blk device alone (no guest, no KVM): the time from the kick
// (ProcessQueue) until the last request of a batch is on the used ring, for batches of
// requests laid out by VirtioDriver in plain memory, against a page-cache-warm image file.
// Each workload runs `kReps` times per engine; prints the median and the min..max spread.
//
//   hearth_virtio_block_bench [image-dir]   (default $TMPDIR or /tmp)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "tests/virtio/block/block_test_util.h"

namespace hearth::testing {
namespace {

constexpr uint64_t kImageBytes = 256ull << 20;
constexpr int kReps = 15;

struct Workload {
  const char* name;
  uint32_t type;
  uint32_t block;  // Bytes per request.
  int depth;       // Requests made available per kick.
  int requests;    // Requests per measured run.
  bool random;
};

struct Sample {
  double seconds;
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void Run(BlockOptions::IoEngine engine, const Workload& w, const std::string& path) {
  BlockHarness h(64ull << 20);
  if (!h.Start(BlockOptions{"bench", path, false, BlockOptions::kUnsafe, engine, {}},
               /*event_idx=*/true)) {
    std::abort();
  }
  VirtioDriver& d = h.driver();
  struct Slot {
    uint64_t header, data, status;
  };
  std::vector<Slot> slots(w.depth);
  for (int j = 0; j < w.depth; ++j) {
    slots[j] = {d.Alloc(16), d.Alloc(w.block), d.Alloc(1)};
    const bool in = w.type == VIRTIO_BLK_T_IN;
    const uint16_t base = static_cast<uint16_t>(3 * j);
    d.WriteDescriptor(
        base, VirtqDesc{slots[j].header, 16, kVirtqDescNext, static_cast<uint16_t>(base + 1)});
    d.WriteDescriptor(base + 1,
                      VirtqDesc{slots[j].data, w.block,
                                static_cast<uint16_t>(kVirtqDescNext | (in ? kVirtqDescWrite : 0)),
                                static_cast<uint16_t>(base + 2)});
    d.WriteDescriptor(base + 2, VirtqDesc{slots[j].status, 1, kVirtqDescWrite, 0});
  }
  std::mt19937_64 rng(42);
  const uint64_t blocks = kImageBytes / w.block;
  uint64_t next_seq = 0;
  std::vector<double> times;
  for (int rep = 0; rep < kReps + 1; ++rep) {  // The first run warms up.
    auto start = std::chrono::steady_clock::now();
    for (int done = 0; done < w.requests; done += w.depth) {
      const uint16_t target = static_cast<uint16_t>(d.used_idx() + w.depth);
      for (int j = 0; j < w.depth; ++j) {
        uint64_t blockno = w.random ? rng() % blocks : (next_seq++ % blocks);
        (void)h.memory().WriteObj(slots[j].header,
                                  BlockRequestHeader{w.type, 0, blockno * w.block / 512});
        d.PublishHead(static_cast<uint16_t>(3 * j));
      }
      h.Kick();
      if (d.used_idx() != target) {
        std::fprintf(stderr, "bench: used idx %u, want %u\n", d.used_idx(), target);
        std::abort();
      }
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (rep > 0) times.push_back(s);
  }
  if (h.device().metrics().io_errors + h.device().metrics().invalid_requests != 0) std::abort();
  std::vector<double> mbps, usec;
  for (double t : times) {
    mbps.push_back(double(w.requests) * w.block / t / 1e6);
    usec.push_back(t / w.requests * 1e6);
  }
  std::sort(mbps.begin(), mbps.end());
  std::sort(usec.begin(), usec.end());
  std::printf("%-6s %-26s %9.0f MB/s [%7.0f..%7.0f]  %7.2f us/req [%6.2f..%6.2f]\n",
              engine == BlockOptions::kAsync ? "Async" : "Sync", w.name, Median(mbps), mbps.front(),
              mbps.back(), Median(usec), usec.front(), usec.back());
}

}  // namespace
}  // namespace hearth::testing

int main(int argc, char** argv) {
  using namespace hearth;
  using namespace hearth::testing;
  if (argc > 1) setenv("TMPDIR", argv[1], 1);
  TempImage image(kImageBytes);  // Written now, so it is in the page cache.
  const Workload workloads[] = {
      {"4k rand read  qd1", VIRTIO_BLK_T_IN, 4096, 1, 20000, true},
      {"4k rand read  qd64", VIRTIO_BLK_T_IN, 4096, 64, 64000, true},
      {"4k rand write qd64", VIRTIO_BLK_T_OUT, 4096, 64, 64000, true},
      {"128k seq read qd8", VIRTIO_BLK_T_IN, 128 * 1024, 8, 4000, false},
      {"128k seq write qd8", VIRTIO_BLK_T_OUT, 128 * 1024, 8, 4000, false},
  };
  std::printf("image %s, %llu MiB, page cache warm; %d runs per row: median [min..max]\n",
              image.path().c_str(), static_cast<unsigned long long>(kImageBytes >> 20), kReps);
  for (const auto& w : workloads) {
    for (auto e : {BlockOptions::kSync, BlockOptions::kAsync}) Run(e, w, image.path());
  }
  return 0;
}
