// A virtio-net backend on a message socket (AF_UNIX SOCK_SEQPACKET or SOCK_DGRAM): each message
// is one frame with its vnet header. For unit tests and benchmarks, which run the device against
// the other end of a socketpair instead of a tap.
#pragma once

#include <memory>
#include <string>

#include "base/fd.h"
#include "virtio/net/net_backend.h"

namespace hearth {

class SocketBackend : public NetBackend {
 public:
  // Takes a socket; makes it non-blocking. `offloads` is what supported_offloads() reports.
  static Result<std::unique_ptr<SocketBackend>> Create(Fd socket, unsigned offloads,
                                                       std::string name = "socket");

  int fd() const override { return fd_.get(); }
  const std::string& name() const override { return name_; }
  Result<std::optional<size_t>> ReadFrame(std::span<const iovec> iov) override;
  Result<std::optional<size_t>> WriteFrame(std::span<const iovec> iov) override;
  unsigned supported_offloads() const override { return supported_; }
  Status SetOffloads(unsigned tun_flags) override;
  // The flags of the last SetOffloads (what a tap would have been told).
  unsigned offloads() const { return offloads_; }

 private:
  SocketBackend(Fd fd, unsigned supported, std::string name)
      : fd_(std::move(fd)), name_(std::move(name)), supported_(supported) {}

  Fd fd_;
  std::string name_;
  unsigned supported_;
  unsigned offloads_ = 0;
};

}  // namespace hearth
