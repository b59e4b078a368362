// hearth_device_bench: host-side virtio device benchmarks (block, net, queue, vsock) on plain memory,
// no KVM. See benchmarks/README.md ("Device benchmarks") and run-device-bench.sh, which also
// runs fio on the same image as the peer.
//
//   hearth_device_bench [--image=PATH] [--image-dir=DIR] [Google Benchmark flags]
//
// Without --image, a 1 GiB image is written under --image-dir (default /var/tmp: a real disk,
// not tmpfs) the first time a block benchmark runs, and removed at exit. Either way it is
// read once first so the page cache is warm.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "benchmarks/device/device_bench.h"

namespace {

constexpr uint64_t kImageBytes = 1ull << 30;

bool WriteImage(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  std::vector<uint8_t> chunk(1 << 20);
  uint64_t x = 0x12345678;
  for (uint64_t off = 0; off < kImageBytes; off += chunk.size()) {
    for (size_t i = 0; i < chunk.size(); i += 8) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      std::memcpy(&chunk[i], &x, 8);
    }
    if (::write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) {
      ::close(fd);
      return false;
    }
  }
  ::fsync(fd);
  ::close(fd);
  return true;
}

void WarmCache(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  std::vector<uint8_t> buf(1 << 20);
  while (::read(fd, buf.data(), buf.size()) > 0) {
  }
  ::close(fd);
}

// The image: given (--image) or made under --image-dir on first use and removed at exit.
class Image {
 public:
  Image(std::string path, std::string dir) : path_(std::move(path)), dir_(std::move(dir)) {}
  ~Image() {
    if (!made_dir_.empty()) {
      ::unlink(path_.c_str());
      ::rmdir(made_dir_.c_str());
    }
  }
  // The path, page cache warm; empty when the image could not be made.
  std::string Get() {
    if (ready_) return path_;
    ready_ = true;
    if (path_.empty()) {
      std::string tmpl = dir_ + "/hearth-device-bench-XXXXXX";
      if (::mkdtemp(tmpl.data()) == nullptr) {
        std::perror(("mkdtemp " + tmpl).c_str());
        return "";
      }
      made_dir_ = tmpl;
      path_ = tmpl + "/disk.img";
      std::fprintf(stderr, "writing a 1 GiB image at %s\n", path_.c_str());
      if (!WriteImage(path_)) {
        std::perror(("write " + path_).c_str());
        path_.clear();
        return "";
      }
    }
    WarmCache(path_);
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_, dir_, made_dir_;
  bool ready_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  std::string image_path, image_dir = "/var/tmp";
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--image=", 0) == 0) {
      image_path = a.substr(8);
    } else if (a.rfind("--image-dir=", 0) == 0) {
      image_dir = a.substr(12);
    } else {
      rest.push_back(argv[i]);
    }
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(rest_argc, rest.data())) return 1;

  auto memory = hearth::GuestMemory::Create({{0, hearth::bench::kGuestMemoryBytes}});
  if (!memory.ok()) {
    std::fprintf(stderr, "guest memory: %s\n", memory.error().message().c_str());
    return 1;
  }
  Image image(image_path, image_dir);
  hearth::bench::DeviceBenchEnv env{&*memory, [&image] { return image.Get(); }};
  if (!image.path().empty()) benchmark::AddCustomContext("image", image.path());
  benchmark::AddCustomContext("guest_memory_mib",
                              std::to_string(hearth::bench::kGuestMemoryBytes >> 20));
  hearth::bench::RegisterBlockBenchmarks(env);
  hearth::bench::RegisterNetBenchmarks(env);
  hearth::bench::RegisterQueueBenchmarks(env);
  hearth::bench::RegisterVsockBenchmarks(env);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
