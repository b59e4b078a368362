// Helpers shared by the unit tests: a temporary directory that cleans up after itself, file
// writers, and fake Trigger / ByteSink implementations that record what a device did.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "devices/serial.h"
#include "devices/trigger.h"

namespace hearth::unit {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hearth_unit_XXXXXX").string();
    char* made = ::mkdtemp(tmpl.data());
    if (made == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

  // Writes `bytes` to a new file `name` in the directory and returns its path.
  std::string Write(const std::string& name, const std::vector<uint8_t>& bytes) const {
    std::string p = File(name);
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) ADD_FAILURE() << "cannot write " << p;
    return p;
  }
  std::string WriteText(const std::string& name, const std::string& text) const {
    return Write(name, std::vector<uint8_t>(text.begin(), text.end()));
  }

 private:
  std::string path_;
};

// Counts how often a device fired it.
class CountingTrigger : public Trigger {
 public:
  void Fire() override { ++count; }
  int count = 0;
};

// Records every byte a device wrote out.
class RecordingSink : public ByteSink {
 public:
  void Write(std::span<const uint8_t> data) override { bytes.insert(bytes.end(), data.begin(), data.end()); }
  std::vector<uint8_t> bytes;
};

// A deterministic byte pattern: byte i of a buffer seeded with `seed`.
inline std::vector<uint8_t> Pattern(size_t n, uint8_t seed = 1) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 8));
  return v;
}

// gtest predicates for Result<T> / Status, printing the error on failure.
template <typename R>
::testing::AssertionResult IsOk(const R& r) {
  if (r.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "error: " << r.error().message();
}
template <typename R>
::testing::AssertionResult ErrorContains(const R& r, const std::string& fragment) {
  if (r.ok()) return ::testing::AssertionFailure() << "succeeded; expected an error containing \"" << fragment << "\"";
  if (r.error().message().find(fragment) == std::string::npos) {
    return ::testing::AssertionFailure() << "error \"" << r.error().message() << "\" does not contain \"" << fragment << "\"";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace hearth::unit

#define ASSERT_OK(expr) ASSERT_TRUE(::hearth::unit::IsOk(expr))
#define EXPECT_OK(expr) EXPECT_TRUE(::hearth::unit::IsOk(expr))
// Expects a Result/Status to have failed with an error message containing `fragment`.
#define EXPECT_ERROR_CONTAINS(expr, fragment) EXPECT_TRUE(::hearth::unit::ErrorContains((expr), (fragment)))
