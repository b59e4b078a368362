// The vsock packet path: a hostile guest's TX packets (any header, any payload, any framing) and
// RX buffers against a real Vsock device, with real host peers on UNIX sockets: a listener for
// guest-initiated connections (`<uds_path>_1024`) and host clients that connect to uds_path and
// write whatever CONNECT lines the input says, then read and write data.
#include <fuzzer/FuzzedDataProvider.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "base/fd.h"
#include "fuzz/fuzz_devices.h"
#include "fuzz/guest_ring.h"
#include "virtio/vsock/vsock.h"

using namespace hearth;
using namespace hearth::fuzz;

namespace {

constexpr uint64_t kGuestCid = 3;
constexpr uint32_t kHostListenPort = 1024;  // Guest connects to (2, 1024) reach the harness.
constexpr uint32_t kGuestPorts[] = {52, 1024, 1025, 0xffffffff};

const std::string& TempDir() {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/hearth-fuzz-vsock-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) Die("mkdtemp");
    return tmpl;
  }();
  return dir;
}

sockaddr_un Address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

Fd Listen(const std::string& path) {
  ::unlink(path.c_str());
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_un a = Address(path);
  if (!fd.valid() || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::listen(fd.get(), 64) != 0) {
    Die("harness listener");
  }
  return fd;
}

Fd Connect(const std::string& path) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_un a = Address(path);
  if (!fd.valid()) Die("socket");
  (void)::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
  return fd;
}

