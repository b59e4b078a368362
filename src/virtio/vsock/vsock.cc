#include "virtio/vsock/vsock.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/clock.h"
#include "base/hex.h"
#include "base/log.h"

namespace hearth {
namespace {

constexpr uint64_t kListenerToken = ~uint64_t{0};
constexpr uint64_t kTimerToken = ~uint64_t{0} - 1;
constexpr uint64_t kWakeToken = ~uint64_t{0} - 2;
constexpr int kMaxEvents = 64;
constexpr size_t kMaxQueuedRsts = 1024;
constexpr size_t kMaxIov = 1024;
constexpr int kListenBacklog = 128;

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty()) return Error("UNIX socket path is empty");
  if (path.size() >= sizeof(addr.sun_path)) {
    return Error("UNIX socket path " + path + " is longer than " +
                 std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

Status EpollCtl(int epoll, int op, int fd, uint32_t events, uint64_t token) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (::epoll_ctl(epoll, op, fd, &ev) != 0) return ErrnoError("epoll_ctl");
  return Ok();
}



// iovecs over `len` bytes of `buffers` from byte `offset`.
Status BuildIovecs(const GuestMemory& memory, const std::vector<GuestBuffer>& buffers,
                   uint64_t offset, uint64_t len, std::vector<iovec>& iov) {
  iov.clear();
  for (const GuestBuffer& buf : buffers) {
    if (len == 0) break;
    if (offset >= buf.len) {
      offset -= buf.len;
      continue;
    }
    uint64_t n = std::min<uint64_t>(len, buf.len - offset);
    RETURN_IF_ERROR(memory.AppendIoVecs(buf.addr + offset, n, iov));
    len -= n;
    offset = 0;
    if (iov.size() >= kMaxIov) break;
  }
  if (iov.size() > kMaxIov) iov.resize(kMaxIov);
  return Ok();
}

uint64_t IovBytes(const std::vector<iovec>& iov) {
  uint64_t total = 0;
  for (const iovec& v : iov) total += v.iov_len;
  return total;
}

}  // namespace

// ---- Creation ---------------------------------------------------------------------------------

Vsock::Vsock(VsockOptions options, Fd listener, Fd epoll, Fd timer, EventFd wake)
    : options_(std::move(options)),
      listener_(std::move(listener)),
      epoll_(std::move(epoll)),
      timer_(std::move(timer)),
      wake_(std::move(wake)) {}

Result<std::unique_ptr<Vsock>> Vsock::Create(const VsockOptions& options) {
  if (options.guest_cid < 3 || options.guest_cid > UINT32_MAX) {
    return Error("vsock: guest_cid " + std::to_string(options.guest_cid) +
                 " is not in [3, 4294967295]");
  }
  auto addr = UnixAddress(options.uds_path);
  if (!addr.ok()) return addr.error().Wrap("vsock: uds_path");
  // Guest-initiated connections go to "<uds_path>_<port>": that must fit too.
  if (options.uds_path.size() + 11 >= sizeof(sockaddr_un::sun_path)) {
    return Error("vsock: uds_path " + options.uds_path +
                 " leaves no room for the \"_<port>\" suffix of guest-initiated connections");
  }
  Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listener.valid()) return ErrnoError("vsock: socket(AF_UNIX)");
  if (::bind(listener.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    return ErrnoError("vsock: bind " + options.uds_path);
  }
  if (::listen(listener.get(), kListenBacklog) != 0) {
    int err = errno;
    ::unlink(options.uds_path.c_str());
    return ErrnoError("vsock: listen " + options.uds_path, err);
  }
  Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
  Fd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!epoll.valid() || !timer.valid()) {
    int err = errno;
    ::unlink(options.uds_path.c_str());
    return ErrnoError(epoll.valid() ? "vsock: timerfd_create" : "vsock: epoll_create1", err);
  }
  auto status = EpollCtl(epoll.get(), EPOLL_CTL_ADD, listener.get(), EPOLLIN | EPOLLET,
                         kListenerToken);
  if (status.ok()) {
    status = EpollCtl(epoll.get(), EPOLL_CTL_ADD, timer.get(), EPOLLIN, kTimerToken);
  }
  auto wake = EventFd::Create();
  if (status.ok() && !wake.ok()) status = wake.error();
  if (status.ok()) status = EpollCtl(epoll.get(), EPOLL_CTL_ADD, wake->get(), EPOLLIN, kWakeToken);
  if (!status.ok()) {
    ::unlink(options.uds_path.c_str());
    return status.error().Wrap("vsock");
  }
  return std::unique_ptr<Vsock>(new Vsock(options, std::move(listener), std::move(epoll),
                                          std::move(timer), std::move(wake).value()));
}

