// virtio-net (device id 1): one RX queue (0) and one TX queue (1) in front of a NetBackend (a tap
// in the VMM, a socketpair in tests).
//
// TX: each chain is the guest's vnet header plus one frame, gathered straight from guest memory
// into one writev. A chain that writes, lacks a header, or carries more than a 64 KiB frame is
// dropped (returned with length 0) and counted. When the backend says EAGAIN the chain is kept
// and the queue stops until the backend is writable (EPOLLOUT) or the guest kicks again.
//
// RX: the backend fd is polled edge-triggered; frames are read straight into the guest's
// writable buffers (readv over the chains) when the posted buffers can take any frame, with
// mergeable RX buffers (num_buffers in the header) when a frame spans chains. Otherwise one
// frame goes through a bounce buffer and waits there for more buffers. With no buffers posted
// the device stops reading (frames wait in the backend) and asks the guest for a kick; it
// resumes on the RX queue's kick. A frame larger than the guest can ever offer is dropped and
// counted.
//
// Rate limiters (bandwidth = bytes of the frame with its vnet header, ops = frames), one per
// direction. TX: a frame the limiter cannot afford stays on the ring (Queue::UndoPop). RX: a
// frame is charged once read (its length is unknown before); one the limiter cannot afford
// waits, already in the guest's buffers or the bounce buffer, without being handed over, and
// further frames wait in the backend. Each limiter's timerfd (in event_sources()) resumes its
// direction. UpdateRateLimiters serves PATCH /network-interfaces/{id} after boot.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "virtio/net/net_backend.h"
#include "virtio/rate_limiter/rate_limiter.h"
#include "virtio/virtio_device.h"

namespace hearth {

// Feature bits (virtio 1.x, 5.1.3).
constexpr uint64_t kVirtioNetFCsum = 1ull << 0;
constexpr uint64_t kVirtioNetFGuestCsum = 1ull << 1;
constexpr uint64_t kVirtioNetFMac = 1ull << 5;
constexpr uint64_t kVirtioNetFGuestTso4 = 1ull << 7;
constexpr uint64_t kVirtioNetFGuestTso6 = 1ull << 8;
constexpr uint64_t kVirtioNetFGuestUfo = 1ull << 10;
constexpr uint64_t kVirtioNetFHostTso4 = 1ull << 11;
constexpr uint64_t kVirtioNetFHostTso6 = 1ull << 12;
constexpr uint64_t kVirtioNetFHostUfo = 1ull << 14;
constexpr uint64_t kVirtioNetFMrgRxbuf = 1ull << 15;
constexpr uint64_t kVirtioNetFStatus = 1ull << 16;

constexpr uint16_t kVirtioNetStatusLinkUp = 1;

// The header in front of every frame (virtio_net_hdr_v1, num_buffers always present).
struct VirtioNetHdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
  uint16_t num_buffers;
};
static_assert(sizeof(VirtioNetHdr) == 12);
constexpr uint32_t kVirtioNetHdrSize = sizeof(VirtioNetHdr);
// The largest frame (header included) either way: a 64 KiB GSO frame plus link headers.
constexpr uint32_t kVirtioNetMaxFrame = kVirtioNetHdrSize + 65550;

// The config space layout (5.1.4) as far as Hearth fills it.
struct VirtioNetConfig {
  uint8_t mac[6];
  uint16_t status;
  uint16_t max_virtqueue_pairs;
};
static_assert(sizeof(VirtioNetConfig) == 10);

constexpr uint16_t kNetRxQueue = 0;
constexpr uint16_t kNetTxQueue = 1;
constexpr uint16_t kNetQueueMaxSize = 256;

using MacAddress = std::array<uint8_t, 6>;

// One network interface as the API configures it (PUT /network-interfaces/{iface_id}).
struct NetOptions {
  std::string iface_id;
  std::string host_dev_name;
  std::optional<MacAddress> guest_mac;
  std::optional<RateLimiterConfig> rx_rate_limiter;  // Nothing: unlimited.
  std::optional<RateLimiterConfig> tx_rate_limiter;
};

