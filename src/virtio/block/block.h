// virtio-blk (virtio 1.x, device id 2): a raw disk image file behind one request queue.
//
// Requests are IN, OUT, FLUSH and GET_ID; anything else is answered VIRTIO_BLK_S_UNSUPP. The
// data moves between the file and guest RAM with no copy: preadv/pwritev on host iovecs into the
// guest's buffers (sync engine, on the VMM thread during ProcessQueue), or the same as io_uring
// readv/writev whose completions arrive on an eventfd the VMM loop watches (async engine).
//
// The image's size is rounded down to whole 512-byte sectors: a tail shorter than a sector is
// unreachable by the guest (logged once at Create, as Firecracker does).
//
// With a rate limiter (bandwidth = bytes of IN/OUT data, ops = requests of any valid type), a
// request the limiter cannot afford stays on the ring (Queue::UndoPop) and the queue stops; the
// limiter's timerfd (one of event_sources()) brings it back. UpdateRateLimiter and
// UpdateBackingFile serve PATCH /drives/{id} after boot, on the VMM thread.
//
// Hostile input never crashes the device: a malformed request is answered IOERR (or UNSUPP) and
// counted; a chain the queue cannot walk is returned with length 0; a broken ring (index or head
// out of range) stops the device and reports DEVICE_NEEDS_RESET until the driver resets it.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/fd.h"
#include "base/result.h"
#include "virtio/block/request.h"
#include "virtio/rate_limiter/rate_limiter.h"
#include "virtio/virtio_device.h"

namespace hearth {

class IoUring;

// Block feature bits offered (besides the ring features).
constexpr uint64_t kVirtioBlkFSegMax = 1ull << VIRTIO_BLK_F_SEG_MAX;
constexpr uint64_t kVirtioBlkFRo = 1ull << VIRTIO_BLK_F_RO;
constexpr uint64_t kVirtioBlkFBlkSize = 1ull << VIRTIO_BLK_F_BLK_SIZE;
constexpr uint64_t kVirtioBlkFFlush = 1ull << VIRTIO_BLK_F_FLUSH;

struct BlockOptions {
  enum CacheType { kUnsafe, kWriteback };
  enum IoEngine { kSync, kAsync };

  std::string drive_id;  // GET_ID answers its first 20 bytes, zero-padded.
  std::string path;
  bool read_only = false;
  CacheType cache = kUnsafe;
  IoEngine engine = kSync;
  std::optional<RateLimiterConfig> rate_limiter;  // Nothing: unlimited.
};

// Counters the VMM reads (for the metrics file). Updated on the VMM thread only.
struct BlockMetrics {
  uint64_t read_requests = 0;
  uint64_t read_bytes = 0;
  uint64_t write_requests = 0;
  uint64_t write_bytes = 0;
  uint64_t flush_requests = 0;
  uint64_t get_id_requests = 0;
  uint64_t io_errors = 0;             // Host I/O failed (EIO, ENOSPC, short file ...).
  uint64_t invalid_requests = 0;      // Malformed, out of range, write to read-only.
  uint64_t unsupported_requests = 0;  // Answered VIRTIO_BLK_S_UNSUPP.
  uint64_t chain_errors = 0;          // Chains the queue refused to walk.
  uint64_t interrupts = 0;            // Used-buffer interrupts raised.
  // Times the rate limiter stopped the queue: a request it refused, or an oversized one it let
  // through that holds back what follows.
  uint64_t rate_limiter_throttled_events = 0;
};

// What a snapshot saves of the device (the queues are the transport's). No fds, no pointers.
struct BlockState {
  std::string drive_id;
  std::string path;
  bool read_only = false;
  BlockOptions::CacheType cache = BlockOptions::kUnsafe;
  BlockOptions::IoEngine engine = BlockOptions::kSync;  // As configured.
  uint64_t capacity_sectors = 0;  // Restore checks the image still has this size.
  uint64_t acked_features = 0;
  bool activated = false;
  RateLimiterState rate_limiter;
};

class Block : public VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;
  // Advertised seg_max: the most data segments Linux will put in one request.
  static constexpr uint32_t kSegMax = kQueueSize - 2;

  // Opens the image (O_RDWR, or O_RDONLY when read-only; O_CLOEXEC). With the async engine,
  // sets up io_uring, or falls back to sync with a warning when the host refuses it. The rate
  // limiter runs on `limiter_timer` (tests), or on a new timerfd when it is null.
  static Result<std::unique_ptr<Block>> Create(const BlockOptions& options,
                                               std::unique_ptr<MonotonicTimer> limiter_timer = nullptr);
  ~Block() override;

