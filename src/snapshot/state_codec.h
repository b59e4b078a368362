// The snapshot's binary encoding: little-endian fixed-width integers, length-prefixed byte
// strings, and length-prefixed raw blobs of trivially copyable kernel structs (kvm_regs...),
// whose saved size must equal the compiled size on restore. The reader is bounds-checked: a
// truncated or inflated length is an error naming the field, never an over-read.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "base/result.h"

namespace hearth {

class StateWriter {
 public:
  void U8(uint8_t v) { bytes_.push_back(v); }
  void Bool(bool v) { U8(v ? 1 : 0); }
  void U16(uint16_t v) { Raw(&v, sizeof v); }
  void U32(uint32_t v) { Raw(&v, sizeof v); }
  void U64(uint64_t v) { Raw(&v, sizeof v); }
  void Bytes(std::span<const uint8_t> data) {
    U64(data.size());
    Raw(data.data(), data.size());
  }
  void String(const std::string& s) {
    Bytes(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  }
  // A kernel struct as raw bytes, with its size so a restore on another layout is refused.
  template <typename T>
  void Blob(const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    Bytes(std::span(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  std::vector<uint8_t> Take() { return std::move(bytes_); }

 private:
  void Raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    bytes_.insert(bytes_.end(), b, b + n);
  }
  std::vector<uint8_t> bytes_;
};

class StateReader {
 public:
  explicit StateReader(std::span<const uint8_t> data) : data_(data) {}

  Result<uint8_t> U8(const char* what);
  Result<bool> Bool(const char* what);
  Result<uint16_t> U16(const char* what);
  Result<uint32_t> U32(const char* what);
  Result<uint64_t> U64(const char* what);
  // A byte string of at most `max_len` bytes.
  Result<std::vector<uint8_t>> Bytes(const char* what, uint64_t max_len);
  Result<std::string> String(const char* what, uint64_t max_len = 4096);
  template <typename T>
  Result<T> Blob(const char* what) {
    static_assert(std::is_trivially_copyable_v<T>);
    ASSIGN_OR_RETURN(uint64_t len, U64(what));
    if (len != sizeof(T)) {
      return Error(std::string(what) + ": saved as " + std::to_string(len) + " bytes, expected " +
                   std::to_string(sizeof(T)));
    }
    T value;
    RETURN_IF_ERROR(Take(&value, sizeof(T), what));
    return value;
  }
  // A count of items that each take at least `min_item_bytes`: refused when the rest of the
  // input could not hold that many (so a hostile count cannot make us allocate).
  Result<uint64_t> Count(const char* what, uint64_t max, uint64_t min_item_bytes = 1);
  size_t remaining() const { return data_.size() - pos_; }
  // Fails unless every byte was consumed.
  Status ExpectEnd(const char* what) const;

 private:
  Status Take(void* out, size_t n, const char* what);
  std::span<const uint8_t> data_;
  size_t pos_ = 0;
};

}  // namespace hearth