// What a snapshot keeps of the device (the queues belong to the transport's state).
struct NetState {
  std::string iface_id;
  std::string host_dev_name;
  std::optional<MacAddress> guest_mac;
  uint64_t acked_features = 0;
  RateLimiterState rx_rate_limiter;
  RateLimiterState tx_rate_limiter;
};

// Counters (bytes exclude the vnet header). Read from any thread.
struct NetMetrics {
  uint64_t rx_bytes = 0;
  uint64_t rx_frames = 0;
  uint64_t rx_dropped = 0;     // Frames read from the backend that the guest could not take.
  uint64_t rx_errors = 0;      // Backend read errors, runt frames.
  uint64_t rx_no_buffers = 0;  // Times RX stopped because the guest had posted no buffers.
  uint64_t tx_bytes = 0;
  uint64_t tx_frames = 0;
  uint64_t tx_dropped = 0;        // Chains that were not a valid frame (returned unsent).
  uint64_t tx_errors = 0;         // Backend write errors (the frame is lost).
  uint64_t tx_would_block = 0;    // Times TX waited for the backend (EAGAIN).
  uint64_t malformed_chains = 0;  // Chains Queue::Pop refused, on either queue.
  // Times a rate limiter stopped RX (a frame refused, or an oversized one let through that
  // holds back what follows).
  uint64_t rx_rate_limiter_throttled_events = 0;
  uint64_t tx_rate_limiter_throttled_events = 0;  // ... stopped TX.
  uint64_t rate_limiter_throttled_events = 0;     // Both directions.
};

class Net : public VirtioDevice {
 public:
  // Opens the tap `options.host_dev_name`.
  static Result<std::unique_ptr<Net>> Create(const NetOptions& options);
  // With any backend (tests, benchmarks), and the rate limiters on given timers (new timerfds
  // when null).
  static Result<std::unique_ptr<Net>> Create(const NetOptions& options,
                                             std::unique_ptr<NetBackend> backend,
                                             std::unique_ptr<MonotonicTimer> rx_timer = nullptr,
                                             std::unique_ptr<MonotonicTimer> tx_timer = nullptr);
  // Re-creates a saved device (re-opening its tap unless `backend` is given), checks that the
  // acked features are ones this device still offers, and restores its rate limiters. The
  // transport then re-activates it.
  static Result<std::unique_ptr<Net>> Restore(const NetState& state,
                                              std::unique_ptr<NetBackend> backend = nullptr);

  uint32_t device_type() const override { return kVirtioIdNet; }
  uint64_t device_features() const override { return features_; }
  std::vector<uint16_t> queue_max_sizes() const override {
    return {kNetQueueMaxSize, kNetQueueMaxSize};
  }
  void ReadConfig(uint64_t offset, std::span<uint8_t> data) const override;
  void WriteConfig(uint64_t offset, std::span<const uint8_t> data) override;
  Status Activate(VirtioActivation activation) override;
  void Reset() override;
  void ProcessQueue(uint16_t index) override;
  bool activated() const override { return activated_; }
  std::vector<EventSource> event_sources() const override;
  void OnEvent(int fd, uint32_t events) override;

  // PATCH /network-interfaces/{id} (VMM thread): Firecracker's update semantics for each
  // direction (see RateLimiter::Update); a direction stopped by its old limit re-checks at once.
  Status UpdateRateLimiters(const std::optional<RateLimiterConfig>& rx,
                            const std::optional<RateLimiterConfig>& tx);
  const RateLimiter& rx_rate_limiter() const { return rx_limiter_; }
  const RateLimiter& tx_rate_limiter() const { return tx_limiter_; }

  NetState Save() const;
  // Snapshots (VirtioDevice): both rate limiters' buckets. RestoreState checks each against the
  // limiter the device was rebuilt with (same buckets, sizes and refill times) and every
  // bucket's invariants (budget <= size ...); on error nothing changes.
  std::vector<uint8_t> SaveState() const override;
  Status RestoreState(std::span<const uint8_t> state) override;
  NetMetrics metrics() const;
  const std::string& iface_id() const { return options_.iface_id; }
  NetBackend& backend() { return *backend_; }
  // A ring was found broken (Pop reported needs_reset, or the used ring could not be written):
  // the device told the transport (VirtioInterrupt::SetNeedsReset) and stopped until Reset.
  bool needs_reset() const { return needs_reset_; }

