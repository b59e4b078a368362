#include "tests/support/vm_config.h"

#include <nlohmann/json.hpp>

namespace hearth::testing {

VmConfigJson& VmConfigJson::Kernel(std::string path) {
  kernel_ = std::move(path);
  return *this;
}
VmConfigJson& VmConfigJson::BootArgs(std::string args) {
  boot_args_ = std::move(args);
  return *this;
}
VmConfigJson& VmConfigJson::Initrd(std::string path) {
  initrd_ = std::move(path);
  return *this;
}
VmConfigJson& VmConfigJson::Vcpus(int count) {
  vcpus_ = count;
  return *this;
}
VmConfigJson& VmConfigJson::MemMib(long long mib) {
  mem_mib_ = mib;
  return *this;
}
VmConfigJson& VmConfigJson::Smt(bool smt) {
  smt_ = smt;
  return *this;
}
VmConfigJson& VmConfigJson::SetRaw(std::string section, std::string key,
                                   std::string raw_json) {
  edits_.push_back({std::move(section), std::move(key), std::move(raw_json)});
  return *this;
}
VmConfigJson& VmConfigJson::Remove(std::string section, std::string key) {
  edits_.push_back({std::move(section), std::move(key), std::nullopt});
  return *this;
}

std::string VmConfigJson::Str() const {
  nlohmann::ordered_json doc;
  auto& boot = doc["boot-source"];
  boot["kernel_image_path"] = kernel_;
  if (boot_args_) boot["boot_args"] = *boot_args_;
  if (initrd_) boot["initrd_path"] = *initrd_;
  auto& machine = doc["machine-config"];
  machine["vcpu_count"] = vcpus_;
  machine["mem_size_mib"] = mem_mib_;
  machine["smt"] = smt_;
  for (const Edit& e : edits_) {
    nlohmann::ordered_json& target = e.section.empty() ? doc : doc[e.section];
    if (e.raw_json) {
      target[e.key] = nlohmann::ordered_json::parse(*e.raw_json);
    } else if (target.is_object()) {
      target.erase(e.key);
    }
  }
  return doc.dump(2) + "\n";
}

}  // namespace hearth::testing
