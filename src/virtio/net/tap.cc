#include "virtio/net/tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

#include <cctype>
#include <climits>
#include <cstring>

#include "base/log.h"

namespace hearth {
namespace {

// virtio_net_hdr_v1 (with num_buffers): the header every frame carries with VERSION_1.
constexpr int kVnetHdrSize = 12;

static_assert(kTunFCsum == TUN_F_CSUM && kTunFTso4 == TUN_F_TSO4 && kTunFTso6 == TUN_F_TSO6 &&
              kTunFUfo == TUN_F_UFO);

}  // namespace

Status Tap::ValidateName(const std::string& name) {
  if (name.empty()) return Error("tap name is empty");
  if (name.size() >= IFNAMSIZ) {
    return Error("tap name '" + name + "' is longer than " + std::to_string(IFNAMSIZ - 1) +
                 " characters");
  }
  for (char c : name) {
    if (c == '/' || std::isspace(static_cast<unsigned char>(c)) || c == '\0') {
      return Error("tap name '" + name + "' contains '/', whitespace or NUL");
    }
  }
  if (name == "." || name == "..") return Error("tap name '" + name + "' is not valid");
  return Ok();
}

Result<std::unique_ptr<Tap>> Tap::Open(const std::string& name) {
  RETURN_IF_ERROR(ValidateName(name));
  ASSIGN_OR_RETURN(Fd fd, Fd::Open("/dev/net/tun", O_RDWR | O_NONBLOCK));
  std::unique_ptr<Tap> tap(new Tap(std::move(fd), name));
  RETURN_IF_ERROR(tap->TunSetIff());
  RETURN_IF_ERROR(tap->TunSetVnetHdrSz(kVnetHdrSize));
  // Probe from the most to the least the tap may deliver. Kernels ignore TUN_F_UFO since UFO
  // left the stack (and old ones may refuse it), so fall back step by step.
  constexpr unsigned kProbes[] = {TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_UFO,
                                  TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, TUN_F_CSUM};
  for (unsigned probe : kProbes) {
    if (tap->TunSetOffload(probe).ok()) {
      tap->supported_offloads_ = probe;
      break;
    }
  }
  // Nothing offloaded until the guest acks features (Net::Activate).
  RETURN_IF_ERROR(tap->TunSetOffload(0));
  return tap;
}

Status Tap::TunSetIff() {
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, name_.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (::ioctl(fd_.get(), TUNSETIFF, &ifr) != 0) return ErrnoError("TUNSETIFF " + name_);
  return Ok();
}

Status Tap::TunSetVnetHdrSz(int size) {
  if (::ioctl(fd_.get(), TUNSETVNETHDRSZ, &size) != 0)
    return ErrnoError("TUNSETVNETHDRSZ " + name_);
  return Ok();
}

Status Tap::TunSetOffload(unsigned flags) {
  if (::ioctl(fd_.get(), TUNSETOFFLOAD, static_cast<unsigned long>(flags)) != 0) {
    return ErrnoError("TUNSETOFFLOAD " + name_);
  }
  return Ok();
}

Status Tap::SetOffloads(unsigned tun_flags) {
  if ((tun_flags & ~supported_offloads_) != 0) {
    return Error("tap " + name_ + ": offload flags " + std::to_string(tun_flags) +
                 " are not all supported");
  }
  return TunSetOffload(tun_flags);
}

Result<std::optional<size_t>> Tap::ReadFrame(std::span<const iovec> iov) {
  for (;;) {
    // A tap read returns the frame's full length even when it copied less.
    ssize_t n = ::readv(fd_.get(), iov.data(), static_cast<int>(iov.size()));
    if (n >= 0) return std::optional<size_t>(static_cast<size_t>(n));
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return std::optional<size_t>();
    return ErrnoError("read " + name_);
  }
}

Result<std::optional<size_t>> Tap::WriteFrame(std::span<const iovec> iov) {
  for (;;) {
    ssize_t n = ::writev(fd_.get(), iov.data(), static_cast<int>(iov.size()));
    if (n >= 0) return std::optional<size_t>(static_cast<size_t>(n));
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return std::optional<size_t>();
    return ErrnoError("write " + name_);
  }
}

}  // namespace hearth
