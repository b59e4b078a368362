// CRC-64/ECMA-182 as xz uses it (reflected, init and xorout all ones): the checksum over a
// snapshot state file.
#pragma once

#include <cstdint>
#include <span>

namespace hearth {

// Continues `crc` (0 to start) over `data`.
uint64_t Crc64(std::span<const uint8_t> data, uint64_t crc = 0);

}  // namespace hearth