void Drain(int fd) {
  char buf[4096];
  while (::recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  QuietLogs();
  TempDir();
  // Registered after TempDir's string exists, so it runs before the string is destroyed.
  std::atexit([] { std::filesystem::remove_all(TempDir()); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static uint64_t serial = 0;
  FuzzedDataProvider in(data, size);
  const std::string uds = TempDir() + "/v" + std::to_string(serial++ % 8) + ".sock";
  ::unlink(uds.c_str());
  Fd host_listener = Listen(uds + "_" + std::to_string(kHostListenPort));

  VsockOptions options;
  options.guest_cid = kGuestCid;
  options.uds_path = uds;
  options.max_connections = in.ConsumeIntegralInRange<size_t>(1, 8);
  auto created = Vsock::Create(options);
  if (!created.ok()) Die(created.error().message().c_str());
  Vsock& vsock = **created;

  GuestMemory* memory = &FreshGuestMemory();
  const bool event_idx = in.ConsumeBool();
  const bool indirect = in.ConsumeBool();
  FuzzRing rings[3] = {FuzzRing(*memory, 0x1000, 64), FuzzRing(*memory, 0x3000, 64),
                       FuzzRing(*memory, 0x5000, 8)};
  std::vector<Queue> queues;
  for (int i = 0; i < 3; ++i) queues.emplace_back(kVsockQueueMaxSize);
  auto activate = [&] {
    for (int i = 0; i < 3; ++i) rings[i].Configure(queues[i], event_idx, indirect);
    uint64_t features = Vsock::kFeatures;
    if (!event_idx) features &= ~kVirtioFRingEventIdx;
    if (!indirect) features &= ~kVirtioFRingIndirectDesc;
    if (!vsock.Activate({memory, &queues, std::make_shared<NullInterrupt>(), features}).ok()) {
      Die("Vsock::Activate");
    }
  };
  activate();

  std::vector<Fd> host_peers;  // Host ends: accepted from the guest's connects, or clients.
  uint64_t next_buffer = 0x8000;  // Bump allocator for packet buffers (wraps in region 0).
  auto alloc = [&](uint64_t bytes) {
    if (next_buffer + bytes > kRegion0Size) next_buffer = 0x8000;
    uint64_t at = next_buffer;
    next_buffer = (next_buffer + bytes + 7) & ~7ull;
    return at;
  };

  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 11)) {
      case 0:  // Raw ring writes on any queue.
        rings[in.ConsumeIntegralInRange<int>(0, 2)].Step(in);
        break;
      case 1:
      case 2: {  // A TX packet: header (+ payload), framed in one or two buffers.
        VsockHeader h{};
        h.src_cid = in.ConsumeBool() ? kGuestCid : in.ConsumeIntegral<uint64_t>();
        h.dst_cid = in.ConsumeBool() ? kVsockHostCid : in.ConsumeIntegral<uint64_t>();
        h.src_port = in.PickValueInArray(kGuestPorts);
        h.dst_port = in.ConsumeBool() ? kHostListenPort : in.ConsumeIntegral<uint32_t>();
        h.type = in.ConsumeIntegralInRange<int>(0, 7) != 0 ? kVsockTypeStream : in.ConsumeIntegral<uint16_t>();
        h.op = in.ConsumeIntegralInRange<uint16_t>(0, 8);
        h.flags = in.ConsumeIntegralInRange<uint32_t>(0, 4);
        h.buf_alloc = in.ConsumeBool() ? 65536 : in.ConsumeIntegral<uint32_t>();
        h.fwd_cnt = in.ConsumeIntegral<uint32_t>();
        auto payload = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 300));
        h.len = in.ConsumeIntegralInRange<int>(0, 7) != 0 ? static_cast<uint32_t>(payload.size())
                                                           : in.ConsumeIntegral<uint32_t>();
        const uint64_t at = alloc(kVsockHeaderSize + payload.size());
        (void)memory->WriteObj(at, h);
        (void)memory->Write(at + kVsockHeaderSize, payload);
        if (in.ConsumeBool() || payload.empty()) {
          rings[kVsockTxQueue].PublishChain(
              {{at, static_cast<uint32_t>(kVsockHeaderSize + payload.size()), false}});
        } else {
          rings[kVsockTxQueue].PublishChain(
              {{at, kVsockHeaderSize, false},
               {at + kVsockHeaderSize, static_cast<uint32_t>(payload.size()), false}});
        }
        break;
      }
      case 3: {  // RX buffers (or an event buffer).
        const int q = in.ConsumeBool() ? kVsockRxQueue : kVsockEventQueue;
        const uint32_t len = in.ConsumeIntegralInRange<uint32_t>(0, 4096 + kVsockHeaderSize);
        const uint64_t at = alloc(len);
        if (in.ConsumeBool() || len <= kVsockHeaderSize) {
          rings[q].PublishChain({{at, len, true}});
        } else {
          rings[q].PublishChain({{at, kVsockHeaderSize, true},
                                 {at + kVsockHeaderSize, len - kVsockHeaderSize, true}});
        }
        break;
      }
      case 4:
      case 5:
        vsock.ProcessQueue(in.ConsumeIntegralInRange<uint16_t>(0, 3));
        break;
      case 6:  // The device's event loop: listener, host sockets, timer.
        vsock.OnEvent(vsock.epoll_fd(), EPOLLIN);
        break;
      case 7: {  // A host client connects to uds_path and sends (part of) a CONNECT line.
        if (host_peers.size() >= 16) break;
        Fd client = Connect(uds);
        std::string line;
        if (in.ConsumeBool()) {
          line = "CONNECT " + std::to_string(in.PickValueInArray(kGuestPorts)) + "\n";
        } else {
          line = in.ConsumeRandomLengthString(40);
        }
        (void)::send(client.get(), line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        host_peers.push_back(std::move(client));
        break;
      }
      case 8: {  // The harness's listener accepts what the guest connected.
        int fd = ::accept4(host_listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) host_peers.emplace_back(fd);
        break;
      }
      case 9: {  // A host peer writes, reads, half-closes or goes away.
        if (host_peers.empty()) break;
        const size_t i = in.ConsumeIntegralInRange<size_t>(0, host_peers.size() - 1);
        const int fd = host_peers[i].get();
        switch (in.ConsumeIntegralInRange<int>(0, 3)) {
          case 0: {
            auto bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 2048));
            (void)::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            break;
          }
          case 1: Drain(fd); break;
          case 2: ::shutdown(fd, in.ConsumeBool() ? SHUT_WR : SHUT_RD); break;
          case 3: host_peers.erase(host_peers.begin() + static_cast<ptrdiff_t>(i)); break;
        }
        break;
      }
      case 10:  // Before a snapshot, or after a restore.
        vsock.TransportReset();
        break;
      case 11:  // Driver reset and re-activation.
        vsock.Reset();
        for (auto& q : queues) q.Reset();
        activate();
        break;
    }
  }
  vsock.Reset();
  created->reset();
  host_peers.clear();
  ::unlink(uds.c_str());
  ::unlink((uds + "_" + std::to_string(kHostListenPort)).c_str());
  return 0;
}
