// virtio-net, device path only, against a SocketBackend on one end of an AF_UNIX SOCK_SEQPACKET
// socketpair (each message one frame with its 12-byte vnet header, as a tap delivers them). The
// other end is the "wire". Every device feature offered is acked (VERSION_1, EVENT_IDX,
// INDIRECT_DESC, MRG_RXBUF, CSUM/TSO both ways), as Linux does. One iteration moves a batch of
// frames (32 of 1514 B, 8 of 64 KiB):
//
// - TX: timed from the driver publishing the TX chains, through the kick
//   (Net::ProcessQueue(1): pop, gather, sendmsg per frame) and the peer's recv of every frame,
//   to the driver having taken the chains back from the used ring. 1514-byte frames are one
//   descriptor (header pushed in front of the frame, as Linux does with VERSION_1); 64 KiB
//   TSO frames are an indirect table of header + 16 page fragments (Linux's skb frags).
// - RX: timed from the peer's send of every frame, through the VMM loop's EPOLLIN edge
//   (Net::OnEvent: readv straight into the posted buffers, num_buffers, used ring), to the
//   driver having read each frame's header, recycled its buffers (256 posted buffers of 4 KiB,
//   one descriptor each, like Linux's mergeable buffers) and kicked when the device asked.
// - Floor: the same frames through the bare socketpair, send + recv, no device.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "base/fd.h"
#include "benchmarks/device/device_bench.h"
#include "virtio/net/net.h"
#include "virtio/net/socket_backend.h"

namespace hearth::bench {
namespace {

using testing::VirtioDriver;

constexpr uint64_t kRxRingBase = 0x1000;
constexpr uint64_t kTxRingBase = 0x10000;
constexpr uint64_t kRxDataBase = 0x1000000;
constexpr uint64_t kTxDataBase = 0x4000000;
constexpr uint32_t kRxBufferBytes = 4096;
constexpr int kSockBuf = 4 << 20;

struct NetCase {
  uint32_t frame;  // Bytes after the vnet header.
  int batch;       // Frames per iteration.
};

std::vector<uint8_t> MakeFrame(uint32_t len) {
  std::vector<uint8_t> f(kVirtioNetHdrSize + len);
  VirtioNetHdr hdr{};
  if (len > 1514) {  // A TSO frame: partial checksum, TCPv4 GSO.
    hdr.flags = 1;     // VIRTIO_NET_HDR_F_NEEDS_CSUM
    hdr.gso_type = 1;  // VIRTIO_NET_HDR_GSO_TCPV4
    hdr.hdr_len = 54;
    hdr.gso_size = 1448;
    hdr.csum_start = 34;
    hdr.csum_offset = 16;
  }
  std::memcpy(f.data(), &hdr, sizeof(hdr));
  for (uint32_t i = 0; i < len; ++i) f[kVirtioNetHdrSize + i] = static_cast<uint8_t>(i * 7 + 1);
  return f;
}

void SetBuffers(int fd) {
  // Room for a whole batch in flight; SO_*BUFFORCE needs CAP_NET_ADMIN, else the sysctl caps.
  if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &kSockBuf, sizeof(kSockBuf)) != 0)
    (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSockBuf, sizeof(kSockBuf));
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kSockBuf, sizeof(kSockBuf)) != 0)
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSockBuf, sizeof(kSockBuf));
}

// The device, its socketpair peer, and both queues laid out in guest memory.
struct NetRig {
  Fd peer;
  int backend_fd = -1;
  std::unique_ptr<Net> net;
  std::vector<Queue> queues;
  std::unique_ptr<VirtioDriver> rx, tx;
  std::shared_ptr<CountingInterrupt> interrupt = std::make_shared<CountingInterrupt>();

  std::string Start(GuestMemory& mem) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return "socketpair";
    SetBuffers(sv[0]);
    SetBuffers(sv[1]);
    peer = Fd(sv[1]);
    backend_fd = sv[0];
    auto backend = SocketBackend::Create(Fd(sv[0]), kTunFCsum | kTunFTso4 | kTunFTso6, "sp0");
    if (!backend.ok()) return backend.error().message();
    auto created = Net::Create(NetOptions{"eth0", "tap0", MacAddress{0x02, 0, 0, 0, 0, 1}, {}, {}},
                               std::move(backend).value());
    if (!created.ok()) return created.error().message();
    net = std::move(created).value();
    queues.emplace_back(kNetQueueMaxSize);
    queues.emplace_back(kNetQueueMaxSize);
    rx = std::make_unique<VirtioDriver>(mem, kRxRingBase, kNetQueueMaxSize, kRxDataBase);
    tx = std::make_unique<VirtioDriver>(mem, kTxRingBase, kNetQueueMaxSize, kTxDataBase);
    rx->Configure(queues[kNetRxQueue], true, true);
    tx->Configure(queues[kNetTxQueue], true, true);
    if (auto s = net->Activate({&mem, &queues, interrupt, net->device_features()}); !s.ok())
      return s.error().message();
    return "";
  }
};

