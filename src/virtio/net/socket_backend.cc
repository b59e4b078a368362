#include "virtio/net/socket_backend.h"

#include <fcntl.h>
#include <sys/socket.h>

namespace hearth {

Result<std::unique_ptr<SocketBackend>> SocketBackend::Create(Fd socket, unsigned offloads,
                                                             std::string name) {
  int flags = ::fcntl(socket.get(), F_GETFL);
  if (flags < 0) return ErrnoError("fcntl F_GETFL " + name);
  if (::fcntl(socket.get(), F_SETFL, flags | O_NONBLOCK) != 0)
    return ErrnoError("fcntl F_SETFL " + name);
  return std::unique_ptr<SocketBackend>(
      new SocketBackend(std::move(socket), offloads, std::move(name)));
}

Result<std::optional<size_t>> SocketBackend::ReadFrame(std::span<const iovec> iov) {
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov.data());
  msg.msg_iovlen = iov.size();
  for (;;) {
    // MSG_TRUNC: return the message's real length, like a tap read does.
    ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_TRUNC | MSG_DONTWAIT);
    if (n > 0) return std::optional<size_t>(static_cast<size_t>(n));
    if (n == 0) return Error("recvmsg " + name_ + ": peer closed or sent an empty frame");
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return std::optional<size_t>();
    return ErrnoError("recvmsg " + name_);
  }
}

Result<std::optional<size_t>> SocketBackend::WriteFrame(std::span<const iovec> iov) {
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(iov.data());
  msg.msg_iovlen = iov.size();
  for (;;) {
    ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return std::optional<size_t>(static_cast<size_t>(n));
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return std::optional<size_t>();
    return ErrnoError("sendmsg " + name_);
  }
}

Status SocketBackend::SetOffloads(unsigned tun_flags) {
  if ((tun_flags & ~supported_) != 0) {
    return Error(name_ + ": offload flags " + std::to_string(tun_flags) + " are not all supported");
  }
  offloads_ = tun_flags;
  return Ok();
}

}  // namespace hearth
