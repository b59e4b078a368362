// virtio-vsock through the real UNIX-socket backend: the benchmark plays the guest's vsock
// driver on plain memory (tests/virtio/vsock VsockGuest: rings, RX buffers re-posted, credit
// updates like Linux's) and the host program (a UNIX socket that sent `CONNECT <port>\n`),
// and drives the device the way the VMM loop does (OnEvent on its epoll fd, ProcessQueue on a
// kick), all on one thread: what is timed is the device path plus the socket syscalls, not
// thread wake-ups.
//
//  - Vsock/HostToGuest/<rx buffer>: the host writes 64 KiB; the device reads it straight into
//    the guest's RX buffers (4 KiB: what Linux 6.1 posts; 64 KiB: the device's best case);
//    the guest takes the packets, re-posts the buffers and returns credit.
//  - Vsock/GuestToHost/64KiB: the guest sends one 64 KiB packet; the device writes it
//    straight from guest memory to the socket; the host reads it.
//  - Vsock/RoundTrip/1B: host writes 1 byte -> device -> guest RX packet -> guest replies 1
//    byte on TX -> device -> host reads it. Per-iteration p50/p99 are reported as counters.
//  - Vsock/floor/*: the same bytes over a plain UNIX socketpair, no device.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "benchmarks/device/device_bench.h"
#include "tests/virtio/vsock/vsock_guest.h"
#include "virtio/vsock/vsock.h"

namespace hearth::bench {
namespace {

using testing::VsockGuest;
using testing::VsockPacket;

constexpr uint32_t kGuestPort = 5000;
constexpr uint32_t kGuestBufAlloc = 256 * 1024;  // Linux's default vsock buffer.
constexpr size_t kChunk = 64 * 1024;

// One device, one guest driver and one connected host socket.
struct VsockRig {
  std::string dir;
  std::unique_ptr<Vsock> device;
  std::unique_ptr<VsockGuest> guest;
  Fd host;
  uint32_t host_port = 0;
  uint32_t guest_fwd = 0;        // Bytes the guest has consumed (its fwd_cnt).
  uint32_t guest_fwd_told = 0;   // ... as last told to the device.

  ~VsockRig() {
    guest.reset();
    device.reset();
    if (!dir.empty()) ::rmdir(dir.c_str());
  }