 private:
  Net(NetOptions options, std::unique_ptr<NetBackend> backend, RateLimiter rx_limiter,
      RateLimiter tx_limiter);

  // TX.
  void ProcessTx();
  enum class TxOutcome { kDone, kBlocked };
  TxOutcome SendChain(const DescriptorChain& chain);
  // Takes a TX chain's tokens; false (counted) when the TX limiter throttles. Chains that are
  // not frames cost nothing (they are dropped).
  bool AdmitTx(const DescriptorChain& chain);

  // RX.
  void ProcessRx();
  // Takes a received frame's tokens; false (counted) when the RX limiter throttles.
  bool AdmitRx(uint64_t len);
  // Pops RX chains until the held ones can take `bytes` (mergeable) or one is held, or the ring
  // is empty. Chains that are not RX buffers are returned with length 0.
  void FillRxChains(uint64_t bytes);
  // No buffers: ask the guest for a kick. True when buffers arrived meanwhile.
  bool WaitForRxBuffers();
  // Builds iovecs over the held chains covering up to `bytes`; returns the bytes covered.
  uint64_t BuildRxIovecs(uint64_t bytes);
  // Hands the first chains, which hold a frame of `len` bytes (header included), to the guest.
  void CompleteRxFrame(uint64_t len);
  // Copies the bounce-buffered frame into the held chains.
  Status CopyPendingToChains();
  // Whether the device holds as many RX descriptors as the ring has entries, so the guest
  // cannot post more.
  bool RxRingExhausted() const;

  // Returns a chain Pop refused; marks the device broken when the ring is.
  void HandleChainError(Queue& queue, const ChainError& error);
  // AddUsed; a used ring that cannot be written breaks the device.
  void ReturnChain(Queue& queue, uint16_t head, uint32_t len);
  void SignalUsed(Queue& queue);
  // Stops the device and has the transport report DEVICE_NEEDS_RESET.
  void BreakDevice();

  // Single-writer counters (the VMM thread) that other threads may read.
  struct Counter {
    std::atomic<uint64_t> v{0};
    void Add(uint64_t n = 1) {
      v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    uint64_t Get() const { return v.load(std::memory_order_relaxed); }
  };

  NetOptions options_;
  std::unique_ptr<NetBackend> backend_;
  uint64_t features_ = 0;
  VirtioNetConfig config_{};

  bool activated_ = false;
  bool needs_reset_ = false;
  GuestMemory* memory_ = nullptr;
  std::vector<Queue>* queues_ = nullptr;
  std::shared_ptr<VirtioInterrupt> interrupt_;
  uint64_t acked_features_ = 0;
  bool mergeable_ = false;

  std::vector<iovec> iov_;          // Scratch for one frame.
  std::vector<uint8_t> rx_bounce_;  // A frame read before the guest posted room for it.
  std::vector<uint8_t> tx_bounce_;  // A frame in more buffers than one writev takes.

  // TX: a chain the backend could not take yet (EAGAIN).
  std::optional<DescriptorChain> tx_pending_;
  bool tx_blocked_ = false;

  // RX: chains popped and not yet used, oldest first; a bounce-buffered frame waiting for them.
  std::deque<DescriptorChain> rx_chains_;
  uint64_t rx_chain_bytes_ = 0;
  uint64_t rx_chain_descs_ = 0;
  size_t rx_pending_len_ = 0;
  bool rx_pending_admitted_ = false;  // The rate limiter let the bounce-buffered frame through.
  // A frame read straight into the held chains that the rate limiter has not let through yet.
  size_t rx_deferred_len_ = 0;
  bool rx_starved_ = false;
  bool rx_read_error_logged_ = false;
  bool tx_write_error_logged_ = false;

  Counter rx_bytes_, rx_frames_, rx_dropped_, rx_errors_, rx_no_buffers_;
  Counter tx_bytes_, tx_frames_, tx_dropped_, tx_errors_, tx_would_block_;
  Counter malformed_chains_;
  Counter rx_throttled_, tx_throttled_;

  RateLimiter rx_limiter_;
  RateLimiter tx_limiter_;
};

}  // namespace hearth
