#include "vmm/uffd_backend.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <sstream>

#include "memory/userfaultfd.h"

namespace hearth {

std::string UffdLayoutJson(const GuestMemory& memory) {
  std::ostringstream o;
  o << "[";
  uint64_t offset = 0;
  bool first = true;
  for (const auto& r : memory.regions()) {
    o << (first ? "" : ",") << "{\"base_host_virt_addr\":" << reinterpret_cast<uint64_t>(r.mapping.data())
      << ",\"size\":" << r.size() << ",\"offset\":" << offset
      << ",\"page_size\":4096,\"page_size_kib\":4}";
    offset += r.size();
    first = false;
  }
  o << "]";
  return o.str();
}

Result<UffdConnection> ConnectUffdHandler(const std::string& socket_path, const GuestMemory& memory) {
  const std::string what = "mem_backend (Uffd) " + socket_path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path)) {
    return Error(what + ": socket path is empty or too long");
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  ASSIGN_OR_RETURN(Userfaultfd uffd, Userfaultfd::Create());
  for (const auto& r : memory.regions()) {
    if (auto s = uffd.RegisterMissing(r.mapping.data(), r.size()); !s.ok()) return s.error().Wrap(what);
  }
  Fd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return ErrnoError("socket " + what);
  if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return ErrnoError("connect " + what);
  }
  std::string layout = UffdLayoutJson(memory);
  iovec iov{layout.data(), layout.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  const int fd = uffd.fd();
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
  ssize_t sent;
  do {
    sent = ::sendmsg(sock.get(), &msg, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return ErrnoError("sendmsg " + what);
  if (static_cast<size_t>(sent) != layout.size()) return Error(what + ": short send of the memory layout");
  return UffdConnection{uffd.Release(), std::move(sock)};
}

}  // namespace hearth
