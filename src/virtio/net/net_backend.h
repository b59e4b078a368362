// What virtio-net sends frames to and receives them from: a tap in the VMM, a socketpair in
// tests. A frame always starts with the 12-byte virtio_net_hdr_v1 and moves whole (one read or
// write per frame); the fd is non-blocking and is what the VMM event loop polls.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <optional>
#include <span>
#include <string>

#include "base/result.h"

namespace hearth {

// TUN_F_* offload flags (linux/if_tun.h), so that device code needs no kernel headers.
constexpr unsigned kTunFCsum = 0x01;
constexpr unsigned kTunFTso4 = 0x02;
constexpr unsigned kTunFTso6 = 0x04;
constexpr unsigned kTunFUfo = 0x10;

class NetBackend {
 public:
  virtual ~NetBackend() = default;

  virtual int fd() const = 0;
  // For logs and errors ("tap0").
  virtual const std::string& name() const = 0;

  // Reads one frame into `iov`. Returns the frame's full length, which is larger than the
  // iovecs' total when the frame did not fit (the rest is gone: the caller drops the frame), or
  // nothing when no frame is waiting (EAGAIN).
  virtual Result<std::optional<size_t>> ReadFrame(std::span<const iovec> iov) = 0;
  // Writes one frame. Returns the bytes written, or nothing when the backend cannot take the
  // frame now (EAGAIN): the caller keeps it and retries when the fd is writable.
  virtual Result<std::optional<size_t>> WriteFrame(std::span<const iovec> iov) = 0;

  // TUN_F_* flags the backend can deliver frames with (probed once when it was opened).
  virtual unsigned supported_offloads() const = 0;
  // What the backend may hand us from now on (TUNSETOFFLOAD): a subset of supported_offloads().
  virtual Status SetOffloads(unsigned tun_flags) = 0;
};

}  // namespace hearth