Result<std::unique_ptr<Vsock>> Vsock::Restore(const VsockState& state) {
  VsockOptions options;
  options.guest_cid = state.guest_cid;
  options.uds_path = state.uds_path;
  if ((state.acked_features & ~kFeatures) != 0) {
    return Error("vsock state: acked features " + Hex(state.acked_features) +
                 " are not all offered (" + Hex(kFeatures) + ")");
  }
  auto vsock = Create(options);
  if (!vsock.ok()) return vsock.error().Wrap("vsock state");
  (*vsock)->acked_features_ = state.acked_features;
  return vsock;
}

Vsock::~Vsock() {
  // The path belongs to this device: leave nothing behind for the next VM on it.
  ::unlink(options_.uds_path.c_str());
}

VsockState Vsock::Save() const {
  return VsockState{options_.guest_cid, options_.uds_path, acked_features_};
}

namespace {
constexpr uint8_t kVsockStateVersion = 1;
constexpr size_t kVsockStateSize = 1 + 8 + 8 + 1 + 4;
}  // namespace

std::vector<uint8_t> Vsock::SaveState() const {
  std::vector<uint8_t> out(kVsockStateSize);
  out[0] = kVsockStateVersion;
  const uint64_t cid = options_.guest_cid;
  const uint64_t features = acked_features_;
  std::memcpy(out.data() + 1, &cid, 8);  // Little-endian host (x86_64 only).
  std::memcpy(out.data() + 9, &features, 8);
  // 0: no reset in flight, 1: TRANSPORT_RESET waits for an event buffer, 2: delivered, the
  // guest has not refilled its event queue yet.
  out[17] = event_pending_ ? 1 : reset_unacked_ ? 2 : 0;
  // The next port for host-initiated connections: a restored device must not reuse the port
  // of a connection the guest may still hold (until it handles the TRANSPORT_RESET), or the
  // guest would answer the new REQUEST with a RST.
  const uint32_t next_port = next_local_port_;
  std::memcpy(out.data() + 18, &next_port, 4);
  return out;
}

Status Vsock::RestoreState(std::span<const uint8_t> state) {
  if (state.size() != kVsockStateSize) {
    return Error("vsock state: " + std::to_string(state.size()) + " bytes, expected " +
                 std::to_string(kVsockStateSize));
  }
  if (state[0] != kVsockStateVersion) {
    return Error("vsock state: version " + std::to_string(state[0]) + ", this Hearth reads " +
                 std::to_string(kVsockStateVersion));
  }
  uint64_t cid, features;
  std::memcpy(&cid, state.data() + 1, 8);
  std::memcpy(&features, state.data() + 9, 8);
  if (cid != options_.guest_cid) {
    return Error("vsock state: guest_cid " + std::to_string(cid) + ", the device was rebuilt with " +
                 std::to_string(options_.guest_cid));
  }
  if ((features & ~kFeatures) != 0) {
    return Error("vsock state: acked features " + Hex(features) + " are not all offered (" +
                 Hex(kFeatures) + ")");
  }
  if (state[17] > 2) return Error("vsock state: invalid event flag");
  uint32_t next_port;
  std::memcpy(&next_port, state.data() + 18, 4);
  if (next_port < (1u << 30)) {
    return Error("vsock state: next host port " + std::to_string(next_port) + " is below " +
                 std::to_string(1u << 30));
  }
  if (activated_) return Error("vsock state: the device is already active");
  acked_features_ = features;
  event_pending_ = state[17] == 1;
  reset_unacked_ = state[17] == 2;
  next_local_port_ = next_port;
  return Ok();
}

VsockMetrics Vsock::metrics() const {
  VsockMetrics m = m_;
  m.active_connections = connections_.size();
  return m;
}

void Vsock::ReadConfig(uint64_t offset, std::span<uint8_t> data) const {
  // struct virtio_vsock_config { le64 guest_cid; }
  const uint64_t cid = options_.guest_cid;
  const auto* bytes = reinterpret_cast<const uint8_t*>(&cid);
  for (size_t i = 0; i < data.size(); ++i) {
    uint64_t at = offset + i;
    data[i] = (at >= offset && at < sizeof(cid)) ? bytes[at] : 0;
  }
}

void Vsock::WriteConfig(uint64_t offset, std::span<const uint8_t> data) {
  LOG_DEBUG("virtio-vsock: ignored config write of " << data.size() << " bytes at " << offset);
}

Status Vsock::Activate(VirtioActivation activation) {
  if (activated_) return Error("virtio-vsock: already activated");
  if (activation.memory == nullptr || activation.queues == nullptr || !activation.interrupt) {
    return Error("virtio-vsock: activation without memory, queues or interrupt");
  }
  if (activation.queues->size() != 3) {
    return Error("virtio-vsock: expected 3 queues, got " +
                 std::to_string(activation.queues->size()));
  }
  memory_ = activation.memory;
  queues_ = activation.queues;
  interrupt_ = std::move(activation.interrupt);
  acked_features_ = activation.acked_features;
  needs_reset_ = false;
  activated_ = true;
  // A TRANSPORT_RESET saved while the guest had no event buffer (restored device), host
  // clients that connected before the driver was ready, and CONNECTs parked behind a reset are
  // served from the event loop: this runs on the vCPU thread that wrote DRIVER_OK, whose
  // seccomp policy has no socket calls.
  if (event_pending_ || listener_pending_ || parked_lines_ > 0) (void)wake_.Signal();
  return Ok();
}

