// A temporary directory that is removed with everything in it on destruction.

#ifndef HEARTH_TESTS_SUPPORT_TEMP_DIR_H_
#define HEARTH_TESTS_SUPPORT_TEMP_DIR_H_

#include <sys/types.h>

#include <string>
#include <string_view>

namespace hearth::testing {

class TempDir {
 public:
  // Creates a fresh directory (mode 0700) under $TMPDIR or /tmp. Aborts the
  // process with a message when that fails: tests cannot go on without it.
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

  // Writes `content` to the file `name` inside the directory (replacing it),
  // sets its mode, and returns its full path. Aborts on failure.
  std::string Write(std::string_view name, std::string_view content,
                    mode_t mode = 0644) const;

  // The full path of `name` inside the directory (nothing is created).
  std::string Path(std::string_view name) const;

  // Makes the directory itself world-readable and searchable (0755), for
  // tests that run a child as another user.
  void MakeWorldReadable() const;

 private:
  std::string path_;
};

}  // namespace hearth::testing

#endif  // HEARTH_TESTS_SUPPORT_TEMP_DIR_H_