  std::string Start(GuestMemory& memory, uint32_t rx_buf_size) {
    char tmpl[] = "/tmp/hearth-vsock-bench-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return "mkdtemp";
    dir = tmpl;
    VsockOptions options;
    options.guest_cid = 3;
    options.uds_path = dir + "/v.sock";
    auto v = Vsock::Create(options);
    if (!v.ok()) return v.error().message();
    device = std::move(v).value();
    guest = std::make_unique<VsockGuest>(memory, *device, rx_buf_size, VsockGuest::kQueueSize,
                                         /*event_idx=*/true);
    if (auto s = guest->Activate(); !s.ok()) return s.error().message();
    host = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, options.uds_path.c_str(), sizeof(addr.sun_path) - 1);
    if (::connect(host.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return "connect";
    }
    const int buf = 4 << 20;
    ::setsockopt(host.get(), SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    ::setsockopt(host.get(), SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    std::string req = "CONNECT " + std::to_string(kGuestPort) + "\n";
    if (::send(host.get(), req.data(), req.size(), 0) != static_cast<ssize_t>(req.size())) {
      return "send CONNECT";
    }
    guest->PollHost();
    auto pkts = guest->Receive();
    if (pkts.size() != 1 || pkts[0].header.op != kVsockOpRequest) return "no REQUEST";
    host_port = pkts[0].header.src_port;
    guest->Send(guest->Header(kVsockOpResponse, kGuestPort, host_port, 0, kGuestBufAlloc));
    char line[64];
    ssize_t n = ::recv(host.get(), line, sizeof(line), 0);
    if (n <= 0 || std::strncmp(line, "OK ", 3) != 0) return "no OK";
    return "";
  }

  // The guest consumed `n` bytes: tell the device when half the buffer is free again (Linux
  // sends a credit update when its free space runs low).
  void Consumed(uint32_t n) {
    guest_fwd += n;
    if (guest_fwd - guest_fwd_told >= kGuestBufAlloc / 2) {
      guest->Send(guest->Header(kVsockOpCreditUpdate, kGuestPort, host_port, 0, kGuestBufAlloc,
                                guest_fwd));
      guest_fwd_told = guest_fwd;
    }
  }
};

void BM_VsockHostToGuest(benchmark::State& state, const DeviceBenchEnv* env, uint32_t rx_buf) {
  VsockRig rig;
  if (std::string err = rig.Start(*env->memory, rx_buf); !err.empty()) {
    state.SkipWithError(err.c_str());
    return;
  }
  std::vector<uint8_t> chunk(kChunk, 0x5a);
  std::vector<VsockHeader> headers;
  uint64_t packets = 0;
  for (auto _ : state) {
    if (::send(rig.host.get(), chunk.data(), chunk.size(), 0) !=
        static_cast<ssize_t>(chunk.size())) {
      state.SkipWithError("host send");
      break;
    }
    uint64_t got = 0;
    int spins = 0;
    while (got < kChunk) {
      rig.guest->PollHost();
      headers.clear();
      rig.guest->ReceiveInto(headers, nullptr);
      for (const VsockHeader& h : headers) {
        if (h.op == kVsockOpRw) {
          got += h.len;
          ++packets;
          rig.Consumed(h.len);
        }
      }
      if (headers.empty() && ++spins > 1000) break;
    }
    if (got != kChunk) {
      state.SkipWithError(("received " + std::to_string(got) + " bytes").c_str());
      break;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChunk));
  state.counters["packets_per_write"] = benchmark::Counter(
      static_cast<double>(packets) / static_cast<double>(std::max<int64_t>(1, state.iterations())));
}

void BM_VsockGuestToHost(benchmark::State& state, const DeviceBenchEnv* env) {
  VsockRig rig;
  if (std::string err = rig.Start(*env->memory, 4096); !err.empty()) {
    state.SkipWithError(err.c_str());
    return;
  }
  std::vector<uint8_t> chunk(kChunk, 0xa5);
  std::vector<uint8_t> sink(kChunk);
  uint32_t sent = 0, device_fwd = 0;
  std::vector<VsockHeader> headers;
  for (auto _ : state) {
    // Respect the device's credit, as Linux does.
    while (sent - device_fwd + kChunk > kConnBufAlloc) {
      rig.guest->PollHost();
      headers.clear();
      rig.guest->ReceiveInto(headers, nullptr);
      if (headers.empty()) break;
      for (const VsockHeader& h : headers) device_fwd = h.fwd_cnt;
    }
    rig.guest->Send(rig.guest->Header(kVsockOpRw, kGuestPort, rig.host_port,
                                      static_cast<uint32_t>(kChunk), kGuestBufAlloc, 0),
                    chunk);
    sent += kChunk;
    size_t got = 0;
    while (got < kChunk) {
      ssize_t n = ::recv(rig.host.get(), sink.data() + got, kChunk - got, MSG_DONTWAIT);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    if (got != kChunk) {
      state.SkipWithError(("host read " + std::to_string(got) + " bytes").c_str());
      break;
    }
    headers.clear();
    rig.guest->ReceiveInto(headers, nullptr);
    for (const VsockHeader& h : headers) device_fwd = h.fwd_cnt;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChunk));
}

void SetLatencyCounters(benchmark::State& state, std::vector<double>& ns) {
  if (ns.empty()) return;
  std::sort(ns.begin(), ns.end());
  state.counters["p50_us"] = ns[ns.size() / 2] / 1000.0;
  state.counters["p99_us"] = ns[std::min(ns.size() - 1, ns.size() * 99 / 100)] / 1000.0;
}

void BM_VsockRoundTrip(benchmark::State& state, const DeviceBenchEnv* env) {
  VsockRig rig;
  if (std::string err = rig.Start(*env->memory, 4096); !err.empty()) {
    state.SkipWithError(err.c_str());
    return;
  }
  std::vector<double> ns;
  ns.reserve(1 << 20);
  std::vector<VsockHeader> headers;
  std::string payload;
  uint8_t byte = 'p';
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    if (::send(rig.host.get(), &byte, 1, 0) != 1) {
      state.SkipWithError("host send");
      break;
    }
    // VMM: the device's epoll fd is readable.
    rig.guest->PollHost();
    headers.clear();
    payload.clear();
    rig.guest->ReceiveInto(headers, &payload);
    if (payload.size() != 1) {
      state.SkipWithError("the guest did not get the byte");
      break;
    }
    rig.Consumed(1);
    // Guest: the reply (carrying its credit, as every packet does).
    rig.guest->Send(rig.guest->Header(kVsockOpRw, kGuestPort, rig.host_port, 1, kGuestBufAlloc,
                                      rig.guest_fwd),
                    std::span(reinterpret_cast<const uint8_t*>(payload.data()), 1));
    uint8_t back;
    if (::recv(rig.host.get(), &back, 1, MSG_DONTWAIT) != 1) {
      state.SkipWithError("the host did not get the reply");
      break;
    }
    ns.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0)
                     .count());
  }
  SetLatencyCounters(state, ns);
}

// Floors: the same traffic over a socketpair, no device.
void BM_VsockFloorThroughput(benchmark::State& state) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    state.SkipWithError("socketpair");
    return;
  }
  Fd a(sv[0]), b(sv[1]);
  std::vector<uint8_t> chunk(kChunk, 1), sink(kChunk);
  for (auto _ : state) {
    (void)!::send(a.get(), chunk.data(), chunk.size(), 0);
    size_t got = 0;
    while (got < kChunk) {
      ssize_t n = ::recv(b.get(), sink.data() + got, kChunk - got, 0);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kChunk));
}

void BM_VsockFloorRoundTrip(benchmark::State& state) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    state.SkipWithError("socketpair");
    return;
  }
  Fd a(sv[0]), b(sv[1]);
  std::vector<double> ns;
  uint8_t byte = 'p';
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    (void)!::send(a.get(), &byte, 1, 0);
    (void)!::recv(b.get(), &byte, 1, 0);
    (void)!::send(b.get(), &byte, 1, 0);
    (void)!::recv(a.get(), &byte, 1, 0);
    ns.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0)
                     .count());
  }
  SetLatencyCounters(state, ns);
}

}  // namespace

void RegisterVsockBenchmarks(const DeviceBenchEnv& env) {
  benchmark::RegisterBenchmark("Vsock/HostToGuest/64KiB/rxbuf:4KiB", BM_VsockHostToGuest, &env,
                               4096u)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("Vsock/HostToGuest/64KiB/rxbuf:64KiB", BM_VsockHostToGuest, &env,
                               static_cast<uint32_t>(kChunk + kVsockHeaderSize))
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("Vsock/GuestToHost/64KiB", BM_VsockGuestToHost, &env)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("Vsock/RoundTrip/1B", BM_VsockRoundTrip, &env)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("Vsock/floor/64KiB", BM_VsockFloorThroughput)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  benchmark::RegisterBenchmark("Vsock/floor/RoundTrip/1B", BM_VsockFloorRoundTrip)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

}  // namespace hearth::bench