void Vsock::Reset() {
  RemoveAll();
  activated_ = false;
  needs_reset_ = false;
  memory_ = nullptr;
  queues_ = nullptr;
  interrupt_.reset();
  acked_features_ = 0;
  event_pending_ = false;
  reset_unacked_ = false;
}

std::vector<VirtioDevice::EventSource> Vsock::event_sources() const {
  return {EventSource{epoll_.get(), EPOLLIN}};
}

void Vsock::OnEvent(int fd, uint32_t /*events*/) {
  if (fd != epoll_.get()) return;
  PollHost();
  if (activated_ && !needs_reset_) ProcessRx();
}

void Vsock::ProcessQueue(uint16_t index) {
  if (!activated_ || needs_reset_) return;
  switch (index) {
    case kVsockRxQueue:
      ProcessRx();
      break;
    case kVsockTxQueue:
      ProcessTx();
      // Replies (RESPONSE, RST, credit) and data the new credit allows.
      ProcessRx();
      break;
    case kVsockEventQueue:
      if (reset_unacked_ && !event_pending_) {
        // The guest refilled its event queue after taking the TRANSPORT_RESET (Linux does so
        // in its event work, after resetting its connected sockets): host connections can be
        // offered again without being caught by that reset.
        reset_unacked_ = false;
        if (listener_pending_) OnListener();
        ResumeParkedLines();
      }
      DeliverEvents();
      break;
    default:
      break;
  }
}

// ---- Host side --------------------------------------------------------------------------------

void Vsock::PollHost() {
  epoll_event events[kMaxEvents];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), events, kMaxEvents, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      LOG_WARN("virtio-vsock: epoll_wait: " << std::strerror(errno));
      return;
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t token = events[i].data.u64;
      if (token == kListenerToken) {
        OnListener();
      } else if (token == kTimerToken) {
        OnTimer();
      } else if (token == kWakeToken) {
        (void)wake_.Consume();
        if (activated_ && !needs_reset_) {
          DeliverEvents();
          if (listener_pending_) OnListener();
          ResumeParkedLines();
        }
      } else {
        const int fd = static_cast<int>(token);
        if (auto it = fd_to_key_.find(fd); it != fd_to_key_.end()) {
          if (Connection* conn = Find(it->second)) OnConnectionEvent(*conn, events[i].events);
        } else if (host_lines_.contains(fd)) {
          OnHostLine(fd);
        }
      }
    }
    if (n < kMaxEvents) return;
  }
}

void Vsock::OnListener() {
  if (!activated_) {
    // Nobody to connect to yet: leave clients in the backlog.
    listener_pending_ = true;
    return;
  }
  listener_pending_ = false;
  for (;;) {
    Fd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!client.valid()) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN) LOG_WARN("virtio-vsock: accept4: " << std::strerror(errno));
      return;
    }
    if (total_connections() >= options_.max_connections) {
      ++m_.connections_refused;
      LOG_DEBUG("virtio-vsock: refusing a host connection: " << total_connections()
                                                             << " connections open");
      continue;  // Closed.
    }
    const int fd = client.get();
    if (auto s = EpollCtl(epoll_.get(), EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLRDHUP | EPOLLET,
                          static_cast<uint64_t>(fd));
        !s.ok()) {
      LOG_WARN("virtio-vsock: " << s.error().message());
      continue;
    }
    host_lines_.emplace(fd, HostLine{std::move(client),
                                     MonotonicMicros() + options_.connect_timeout_us});
    ArmTimer();
    // Data may already be there (the edge came with the connection).
    OnHostLine(fd);
  }
}

