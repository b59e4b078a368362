// Parsing a virtio-blk request out of a popped descriptor chain. The driver may frame the
// request any way it likes (virtio 1.x): the device-readable bytes are read as one stream whose
// first 16 bytes are the header (type, reserved, sector) and whose rest is the data of a write;
// the device-writable bytes are one stream whose last byte is the status and whose rest is the
// data of a read or GET_ID. Every check that needs no I/O happens here; a request that fails one
// carries its status and a reason and is completed without touching the file.
#pragma once

#include <linux/virtio_blk.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "memory/guest_memory.h"
#include "virtio/queue.h"

namespace hearth {

constexpr uint64_t kSectorSize = 512;
constexpr uint64_t kSectorShift = 9;
// The most data segments one request may carry (IOV_MAX, so one preadv/readv covers it). The
// device advertises far fewer through seg_max.
constexpr size_t kMaxRequestSegments = 1024;

struct BlockRequestHeader {
  uint32_t type;
  uint32_t reserved;  // ioprio in legacy drivers; ignored.
  uint64_t sector;
};
static_assert(sizeof(BlockRequestHeader) == 16);

struct BlockRequest {
  uint16_t head = 0;
  // Where the status byte goes; absent when the chain has no writable byte at all (the request
  // cannot be answered and is returned with length 0).
  std::optional<uint64_t> status_addr;
  // VIRTIO_BLK_S_OK when the request is well formed and should be executed; otherwise the
  // status to report without doing any I/O, with `error` saying why.
  uint8_t status = VIRTIO_BLK_S_OK;
  std::string error;
  bool unsupported() const { return status == VIRTIO_BLK_S_UNSUPP; }

  uint32_t type = 0;
  uint64_t offset = 0;  // Byte offset into the disk (IN/OUT).
  uint64_t length = 0;  // Data bytes (IN/OUT/GET_ID).
  // The data segments: device-writable ones for IN and GET_ID, device-readable ones for OUT.
  std::vector<GuestBuffer> data;
};

struct BlockGeometry {
  uint64_t capacity_bytes;  // A multiple of the sector size.
  bool read_only;
};

BlockRequest ParseRequest(const GuestMemory& memory, const DescriptorChain& chain,
                          const BlockGeometry& disk);

}  // namespace hearth
