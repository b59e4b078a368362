#include "virtio/net/net.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <sstream>

#include "base/hex.h"
#include "base/log.h"
#include "snapshot/state_codec.h"
#include "virtio/net/tap.h"
#include "virtio/rate_limiter/rate_limiter_codec.h"

namespace hearth {
namespace {

// At most this many iovecs per readv/writev (UIO_MAXIOV); a frame scattered over more buffers
// goes through a bounce buffer instead.
constexpr size_t kMaxIov = 1024;



// Whether a TX chain is a frame SendChain would send (anything else is dropped).
bool IsTxFrame(const DescriptorChain& chain) {
  return chain.writable.empty() && chain.readable_bytes >= kVirtioNetHdrSize &&
         chain.readable_bytes <= kVirtioNetMaxFrame;
}

Result<RateLimiter> MakeLimiter(const std::optional<RateLimiterConfig>& config,
                                std::unique_ptr<MonotonicTimer> timer) {
  if (timer) return RateLimiter::Create(config, std::move(timer));
  return RateLimiter::Create(config);
}

}  // namespace

Net::Net(NetOptions options, std::unique_ptr<NetBackend> backend, RateLimiter rx_limiter,
         RateLimiter tx_limiter)
    : options_(std::move(options)),
      backend_(std::move(backend)),
      rx_limiter_(std::move(rx_limiter)),
      tx_limiter_(std::move(tx_limiter)) {
  features_ = kVirtioFVersion1 | kVirtioFRingEventIdx | kVirtioFRingIndirectDesc |
              kVirtioNetFMrgRxbuf | kVirtioNetFStatus;
  if (options_.guest_mac) {
    features_ |= kVirtioNetFMac;
    std::memcpy(config_.mac, options_.guest_mac->data(), 6);
  }
  // Checksum and segmentation offloads, both ways, as far as the backend takes them: the tap
  // accepts partially checksummed and GSO frames from the guest with the vnet header, and
  // delivers them to the guest once TUNSETOFFLOAD allows.
  const unsigned offloads = backend_->supported_offloads();
  if (offloads & kTunFCsum) {
    features_ |= kVirtioNetFCsum | kVirtioNetFGuestCsum;
    if (offloads & kTunFTso4) features_ |= kVirtioNetFHostTso4 | kVirtioNetFGuestTso4;
    if (offloads & kTunFTso6) features_ |= kVirtioNetFHostTso6 | kVirtioNetFGuestTso6;
    if (offloads & kTunFUfo) features_ |= kVirtioNetFHostUfo | kVirtioNetFGuestUfo;
  }
  config_.status = kVirtioNetStatusLinkUp;
  config_.max_virtqueue_pairs = 1;
}

Result<std::unique_ptr<Net>> Net::Create(const NetOptions& options) {
  RETURN_IF_ERROR(Tap::ValidateName(options.host_dev_name));
  auto tap = Tap::Open(options.host_dev_name);
  if (!tap.ok()) return tap.error().Wrap("network interface " + options.iface_id);
  return Create(options, std::move(tap).value());
}

Result<std::unique_ptr<Net>> Net::Create(const NetOptions& options,
                                         std::unique_ptr<NetBackend> backend,
                                         std::unique_ptr<MonotonicTimer> rx_timer,
                                         std::unique_ptr<MonotonicTimer> tx_timer) {
  if (options.iface_id.empty()) return Error("network interface id is empty");
  if (auto s = Tap::ValidateName(options.host_dev_name); !s.ok()) {
    return s.error().Wrap("network interface " + options.iface_id);
  }
  if (options.guest_mac && ((*options.guest_mac)[0] & 1)) {
    return Error("network interface " + options.iface_id + ": guest MAC is a multicast address");
  }
  if (!backend) return Error("network interface " + options.iface_id + ": no backend");
  auto rx = MakeLimiter(options.rx_rate_limiter, std::move(rx_timer));
  if (!rx.ok()) return rx.error().Wrap("network interface " + options.iface_id + " RX");
  auto tx = MakeLimiter(options.tx_rate_limiter, std::move(tx_timer));
  if (!tx.ok()) return tx.error().Wrap("network interface " + options.iface_id + " TX");
  return std::unique_ptr<Net>(
      new Net(options, std::move(backend), std::move(rx).value(), std::move(tx).value()));
}

Result<std::unique_ptr<Net>> Net::Restore(const NetState& state,
                                          std::unique_ptr<NetBackend> backend) {
  NetOptions options{state.iface_id, state.host_dev_name, state.guest_mac, {}, {}};
  auto net = backend ? Create(options, std::move(backend)) : Create(options);
  if (!net.ok()) return net.error().Wrap("net state");
  uint64_t offered = (*net)->features_ | kVirtioFVersion1;
  if ((state.acked_features & ~offered) != 0) {
    return Error("net state: network interface " + state.iface_id + ": acked features " +
                 Hex(state.acked_features) + " are not all offered (" + Hex(offered) + ")");
  }
  if (auto s = (*net)->rx_limiter_.Restore(state.rx_rate_limiter); !s.ok()) {
    return s.error().Wrap("net state: network interface " + state.iface_id + " RX");
  }
  if (auto s = (*net)->tx_limiter_.Restore(state.tx_rate_limiter); !s.ok()) {
    return s.error().Wrap("net state: network interface " + state.iface_id + " TX");
  }
  (*net)->acked_features_ = state.acked_features;
  return net;
}

NetState Net::Save() const {
  return NetState{options_.iface_id,  options_.host_dev_name, options_.guest_mac,
                  acked_features_,    rx_limiter_.Save(),      tx_limiter_.Save()};
}

namespace {
// Bump when the encoding below changes.
constexpr uint8_t kNetStateVersion = 1;
}  // namespace

std::vector<uint8_t> Net::SaveState() const {
  StateWriter w;
  w.U8(kNetStateVersion);
  PutRateLimiterState(w, rx_limiter_.Save());
  PutRateLimiterState(w, tx_limiter_.Save());
  return w.Take();
}

Status Net::RestoreState(std::span<const uint8_t> state) {
  const std::string what = "virtio-net " + options_.iface_id + " state";
  if (activated_) return Error(what + ": the device is already active");
  StateReader r(state);
  auto version = r.U8("version");
  if (!version.ok()) return version.error().Wrap(what);
  if (*version != kNetStateVersion) {
    return Error(what + ": version " + std::to_string(*version) + ", this Hearth reads " +
                 std::to_string(kNetStateVersion));
  }
  auto rx = GetRateLimiterState(r, "RX rate limiter");
  if (!rx.ok()) return rx.error().Wrap(what);
  auto tx = GetRateLimiterState(r, "TX rate limiter");
  if (!tx.ok()) return tx.error().Wrap(what);
  if (auto s = r.ExpectEnd("virtio-net state"); !s.ok()) return s.error().Wrap(what);
  if (auto s = CheckRateLimiterStateMatches(*rx, rx_limiter_.config()); !s.ok()) {
    return s.error().Wrap(what + ": RX rate limiter");
  }
  if (auto s = CheckRateLimiterStateMatches(*tx, tx_limiter_.config()); !s.ok()) {
    return s.error().Wrap(what + ": TX rate limiter");
  }
  // On a TX error RX is put back: nothing changes.
  const RateLimiterState rx_before = rx_limiter_.Save();
  if (auto s = rx_limiter_.Restore(*rx); !s.ok()) return s.error().Wrap(what + ": RX");
  if (auto s = tx_limiter_.Restore(*tx); !s.ok()) {
    (void)rx_limiter_.Restore(rx_before);
    return s.error().Wrap(what + ": TX");
  }
  return Ok();
}

NetMetrics Net::metrics() const {
  NetMetrics m;
  m.rx_bytes = rx_bytes_.Get();
  m.rx_frames = rx_frames_.Get();
  m.rx_dropped = rx_dropped_.Get();
  m.rx_errors = rx_errors_.Get();
  m.rx_no_buffers = rx_no_buffers_.Get();
  m.tx_bytes = tx_bytes_.Get();
  m.tx_frames = tx_frames_.Get();
  m.tx_dropped = tx_dropped_.Get();
  m.tx_errors = tx_errors_.Get();
  m.tx_would_block = tx_would_block_.Get();
  m.malformed_chains = malformed_chains_.Get();
  m.rx_rate_limiter_throttled_events = rx_throttled_.Get();
  m.tx_rate_limiter_throttled_events = tx_throttled_.Get();
  m.rate_limiter_throttled_events =
      m.rx_rate_limiter_throttled_events + m.tx_rate_limiter_throttled_events;
  return m;
}

void Net::ReadConfig(uint64_t offset, std::span<uint8_t> data) const {
  const auto* bytes = reinterpret_cast<const uint8_t*>(&config_);
  for (size_t i = 0; i < data.size(); ++i) {
    uint64_t at = offset + i;
    data[i] = (at >= offset && at < sizeof(config_)) ? bytes[at] : 0;
  }
}

void Net::WriteConfig(uint64_t offset, std::span<const uint8_t> data) {
  // Every field is read-only for a VERSION_1 driver.
  LOG_DEBUG("virtio-net " << options_.iface_id << ": ignored config write of " << data.size()
                          << " bytes at " << offset);
}

Status Net::Activate(VirtioActivation activation) {
  const std::string what = "virtio-net " + options_.iface_id;
  if (activated_) return Error(what + ": already activated");
  if (activation.memory == nullptr || activation.queues == nullptr || !activation.interrupt) {
    return Error(what + ": activation without memory, queues or interrupt");
  }
  if (activation.queues->size() != 2) {
    return Error(what + ": expected 2 queues, got " + std::to_string(activation.queues->size()));
  }
  const uint64_t acked = activation.acked_features;
  // What the tap may hand the guest: only what the guest said it can take. Segmentation
  // offloads need checksum offload (and the spec makes GUEST_TSO* depend on GUEST_CSUM).
  unsigned tun = 0;
  if (acked & kVirtioNetFGuestCsum) {
    tun |= kTunFCsum;
    if (acked & kVirtioNetFGuestTso4) tun |= kTunFTso4;
    if (acked & kVirtioNetFGuestTso6) tun |= kTunFTso6;
    if (acked & kVirtioNetFGuestUfo) tun |= kTunFUfo;
  }
  tun &= backend_->supported_offloads();
  if (auto s = backend_->SetOffloads(tun); !s.ok()) return s.error().Wrap(what);

  memory_ = activation.memory;
  queues_ = activation.queues;
  interrupt_ = std::move(activation.interrupt);
  acked_features_ = acked;
  mergeable_ = (acked & kVirtioNetFMrgRxbuf) != 0;
  rx_bounce_.resize(kVirtioNetMaxFrame);
  needs_reset_ = false;
  activated_ = true;
  return Ok();
}

void Net::Reset() {
  if (rx_pending_len_ > 0) rx_dropped_.Add();
  if (rx_deferred_len_ > 0) rx_dropped_.Add();
  rx_pending_len_ = 0;
  rx_pending_admitted_ = false;
  rx_deferred_len_ = 0;
  rx_chains_.clear();
  rx_chain_bytes_ = 0;
  rx_chain_descs_ = 0;
  rx_starved_ = false;
  tx_pending_.reset();
  tx_blocked_ = false;
  activated_ = false;
  needs_reset_ = false;
  memory_ = nullptr;
  queues_ = nullptr;
  interrupt_.reset();
  acked_features_ = 0;
  mergeable_ = false;
  if (auto s = backend_->SetOffloads(0); !s.ok()) {
    LOG_WARN("virtio-net " << options_.iface_id << ": reset: " << s.error().message());
  }
}

std::vector<VirtioDevice::EventSource> Net::event_sources() const {
  // The limiters' timers are watched even without limits: PATCH may set them later.
  return {EventSource{backend_->fd(), EPOLLIN | EPOLLOUT | EPOLLET},
          EventSource{rx_limiter_.timer_fd(), EPOLLIN},
          EventSource{tx_limiter_.timer_fd(), EPOLLIN}};
}

Status Net::UpdateRateLimiters(const std::optional<RateLimiterConfig>& rx,
                               const std::optional<RateLimiterConfig>& tx) {
  rx_limiter_.Update(rx);
  tx_limiter_.Update(tx);
  return Ok();
}

void Net::ProcessQueue(uint16_t index) {
  if (!activated_ || needs_reset_) return;
  if (index == kNetRxQueue) {
    // New buffers: no more kicks needed until they run out again.
    (*queues_)[kNetRxQueue].DisableNotification(*memory_);
    ProcessRx();
  } else if (index == kNetTxQueue) {
    ProcessTx();
  }
}

void Net::OnEvent(int fd, uint32_t events) {
  if (fd == rx_limiter_.timer_fd()) {
    if (rx_limiter_.OnTimer() && activated_ && !needs_reset_) ProcessRx();
    return;
  }
  if (fd == tx_limiter_.timer_fd()) {
    if (tx_limiter_.OnTimer() && activated_ && !needs_reset_) ProcessTx();
    return;
  }
  if (!activated_ || needs_reset_ || fd != backend_->fd()) return;
  if ((events & (EPOLLOUT | EPOLLERR)) && tx_blocked_) ProcessTx();
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ProcessRx();
}

void Net::ReturnChain(Queue& queue, uint16_t head, uint32_t len) {
  if (auto s = queue.AddUsed(*memory_, head, len); !s.ok()) {
    LOG_WARN("virtio-net " << options_.iface_id << ": used ring: " << s.error().message()
                           << ": device needs reset");
    BreakDevice();
  }
}

void Net::BreakDevice() {
  if (needs_reset_) return;
  needs_reset_ = true;
  interrupt_->SetNeedsReset();
}

void Net::HandleChainError(Queue& queue, const ChainError& error) {
  malformed_chains_.Add();
  if (error.needs_reset) {
    LOG_WARN("virtio-net " << options_.iface_id << ": " << error.error.message()
                           << ": device needs reset");
    BreakDevice();
    return;
  }
  LOG_DEBUG("virtio-net " << options_.iface_id << ": " << error.error.message());
  ReturnChain(queue, error.head, 0);
}

void Net::SignalUsed(Queue& queue) {
  if (queue.NeedsInterrupt(*memory_)) interrupt_->Raise(kVirtioIntUsedBuffer);
}

// ---- TX -------------------------------------------------------------------------------------

void Net::ProcessTx() {
  Queue& queue = (*queues_)[kNetTxQueue];
  const uint16_t used_before = queue.state().next_used;
  tx_blocked_ = false;
  for (;;) {
    queue.DisableNotification(*memory_);
    for (;;) {
      if (needs_reset_) goto done;
      if (!tx_pending_) {
        // Throttled: the TX limiter's timer resumes the queue.
        if (tx_limiter_.blocked()) goto done;
        auto pop = queue.Pop(*memory_);
        if (pop.error) {
          HandleChainError(queue, *pop.error);
          continue;
        }
        if (!pop.chain) break;
        if (!AdmitTx(*pop.chain)) {
          queue.UndoPop();
          goto done;
        }
        tx_pending_ = std::move(pop.chain);
      }
      if (SendChain(*tx_pending_) == TxOutcome::kBlocked) {
        // Retried on EPOLLOUT, or on the guest's next kick.
        tx_blocked_ = true;
        tx_would_block_.Add();
        (void)queue.EnableNotification(*memory_);
        goto done;
      }
      ReturnChain(queue, tx_pending_->head, 0);
      tx_pending_.reset();
    }
    if (!queue.EnableNotification(*memory_)) break;
  }
done:
  if (queue.state().next_used != used_before && !needs_reset_) SignalUsed(queue);
}

bool Net::AdmitTx(const DescriptorChain& chain) {
  if (!tx_limiter_.limited() || !IsTxFrame(chain)) return true;
  const bool admitted = tx_limiter_.Consume(chain.readable_bytes, 1);
  if (!admitted || tx_limiter_.blocked()) tx_throttled_.Add();  // The queue stops.
  return admitted;
}

Net::TxOutcome Net::SendChain(const DescriptorChain& chain) {
  if (!IsTxFrame(chain)) {
    LOG_DEBUG("virtio-net " << options_.iface_id << ": dropping TX chain " << chain.head << " ("
                            << chain.readable_bytes << " readable, " << chain.writable.size()
                            << " writable buffers)");
    tx_dropped_.Add();
    return TxOutcome::kDone;
  }
  const uint64_t total = chain.readable_bytes;
  iov_.clear();
  Status gathered = Ok();
  if (chain.readable.size() <= kMaxIov) {
    for (const GuestBuffer& buf : chain.readable) {
      gathered = memory_->AppendIoVecs(buf.addr, buf.len, iov_);
      if (!gathered.ok()) break;
    }
  } else {
    tx_bounce_.resize(kVirtioNetMaxFrame);
    uint64_t off = 0;
    for (const GuestBuffer& buf : chain.readable) {
      gathered = memory_->Read(buf.addr, std::span(tx_bounce_.data() + off, buf.len));
      if (!gathered.ok()) break;
      off += buf.len;
    }
    iov_.push_back(iovec{tx_bounce_.data(), total});
  }
  if (!gathered.ok()) {  // Pop checked the buffers; this would be a bug.
    LOG_WARN("virtio-net " << options_.iface_id << ": TX: " << gathered.error().message());
    tx_dropped_.Add();
    return TxOutcome::kDone;
  }
  auto written = backend_->WriteFrame(iov_);
  if (!written.ok()) {
    // The first failure is a warning (e.g. the tap was deleted under the VM: EBADFD, or EIO
    // while it is down); the frame is dropped and the chain returned, as a NIC drops on a
    // dead link. A guest can provoke more (EINVAL for a bad header): those stay debug.
    if (!tx_write_error_logged_) {
      LOG_WARN("virtio-net " << options_.iface_id << ": TX: " << written.error().message()
                             << "; dropping frames");
      tx_write_error_logged_ = true;
    } else {
      LOG_DEBUG("virtio-net " << options_.iface_id << ": " << written.error().message());
    }
    tx_errors_.Add();
    return TxOutcome::kDone;
  }
  if (!*written) return TxOutcome::kBlocked;
  if (**written != total) {
    tx_errors_.Add();
    return TxOutcome::kDone;
  }
  tx_frames_.Add();
  tx_bytes_.Add(total - kVirtioNetHdrSize);
  return TxOutcome::kDone;
}

// ---- RX -------------------------------------------------------------------------------------

void Net::FillRxChains(uint64_t bytes) {
  Queue& queue = (*queues_)[kNetRxQueue];
  while (!needs_reset_ && (mergeable_ ? rx_chain_bytes_ < bytes : rx_chains_.empty())) {
    auto pop = queue.Pop(*memory_);
    if (pop.error) {
      HandleChainError(queue, *pop.error);
      continue;
    }
    if (!pop.chain) return;
    DescriptorChain& chain = *pop.chain;
    if (!chain.readable.empty() || chain.writable_bytes < kVirtioNetHdrSize) {
      // Every RX buffer must be device-writable and hold at least the header.
      LOG_DEBUG("virtio-net " << options_.iface_id << ": RX chain " << chain.head
                              << " has readable buffers or no room for the header");
      malformed_chains_.Add();
      ReturnChain(queue, chain.head, 0);
      continue;
    }
    rx_starved_ = false;
    rx_chain_bytes_ += chain.writable_bytes;
    rx_chain_descs_ += chain.writable.size();
    rx_chains_.push_back(std::move(chain));
  }
}

bool Net::RxRingExhausted() const {
  // Counts descriptors as if no chain were indirect (Linux posts direct RX buffers); with
  // indirect chains this may say "exhausted" early, which only drops a frame that could not
  // fit in what the guest had posted.
  return rx_chain_descs_ >= (*queues_)[kNetRxQueue].size();
}

bool Net::WaitForRxBuffers() {
  if ((*queues_)[kNetRxQueue].EnableNotification(*memory_)) return true;
  if (!rx_starved_) {
    rx_starved_ = true;
    rx_no_buffers_.Add();
  }
  return false;
}

uint64_t Net::BuildRxIovecs(uint64_t bytes) {
  iov_.clear();
  uint64_t covered = 0;
  for (const DescriptorChain& chain : rx_chains_) {
    for (const GuestBuffer& buf : chain.writable) {
      if (covered >= bytes || iov_.size() == kMaxIov) return covered;
      uint64_t take = std::min<uint64_t>(buf.len, bytes - covered);
      if (!memory_->AppendIoVecs(buf.addr, take, iov_).ok()) return covered;
      covered += take;
    }
    if (!mergeable_) break;  // A frame fits one chain.
  }
  return covered;
}

Status Net::CopyPendingToChains() {
  std::span<const uint8_t> data(rx_bounce_.data(), rx_pending_len_);
  for (const DescriptorChain& chain : rx_chains_) {
    for (const GuestBuffer& buf : chain.writable) {
      if (data.empty()) return Ok();
      size_t n = std::min<uint64_t>(buf.len, data.size());
      RETURN_IF_ERROR(memory_->Write(buf.addr, data.first(n)));
      data = data.subspan(n);
    }
  }
  return data.empty() ? Ok() : Error("RX chains are shorter than the frame");
}

void Net::CompleteRxFrame(uint64_t len) {
  Queue& queue = (*queues_)[kNetRxQueue];
  // Which chains the frame filled, in order.
  uint16_t count = 0;
  uint64_t remaining = len;
  for (const DescriptorChain& chain : rx_chains_) {
    ++count;
    if (remaining <= chain.writable_bytes) break;
    remaining -= chain.writable_bytes;
  }
  // Header fix-ups in the first chain: the backend leaves num_buffers alone, and without
  // GUEST_CSUM the driver must see flags 0.
  const uint16_t num_buffers = count;
  Status s = WriteChainBytes(*memory_, rx_chains_.front(), offsetof(VirtioNetHdr, num_buffers),
                             std::span(reinterpret_cast<const uint8_t*>(&num_buffers), 2));
  if (s.ok() && !(acked_features_ & kVirtioNetFGuestCsum)) {
    const uint8_t flags = 0;
    s = WriteChainBytes(*memory_, rx_chains_.front(), 0, std::span(&flags, 1));
  }
  if (!s.ok())
    LOG_WARN("virtio-net " << options_.iface_id << ": RX header: " << s.error().message());
  remaining = len;
  for (uint16_t i = 0; i < count; ++i) {
    DescriptorChain& chain = rx_chains_.front();
    const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(remaining, chain.writable_bytes));
    ReturnChain(queue, chain.head, n);
    remaining -= n;
    rx_chain_bytes_ -= chain.writable_bytes;
    rx_chain_descs_ -= chain.writable.size();
    rx_chains_.pop_front();
  }
  rx_frames_.Add();
  rx_bytes_.Add(len - kVirtioNetHdrSize);
}