void Vsock::OnHostLine(int fd) {
  auto it = host_lines_.find(fd);
  if (it == host_lines_.end()) return;
  const bool reset_untaken = event_pending_ || reset_unacked_ || !activated_;
  if (it->second.parked) {
    // The CONNECT line was read; it waits for the guest to take the reset.
    if (!reset_untaken) OfferHostConnection(fd);
    return;
  }
  uint8_t buf[kMaxConnectLine];
  // Peek: bytes after the line belong to the stream and stay in the socket.
  ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_PEEK);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  auto drop = [&](const std::string& why) {
    LOG_DEBUG("virtio-vsock: host connection: " << why);
    (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    host_lines_.erase(it);  // Closes the socket.
  };
  if (n <= 0) {
    drop(n == 0 ? "closed before CONNECT" : std::string("recv: ") + std::strerror(errno));
    return;
  }
  ConnectLine line = ParseConnectLine(std::span(buf, static_cast<size_t>(n)));
  if (line.kind == ConnectLine::Kind::kIncomplete) return;  // Waits for the next edge.
  if (line.kind == ConnectLine::Kind::kInvalid) {
    ++m_.host_protocol_errors;
    drop(line.error);
    return;
  }
  // Consume exactly the line.
  ssize_t consumed = ::recv(fd, buf, line.length, 0);
  if (consumed != static_cast<ssize_t>(line.length)) {
    drop("recv of the CONNECT line failed");
    return;
  }
  it->second.port = line.port;
  it->second.parked = true;
  it->second.deadline_us = MonotonicMicros() + options_.connect_timeout_us;
  ++parked_lines_;
  if (reset_untaken) {
    // A TRANSPORT_RESET the guest has not handled yet would reset the new connection too
    // (after a snapshot or restore): the line waits until the guest has taken it
    // (ResumeParkedLines), for at most the connect timeout (OnTimer).
    ArmTimer();
    return;
  }
  OfferHostConnection(fd);
}

void Vsock::OfferHostConnection(int fd) {
  auto it = host_lines_.find(fd);
  if (it == host_lines_.end() || !it->second.parked) return;
  // The connect timeout counts from when the CONNECT line arrived, parked or not.
  const uint64_t deadline_us = it->second.deadline_us;
  const uint32_t peer_port = it->second.port;
  --parked_lines_;
  Fd sock = std::move(it->second.fd);
  host_lines_.erase(it);
  // From now on the device also writes to it: watch for room (edge-triggered, so only after
  // the socket was full).
  if (!EpollCtl(epoll_.get(), EPOLL_CTL_MOD, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                static_cast<uint64_t>(fd))
           .ok()) {
    (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    return;
  }
  const uint32_t local_port = AllocateLocalPort();
  const Key key = MakeKey(local_port, peer_port);
  auto conn = std::make_unique<Connection>(Connection::HostInitiated(local_port, peer_port));
  conn->fd = std::move(sock);
  conn->host_readable = true;
  conn->deadline_us = deadline_us;
  fd_to_key_[fd] = key;
  Connection& c = *conn;
  connections_.emplace(key, std::move(conn));
  ++m_.connections_opened;
  QueueOps(c);
  ArmTimer();
}

void Vsock::ResumeParkedLines() {
  if (parked_lines_ == 0 || !activated_ || event_pending_ || reset_unacked_) return;
  std::vector<int> fds;
  for (const auto& [fd, line] : host_lines_) {
    if (line.parked) fds.push_back(fd);
  }
  for (int fd : fds) OfferHostConnection(fd);
}

uint32_t Vsock::AllocateLocalPort() {
  // Ports for host-initiated connections, above the range guests usually listen on; skip any
  // still in use (with up to 4096 connections one is always free soon).
  for (;;) {
    uint32_t port = next_local_port_++;
    if (next_local_port_ == 0) next_local_port_ = 1u << 30;
    bool used = false;
    for (const auto& [key, conn] : connections_) {
      if (conn->local_port() == port) {
        used = true;
        break;
      }
    }
    if (!used) return port;
  }
}

void Vsock::OnConnectionEvent(Connection& conn, uint32_t events) {
  const Key key = MakeKey(conn.local_port(), conn.peer_port());
  if (events & EPOLLOUT) {
    if (conn.pending_size() > 0 && !FlushPending(conn)) {
      Remove(key, true);
      return;
    }
    ApplyGuestShutdown(conn);
    if (Find(key) == nullptr) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    conn.host_readable = true;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) conn.host_rdhup = true;
    if (events & (EPOLLHUP | EPOLLERR)) conn.host_broken = true;
    QueueData(conn);
  }
}

void Vsock::ArmTimer() {
  if (timer_armed_) return;
  itimerspec spec{};
  spec.it_value.tv_nsec = 250'000'000;
  spec.it_interval.tv_nsec = 250'000'000;
  if (::timerfd_settime(timer_.get(), 0, &spec, nullptr) == 0) timer_armed_ = true;
}

