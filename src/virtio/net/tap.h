// A tap interface as a virtio-net backend: /dev/net/tun opened with IFF_TAP | IFF_NO_PI |
// IFF_VNET_HDR, a 12-byte vnet header (virtio_net_hdr_v1: VERSION_1 is always negotiated),
// non-blocking. The only file in Hearth that issues tap ioctls; each is wrapped once and its
// error names the ioctl and the interface ("TUNSETIFF tap0: Device or resource busy").
#pragma once

#include <memory>
#include <string>

#include "base/fd.h"
#include "virtio/net/net_backend.h"

namespace hearth {

class Tap : public NetBackend {
 public:
  // A usable interface name: non-empty, shorter than IFNAMSIZ, no '/' and no whitespace.
  static Status ValidateName(const std::string& name);

  // Attaches to (or creates, with CAP_NET_ADMIN) the tap `name` in the caller's network
  // namespace, sets the vnet header size, and probes which offloads it accepts (leaving them
  // all off until the guest acks features).
  static Result<std::unique_ptr<Tap>> Open(const std::string& name);

  int fd() const override { return fd_.get(); }
  const std::string& name() const override { return name_; }
  Result<std::optional<size_t>> ReadFrame(std::span<const iovec> iov) override;
  Result<std::optional<size_t>> WriteFrame(std::span<const iovec> iov) override;
  unsigned supported_offloads() const override { return supported_offloads_; }
  Status SetOffloads(unsigned tun_flags) override;

 private:
  Tap(Fd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}

  // The ioctl wrappers.
  Status TunSetIff();
  Status TunSetVnetHdrSz(int size);
  Status TunSetOffload(unsigned flags);

  Fd fd_;
  std::string name_;
  unsigned supported_offloads_ = 0;
};

}  // namespace hearth
