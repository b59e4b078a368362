// "0x..." formatting for addresses and sizes in error messages.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace hearth {

inline std::string Hex(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace hearth