void Vsock::OnTimer() {
  uint64_t expirations;
  (void)!::read(timer_.get(), &expirations, sizeof(expirations));
  const uint64_t now = MonotonicMicros();
  std::vector<Key> expired;
  bool waiting = false;
  for (const auto& [key, conn] : connections_) {
    if (conn->state() != ConnState::kLocalInit) continue;
    if (now >= conn->deadline_us) {
      expired.push_back(key);
    } else {
      waiting = true;
    }
  }
  for (Key key : expired) {
    LOG_DEBUG("virtio-vsock: the guest did not answer a connection request in time");
    ++m_.connections_refused;
    Remove(key, /*reset=*/true);
  }
  // CONNECTs parked behind a TRANSPORT_RESET the guest did not take in time: closed like an
  // unanswered request (the host sees EOF without "OK"). Clients that never sent a whole
  // CONNECT line: closed as a protocol error.
  std::vector<int> expired_lines;
  for (const auto& [fd, line] : host_lines_) {
    if (now >= line.deadline_us) {
      expired_lines.push_back(fd);
    } else {
      waiting = true;
    }
  }
  for (int fd : expired_lines) {
    auto it = host_lines_.find(fd);
    if (it->second.parked) {
      LOG_DEBUG("virtio-vsock: the guest did not take its transport reset in time for a host CONNECT");
      ++m_.connections_refused;
      --parked_lines_;
    } else {
      LOG_DEBUG("virtio-vsock: a host connection sent no CONNECT line in time");
      ++m_.host_protocol_errors;
    }
    (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    host_lines_.erase(it);  // Closes the socket.
  }
  if (!waiting) {
    itimerspec off{};
    (void)::timerfd_settime(timer_.get(), 0, &off, nullptr);
    timer_armed_ = false;
  }
}

bool Vsock::FlushPending(Connection& conn) {
  while (conn.pending_size() > 0) {
    const uint8_t* data = conn.pending().data() + conn.pending_start;
    ssize_t n = ::send(conn.fd.get(), data, conn.pending_size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return true;
      return false;
    }
    conn.DropPending(static_cast<size_t>(n));
    conn.RecordForwarded(static_cast<uint32_t>(n));
  }
  if (conn.pending_ops() & kConnOpCreditUpdate) QueueOps(conn);
  return true;
}

void Vsock::ApplyGuestShutdown(Connection& conn) {
  if (conn.pending_size() > 0) return;
  const Key key = MakeKey(conn.local_port(), conn.peer_port());
  const uint32_t flags = conn.guest_shutdown();
  if ((flags & kVsockShutdownBoth) == kVsockShutdownBoth) {
    // The guest closed: everything it sent has reached the host. Confirm with RST (Linux
    // waits for it before freeing the socket) and close the host side.
    Remove(key, /*reset=*/true);
    return;
  }
  if ((flags & kVsockShutdownSend) && !conn.host_write_shut) {
    ::shutdown(conn.fd.get(), SHUT_WR);
    conn.host_write_shut = true;
  }
  if (conn.host_eof() && (flags & kVsockShutdownSend)) {
    // Both directions are finished.
    Remove(key, /*reset=*/true);
  }
}

// ---- TX (guest -> host) -----------------------------------------------------------------------

void Vsock::ProcessTx() {
  Queue& queue = (*queues_)[kVsockTxQueue];
  const uint16_t used_before = queue.state().next_used;
  for (;;) {
    queue.DisableNotification(*memory_);
    for (;;) {
      if (needs_reset_) goto done;
      auto pop = queue.Pop(*memory_);
      if (pop.error) {
        HandleChainError(queue, *pop.error);
        continue;
      }
      if (!pop.chain) break;
      HandleTxPacket(*pop.chain);
      ReturnChain(queue, pop.chain->head, 0);
    }
    if (!queue.EnableNotification(*memory_)) break;
  }
done:
  if (queue.state().next_used != used_before && !needs_reset_) SignalUsed(queue);
}

void Vsock::HandleTxPacket(const DescriptorChain& chain) {
  VsockHeader header{};
  if (chain.readable_bytes >= kVsockHeaderSize) {
    if (auto s = ReadChainBytes(*memory_, chain, 0,
                                std::span(reinterpret_cast<uint8_t*>(&header), sizeof(header)));
        !s.ok()) {
      ++m_.tx_dropped;
      return;
    }
  }
  TxCheck check = CheckTxHeader(header, options_.guest_cid, chain.readable_bytes,
                                !chain.writable.empty());
  if (check.verdict == TxVerdict::kDrop) {
    ++m_.tx_dropped;
    LOG_DEBUG("virtio-vsock: dropping TX packet: " << check.reason);
    return;
  }
  ++m_.tx_packets;
  if (check.verdict == TxVerdict::kReset) {
    LOG_DEBUG("virtio-vsock: resetting: " << check.reason);
    if (header.op != kVsockOpRst) QueueRst(header.dst_port, header.src_port);
    return;
  }
  const Key key = MakeKey(header.dst_port, header.src_port);
  Connection* conn = Find(key);
  if (conn == nullptr) {
    if (header.op == kVsockOpRequest) {
      HandleRequest(header);
    } else if (header.op != kVsockOpRst) {
      QueueRst(header.dst_port, header.src_port);
    }
    return;
  }
  const bool had_credit = conn->PeerFreeSpace() > 0;
  ConnAction action = conn->OnGuestPacket(header);
  if (action == ConnAction::kNone && header.op == kVsockOpRw && header.len > 0) {
    action = ForwardPayload(*conn, chain, header.len);
  }
  switch (action) {
    case ConnAction::kDrop:
      Remove(key, /*reset=*/false);
      return;
    case ConnAction::kReset:
      Remove(key, /*reset=*/true);
      return;
    case ConnAction::kNone:
      break;
  }
  if (header.op == kVsockOpResponse) {
    // The guest accepted a host-initiated connection: tell the host client.
    std::string ok = ConnectOkLine(conn->local_port());
    ssize_t n = ::send(conn->fd.get(), ok.data(), ok.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n != static_cast<ssize_t>(ok.size())) {
      // A fresh socket's buffer takes a few bytes; anything else means the client is gone.
      Remove(key, /*reset=*/true);
      return;
    }
    QueueData(*conn);
  }
  if (header.op == kVsockOpShutdown) {
    ApplyGuestShutdown(*conn);
    if ((conn = Find(key)) == nullptr) return;
  }
  if (!had_credit && conn->PeerFreeSpace() > 0) QueueData(*conn);
  if (conn->pending_ops() != 0) QueueOps(*conn);
}

void Vsock::HandleRequest(const VsockHeader& header) {
  if (total_connections() >= options_.max_connections) {
    ++m_.connections_refused;
    QueueRst(header.dst_port, header.src_port);
    return;
  }
  const std::string path = options_.uds_path + "_" + std::to_string(header.dst_port);
  auto addr = UnixAddress(path);
  Fd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!addr.ok() || !sock.valid()) {
    QueueRst(header.dst_port, header.src_port);
    return;
  }
  int rc = ::connect(sock.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr));
  if (rc != 0) {
    // UNIX sockets connect at once or not at all (EAGAIN: the listener's backlog is full).
    LOG_DEBUG("virtio-vsock: guest connect to " << path << ": " << std::strerror(errno));
    ++m_.connections_refused;
    QueueRst(header.dst_port, header.src_port);
    return;
  }
  const int fd = sock.get();
  if (!EpollCtl(epoll_.get(), EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                static_cast<uint64_t>(fd))
           .ok()) {
    QueueRst(header.dst_port, header.src_port);
    return;
  }
  const Key key = MakeKey(header.dst_port, header.src_port);
  auto conn = std::make_unique<Connection>(
      Connection::GuestInitiated(header.dst_port, header.src_port, header));
  conn->fd = std::move(sock);
  Connection& c = *conn;
  fd_to_key_[fd] = key;
  connections_.emplace(key, std::move(conn));
  ++m_.connections_opened;
  c.OnHostConnected();
  QueueOps(c);
}

