#include "virtio/block/block.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "base/clock.h"
#include "base/log.h"
#include "snapshot/state_codec.h"
#include "virtio/block/iovec_cursor.h"
#include "virtio/block/io_uring.h"
#include "virtio/rate_limiter/rate_limiter_codec.h"

namespace hearth {
namespace {

static_assert(std::endian::native == std::endian::little,
              "virtio_blk_config is filled in host byte order, which must be little-endian");

// Moves every byte described by `iov` between the file at `offset` and memory (preadv or
// pwritev), continuing after short transfers. Returns 0 or an errno (EIO for a read past the
// end of a file that shrank under us).
int TransferAll(int fd, bool write, std::vector<iovec>& iov, uint64_t offset) {
  size_t start = 0;
  while (start < iov.size()) {
    const int count = static_cast<int>(std::min<size_t>(iov.size() - start, IOV_MAX));
    ssize_t n = write ? ::pwritev(fd, iov.data() + start, count, static_cast<off_t>(offset))
                      : ::preadv(fd, iov.data() + start, count, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return write ? ENOSPC : EIO;
    AdvanceIovecs(iov, &start, static_cast<uint64_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return 0;
}

}  // namespace

Result<std::unique_ptr<Block>> Block::Create(const BlockOptions& options,
                                             std::unique_ptr<MonotonicTimer> limiter_timer) {
  const std::string what = "drive " + options.drive_id;
  if (options.path.empty()) return Error(what + ": no image path");
  auto fd = Fd::Open(options.path, options.read_only ? O_RDONLY : O_RDWR);
  if (!fd.ok()) return fd.error().Wrap(what);
  auto size = RegularFileSize(fd->get(), options.path);
  if (!size.ok()) return size.error().Wrap(what);
  const uint64_t capacity_bytes = *size & ~(kSectorSize - 1);
  if (capacity_bytes != *size) {
    LOG_WARN(what << ": image " << options.path << " is " << *size
                  << " bytes, not a multiple of 512; the last " << (*size - capacity_bytes)
                  << " bytes are not visible to the guest");
  }
  std::optional<RateLimiter> limiter;
  if (limiter_timer) {
    limiter = RateLimiter::Create(options.rate_limiter, std::move(limiter_timer));
  } else {
    auto created = RateLimiter::Create(options.rate_limiter);
    if (!created.ok()) return created.error().Wrap(what);
    limiter = std::move(created).value();
  }
  std::unique_ptr<IoUring> uring;
  if (options.engine == BlockOptions::kAsync) {
    auto ring = IoUring::Create(kQueueSize, fd->get());
    if (ring.ok()) {
      uring = std::move(ring).value();
    } else {
      LOG_WARN(what << ": " << ring.error().message() << "; using the Sync engine instead");
    }
  }
  return std::unique_ptr<Block>(new Block(options, std::move(fd).value(), capacity_bytes,
                                          std::move(uring), std::move(*limiter)));
}

Block::Block(BlockOptions options, Fd fd, uint64_t capacity_bytes, std::unique_ptr<IoUring> uring,
             RateLimiter limiter)
    : options_(std::move(options)),
      fd_(std::move(fd)),
      capacity_bytes_(capacity_bytes),
      uring_(std::move(uring)),
      limiter_(std::move(limiter)) {
  features_ =
      kVirtioFRingEventIdx | kVirtioFRingIndirectDesc | kVirtioBlkFSegMax | kVirtioBlkFBlkSize;
  if (options_.read_only) features_ |= kVirtioBlkFRo;
  if (options_.cache == BlockOptions::kWriteback) features_ |= kVirtioBlkFFlush;
  config_.capacity = capacity_bytes_ >> kSectorShift;
  config_.seg_max = kSegMax;
  config_.blk_size = kSectorSize;
  if (uring_) in_flight_.resize(kQueueSize);
}

Block::~Block() { DrainInFlight(); }

void Block::ReadConfig(uint64_t offset, std::span<uint8_t> data) const {
  std::fill(data.begin(), data.end(), 0);
  if (offset >= sizeof(config_)) return;
  const size_t n = std::min<uint64_t>(data.size(), sizeof(config_) - offset);
  std::memcpy(data.data(), reinterpret_cast<const uint8_t*>(&config_) + offset, n);
}

void Block::WriteConfig(uint64_t offset, std::span<const uint8_t> data) {
  // Nothing is writable: `wce` would be, with VIRTIO_BLK_F_CONFIG_WCE, which is not offered.
  LOG_DEBUG("virtio-blk " << options_.drive_id << ": ignoring a " << data.size()
                          << "-byte config write at " << offset);
}

Status Block::Activate(VirtioActivation activation) {
  if (activated_) return Error("virtio-blk: activated twice");
  if (activation.memory == nullptr || activation.queues == nullptr ||
      activation.queues->size() != 1) {
    return Error("virtio-blk: activation needs guest memory and exactly one queue");
  }
  Queue& queue = (*activation.queues)[0];
  if (!queue.ready()) return Error("virtio-blk: the request queue is not ready");
  memory_ = activation.memory;
  queue_ = &queue;
  interrupt_ = std::move(activation.interrupt);
  acked_features_ = activation.acked_features;
  needs_reset_ = false;
  activated_ = true;
  return Ok();
}

void Block::Reset() {
  DrainInFlight();
  activated_ = false;
  needs_reset_ = false;
  memory_ = nullptr;
  queue_ = nullptr;
  interrupt_.reset();
  acked_features_ = 0;
}

std::vector<VirtioDevice::EventSource> Block::event_sources() const {
  // The limiter's timer is watched even without a limit: PATCH may set one later.
  std::vector<EventSource> sources{{limiter_.timer_fd(), EPOLLIN}};
  if (uring_) sources.push_back({uring_->event_fd(), EPOLLIN});
  return sources;
}

void Block::ProcessQueue(uint16_t index) {
  if (!activated_ || needs_reset_ || index != 0) return;
  bool used = false;
  const BlockGeometry disk{capacity_bytes_, options_.read_only};
  bool throttled = false;
  for (;;) {
    queue_->DisableNotification(*memory_);
    for (;;) {
      // Throttled: the limiter's timer resumes the queue. Kicks stay off meanwhile.
      if (limiter_.blocked()) {
        throttled = true;
        break;
      }
      Queue::PopResult pop = queue_->Pop(*memory_);
      if (pop.error) {
        ++metrics_.chain_errors;
        if (pop.error->needs_reset) {
          MarkBroken(pop.error->error);
          break;
        }
        LOG_DEBUG("virtio-blk " << options_.drive_id << ": " << pop.error->error.message());
        Complete(pop.error->head, std::nullopt, 0, 0);
        used = true;
        continue;
      }
      if (!pop.chain) break;
      const BlockRequest request = ParseRequest(*memory_, *pop.chain, disk);
      if (!Admit(request)) {
        queue_->UndoPop();  // Served when the limiter's timer fires.
        throttled = true;
        break;
      }
      used |= HandleRequest(request);
    }
    if (throttled || needs_reset_ || !queue_->EnableNotification(*memory_)) break;
  }
  if (uring_) used |= ReapCompletions();
  if (used) SignalUsed();
}

bool Block::Admit(const BlockRequest& request) {
  if (!limiter_.limited()) return true;
  // A malformed request is answered at once and moves no data.
  if (request.status != VIRTIO_BLK_S_OK) return true;
  const bool data = request.type == VIRTIO_BLK_T_IN || request.type == VIRTIO_BLK_T_OUT;
  const bool admitted = limiter_.Consume(data ? request.length : 0, 1);
  // Refused, or let through oversized and now blocking what follows: the queue stops.
  if (!admitted || limiter_.blocked()) ++metrics_.rate_limiter_throttled_events;
  return admitted;
}

Status Block::UpdateRateLimiter(const std::optional<RateLimiterConfig>& config) {
  limiter_.Update(config);
  return Ok();
}

Status Block::FinishAllInFlight(int timeout_ms) {
  if (!uring_) return Ok();
  bool used = false;
  const uint64_t deadline = MonotonicMicros() + static_cast<uint64_t>(timeout_ms) * 1000;
  // Each round waits for at least one completion (or the deadline); short transfers continue a
  // bounded number of times per request before they fail.
  while (in_flight_count_ > 0) {
    if (submit_pending_) {
      RETURN_IF_ERROR(uring_->Submit());
      submit_pending_ = false;
    }
    const uint64_t now = MonotonicMicros();
    if (now >= deadline) break;
    ASSIGN_OR_RETURN(bool ready, uring_->WaitFor(deadline - now));
    if (ready) used |= ReapCompletions();
  }
  if (used && activated_) SignalUsed();
  if (in_flight_count_ > 0) {
    return Error(std::to_string(in_flight_count_) + " requests still in flight after " +
                 std::to_string(timeout_ms) + " ms");
  }
  return Ok();
}

Status Block::PrepareForSnapshot() {
  if (auto s = FinishAllInFlight(kSnapshotDrainTimeoutMs); !s.ok()) {
    return s.error().Wrap("drive " + options_.drive_id + ": finishing its I/O before the snapshot");
  }
  return Ok();
}

Status Block::UpdateBackingFile(const std::string& path) {
  const std::string what = "drive " + options_.drive_id;
  if (path.empty()) return Error(what + ": no image path");
  auto fd = Fd::Open(path, options_.read_only ? O_RDONLY : O_RDWR);
  if (!fd.ok()) return fd.error().Wrap(what);
  auto size = RegularFileSize(fd->get(), path);
  if (!size.ok()) return size.error().Wrap(what);
  const uint64_t capacity_bytes = *size & ~(kSectorSize - 1);
  if (capacity_bytes != *size) {
    LOG_WARN(what << ": image " << path << " is " << *size
                  << " bytes, not a multiple of 512; the last " << (*size - capacity_bytes)
                  << " bytes are not visible to the guest");
  }
  // What the guest already handed over finishes on the file it was meant for.
  if (auto s = FinishAllInFlight(kSnapshotDrainTimeoutMs); !s.ok()) {
    return s.error().Wrap(what + ": " + options_.path);
  }
  if (uring_) {
    if (auto s = uring_->ReplaceFile(fd->get()); !s.ok()) return s.error().Wrap(what);
  }
  fd_ = std::move(fd).value();
  deleted_logged_ = shrank_logged_ = false;
  options_.path = path;
  capacity_bytes_ = capacity_bytes;
  config_.capacity = capacity_bytes_ >> kSectorShift;
  LOG_INFO(what << ": now backed by " << path << " (" << config_.capacity << " sectors)");
  if (activated_ && interrupt_) interrupt_->SignalConfigChange();
  return Ok();
}

void Block::OnEvent(int fd, uint32_t /*events*/) {
  if (fd == limiter_.timer_fd()) {
    if (limiter_.OnTimer() && activated_ && !needs_reset_) ProcessQueue(0);
    return;
  }
  if (!uring_ || fd != uring_->event_fd()) return;
  uring_->ConsumeEvent();
  if (!activated_) return;
  if (ReapCompletions()) SignalUsed();
}

bool Block::HandleRequest(const BlockRequest& request) {
  if (request.status != VIRTIO_BLK_S_OK) {
    if (request.unsupported()) {
      ++metrics_.unsupported_requests;
    } else {
      ++metrics_.invalid_requests;
    }
    LOG_DEBUG("virtio-blk " << options_.drive_id << ": " << request.error);
    Complete(request.head, request.status_addr, request.status, request.status_addr ? 1 : 0);
    return true;
  }
  switch (request.type) {
    case VIRTIO_BLK_T_IN:
      ++metrics_.read_requests;
      break;
    case VIRTIO_BLK_T_OUT:
      ++metrics_.write_requests;
      break;
    case VIRTIO_BLK_T_FLUSH:
      ++metrics_.flush_requests;
      break;
    case VIRTIO_BLK_T_GET_ID:
      ++metrics_.get_id_requests;
      break;
  }
  const bool needs_io =
      ((request.type == VIRTIO_BLK_T_IN || request.type == VIRTIO_BLK_T_OUT) &&
       request.length > 0) ||
      (request.type == VIRTIO_BLK_T_FLUSH && options_.cache == BlockOptions::kWriteback);
  if (uring_ && needs_io) {
    if (SubmitAsync(request.head, request)) return false;  // Completes in ReapCompletions.
    Complete(request.head, request.status_addr, VIRTIO_BLK_S_IOERR, 1);
    return true;
  }
  uint32_t used_len = 1;
  const uint8_t status = ExecuteSync(request, &used_len);
  Complete(request.head, request.status_addr, status, status == VIRTIO_BLK_S_OK ? used_len : 1);
  return true;
}

void Block::Complete(uint16_t head, std::optional<uint64_t> status_addr, uint8_t status,
                     uint32_t len) {
  if (status_addr && !memory_->WriteObj<uint8_t>(*status_addr, status).ok()) len = 0;
  if (auto s = queue_->AddUsed(*memory_, head, len); !s.ok()) {
    LOG_WARN("virtio-blk " << options_.drive_id << ": " << s.error().message());
  }
}

Status Block::DataIovecs(const BlockRequest& request, std::vector<iovec>& out) const {
  out.clear();
  for (const auto& b : request.data)
    RETURN_IF_ERROR(memory_->AppendIoVecs(b.addr, b.len, out));
  return Ok();
}

uint8_t Block::ExecuteSync(const BlockRequest& request, uint32_t* used_len) {
  switch (request.type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT: {
      const bool write = request.type == VIRTIO_BLK_T_OUT;
      if (auto s = DataIovecs(request, scratch_iov_); !s.ok()) {
        ++metrics_.invalid_requests;
        LOG_DEBUG("virtio-blk " << options_.drive_id << ": " << s.error().message());
        return VIRTIO_BLK_S_IOERR;
      }
      if (int err = TransferAll(fd_.get(), write, scratch_iov_, request.offset); err != 0) {
        HostError(write ? "pwritev" : "preadv", err);
        return VIRTIO_BLK_S_IOERR;
      }
      if (write) {
        metrics_.write_bytes += request.length;
      } else {
        metrics_.read_bytes += request.length;
        *used_len = static_cast<uint32_t>(request.length + 1);
      }
      return VIRTIO_BLK_S_OK;
    }
    case VIRTIO_BLK_T_FLUSH:
      if (options_.cache == BlockOptions::kWriteback && ::fdatasync(fd_.get()) != 0) {
        HostError("fdatasync", errno);
        return VIRTIO_BLK_S_IOERR;
      }
      CheckImage();
      return VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_GET_ID:
      if (!WriteId(request).ok()) return VIRTIO_BLK_S_IOERR;
      *used_len = static_cast<uint32_t>(request.length + 1);
      return VIRTIO_BLK_S_OK;
    default:
      return VIRTIO_BLK_S_UNSUPP;
  }
}

Status Block::WriteId(const BlockRequest& request) {
  uint8_t id[VIRTIO_BLK_ID_BYTES] = {};
  std::memcpy(id, options_.drive_id.data(), std::min(options_.drive_id.size(), sizeof(id)));
  uint64_t done = 0;
  for (const auto& b : request.data) {
    RETURN_IF_ERROR(memory_->Write(b.addr, std::span<const uint8_t>(id + done, b.len)));
    done += b.len;
  }
  return Ok();
}

bool Block::SubmitAsync(uint16_t head, const BlockRequest& request) {
  InFlight& f = in_flight_[head];
  if (f.busy) {
    // The driver made a chain available again before the device returned it.
    ++metrics_.invalid_requests;
    LOG_DEBUG("virtio-blk " << options_.drive_id << ": chain " << head << " is already in flight");
    return false;
  }
  if (request.type != VIRTIO_BLK_T_FLUSH) {
    if (auto s = DataIovecs(request, f.iov); !s.ok()) {
      ++metrics_.invalid_requests;
      return false;
    }
  } else {
    f.iov.clear();
  }
  f.iov_start = 0;
  f.type = request.type;
  f.status_addr = *request.status_addr;
  f.offset = request.offset;
  f.remaining = request.length;
  f.used_len = request.type == VIRTIO_BLK_T_IN ? static_cast<uint32_t>(request.length + 1) : 1;
  if (!PrepInFlight(head)) return false;
  f.busy = true;
  ++in_flight_count_;
  return true;
}

bool Block::PrepInFlight(uint16_t head) {
  InFlight& f = in_flight_[head];
  auto prep = [&] {
    const unsigned count = static_cast<unsigned>(f.iov.size() - f.iov_start);
    switch (f.type) {
      case VIRTIO_BLK_T_IN:
        return uring_->PrepReadv(head, f.iov.data() + f.iov_start, count, f.offset);
      case VIRTIO_BLK_T_OUT:
        return uring_->PrepWritev(head, f.iov.data() + f.iov_start, count, f.offset);
      default:
        return uring_->PrepFsync(head);
    }
  };
  if (!prep()) {
    // The submission ring is full: hand it to the kernel and try once more.
    if (auto s = uring_->Submit(); !s.ok()) {
      HostError("io_uring_submit", EIO);
      return false;
    }
    submit_pending_ = false;
    if (!prep()) return false;
  }
  submit_pending_ = true;
  return true;
}

bool Block::ReapCompletions() {
  bool used = false;
  // Completions may queue follow-ups for short transfers; submit them and take what finished
  // inline, a bounded number of times (the eventfd brings the rest).
  for (int round = 0; round < 4; ++round) {
    if (submit_pending_) {
      if (auto s = uring_->Submit(); !s.ok()) {
        LOG_WARN("virtio-blk " << options_.drive_id << ": " << s.error().message());
        break;  // The SQEs stay queued; the next kick or completion retries.
      }
      submit_pending_ = false;
    }
    const unsigned n = uring_->Reap([&](uint64_t cookie, int32_t res) {
      OnCompletion(static_cast<uint16_t>(cookie), res, &used);
    });
    if (n == 0 || !submit_pending_) break;
  }
  return used;
}

void Block::OnCompletion(uint16_t head, int32_t res, bool* used_added) {
  if (head >= in_flight_.size() || !in_flight_[head].busy) return;
  InFlight& f = in_flight_[head];
  if (res == -EINTR || res == -EAGAIN) {
    if (!PrepInFlight(head)) {
      FinishInFlight(head, VIRTIO_BLK_S_IOERR, 1);
      *used_added = true;
    }
    return;
  }
  if (f.type == VIRTIO_BLK_T_FLUSH) {
    if (res < 0) {
      HostError("io_uring fsync", -res);
    } else {
      CheckImage();
    }
    FinishInFlight(head, res < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK, 1);
    *used_added = true;
    return;
  }
  const bool write = f.type == VIRTIO_BLK_T_OUT;
  if (res <= 0) {
    HostError(write ? "io_uring writev" : "io_uring readv",
              res < 0 ? -res : (write ? ENOSPC : EIO));
    FinishInFlight(head, VIRTIO_BLK_S_IOERR, 1);
    *used_added = true;
    return;
  }
  const uint64_t n = std::min<uint64_t>(static_cast<uint64_t>(res), f.remaining);
  (write ? metrics_.write_bytes : metrics_.read_bytes) += n;
  f.remaining -= n;
  f.offset += n;
  AdvanceIovecs(f.iov, &f.iov_start, n);
  if (f.remaining > 0 && f.iov_start < f.iov.size()) {
    if (!PrepInFlight(head)) {  // A short transfer: continue where it stopped.
      FinishInFlight(head, VIRTIO_BLK_S_IOERR, 1);
      *used_added = true;
    }
    return;
  }
  FinishInFlight(head, VIRTIO_BLK_S_OK, f.used_len);
  *used_added = true;
}

void Block::FinishInFlight(uint16_t head, uint8_t status, uint32_t len) {
  InFlight& f = in_flight_[head];
  f.busy = false;
  --in_flight_count_;
  Complete(head, f.status_addr, status, len);
}

void Block::DrainInFlight() {
  if (!uring_) return;
  if (submit_pending_) {
    (void)uring_->Submit();
    submit_pending_ = false;
  }
  while (in_flight_count_ > 0) {
    if (auto s = uring_->Wait(); !s.ok()) {
      LOG_ERROR("virtio-blk " << options_.drive_id << ": " << s.error().message());
      break;
    }
    uring_->Reap([&](uint64_t cookie, int32_t) {
      if (cookie < in_flight_.size() && in_flight_[cookie].busy) {
        in_flight_[cookie].busy = false;
        --in_flight_count_;
      }
    });
  }
  uring_->ConsumeEvent();
}

void Block::SignalUsed() {
  if (queue_->NeedsInterrupt(*memory_)) {
    ++metrics_.interrupts;
    interrupt_->Raise(kVirtioIntUsedBuffer);
  }
}

void Block::HostError(const std::string& what, int err) {
  ++metrics_.io_errors;
  // A guest can provoke these at will (e.g. filling a sparse image): warn at powers of two.
  if (std::has_single_bit(metrics_.io_errors)) {
    LOG_WARN("virtio-blk " << options_.drive_id << ": " << what << " " << options_.path << ": "
                           << std::strerror(err) << " (" << metrics_.io_errors << " I/O errors)");
  }
  CheckImage();
}

void Block::CheckImage() {
  if (deleted_logged_ && shrank_logged_) return;
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) return;
  if (st.st_nlink == 0 && !deleted_logged_) {
    deleted_logged_ = true;
    LOG_WARN("virtio-blk " << options_.drive_id << ": image " << options_.path
                           << " was deleted on the host; the guest's writes go to the unlinked "
                              "file and are lost when the VMM exits");
  }
  if (static_cast<uint64_t>(st.st_size) < capacity_bytes_ && !shrank_logged_) {
    shrank_logged_ = true;
    LOG_WARN("virtio-blk " << options_.drive_id << ": image " << options_.path << " shrank to "
                           << st.st_size << " bytes under the running VM (capacity "
                           << capacity_bytes_ << "); reads past its end fail with IOERR");
  }
}

void Block::MarkBroken(const Error& error) {
  needs_reset_ = true;
  LOG_WARN("virtio-blk " << options_.drive_id << ": " << error.message() << ": device needs reset");
  interrupt_->SetNeedsReset();  // DEVICE_NEEDS_RESET plus a config-change interrupt.
}

BlockState Block::Save() const {
  BlockState s;
  s.drive_id = options_.drive_id;
  s.path = options_.path;
  s.read_only = options_.read_only;
  s.cache = options_.cache;
  s.engine = options_.engine;
  s.capacity_sectors = capacity_sectors();
  s.acked_features = acked_features_;
  s.activated = activated_;
  s.rate_limiter = limiter_.Save();
  return s;
}

namespace {
// Bump when the encoding below changes.
constexpr uint8_t kBlockStateVersion = 1;
}  // namespace

std::vector<uint8_t> Block::SaveState() const {
  StateWriter w;
  w.U8(kBlockStateVersion);
  PutRateLimiterState(w, limiter_.Save());
  return w.Take();
}

Status Block::RestoreState(std::span<const uint8_t> state) {
  const std::string what = "virtio-blk " + options_.drive_id + " state";
  if (activated_) return Error(what + ": the device is already active");
  StateReader r(state);
  auto version = r.U8("version");
  if (!version.ok()) return version.error().Wrap(what);
  if (*version != kBlockStateVersion) {
    return Error(what + ": version " + std::to_string(*version) + ", this Hearth reads " +
                 std::to_string(kBlockStateVersion));
  }
  auto limiter = GetRateLimiterState(r, "rate limiter");
  if (!limiter.ok()) return limiter.error().Wrap(what);
  if (auto s = r.ExpectEnd("virtio-blk state"); !s.ok()) return s.error().Wrap(what);
  if (auto s = CheckRateLimiterStateMatches(*limiter, limiter_.config()); !s.ok()) {
    return s.error().Wrap(what + ": rate limiter");
  }
  if (auto s = limiter_.Restore(*limiter); !s.ok()) return s.error().Wrap(what);
  return Ok();
}

}  // namespace hearth