bool Net::AdmitRx(uint64_t len) {
  if (!rx_limiter_.limited() && !rx_limiter_.blocked()) return true;
  const bool admitted = rx_limiter_.Consume(len, 1);
  if (!admitted || rx_limiter_.blocked()) rx_throttled_.Add();  // RX stops.
  return admitted;
}

void Net::ProcessRx() {
  Queue& queue = (*queues_)[kNetRxQueue];
  const uint16_t used_before = queue.state().next_used;
  while (!needs_reset_) {
    // Throttled: the RX limiter's timer resumes; frames wait where they are.
    if (rx_limiter_.blocked()) break;
    if (rx_deferred_len_ > 0) {
      // A frame already in the held chains, waiting for the limiter.
      if (!AdmitRx(rx_deferred_len_)) break;
      CompleteRxFrame(rx_deferred_len_);
      rx_deferred_len_ = 0;
      continue;
    }
    if (rx_pending_len_ > 0) {
      if (!rx_pending_admitted_) {
        if (!AdmitRx(rx_pending_len_)) break;
        rx_pending_admitted_ = true;
      }
      // A bounce-buffered frame goes first, once the chains can take it.
      const uint64_t need = rx_pending_len_;
      FillRxChains(need);
      if (needs_reset_) break;
      const uint64_t have = rx_chains_.empty() ? 0
                            : mergeable_       ? rx_chain_bytes_
                                               : rx_chains_.front().writable_bytes;
      if (rx_chains_.empty() || (have < need && mergeable_ && !RxRingExhausted())) {
        if (WaitForRxBuffers()) continue;
        break;
      }
      if (have < need) {
        LOG_DEBUG("virtio-net " << options_.iface_id << ": dropping a " << need
                                << "-byte frame: the guest's RX buffers hold " << have);
        rx_dropped_.Add();
        rx_pending_len_ = 0;
        continue;
      }
      if (auto s = CopyPendingToChains(); !s.ok()) {
        LOG_WARN("virtio-net " << options_.iface_id << ": RX: " << s.error().message());
        rx_errors_.Add();
        rx_pending_len_ = 0;
        continue;
      }
      CompleteRxFrame(need);
      rx_pending_len_ = 0;
      continue;
    }

    // Buffers first: with none, frames stay in the backend (back-pressure).
    FillRxChains(kVirtioNetMaxFrame);
    if (needs_reset_) break;
    if (rx_chains_.empty()) {
      if (WaitForRxBuffers()) continue;
      break;
    }
    // Straight into guest memory when the chains can take any frame; through the bounce
    // buffer when a large frame might need buffers the guest has not posted yet.
    const uint64_t want =
        mergeable_ ? kVirtioNetMaxFrame
                   : std::min<uint64_t>(rx_chains_.front().writable_bytes, kVirtioNetMaxFrame);
    const uint64_t covered = BuildRxIovecs(want);
    const bool direct = covered >= want;
    if (!direct) {
      iov_.clear();
      iov_.push_back(iovec{rx_bounce_.data(), rx_bounce_.size()});
    }
    const uint64_t capacity = direct ? covered : rx_bounce_.size();
    auto read = backend_->ReadFrame(iov_);
    if (!read.ok()) {
      if (!rx_read_error_logged_) {
        LOG_WARN("virtio-net " << options_.iface_id << ": " << read.error().message());
        rx_read_error_logged_ = true;
      }
      rx_errors_.Add();
      break;
    }
    if (!*read) break;  // Drained; the next EPOLLIN edge brings more.
    const size_t len = **read;
    if (len > capacity) {
      LOG_DEBUG("virtio-net " << options_.iface_id << ": dropping a " << len
                              << "-byte frame: RX buffers hold " << capacity);
      rx_dropped_.Add();
      continue;
    }
    if (len < kVirtioNetHdrSize) {
      rx_errors_.Add();
      continue;
    }
    if (direct) {
      if (!AdmitRx(len)) {
        rx_deferred_len_ = len;
        break;
      }
      CompleteRxFrame(len);
    } else {
      rx_pending_len_ = len;  // Admitted at the top of the loop.
      rx_pending_admitted_ = false;
    }
  }
  if (queue.state().next_used != used_before && !needs_reset_) SignalUsed(queue);
}

}  // namespace hearth