void SetNetCounters(benchmark::State& state, const NetCase& c) {
  const int64_t frames = static_cast<int64_t>(state.iterations()) * c.batch;
  state.SetItemsProcessed(frames);
  state.SetBytesProcessed(frames * c.frame);
  state.counters["frames"] =
      benchmark::Counter(static_cast<double>(frames), benchmark::Counter::kIsRate);
}

void BM_NetTx(benchmark::State& state, const DeviceBenchEnv* env, NetCase c) {
  GuestMemory& mem = *env->memory;
  NetRig rig;
  if (std::string err = rig.Start(mem); !err.empty()) {
    state.SkipWithError(err.c_str());
    return;
  }
  VirtioDriver& tx = *rig.tx;
  const std::vector<uint8_t> frame = MakeFrame(c.frame);
  const bool tso = c.frame > 1514;
  // Slot j: descriptor j, direct (header + frame in one buffer) or indirect (header + 16 pages).
  for (int j = 0; j < c.batch; ++j) {
    const uint16_t d = static_cast<uint16_t>(j);
    if (!tso) {
      const uint64_t buf = AllocAligned(tx, frame.size(), 64);
      tx.WriteBytes(buf, frame);
      tx.WriteDescriptor(d, VirtqDesc{buf, static_cast<uint32_t>(frame.size()), 0, 0});
      continue;
    }
    const uint32_t frags = (c.frame + 4095) / 4096;
    const uint64_t table = tx.Alloc(16ull * (frags + 1));
    const uint64_t hdr = tx.Alloc(kVirtioNetHdrSize);
    tx.WriteBytes(hdr, std::span(frame.data(), kVirtioNetHdrSize));
    tx.WriteDescriptorAt(table, 0, VirtqDesc{hdr, kVirtioNetHdrSize, kVirtqDescNext, 1});
    for (uint32_t f = 0; f < frags; ++f) {
      const uint32_t len = std::min<uint32_t>(4096, c.frame - f * 4096);
      const uint64_t page = AllocAligned(tx, 4096);
      tx.WriteBytes(page, std::span(frame.data() + kVirtioNetHdrSize + f * 4096, len));
      tx.WriteDescriptorAt(
          table, static_cast<uint16_t>(f + 1),
          VirtqDesc{page, len, static_cast<uint16_t>(f + 1 < frags ? kVirtqDescNext : 0),
                    static_cast<uint16_t>(f + 2)});
    }
    tx.WriteDescriptor(d, VirtqDesc{table, 16 * (frags + 1), kVirtqDescIndirect, 0});
  }
  std::vector<uint16_t> free_slots;
  for (int j = 0; j < c.batch; ++j) free_slots.push_back(static_cast<uint16_t>(j));
  std::vector<uint8_t> wire(kVirtioNetMaxFrame + 64);
  const ssize_t want = static_cast<ssize_t>(frame.size());
  uint16_t avail = 0, last_used = 0;
  uint64_t bad = 0, kicks = 0;

  for (auto _ : state) {
    const uint16_t old_avail = avail;
    for (uint16_t j : free_slots) {
      tx.PublishHead(j);
      ++avail;
    }
    free_slots.clear();
    if (NeedsKick(tx, old_avail, avail)) {
      ++kicks;
      rig.net->ProcessQueue(kNetTxQueue);
    }
    // The wire takes every frame; if the socket filled up, the device resumes on EPOLLOUT.
    int received = 0;
    int spins = 0;
    while (received < c.batch) {
      ssize_t n = ::recv(rig.peer.get(), wire.data(), wire.size(), MSG_DONTWAIT);
      if (n > 0) {
        if (n != want) ++bad;
        ++received;
        continue;
      }
      if (tx.used_idx() != avail && ++spins < 1000) {
        rig.net->OnEvent(rig.backend_fd, EPOLLOUT);
        continue;
      }
      break;
    }
    const uint16_t used = tx.used_idx();
    for (; last_used != used; ++last_used) free_slots.push_back(
        static_cast<uint16_t>(tx.used_elem(last_used).id));
    if (received != c.batch || free_slots.size() != static_cast<size_t>(c.batch)) {
      state.SkipWithError("frames lost on TX");
      break;
    }
  }
  const NetMetrics m = rig.net->metrics();
  if (bad || m.tx_dropped || m.tx_errors || m.malformed_chains)
    state.SkipWithError("TX frames dropped or malformed");
  SetNetCounters(state, c);
  state.counters["kicks_per_batch"] =
      benchmark::Counter(static_cast<double>(kicks) / static_cast<double>(state.iterations()));
  state.counters["would_block"] = static_cast<double>(m.tx_would_block);
}

