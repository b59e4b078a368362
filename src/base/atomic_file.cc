#include "base/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

namespace hearth {
namespace {

std::string DirName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Result<AtomicFile> AtomicFile::Create(const std::string& path) {
  if (path.empty()) return Error("empty path");
  if (path.back() == '/') return Error(path + ": is a directory path, not a file path");
  const std::string dir = DirName(path);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return ErrnoError(path + ": directory " + dir + " is not usable");
  }
  if (!S_ISDIR(st.st_mode)) return Error(path + ": " + dir + " is not a directory");
  std::string temp = path + ".tmp." + std::to_string(::getpid());
  auto fd = Fd::Open(temp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (!fd.ok()) return fd.error().Wrap(path);
  return AtomicFile(std::move(fd).value(), path, std::move(temp));
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : fd_(std::move(other.fd_)),
      path_(std::move(other.path_)),
      temp_path_(std::exchange(other.temp_path_, std::string())),
      committed_(other.committed_) {}

AtomicFile::~AtomicFile() {
  if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

Status AtomicFile::Write(const void* data, size_t len) { return WriteAll(fd_.get(), data, len, path_); }

Status AtomicFile::Commit() {
  if (::fsync(fd_.get()) != 0) return ErrnoError("fsync " + path_);
  fd_.Reset();
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) return ErrnoError("rename to " + path_);
  committed_ = true;
  auto dir = Fd::Open(DirName(path_), O_RDONLY | O_DIRECTORY);
  if (dir.ok()) (void)::fsync(dir->get());
  return Ok();
}

}  // namespace hearth