  // VirtioDevice.
  uint32_t device_type() const override { return kVirtioIdBlock; }
  uint64_t device_features() const override { return features_; }
  std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize}; }
  void ReadConfig(uint64_t offset, std::span<uint8_t> data) const override;
  void WriteConfig(uint64_t offset, std::span<const uint8_t> data) override;
  Status Activate(VirtioActivation activation) override;
  void Reset() override;
  void ProcessQueue(uint16_t index) override;
  bool activated() const override { return activated_; }
  std::vector<EventSource> event_sources() const override;
  void OnEvent(int fd, uint32_t events) override;

  // The ring is broken: the device told the transport (VirtioInterrupt::SetNeedsReset) and
  // processes nothing more until Reset, which clears this.
  bool needs_reset() const { return needs_reset_; }

  const BlockOptions& options() const { return options_; }
  // The engine in use (kSync after an io_uring fallback).
  BlockOptions::IoEngine engine() const {
    return uring_ ? BlockOptions::kAsync : BlockOptions::kSync;
  }
  uint64_t capacity_sectors() const { return capacity_bytes_ >> kSectorShift; }
  const BlockMetrics& metrics() const { return metrics_; }
  // Requests handed to io_uring and not yet completed.
  size_t in_flight() const { return in_flight_count_; }

  // PATCH /drives/{id} "rate_limiter" (VMM thread): Firecracker's update semantics, see
  // RateLimiter::Update. A queue stopped by the old limit re-checks at once.
  Status UpdateRateLimiter(const std::optional<RateLimiterConfig>& config);
  // PATCH /drives/{id} "path_on_host" (VMM thread): opens `path` as Create does (read-only
  // drives O_RDONLY), lets requests already handed to io_uring finish on the old file, swaps
  // the file, puts the new capacity in config space and, when the driver is active, raises a
  // config-change interrupt with a new config generation so the guest re-reads it. On error
  // the old file stays.
  Status UpdateBackingFile(const std::string& path);
  const RateLimiter& rate_limiter() const { return limiter_; }
  RateLimiter& rate_limiter() { return limiter_; }

  BlockState Save() const;

  // Snapshots (VirtioDevice): the rate limiter's buckets (remaining budget and one-time burst,
  // refill progress or debt, time left blocked). RestoreState checks the saved limiter against
  // the one the device was rebuilt with (same buckets, sizes and refill times) and every
  // bucket's invariants (budget <= size ...).
  std::vector<uint8_t> SaveState() const override;
  Status RestoreState(std::span<const uint8_t> state) override;
  // Completes every request handed to io_uring (used elements written, interrupt raised) within
  // kSnapshotDrainTimeoutMs, or fails naming how many are still in flight.
  Status PrepareForSnapshot() override;
  static constexpr int kSnapshotDrainTimeoutMs = 10'000;

 private:
  struct InFlight {
    bool busy = false;
    uint32_t type = 0;
    uint64_t status_addr = 0;
    uint64_t offset = 0;
    uint64_t remaining = 0;  // Bytes still to move.
    uint32_t used_len = 0;   // Reported on success.
    std::vector<iovec> iov;
    size_t iov_start = 0;
  };

  Block(BlockOptions options, Fd fd, uint64_t capacity_bytes, std::unique_ptr<IoUring> uring,
        RateLimiter limiter);

  // Takes the request's tokens from the rate limiter; false (counted) when it is throttled.
  bool Admit(const BlockRequest& request);
  // Completes every request io_uring holds, delivering the results to the guest; fails when
  // some are still in flight after `timeout_ms`.
  Status FinishAllInFlight(int timeout_ms);

  // Handles one popped request: completes it at once (sync engine, or no I/O needed) or hands
  // it to io_uring. Returns true when it added a used element.
  bool HandleRequest(const BlockRequest& request);
  // Writes the status byte (when there is one) and returns the chain.
  void Complete(uint16_t head, std::optional<uint64_t> status_addr, uint8_t status, uint32_t len);
  uint8_t ExecuteSync(const BlockRequest& request, uint32_t* used_len);
  Status WriteId(const BlockRequest& request);
  // Builds iovecs for the request's data segments.
  Status DataIovecs(const BlockRequest& request, std::vector<iovec>& out) const;
  bool SubmitAsync(uint16_t head, const BlockRequest& request);
  bool PrepInFlight(uint16_t head);
  // Completes what io_uring has finished; true when used elements were added.
  bool ReapCompletions();
  void OnCompletion(uint16_t head, int32_t res, bool* used_added);
  void FinishInFlight(uint16_t head, uint8_t status, uint32_t len);
  // Waits for every in-flight operation, dropping the results (Reset, destruction).
  void DrainInFlight();
  void SignalUsed();
  void HostError(const std::string& what, int err);
  // Checks the image file under the running VM (after every FLUSH and host I/O error): warns
  // once when it was deleted (writes go to an unlinked file, lost when the VMM exits) and once
  // when it shrank below the capacity (reads past its end fail with IOERR).
  void CheckImage();
  void MarkBroken(const Error& error);

  BlockOptions options_;
  Fd fd_;
  uint64_t capacity_bytes_;
  uint64_t features_;
  virtio_blk_config config_{};
  std::unique_ptr<IoUring> uring_;

  // Between Activate and Reset.
  bool activated_ = false;
  bool needs_reset_ = false;
  GuestMemory* memory_ = nullptr;
  Queue* queue_ = nullptr;
  std::shared_ptr<VirtioInterrupt> interrupt_;
  uint64_t acked_features_ = 0;

  std::vector<InFlight> in_flight_;  // Indexed by chain head.
  size_t in_flight_count_ = 0;
  bool submit_pending_ = false;
  std::vector<iovec> scratch_iov_;  // Sync engine.

  RateLimiter limiter_;

  BlockMetrics metrics_;
  bool deleted_logged_ = false;
  bool shrank_logged_ = false;
};

}  // namespace hearth