void BM_NetRx(benchmark::State& state, const DeviceBenchEnv* env, NetCase c) {
  GuestMemory& mem = *env->memory;
  NetRig rig;
  if (std::string err = rig.Start(mem); !err.empty()) {
    state.SkipWithError(err.c_str());
    return;
  }
  VirtioDriver& rx = *rig.rx;
  const uint16_t ring = kNetQueueMaxSize;
  std::vector<uint64_t> bufs(ring);
  for (uint16_t d = 0; d < ring; ++d) {
    bufs[d] = AllocAligned(rx, kRxBufferBytes);
    (void)mem.Fill(bufs[d], 0, kRxBufferBytes);
    rx.WriteDescriptor(d, VirtqDesc{bufs[d], kRxBufferBytes, kVirtqDescWrite, 0});
  }
  uint16_t avail = 0, last_used = 0;
  for (uint16_t d = 0; d < ring; ++d) {
    rx.PublishHead(d);
    ++avail;
  }
  rig.net->ProcessQueue(kNetRxQueue);  // The driver's first kick after filling the ring.

  const std::vector<uint8_t> frame = MakeFrame(c.frame);
  const uint32_t want = static_cast<uint32_t>(frame.size());
  uint64_t bad = 0, kicks = 0;
  uint32_t frame_left = 0;  // Chains still to come of the current frame (num_buffers).
  uint32_t frame_bytes = 0;

  for (auto _ : state) {
    // The wire: a batch of frames arrives.
    int sent = 0;
    for (; sent < c.batch; ++sent) {
      if (::send(rig.peer.get(), frame.data(), frame.size(), MSG_DONTWAIT) !=
          static_cast<ssize_t>(frame.size()))
        break;
    }
    // VMM: the backend fd's EPOLLIN edge.
    rig.net->OnEvent(rig.backend_fd, EPOLLIN);
    // Driver: read each frame's header, take the buffers back and post them again.
    int frames = 0;
    const uint16_t old_avail = avail;
    const uint16_t used = rx.used_idx();
    for (; last_used != used; ++last_used) {
      const VirtqUsedElem e = rx.used_elem(last_used);
      if (frame_left == 0) {
        auto nb = mem.ReadObj<uint16_t>(bufs[e.id] + offsetof(VirtioNetHdr, num_buffers));
        frame_left = nb.ok() ? *nb : 1;
        frame_bytes = 0;
      }
      frame_bytes += e.len;
      if (--frame_left == 0) {
        ++frames;
        if (frame_bytes != want) ++bad;
      }
      rx.PublishHead(static_cast<uint16_t>(e.id));
      ++avail;
    }
    if (NeedsKick(rx, old_avail, avail)) {
      ++kicks;
      rig.net->ProcessQueue(kNetRxQueue);
    }
    if (sent != c.batch || frames != c.batch) {
      state.SkipWithError(("RX: sent " + std::to_string(sent) + ", received " +
                           std::to_string(frames) + " of " + std::to_string(c.batch))
                              .c_str());
      break;
    }
  }
  const NetMetrics m = rig.net->metrics();
  if (bad || m.rx_dropped || m.rx_errors || m.malformed_chains)
    state.SkipWithError("RX frames dropped or malformed");
  SetNetCounters(state, c);
  state.counters["kicks_per_batch"] =
      benchmark::Counter(static_cast<double>(kicks) / static_cast<double>(state.iterations()));
}

// The floor: the same frames through the same kind of socketpair, no device.
void BM_NetFloor(benchmark::State& state, NetCase c) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    state.SkipWithError("socketpair");
    return;
  }
  Fd a(sv[0]), b(sv[1]);
  SetBuffers(a.get());
  SetBuffers(b.get());
  const std::vector<uint8_t> frame = MakeFrame(c.frame);
  std::vector<uint8_t> wire(kVirtioNetMaxFrame + 64);
  for (auto _ : state) {
    for (int i = 0; i < c.batch; ++i) {
      if (::send(a.get(), frame.data(), frame.size(), MSG_DONTWAIT) !=
          static_cast<ssize_t>(frame.size())) {
        state.SkipWithError("send");
        break;
      }
    }
    for (int i = 0; i < c.batch; ++i) {
      if (::recv(b.get(), wire.data(), wire.size(), MSG_DONTWAIT) !=
          static_cast<ssize_t>(frame.size())) {
        state.SkipWithError("recv");
        break;
      }
    }
  }
  SetNetCounters(state, c);
}

}  // namespace

void RegisterNetBenchmarks(const DeviceBenchEnv& env) {
  static const NetCase kCases[] = {{1514, 32}, {65536, 8}};
  for (const NetCase& c : kCases) {
    const std::string size = c.frame == 1514 ? "1514B" : "64KiB";
    benchmark::RegisterBenchmark(("Net/TX/" + size).c_str(), BM_NetTx, &env, c)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("Net/RX/" + size).c_str(), BM_NetRx, &env, c)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("Net/floor/" + size).c_str(), BM_NetFloor, c)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace hearth::bench
