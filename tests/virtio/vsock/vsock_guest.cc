#include "tests/virtio/vsock/vsock_guest.h"

#include <cstring>

namespace hearth::testing {
namespace {
constexpr uint64_t kRxRing = 0x0;
constexpr uint64_t kTxRing = 0x10000;
constexpr uint64_t kEvRing = 0x20000;
constexpr uint64_t kTxData = 0x100000;           // 1 MiB: TX headers and payloads
constexpr uint64_t kEvData = 0x80000;
constexpr uint64_t kRxData = 0x100000 + 0x900000;  // 10 MiB: RX buffers
}  // namespace

VsockGuest::VsockGuest(GuestMemory& memory, Vsock& device, uint32_t rx_buf_size,
                       uint16_t rx_buffers, bool event_idx)
    : memory_(memory),
      device_(device),
      rx_buf_size_(rx_buf_size),
      rx_buffers_(rx_buffers),
      event_idx_(event_idx) {
  rx_ = std::make_unique<VirtioDriver>(memory_, kRxRing, kQueueSize, kRxData);
  tx_ = std::make_unique<VirtioDriver>(memory_, kTxRing, kQueueSize, kTxData);
  ev_ = std::make_unique<VirtioDriver>(memory_, kEvRing, kQueueSize, kEvData);
  interrupt_ = std::make_shared<VsockGuestInterrupt>();
}

Status VsockGuest::Activate() {
  queues_.clear();
  for (int i = 0; i < 3; ++i) queues_.emplace_back(kQueueSize);
  rx_->Configure(queues_[kVsockRxQueue], event_idx_, false);
  tx_->Configure(queues_[kVsockTxQueue], event_idx_, false);
  ev_->Configure(queues_[kVsockEventQueue], event_idx_, false);
  // TX slots: descriptor 2i is the header, 2i+1 the payload (up to 64 KiB).
  for (uint32_t i = 0; i < kTxSlots; ++i) {
    tx_hdr_.push_back(tx_->Alloc(kVsockHeaderSize));
    tx_data_.push_back(tx_->Alloc(kVsockMaxPayload));
    tx_free_.push_back(i);
  }
  for (uint16_t d = 0; d < rx_buffers_; ++d) {
    rx_bufs_.push_back(rx_->Alloc(rx_buf_size_));
    rx_->WriteDescriptor(d, VirtqDesc{rx_bufs_[d], rx_buf_size_, kVirtqDescWrite, 0});
    rx_->PublishHead(d);
  }
  for (uint16_t d = 0; d < initial_event_buffers; ++d) {
    ev_bufs_.push_back(ev_->Alloc(8));
    ev_->WriteDescriptor(d, VirtqDesc{ev_bufs_[d], 4, kVirtqDescWrite, 0});
    ev_->PublishHead(d);
  }
  uint64_t features = kVirtioFVersion1 | (event_idx_ ? kVirtioFRingEventIdx : 0);
  return device_.Activate({&memory_, &queues_, interrupt_, features});
}

VsockHeader VsockGuest::Header(uint16_t op, uint32_t guest_port, uint32_t host_port,
                               uint32_t len, uint32_t buf_alloc, uint32_t fwd_cnt) const {
  VsockHeader h{};
  h.src_cid = device_.guest_cid();
  h.dst_cid = kVsockHostCid;
  h.src_port = guest_port;
  h.dst_port = host_port;
  h.len = len;
  h.type = kVsockTypeStream;
  h.op = op;
  h.buf_alloc = buf_alloc;
  h.fwd_cnt = fwd_cnt;
  return h;
}

void VsockGuest::ReclaimTx() {
  const uint16_t used = tx_->used_idx();
  while (tx_seen_ != used) {
    VirtqUsedElem e = tx_->used_elem(tx_seen_);
    tx_free_.push_back(e.id / 2);
    ++tx_seen_;
  }
}

void VsockGuest::Send(const VsockHeader& header, std::span<const uint8_t> payload, bool kick) {
  ReclaimTx();
  if (tx_free_.empty()) {
    KickTx();
    ReclaimTx();
  }
  const uint32_t slot = tx_free_.front();
  tx_free_.pop_front();
  const uint16_t d = static_cast<uint16_t>(slot * 2);
  memory_.WriteObj(tx_hdr_[slot], header).ok();
  if (!payload.empty()) {
    (void)memory_.Write(tx_data_[slot], payload);
    tx_->WriteDescriptor(d, VirtqDesc{tx_hdr_[slot], kVsockHeaderSize, kVirtqDescNext,
                                      static_cast<uint16_t>(d + 1)});
    tx_->WriteDescriptor(d + 1,
                         VirtqDesc{tx_data_[slot], static_cast<uint32_t>(payload.size()), 0, 0});
  } else {
    tx_->WriteDescriptor(d, VirtqDesc{tx_hdr_[slot], kVsockHeaderSize, 0, 0});
  }
  tx_->PublishHead(d);
  if (kick) KickTx();
}

void VsockGuest::SendRaw(const std::vector<BufferSpec>& buffers) {
  tx_->AddChain(buffers);
  KickTx();
}

std::vector<VsockPacket> VsockGuest::Receive(bool kick) {
  std::vector<VsockPacket> out;
  const uint16_t used = rx_->used_idx();
  bool reposted = false;
  while (rx_seen_ != used) {
    VirtqUsedElem e = rx_->used_elem(rx_seen_);
    ++rx_seen_;
    VsockPacket p;
    if (e.len >= kVsockHeaderSize) {
      p.header = *memory_.ReadObj<VsockHeader>(rx_bufs_[e.id]);
      const uint32_t n = std::min<uint32_t>(p.header.len, e.len - kVsockHeaderSize);
      p.payload.resize(n);
      (void)memory_.Read(rx_bufs_[e.id] + kVsockHeaderSize, p.payload);
      out.push_back(std::move(p));
    }
    rx_->PublishHead(static_cast<uint16_t>(e.id));
    reposted = true;
  }
  if (reposted && kick) device_.ProcessQueue(kVsockRxQueue);
  return out;
}

size_t VsockGuest::ReceiveInto(std::vector<VsockHeader>& headers, std::string* sink, bool kick) {
  const uint16_t used = rx_->used_idx();
  size_t count = 0;
  while (rx_seen_ != used) {
    VirtqUsedElem e = rx_->used_elem(rx_seen_);
    ++rx_seen_;
    if (e.len >= kVsockHeaderSize) {
      VsockHeader h = *memory_.ReadObj<VsockHeader>(rx_bufs_[e.id]);
      if (sink && h.len > 0) {
        const size_t at = sink->size();
        sink->resize(at + h.len);
        (void)memory_.Read(rx_bufs_[e.id] + kVsockHeaderSize,
                           std::span(reinterpret_cast<uint8_t*>(sink->data() + at), h.len));
      }
      headers.push_back(h);
      ++count;
    }
    rx_->PublishHead(static_cast<uint16_t>(e.id));
  }
  if (count > 0 && kick) device_.ProcessQueue(kVsockRxQueue);
  return count;
}

void VsockGuest::PostEventBuffer() {
  const uint16_t d = static_cast<uint16_t>(ev_bufs_.size());
  ev_bufs_.push_back(ev_->Alloc(8));
  ev_->WriteDescriptor(d, VirtqDesc{ev_bufs_[d], 4, kVirtqDescWrite, 0});
  ev_->PublishHead(d);
  device_.ProcessQueue(kVsockEventQueue);
}

std::vector<uint32_t> VsockGuest::Events() {
  std::vector<uint32_t> out;
  const uint16_t used = ev_->used_idx();
  while (ev_seen_ != used) {
    VirtqUsedElem e = ev_->used_elem(ev_seen_);
    ++ev_seen_;
    out.push_back(*memory_.ReadObj<uint32_t>(ev_bufs_[e.id]));
    ev_->PublishHead(static_cast<uint16_t>(e.id));
  }
  return out;
}

}  // namespace hearth::testing
