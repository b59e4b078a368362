// Stand-ins the fuzz targets share for what surrounds a device: an interrupt line that goes
// nowhere and a network backend with no frames that takes every write.
#pragma once

#include <sys/uio.h>

#include <optional>
#include <span>
#include <string>

#include "base/fd.h"
#include "virtio/net/net_backend.h"
#include "virtio/virtio_device.h"

namespace hearth::fuzz {

class NullInterrupt : public VirtioInterrupt {
 public:
  void Raise(uint32_t) override {}
  void SetNeedsReset() override {}
};

// A tap that never has a frame (its eventfd never fires) and takes every write.
class SinkBackend : public NetBackend {
 public:
  int fd() const override { return event_.ok() ? event_->get() : -1; }
  const std::string& name() const override { return name_; }
  Result<std::optional<size_t>> ReadFrame(std::span<const iovec>) override {
    return std::optional<size_t>();
  }
  Result<std::optional<size_t>> WriteFrame(std::span<const iovec> iov) override {
    size_t total = 0;
    for (const iovec& v : iov) total += v.iov_len;
    return std::optional<size_t>(total);
  }
  unsigned supported_offloads() const override { return kTunFCsum; }
  Status SetOffloads(unsigned) override { return Ok(); }

 private:
  Result<EventFd> event_ = EventFd::Create();
  std::string name_ = "sink0";
};

}  // namespace hearth::fuzz
