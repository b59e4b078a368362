#include "virtio/block/request.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace hearth {
namespace {

// Appends the part [skip, skip+take) of the concatenated buffers to `out`.
void Slice(const std::vector<GuestBuffer>& buffers, uint64_t skip, uint64_t take,
           std::vector<GuestBuffer>& out) {
  for (const auto& b : buffers) {
    if (take == 0) return;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const uint64_t n = std::min<uint64_t>(b.len - skip, take);
    if (n > 0) out.push_back({b.addr + skip, static_cast<uint32_t>(n)});
    take -= n;
    skip = 0;
  }
}

BlockRequest Fail(BlockRequest r, uint8_t status, std::string why) {
  r.status = status;
  r.error = std::move(why);
  r.data.clear();
  r.length = 0;
  return r;
}

}  // namespace

BlockRequest ParseRequest(const GuestMemory& memory, const DescriptorChain& chain,
                          const BlockGeometry& disk) {
  BlockRequest r;
  r.head = chain.head;

  // The status byte: the last byte of the last non-empty writable buffer.
  uint64_t writable_data = 0;
  for (auto it = chain.writable.rbegin(); it != chain.writable.rend(); ++it) {
    if (it->len > 0) {
      r.status_addr = it->addr + it->len - 1;
      writable_data = chain.writable_bytes - 1;
      break;
    }
  }
  if (!r.status_addr) return Fail(std::move(r), VIRTIO_BLK_S_IOERR, "no status byte");

  if (chain.readable_bytes < sizeof(BlockRequestHeader)) {
    return Fail(std::move(r), VIRTIO_BLK_S_IOERR,
                "request header is " + std::to_string(chain.readable_bytes) + " bytes, not 16");
  }
  BlockRequestHeader header;
  {
    std::vector<GuestBuffer> pieces;
    Slice(chain.readable, 0, sizeof(header), pieces);
    auto* dst = reinterpret_cast<uint8_t*>(&header);
    for (const auto& p : pieces) {
      // The queue checked every buffer against guest memory; a failure here is a bug.
      if (!memory.Read(p.addr, std::span(dst, p.len)).ok()) {
        return Fail(std::move(r), VIRTIO_BLK_S_IOERR, "request header is unreadable");
      }
      dst += p.len;
    }
  }
  r.type = header.type;

  switch (header.type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT: {
      const bool write = header.type == VIRTIO_BLK_T_OUT;
      if (write && disk.read_only)
        return Fail(std::move(r), VIRTIO_BLK_S_IOERR, "write to a read-only disk");
      if (write) {
        r.length = chain.readable_bytes - sizeof(header);
        Slice(chain.readable, sizeof(header), r.length, r.data);
      } else {
        r.length = writable_data;
        Slice(chain.writable, 0, r.length, r.data);
      }
      if (r.length % kSectorSize != 0) {
        return Fail(std::move(r), VIRTIO_BLK_S_IOERR,
                    "data length " + std::to_string(r.length) + " is not a multiple of 512");
      }
      if (header.sector > (std::numeric_limits<uint64_t>::max() >> kSectorShift)) {
        return Fail(std::move(r), VIRTIO_BLK_S_IOERR,
                    "sector " + std::to_string(header.sector) + " overflows a byte offset");
      }
      r.offset = header.sector << kSectorShift;
      if (r.offset > disk.capacity_bytes || r.length > disk.capacity_bytes - r.offset) {
        return Fail(std::move(r), VIRTIO_BLK_S_IOERR,
                    "sector " + std::to_string(header.sector) + " + " + std::to_string(r.length) +
                        " bytes is beyond the end of the disk");
      }
      if (r.data.size() > kMaxRequestSegments) {
        return Fail(std::move(r), VIRTIO_BLK_S_IOERR,
                    std::to_string(r.data.size()) + " data segments are too many");
      }
      return r;
    }
    case VIRTIO_BLK_T_FLUSH:
      return r;
    case VIRTIO_BLK_T_GET_ID:
      r.length = std::min<uint64_t>(writable_data, VIRTIO_BLK_ID_BYTES);
      Slice(chain.writable, 0, r.length, r.data);
      return r;
    default:
      return Fail(std::move(r), VIRTIO_BLK_S_UNSUPP,
                  "request type " + std::to_string(header.type) + " is not supported");
  }
}

}  // namespace hearth
