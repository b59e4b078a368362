// The vsock host side's `CONNECT <port>\n` line parser (what a host client writes on uds_path),
// checked against a plain reference reading of the protocol: same verdict, port and length, and
// every proper prefix of a complete line is still incomplete (the device waits for more).
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <string_view>

#include "virtio/vsock/packet.h"

using hearth::ConnectLine;

namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "fuzz harness: %s\n", what);
  std::abort();
}

// "CONNECT " then 1+ decimal digits of a u32 then '\n', within kMaxConnectLine bytes.
ConnectLine::Kind Reference(std::string_view s, uint32_t* port, size_t* length) {
  constexpr std::string_view kPrefix = "CONNECT ";
  const size_t n = std::min(s.size(), hearth::kMaxConnectLine);
  if (std::string_view(kPrefix.substr(0, std::min(n, kPrefix.size()))) != s.substr(0, std::min(n, kPrefix.size()))) {
    return ConnectLine::Kind::kInvalid;
  }
  if (n < kPrefix.size()) return ConnectLine::Kind::kIncomplete;
  size_t nl = s.substr(0, n).find('\n');
  std::string_view digits = s.substr(kPrefix.size(), (nl == std::string_view::npos ? n : nl) - kPrefix.size());
  uint64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return ConnectLine::Kind::kInvalid;
    value = value * 10 + static_cast<uint64_t>(c - '0');
    if (value > UINT32_MAX) return ConnectLine::Kind::kInvalid;
  }
  if (nl == std::string_view::npos) {
    return s.size() >= hearth::kMaxConnectLine ? ConnectLine::Kind::kInvalid : ConnectLine::Kind::kIncomplete;
  }
  if (digits.empty()) return ConnectLine::Kind::kInvalid;
  *port = static_cast<uint32_t>(value);
  *length = nl + 1;
  return ConnectLine::Kind::kConnect;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  const ConnectLine line = hearth::ParseConnectLine(bytes);
  uint32_t port = 0;
  size_t length = 0;
  const auto expected = Reference(std::string_view(reinterpret_cast<const char*>(data), size), &port, &length);
  if (line.kind != expected) Die("verdict differs from the reference");
  if (line.kind == ConnectLine::Kind::kInvalid && line.error.empty()) Die("invalid line without a reason");
  if (line.kind == ConnectLine::Kind::kConnect) {
    if (line.port != port || line.length != length) Die("port or length differs from the reference");
    if (line.length > size || line.length > hearth::kMaxConnectLine) Die("line longer than the input");
    for (size_t k = 0; k < line.length; ++k) {
      if (hearth::ParseConnectLine(bytes.first(k)).kind != ConnectLine::Kind::kIncomplete) {
        Die("a proper prefix of a complete line is not incomplete");
      }
    }
  }
  return 0;
}
