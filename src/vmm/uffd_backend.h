// The Uffd memory backend of PUT /snapshot/load, as Firecracker's: guest memory is anonymous,
// registered on a userfaultfd, and the fd is sent with the memory layout over the UNIX socket
// `backend_path` to a page-fault handler process, which fills each page on first touch
// (tools/uffd_handler serves them from the snapshot's memory file).
//
// The message: one sendmsg with the uffd in SCM_RIGHTS and a JSON array, one object per guest
// memory region, in memory-file order:
//   [{"base_host_virt_addr": <host address>, "size": <bytes>, "offset": <memory file offset>,
//     "page_size": 4096, "page_size_kib": 4}]
#pragma once

#include <string>

#include "base/fd.h"
#include "base/result.h"
#include "memory/guest_memory.h"

namespace hearth {

struct UffdConnection {
  Fd uffd;    // Kept open for the VM's lifetime.
  Fd socket;  // Kept open: the handler sees the VMM go away when it closes.
};

// Registers every region of `memory` on a new userfaultfd and hands it to the handler.
Result<UffdConnection> ConnectUffdHandler(const std::string& socket_path, const GuestMemory& memory);

std::string UffdLayoutJson(const GuestMemory& memory);

}  // namespace hearth