ConnAction Vsock::ForwardPayload(Connection& conn, const DescriptorChain& chain, uint32_t len) {
  conn.RecordReceived(len);
  m_.tx_bytes += len;
  uint32_t written = 0;
  if (conn.pending_size() == 0) {
    if (!BuildIovecs(*memory_, chain.readable, kVsockHeaderSize, len, iov_).ok()) {
      return ConnAction::kReset;
    }
    msghdr msg{};
    msg.msg_iov = iov_.data();
    msg.msg_iovlen = iov_.size();
    ssize_t n;
    do {
      n = ::sendmsg(conn.fd.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    // EPIPE and the like: the host side is gone and cannot take the bytes.
    if (n < 0 && errno != EAGAIN) return ConnAction::kReset;
    if (n > 0) written = static_cast<uint32_t>(n);
    if (written > 0) conn.RecordForwarded(written);
  }
  if (written < len) {
    // Keep the rest (the credit bounds it to kConnBufAlloc); EPOLLOUT flushes it.
    const uint32_t rest = len - written;
    auto& pending = conn.pending();
    const size_t at = pending.size();
    pending.resize(at + rest);
    if (!ReadChainBytes(*memory_, chain, kVsockHeaderSize + written,
                        std::span(pending.data() + at, rest))
             .ok()) {
      return ConnAction::kReset;
    }
  }
  return ConnAction::kNone;
}

// ---- RX (host -> guest) -----------------------------------------------------------------------

bool Vsock::HasRxWork() const {
  return rx_held_.has_value() || !rst_queue_.empty() || !op_queue_.empty() ||
         !data_queue_.empty();
}

void Vsock::ProcessRx() {
  if (!activated_ || needs_reset_) return;
  Queue& queue = (*queues_)[kVsockRxQueue];
  const uint16_t used_before = queue.state().next_used;
  while (HasRxWork() && !needs_reset_) {
    if (!rx_held_) {
      auto pop = queue.Pop(*memory_);
      if (pop.error) {
        HandleChainError(queue, *pop.error);
        continue;
      }
      if (!pop.chain) {
        // No buffers: the guest kicks when it posts some.
        if (queue.EnableNotification(*memory_)) continue;
        break;
      }
      // Room for a header and at least one byte: Linux posts 4 KiB buffers.
      if (pop.chain->writable_bytes <= kVsockHeaderSize) {
        ++m_.malformed_chains;
        ReturnChain(queue, pop.chain->head, 0);
        continue;
      }
      rx_held_ = std::move(pop.chain);
    }
    uint32_t written = 0;
    if (!FillRxChain(*rx_held_, &written)) break;  // Only data that was not there.
    ReturnChain(queue, rx_held_->head, written);
    rx_held_.reset();
  }
  if (queue.state().next_used != used_before && !needs_reset_) SignalUsed(queue);
}

bool Vsock::FillRxChain(const DescriptorChain& chain, uint32_t* written) {
  for (;;) {
    if (!rst_queue_.empty()) {
      VsockHeader rst = rst_queue_.front();
      rst_queue_.pop_front();
      if (WriteHeader(chain, rst)) {
        ++m_.resets_sent;
        *written = kVsockHeaderSize;
      }
      return true;
    }
    if (!op_queue_.empty()) {
      const Key key = op_queue_.front();
      op_queue_.pop_front();
      Connection* conn = Find(key);
      if (conn == nullptr) continue;
      conn->in_op_queue = false;
      const ConnOp op = conn->TakeOp();
      if (op == 0) continue;
      uint16_t wire_op = kVsockOpCreditUpdate;
      switch (op) {
        case kConnOpRequest: wire_op = kVsockOpRequest; break;
        case kConnOpResponse: wire_op = kVsockOpResponse; break;
        case kConnOpCreditUpdate: wire_op = kVsockOpCreditUpdate; break;
        case kConnOpShutdown: wire_op = kVsockOpShutdown; break;
        case kConnOpCreditRequest: wire_op = kVsockOpCreditRequest; break;
      }
      VsockHeader header;
      conn->FillHeader(header, options_.guest_cid, wire_op);
      if (wire_op == kVsockOpShutdown) header.flags = conn->shutdown_flags_to_send();
      QueueOps(*conn);  // More ops of this connection go behind the others'.
      if (WriteHeader(chain, header)) *written = kVsockHeaderSize;
      if (wire_op == kVsockOpResponse) QueueData(*conn);
      return true;
    }
    if (data_queue_.empty()) return false;
    const Key key = data_queue_.front();
    data_queue_.pop_front();
    Connection* conn = Find(key);
    if (conn == nullptr) continue;
    conn->in_data_queue = false;
    const uint32_t len = ReadHostData(*conn, chain);
    if (len > 0) {
      *written = len;
      return true;
    }
    // Nothing read (drained, EOF or error): SHUTDOWN or RST may have been queued; loop.
  }
}

bool Vsock::WriteHeader(const DescriptorChain& chain, const VsockHeader& header) {
  auto s = WriteChainBytes(*memory_, chain, 0,
                           std::span(reinterpret_cast<const uint8_t*>(&header), sizeof(header)));
  if (!s.ok()) {
    ++m_.malformed_chains;
    return false;
  }
  ++m_.rx_packets;
  return true;
}

uint32_t Vsock::ReadHostData(Connection& conn, const DescriptorChain& chain) {
  const Key key = MakeKey(conn.local_port(), conn.peer_port());
  if (!conn.host_readable || !conn.WantsHostData()) return 0;
  const uint64_t room = std::min<uint64_t>(
      {chain.writable_bytes - kVsockHeaderSize, conn.PeerFreeSpace(), kVsockMaxPayload});
  ssize_t n = 0;
  uint64_t asked = 0;
  if (room > 0) {
    if (!BuildIovecs(*memory_, chain.writable, kVsockHeaderSize, room, iov_).ok()) {
      ++m_.malformed_chains;
      return 0;
    }
    asked = IovBytes(iov_);
    do {
      n = ::readv(conn.fd.get(), iov_.data(), static_cast<int>(iov_.size()));
    } while (n < 0 && errno == EINTR);
  }
  VsockHeader header;
  if (n > 0) {
    conn.FillHeader(header, options_.guest_cid, kVsockOpRw);
    header.len = static_cast<uint32_t>(n);
    if (!WriteHeader(chain, header)) return 0;
    conn.RecordSentToGuest(header.len);
    m_.rx_bytes += header.len;
    if (static_cast<uint64_t>(n) < asked && !conn.host_rdhup) {
      // Drained: the next edge says when there is more. (After RDHUP no edge will come: keep
      // reading until the EOF.)
      conn.host_readable = false;
    }
    QueueData(conn);  // Behind the others: round robin.
    // Credit ran out: ask the guest for an update rather than wait for one.
    if (conn.PeerFreeSpace() == 0) {
      conn.QueueOp(kConnOpCreditRequest);
      QueueOps(conn);
    }
    return kVsockHeaderSize + header.len;
  }
  if (n < 0 && errno == EAGAIN) {
    conn.host_readable = false;
    return 0;
  }
  if (n == 0 && room > 0) {
    // EOF: the host will send no more. A host that also cannot take data any more
    // (hangup) ends the connection both ways.
    conn.OnHostEof(conn.host_broken);
    conn.host_readable = false;
    if ((conn.guest_shutdown() & kVsockShutdownSend) && conn.pending_size() == 0) {
      Remove(key, /*reset=*/true);
      return 0;
    }
    QueueOps(conn);
    return 0;
  }
  // A read error: the host socket is broken.
  Remove(key, /*reset=*/true);
  return 0;
}

// ---- Connection bookkeeping -------------------------------------------------------------------

Connection* Vsock::Find(Key key) {
  auto it = connections_.find(key);
  return it == connections_.end() ? nullptr : it->second.get();
}

void Vsock::QueueOps(Connection& conn) {
  if (conn.in_op_queue || conn.pending_ops() == 0) return;
  conn.in_op_queue = true;
  op_queue_.push_back(MakeKey(conn.local_port(), conn.peer_port()));
}

void Vsock::QueueData(Connection& conn) {
  if (conn.in_data_queue || !conn.host_readable || !conn.WantsHostData()) return;
  conn.in_data_queue = true;
  data_queue_.push_back(MakeKey(conn.local_port(), conn.peer_port()));
}

void Vsock::QueueRst(uint32_t local_port, uint32_t peer_port) {
  if (rst_queue_.size() >= kMaxQueuedRsts) return;  // The guest's own timeouts clean up.
  VsockHeader rst{};
  rst.src_cid = kVsockHostCid;
  rst.dst_cid = options_.guest_cid;
  rst.src_port = local_port;
  rst.dst_port = peer_port;
  rst.type = kVsockTypeStream;
  rst.op = kVsockOpRst;
  rst_queue_.push_back(rst);
}

void Vsock::Remove(Key key, bool reset) {
  auto it = connections_.find(key);
  if (it == connections_.end()) return;
  Connection& conn = *it->second;
  if (reset) QueueRst(conn.local_port(), conn.peer_port());
  if (conn.fd.valid()) {
    (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, conn.fd.get(), nullptr);
    fd_to_key_.erase(conn.fd.get());
  }
  // Queued keys of this connection are skipped when they come up (Find fails).
  connections_.erase(it);
}

void Vsock::RemoveAll() {
  // Closing a connection's socket (never duplicated) also drops it from the epoll set: no
  // epoll_ctl here, as a guest's device reset runs this on a vCPU thread.
  connections_.clear();
  fd_to_key_.clear();
  rst_queue_.clear();
  op_queue_.clear();
  data_queue_.clear();
  rx_held_.reset();
}

// ---- Events -----------------------------------------------------------------------------------

void Vsock::TransportReset() {
  RemoveAll();
  if (!activated_) return;
  event_pending_ = true;
  DeliverEvents();
}

void Vsock::DeliverEvents() {
  if (!event_pending_ || needs_reset_) return;
  Queue& queue = (*queues_)[kVsockEventQueue];
  for (;;) {
    auto pop = queue.Pop(*memory_);
    if (pop.error) {
      HandleChainError(queue, *pop.error);
      if (needs_reset_) return;
      continue;
    }
    if (!pop.chain) {
      (void)queue.EnableNotification(*memory_);
      return;  // Delivered on the guest's next kick of the event queue.
    }
    const uint32_t id = kVsockEventTransportReset;
    if (pop.chain->writable_bytes < sizeof(id) ||
        !WriteChainBytes(*memory_, *pop.chain, 0,
                         std::span(reinterpret_cast<const uint8_t*>(&id), sizeof(id)))
             .ok()) {
      ++m_.malformed_chains;
      ReturnChain(queue, pop.chain->head, 0);
      continue;
    }
    ReturnChain(queue, pop.chain->head, sizeof(id));
    event_pending_ = false;
    reset_unacked_ = true;
    // The guest's refill of the event queue is its acknowledgement: ask for that kick.
    queue.NotifyOnNextAvail(*memory_);
    SignalUsed(queue);
    return;
  }
}

// ---- Queue plumbing ---------------------------------------------------------------------------

void Vsock::ReturnChain(Queue& queue, uint16_t head, uint32_t len) {
  if (auto s = queue.AddUsed(*memory_, head, len); !s.ok()) {
    LOG_WARN("virtio-vsock: used ring: " << s.error().message() << ": device needs reset");
    BreakDevice();
  }
}

void Vsock::HandleChainError(Queue& queue, const ChainError& error) {
  ++m_.malformed_chains;
  if (error.needs_reset) {
    LOG_WARN("virtio-vsock: " << error.error.message() << ": device needs reset");
    BreakDevice();
    return;
  }
  LOG_DEBUG("virtio-vsock: " << error.error.message());
  ReturnChain(queue, error.head, 0);
}

void Vsock::SignalUsed(Queue& queue) {
  if (queue.NeedsInterrupt(*memory_)) interrupt_->Raise(kVirtioIntUsedBuffer);
}

void Vsock::BreakDevice() {
  if (needs_reset_) return;
  needs_reset_ = true;
  rx_held_.reset();
  interrupt_->SetNeedsReset();
}

}  // namespace hearth
