#include "virtio/vsock/packet.h"

#include <cstring>

namespace hearth {

TxCheck CheckTxHeader(const VsockHeader& header, uint64_t guest_cid, uint64_t readable_bytes,
                      bool has_writable) {
  if (has_writable) return {TxVerdict::kDrop, "TX chain has device-writable buffers"};
  if (readable_bytes < kVsockHeaderSize) {
    return {TxVerdict::kDrop, "TX chain is shorter than the packet header"};
  }
  if (header.src_cid != guest_cid) {
    return {TxVerdict::kDrop, "source CID " + std::to_string(header.src_cid) +
                                  " is not the guest's (" + std::to_string(guest_cid) + ")"};
  }
  if (header.dst_cid != kVsockHostCid) {
    return {TxVerdict::kDrop,
            "destination CID " + std::to_string(header.dst_cid) + " is not the host (2)"};
  }
  if (header.len > kVsockMaxPayload) {
    return {TxVerdict::kDrop, "payload length " + std::to_string(header.len) + " exceeds " +
                                  std::to_string(kVsockMaxPayload)};
  }
  if (header.len > readable_bytes - kVsockHeaderSize) {
    return {TxVerdict::kDrop, "payload length " + std::to_string(header.len) +
                                  " exceeds the chain (" +
                                  std::to_string(readable_bytes - kVsockHeaderSize) + " bytes)"};
  }
  if (header.type != kVsockTypeStream) {
    return {TxVerdict::kReset, "socket type " + std::to_string(header.type) + " is not stream"};
  }
  switch (header.op) {
    case kVsockOpRw:
      return {TxVerdict::kAccept, {}};
    case kVsockOpRequest:
    case kVsockOpResponse:
    case kVsockOpRst:
    case kVsockOpShutdown:
    case kVsockOpCreditUpdate:
    case kVsockOpCreditRequest:
      if (header.len != 0) {
        return {TxVerdict::kDrop, std::string(VsockOpName(header.op)) + " carries " +
                                      std::to_string(header.len) + " payload bytes"};
      }
      if (header.op == kVsockOpShutdown && (header.flags & ~kVsockShutdownBoth) != 0) {
        return {TxVerdict::kReset, "SHUTDOWN flags " + std::to_string(header.flags)};
      }
      return {TxVerdict::kAccept, {}};
    default:
      return {TxVerdict::kReset, "unknown op " + std::to_string(header.op)};
  }
}

std::string_view VsockOpName(uint16_t op) {
  switch (op) {
    case kVsockOpRequest: return "REQUEST";
    case kVsockOpResponse: return "RESPONSE";
    case kVsockOpRst: return "RST";
    case kVsockOpShutdown: return "SHUTDOWN";
    case kVsockOpRw: return "RW";
    case kVsockOpCreditUpdate: return "CREDIT_UPDATE";
    case kVsockOpCreditRequest: return "CREDIT_REQUEST";
    default: return "INVALID";
  }
}

ConnectLine ParseConnectLine(std::span<const uint8_t> bytes) {
  static constexpr std::string_view kPrefix = "CONNECT ";
  ConnectLine out;
  auto invalid = [&](std::string why) {
    out.kind = ConnectLine::Kind::kInvalid;
    out.error = std::move(why);
    return out;
  };
  const size_t n = std::min(bytes.size(), kMaxConnectLine);
  // The fixed prefix, as far as it has arrived.
  for (size_t i = 0; i < kPrefix.size(); ++i) {
    if (i >= n) return out;  // Incomplete, matching so far.
    if (bytes[i] != static_cast<uint8_t>(kPrefix[i])) {
      return invalid("expected \"CONNECT <port>\\n\"");
    }
  }
  uint64_t port = 0;
  size_t digits = 0;
  for (size_t i = kPrefix.size(); i < n; ++i) {
    const uint8_t c = bytes[i];
    if (c == '\n') {
      if (digits == 0) return invalid("CONNECT without a port");
      out.kind = ConnectLine::Kind::kConnect;
      out.port = static_cast<uint32_t>(port);
      out.length = i + 1;
      return out;
    }
    if (c < '0' || c > '9') return invalid("CONNECT port is not a decimal number");
    port = port * 10 + (c - '0');
    ++digits;
    if (port > UINT32_MAX) return invalid("CONNECT port is larger than 4294967295");
  }
  if (bytes.size() >= kMaxConnectLine) return invalid("CONNECT line is too long");
  return out;
}

std::string ConnectOkLine(uint32_t host_port) { return "OK " + std::to_string(host_port) + "\n"; }

}  // namespace hearth
