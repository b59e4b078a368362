// hearth_uffd_handler SOCKET MEMORY_FILE
//
// The example page-fault handler of the Uffd snapshot backend (as Firecracker's examples):
// listens on the UNIX socket SOCKET, accepts one VMM, receives its userfaultfd and memory
// layout (vmm/uffd_backend.h), and serves every missing-page fault by copying the page from
// MEMORY_FILE (mapped read-only, so N handlers of one snapshot share its page cache). Exits 0
// when the VMM closes the connection. Everything the VMM sends is checked: the layout must
// cover the memory file exactly and faults outside it are refused (the handler exits 1,
// which leaves the faulting VMM thread blocked: the VMM must be killed).
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/fd.h"
#include "base/mmap.h"
#include "memory/userfaultfd.h"

using namespace hearth;

namespace {

struct Mapping {
  uint64_t base;
  uint64_t size;
  uint64_t offset;
};

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "hearth_uffd_handler: %s\n", msg.c_str());
  std::exit(1);
}

Result<std::vector<Mapping>> ParseLayout(const std::string& text, uint64_t file_size) {
  std::vector<Mapping> out;
  try {
    auto j = nlohmann::json::parse(text);
    if (!j.is_array() || j.empty()) return Error("layout: expected a non-empty array");
    for (const auto& r : j) {
      Mapping m{r.at("base_host_virt_addr").get<uint64_t>(), r.at("size").get<uint64_t>(),
                r.at("offset").get<uint64_t>()};
      uint64_t page = r.contains("page_size") ? r["page_size"].get<uint64_t>() : 4096;
      if (page != 4096) return Error("layout: only 4 KiB pages are served");
      if (m.size == 0 || m.size % 4096 || m.base % 4096 || m.offset % 4096 ||
          m.offset + m.size < m.offset || m.offset + m.size > file_size) {
        return Error("layout: region does not fit the memory file");
      }
      out.push_back(m);
    }
  } catch (const nlohmann::json::exception& e) {
    return Error(std::string("layout: ") + e.what());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) Die("usage: hearth_uffd_handler SOCKET MEMORY_FILE");
  const std::string socket_path = argv[1], mem_path = argv[2];
  auto mem_fd = Fd::Open(mem_path, O_RDONLY);
  if (!mem_fd.ok()) Die(mem_fd.error().message());
  auto file_size = RegularFileSize(mem_fd->get(), mem_path);
  if (!file_size.ok()) Die(file_size.error().message());
  auto file = MmapRegion::PrivateFile(mem_fd->get(), *file_size, 0, "memory file");
  if (!file.ok()) Die(file.error().message());

  Fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // Bound under a temporary name and renamed once listening: a VMM that sees the socket can
  // connect to it.
  const std::string temp_path = socket_path + ".tmp";
  if (temp_path.size() >= sizeof(addr.sun_path)) Die("socket path too long");
  std::memcpy(addr.sun_path, temp_path.data(), temp_path.size());
  ::unlink(temp_path.c_str());
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener.get(), 1) != 0 || ::rename(temp_path.c_str(), socket_path.c_str()) != 0) {
    Die("bind/listen " + socket_path + ": " + std::strerror(errno));
  }
  Fd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn.valid()) Die(std::string("accept: ") + std::strerror(errno));

  std::vector<char> buf(64 * 1024);
  iovec iov{buf.data(), buf.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = ::recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC);
  if (n <= 0) Die("recvmsg: no layout from the VMM");
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  if (cmsg == nullptr || cmsg->cmsg_type != SCM_RIGHTS) Die("the VMM sent no userfaultfd");
  int raw_fd;
  std::memcpy(&raw_fd, CMSG_DATA(cmsg), sizeof raw_fd);
  Userfaultfd uffd{Fd(raw_fd)};
  auto layout = ParseLayout(std::string(buf.data(), static_cast<size_t>(n)), *file_size);
  if (!layout.ok()) Die(layout.error().message());

  uint64_t served = 0;
  for (;;) {
    pollfd fds[2] = {{uffd.fd(), POLLIN, 0}, {conn.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      Die(std::string("poll: ") + std::strerror(errno));
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      char c;
      if (::recv(conn.get(), &c, 1, MSG_DONTWAIT) <= 0) break;  // The VMM is gone.
    }
    if (!(fds[0].revents & POLLIN)) continue;
    for (;;) {
      auto event = uffd.ReadEvent();
      if (!event.ok()) Die(event.error().message());
      if (!event->has_value()) break;
      const uffd_msg& m = **event;
      if (m.event != UFFD_EVENT_PAGEFAULT) continue;
      const uint64_t page = m.arg.pagefault.address & ~uint64_t{4095};
      const Mapping* hit = nullptr;
      for (const auto& r : *layout) {
        if (page >= r.base && page - r.base < r.size) hit = &r;
      }
      if (hit == nullptr) Die("fault outside the announced layout");
      const uint8_t* src = file->data() + hit->offset + (page - hit->base);
      if (auto s = uffd.Copy(page, src, 4096); !s.ok()) Die(s.error().message());
      ++served;
    }
  }
  std::fprintf(stderr, "hearth_uffd_handler: served %lu pages\n", static_cast<unsigned long>(served));
  return 0;
}
