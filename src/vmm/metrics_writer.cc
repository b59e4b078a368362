#include "vmm/metrics_writer.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.h"

namespace hearth {

Result<std::unique_ptr<MetricsWriter>> MetricsWriter::Create(const std::string& path, EventLoop& loop,
                                                             std::function<std::string()> collect) {
  std::unique_ptr<MetricsWriter> w(new MetricsWriter());
  w->path_ = path;
  w->collect_ = std::move(collect);
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600);
  if (fd < 0 && errno == ENXIO) {
    // A FIFO nobody reads yet: opening it read-write succeeds at once, and the reader gets
    // every flush from the moment it opens.
    fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  }
  if (fd < 0) return Error("metrics file " + path + ": " + std::strerror(errno));
  w->file_ = Fd(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))) {
    return Error("metrics file " + path + ": not a regular file, FIFO or character device");
  }
  w->timer_ = Fd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!w->timer_.valid()) return Error(std::string("metrics timer: timerfd_create: ") + std::strerror(errno));
  itimerspec period{};
  period.it_value.tv_sec = kPeriodSeconds;
  period.it_interval.tv_sec = kPeriodSeconds;
  if (::timerfd_settime(w->timer_.get(), 0, &period, nullptr) != 0) {
    return Error(std::string("metrics timer: timerfd_settime: ") + std::strerror(errno));
  }
  MetricsWriter* raw = w.get();
  RETURN_IF_ERROR(loop.Add(w->timer_.get(), EPOLLIN, [raw](uint32_t) {
    uint64_t expirations = 0;
    (void)::read(raw->timer_.get(), &expirations, sizeof(expirations));
    if (auto s = raw->Flush(); !s.ok()) LOG_WARN(s.error().message());
  }));
  w->loop_ = &loop;
  return w;
}

MetricsWriter::~MetricsWriter() {
  if (loop_ && timer_.valid()) (void)loop_->Remove(timer_.get());
}

Status MetricsWriter::Flush() {
  std::string line = collect_();
  line.push_back('\n');
  ssize_t n = ::write(file_.get(), line.data(), line.size());
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    // A FIFO whose reader is not keeping up: drop this flush rather than stall the VMM.
    ++dropped_;
    return Error("metrics file " + path_ + ": the reader is not keeping up, flush dropped (" +
                 std::to_string(dropped_) + " so far)");
  }
  if (n < 0) return Error("metrics file " + path_ + ": write: " + std::strerror(errno));
  if (static_cast<size_t>(n) != line.size()) {
    return Error("metrics file " + path_ + ": short write (" + std::to_string(n) + " of " +
                 std::to_string(line.size()) + " bytes)");
  }
  return Ok();
}

}  // namespace hearth
