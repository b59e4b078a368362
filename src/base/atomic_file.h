// A file that appears under its final name only once it is complete: written to a temporary
// file in the same directory, fsynced, then renamed over the final name (and the directory
// fsynced). Dropped without Commit(), the temporary file is removed: a failure (a full disk,
// ENOSPC) never leaves a half-written file under the final name.
#pragma once

#include <string>

#include "base/fd.h"
#include "base/result.h"

namespace hearth {

class AtomicFile {
 public:
  // Fails with a clear message when the directory of `path` does not exist.
  static Result<AtomicFile> Create(const std::string& path);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  ~AtomicFile();

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  Status Write(const void* data, size_t len);
  // fsync, rename to the final name, fsync the directory.
  Status Commit();

 private:
  AtomicFile(Fd fd, std::string path, std::string temp_path)
      : fd_(std::move(fd)), path_(std::move(path)), temp_path_(std::move(temp_path)) {}
  Fd fd_;
  std::string path_;
  std::string temp_path_;
  bool committed_ = false;
};

}  // namespace hearth
