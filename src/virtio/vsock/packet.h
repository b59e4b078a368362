// The virtio-vsock wire format (virtio 1.2, 5.10.6) and the host side's text protocol
// (Firecracker's `CONNECT <port>\n` / `OK <port>\n`). Pure functions over bytes: everything the
// guest writes into a TX packet header, and every line a host client sends, is hostile.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"

namespace hearth {

constexpr uint64_t kVsockHostCid = 2;

// Operations.
constexpr uint16_t kVsockOpInvalid = 0;
constexpr uint16_t kVsockOpRequest = 1;
constexpr uint16_t kVsockOpResponse = 2;
constexpr uint16_t kVsockOpRst = 3;
constexpr uint16_t kVsockOpShutdown = 4;
constexpr uint16_t kVsockOpRw = 5;
constexpr uint16_t kVsockOpCreditUpdate = 6;
constexpr uint16_t kVsockOpCreditRequest = 7;

constexpr uint16_t kVsockTypeStream = 1;

// SHUTDOWN flags: the sender will receive / send no more.
constexpr uint32_t kVsockShutdownRcv = 1;
constexpr uint32_t kVsockShutdownSend = 2;
constexpr uint32_t kVsockShutdownBoth = kVsockShutdownRcv | kVsockShutdownSend;

constexpr uint32_t kVsockEventTransportReset = 0;

// The largest payload one packet may carry either way (Linux sends at most 64 KiB).
constexpr uint32_t kVsockMaxPayload = 64 * 1024;

// struct virtio_vsock_hdr: little-endian, packed, 44 bytes.
#pragma pack(push, 1)
struct VsockHeader {
  uint64_t src_cid;
  uint64_t dst_cid;
  uint32_t src_port;
  uint32_t dst_port;
  uint32_t len;
  uint16_t type;
  uint16_t op;
  uint32_t flags;
  uint32_t buf_alloc;
  uint32_t fwd_cnt;
};
#pragma pack(pop)
static_assert(sizeof(VsockHeader) == 44);
constexpr uint32_t kVsockHeaderSize = sizeof(VsockHeader);

// How the device treats a TX packet the guest sent.
enum class TxVerdict {
  kAccept,  // Well formed, for the host: handle it.
  kReset,   // Well formed but not something the device serves (a datagram/seqpacket type,
            // an unknown op): answer with RST, as Linux's transports do.
  kDrop,    // Not for us or not a packet at all (wrong CIDs, bad lengths): return the chain.
};

struct TxCheck {
  TxVerdict verdict;
  std::string reason;  // Why, for kReset and kDrop (logged at debug level, counted).
};

// Checks a header the guest wrote. `readable_bytes` is how many bytes the chain carries in
// total (header included), `writable_buffers` whether it also has device-writable buffers.
TxCheck CheckTxHeader(const VsockHeader& header, uint64_t guest_cid, uint64_t readable_bytes,
                      bool has_writable);

std::string_view VsockOpName(uint16_t op);

// ---- Host side: the UNIX-socket protocol ------------------------------------------------------

// The longest CONNECT line accepted ("CONNECT 4294967295\n" is 19 bytes; a little slack for
// leading zeros).
constexpr size_t kMaxConnectLine = 32;

struct ConnectLine {
  enum class Kind { kIncomplete, kConnect, kInvalid } kind = Kind::kIncomplete;
  uint32_t port = 0;
  size_t length = 0;  // Bytes of the line including '\n' (kConnect).
  std::string error;  // kInvalid.
};

// Parses the start of what a host client sent on uds_path: `CONNECT <port>\n`, where port is
// a decimal u32. kIncomplete when no newline yet and the bytes so far can still become a
// valid line within kMaxConnectLine bytes.
ConnectLine ParseConnectLine(std::span<const uint8_t> bytes);

// "OK <port>\n".
std::string ConnectOkLine(uint32_t host_port);

}  // namespace hearth
