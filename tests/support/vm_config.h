// Builds vm.json files in Firecracker's shape for `hearth --config-file`:
//
//   {"boot-source": {"kernel_image_path": ..., "boot_args": ...,
//                    "initrd_path": ...},
//    "machine-config": {"vcpu_count": 1, "mem_size_mib": 128, "smt": false}}
//
// Optional fields are left out unless set. For negative tests, SetRaw() puts
// any JSON value (or a new unknown field) anywhere, and Remove() drops one.
//
//   std::string json =
//   VmConfigJson().Kernel(path).BootArgs("x").Vcpus(2).Str();

#ifndef HEARTH_TESTS_SUPPORT_VM_CONFIG_H_
#define HEARTH_TESTS_SUPPORT_VM_CONFIG_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::testing {

class VmConfigJson {
 public:
  VmConfigJson() = default;
  explicit VmConfigJson(std::string kernel_image_path)
      : kernel_(std::move(kernel_image_path)) {}

  VmConfigJson& Kernel(std::string path);
  VmConfigJson& BootArgs(std::string args);
  VmConfigJson& Initrd(std::string path);
  VmConfigJson& Vcpus(int count);
  VmConfigJson& MemMib(long long mib);
  VmConfigJson& Smt(bool smt);

  // Sets `section`.`key` (or top-level `key` when `section` is empty) to the
  // JSON text `raw_json` (e.g. "\"two\"", "-1", "{}"), overriding the typed
  // setters. `raw_json` must be valid JSON.
  VmConfigJson& SetRaw(std::string section, std::string key,
                       std::string raw_json);
  // Removes `section`.`key` (or a whole top-level `key` when `section` is
  // empty) from the output.
  VmConfigJson& Remove(std::string section, std::string key);

  // The JSON document.
  std::string Str() const;

 private:
  struct Edit {
    std::string section;
    std::string key;
    std::optional<std::string> raw_json;  // nullopt: remove
  };

  std::string kernel_;
  std::optional<std::string> boot_args_;
  std::optional<std::string> initrd_;
  int vcpus_ = 1;
  long long mem_mib_ = 128;
  bool smt_ = false;
  std::vector<Edit> edits_;
};

}  // namespace hearth::testing

#endif  // HEARTH_TESTS_SUPPORT_VM_CONFIG_H_
