#include "config/vm_resources.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <string>

#include "test_util.h"

namespace hearth {
namespace {

constexpr const char* kFullConfig = R"({
  "boot-source": {
    "kernel_image_path": "/images/vmlinux.bin",
    "boot_args": "console=ttyS0 reboot=k panic=1 pci=off",
    "initrd_path": "/images/initrd.img"
  },
  "drives": [],
  "machine-config": {
    "vcpu_count": 2,
    "mem_size_mib": 1024,
    "smt": false,
    "track_dirty_pages": true,
    "cpu_template": "None",
    "huge_pages": "None"
  },
  "network-interfaces": [],
  "vsock": null,
  "logger": {
    "log_path": "/tmp/fc.log",
    "level": "Debug",
    "show_level": true,
    "show_log_origin": false,
    "module": "api_server"
  },
  "metrics": null,
  "mmds-config": null,
  "balloon": null,
  "entropy": null
})";

// A config with the given machine-config body.
std::string WithMachine(const std::string& machine) {
  return R"({"boot-source": {"kernel_image_path": "/k"}, "machine-config": )" + machine + "}";
}

TEST(VmConfig, ParsesFullFirecrackerConfig) {
  auto r = ParseVmConfig(kFullConfig);
  ASSERT_OK(r);
  ASSERT_TRUE(r->boot_source.has_value());
  EXPECT_EQ(r->boot_source->kernel_image_path, "/images/vmlinux.bin");
  EXPECT_EQ(r->boot_source->boot_args, "console=ttyS0 reboot=k panic=1 pci=off");
  EXPECT_EQ(r->boot_source->initrd_path, "/images/initrd.img");
  EXPECT_EQ(r->machine.vcpu_count, 2u);
  EXPECT_EQ(r->machine.mem_size_mib, 1024u);
  EXPECT_FALSE(r->machine.smt);
  EXPECT_TRUE(r->machine.track_dirty_pages);
  ASSERT_TRUE(r->logger.has_value());
  EXPECT_EQ(r->logger->log_path, "/tmp/fc.log");
  EXPECT_EQ(r->logger->level, "Debug");
  EXPECT_TRUE(r->logger->show_level);
  EXPECT_FALSE(r->logger->show_log_origin);
}

TEST(VmConfig, DefaultsWithoutMachineConfig) {
  auto r = ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k"}})");
  ASSERT_OK(r);
  EXPECT_EQ(r->machine.vcpu_count, 1u);
  EXPECT_EQ(r->machine.mem_size_mib, 128u);
  EXPECT_FALSE(r->machine.smt);
  EXPECT_FALSE(r->machine.track_dirty_pages);
  EXPECT_FALSE(r->boot_source->boot_args.has_value());
  EXPECT_FALSE(r->boot_source->initrd_path.has_value());
  EXPECT_FALSE(r->logger.has_value());
}

TEST(VmConfig, RejectsMalformedJson) {
  EXPECT_ERROR_CONTAINS(ParseVmConfig(R"({"boot-source": )"), "malformed JSON");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(""), "malformed JSON");
  EXPECT_ERROR_CONTAINS(ParseVmConfig("{'a': 1}"), "malformed JSON");
}

TEST(VmConfig, RejectsNonObjectRoot) {
  EXPECT_ERROR_CONTAINS(ParseVmConfig("[]"), "the configuration must be a JSON object");
  EXPECT_ERROR_CONTAINS(ParseVmConfig("42"), "the configuration must be a JSON object");
  EXPECT_ERROR_CONTAINS(ParseVmConfig("null"), "the configuration must be a JSON object");
}

TEST(VmConfig, RejectsUnknownTopLevelField) {
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k"}, "boot-sauce": {}})"),
      "unknown field 'boot-sauce'");
}

TEST(VmConfig, RejectsUnknownNestedFields) {
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 128, "vcpus": 2})")),
                        "machine-config: unknown field 'vcpus'");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k", "kernel": "/x"}})"),
                        "boot-source: unknown field 'kernel'");
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k"}, "logger": {"path": "/x"}})"),
      "logger: unknown field 'path'");
}

TEST(VmConfig, RejectsWrongTypesNamingField) {
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithMachine(R"({"vcpu_count": "2", "mem_size_mib": 128})")),
                        "machine-config.vcpu_count: expected an integer, got string");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithMachine(R"({"vcpu_count": 2, "mem_size_mib": 128, "smt": 1})")),
                        "machine-config.smt: expected a boolean, got number");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithMachine(R"({"vcpu_count": 2, "mem_size_mib": 1.5})")),
                        "machine-config.mem_size_mib: expected an integer, got number");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(R"({"boot-source": {"kernel_image_path": 5}})"),
                        "boot-source.kernel_image_path: expected a string, got number");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k", "boot_args": null}})"),
                        "boot-source.boot_args: expected a string, got null");
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k"}, "logger": {"show_level": "yes"}})"),
      "logger.show_level: expected a boolean, got string");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(R"({"boot-source": "/k"})"), "boot-source: expected an object");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithMachine("[]")), "machine-config: expected an object");
}

TEST(VmConfig, RejectsNegativeNumbers) {
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithMachine(R"({"vcpu_count": -1, "mem_size_mib": 128})")),
                        "machine-config.vcpu_count: must not be negative");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": -128})")),
                        "machine-config.mem_size_mib: must not be negative");
}

TEST(VmConfig, RejectsMissingBootSource) {
  EXPECT_ERROR_CONTAINS(ParseVmConfig("{}"), "boot-source: missing");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(R"({"machine-config": {"vcpu_count": 1, "mem_size_mib": 128}})"),
                        "boot-source: missing");
}

TEST(VmConfig, RejectsMissingOrEmptyKernelPath) {
  EXPECT_ERROR_CONTAINS(ParseVmConfig(R"({"boot-source": {"boot_args": "quiet"}})"),
                        "boot-source.kernel_image_path: missing");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(R"({"boot-source": {"kernel_image_path": ""}})"),
                        "boot-source.kernel_image_path: empty");
}

TEST(VmConfig, RejectsMissingMachineFields) {
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithMachine(R"({"mem_size_mib": 128})")),
                        "machine-config.vcpu_count: missing");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithMachine(R"({"vcpu_count": 1})")),
                        "machine-config.mem_size_mib: missing");
}

TEST(VmConfig, VcpuCountRange) {
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithMachine(R"({"vcpu_count": 0, "mem_size_mib": 128})")),
                        "machine-config.vcpu_count: 0 is out of range (1 to 32)");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithMachine(R"({"vcpu_count": 33, "mem_size_mib": 128})")),
                        "machine-config.vcpu_count: 33");
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(WithMachine(R"({"vcpu_count": 4294967297, "mem_size_mib": 128})")),
      "machine-config.vcpu_count");  // Would wrap to 1 if truncated to 32 bits.
  auto r = ParseVmConfig(WithMachine(R"({"vcpu_count": 32, "mem_size_mib": 128})"));
  ASSERT_OK(r);
  EXPECT_EQ(r->machine.vcpu_count, 32u);
}

TEST(VmConfig, SmtNeedsOneOrEvenVcpus) {
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(WithMachine(R"({"vcpu_count": 3, "mem_size_mib": 128, "smt": true})")),
      "machine-config.vcpu_count: 3 must be 1 or even when smt is enabled");
  for (int n : {1, 2}) {
    auto r = ParseVmConfig(
        WithMachine(R"({"vcpu_count": )" + std::to_string(n) + R"(, "mem_size_mib": 128, "smt": true})"));
    ASSERT_OK(r);
    EXPECT_TRUE(r->machine.smt);
    EXPECT_EQ(r->machine.vcpu_count, static_cast<uint32_t>(n));
  }
  EXPECT_OK(ParseVmConfig(WithMachine(R"({"vcpu_count": 3, "mem_size_mib": 128, "smt": false})")));
}

TEST(VmConfig, MemorySizeRange) {
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 0})")),
                        "machine-config.mem_size_mib: must be greater than 0");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 16777217})")),
                        "machine-config.mem_size_mib: 16777217 MiB is more than Hearth supports (16 TiB)");
  auto r = ParseVmConfig(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 16777216})"));
  ASSERT_OK(r);
  EXPECT_EQ(r->machine.mem_size_mib, 16777216u);
}

TEST(VmConfig, CpuTemplateAndHugePagesOnlyNone) {
  EXPECT_OK(ParseVmConfig(
      WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 128, "cpu_template": "None", "huge_pages": "None"})")));
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 128, "cpu_template": "T2"})")),
      "machine-config.cpu_template: 'T2' is not supported (only None)");
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 128, "huge_pages": "2M"})")),
      "machine-config.huge_pages: '2M' is not supported (only None)");
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(WithMachine(R"({"vcpu_count": 1, "mem_size_mib": 128, "cpu_template": 0})")),
      "machine-config.cpu_template: expected a string");
}

TEST(VmConfig, EmptyUnsupportedResourcesAccepted) {
  EXPECT_OK(ParseVmConfig(
      R"({"boot-source": {"kernel_image_path": "/k"}, "drives": [], "network-interfaces": [], "vsock": null})"));
}

TEST(VmConfig, UnsupportedResourcesWithContentRefused) {
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k"}, "balloon": {}})"),
      "balloon: not supported");
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k"}, "mmds-config": {"network_interfaces": []}})"),
      "mmds-config: not supported");
}

TEST(VmConfig, RateLimitersParsed) {
  auto parsed = ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k"},
    "drives": [{"drive_id": "root", "path_on_host": "/r", "is_root_device": true,
                "rate_limiter": {"bandwidth": {"size": 1048576, "one_time_burst": 4096, "refill_time": 1000},
                                 "ops": {"size": 100, "refill_time": 1000}}}],
    "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0",
                            "rx_rate_limiter": {"ops": {"size": 10, "refill_time": 10}},
                            "tx_rate_limiter": {"bandwidth": {"size": 5, "refill_time": 50}}}]})");
  ASSERT_OK(parsed);
  const auto& drive_limiter = parsed->drives.at(0).rate_limiter;
  ASSERT_TRUE(drive_limiter.has_value());
  EXPECT_EQ(drive_limiter->bandwidth, (TokenBucketConfig{1048576, 4096, 1000}));
  EXPECT_EQ(drive_limiter->ops, (TokenBucketConfig{100, 0, 1000}));
  const auto& iface = parsed->network_interfaces.at(0);
  ASSERT_TRUE(iface.rx_rate_limiter && iface.tx_rate_limiter);
  EXPECT_FALSE(iface.rx_rate_limiter->bandwidth.has_value());
  EXPECT_EQ(iface.rx_rate_limiter->ops, (TokenBucketConfig{10, 0, 10}));
  EXPECT_EQ(iface.tx_rate_limiter->bandwidth, (TokenBucketConfig{5, 0, 50}));
}

TEST(VmConfig, VsockParsed) {
  auto parsed = ParseVmConfig(
      R"({"boot-source": {"kernel_image_path": "/k"}, "vsock": {"guest_cid": 3, "uds_path": "/v.sock", "vsock_id": "v1"}})");
  ASSERT_OK(parsed);
  ASSERT_TRUE(parsed->vsock.has_value());
  EXPECT_EQ(parsed->vsock->guest_cid, 3u);
  EXPECT_EQ(parsed->vsock->uds_path, "/v.sock");
  EXPECT_EQ(parsed->vsock->vsock_id, "v1");
}

TEST(VmConfig, BadVsockRefused) {
  auto with = [](const std::string& body) {
    return ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k"}, "vsock": )" + body + "}");
  };
  EXPECT_ERROR_CONTAINS(with(R"({"guest_cid": 2, "uds_path": "/v"})"), "vsock.guest_cid: 2 is reserved");
  EXPECT_ERROR_CONTAINS(with(R"({"guest_cid": 4294967296, "uds_path": "/v"})"), "does not fit in 32 bits");
  EXPECT_ERROR_CONTAINS(with(R"({"guest_cid": -3, "uds_path": "/v"})"), "vsock.guest_cid: must not be negative");
  EXPECT_ERROR_CONTAINS(with(R"({"uds_path": "/v"})"), "vsock.guest_cid: missing");
  EXPECT_ERROR_CONTAINS(with(R"({"guest_cid": 3})"), "vsock.uds_path: missing");
  EXPECT_ERROR_CONTAINS(with(R"({"guest_cid": 3, "uds_path": ""})"), "vsock.uds_path: empty");
  EXPECT_ERROR_CONTAINS(with(R"({"guest_cid": 3, "uds_path": ")" + std::string(100, 'a') + R"("})"),
                        "too long for a UNIX socket path");
  EXPECT_ERROR_CONTAINS(with(R"({"guest_cid": 3, "uds_path": "/v", "port": 5})"), "vsock: unknown field 'port'");
  EXPECT_ERROR_CONTAINS(with(R"({"guest_cid": "3", "uds_path": "/v"})"), "vsock.guest_cid: expected an integer");
}

TEST(VmConfig, MetricsParsed) {
  auto parsed = ParseVmConfig(
      R"({"boot-source": {"kernel_image_path": "/k"}, "metrics": {"metrics_path": "/m.fifo"}})");
  ASSERT_OK(parsed);
  ASSERT_TRUE(parsed->metrics.has_value());
  EXPECT_EQ(parsed->metrics->metrics_path, "/m.fifo");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k"}, "metrics": {}})"),
                        "metrics.metrics_path: missing");
}

// A config with the given "drives" array body.
std::string WithDrives(const std::string& drives) {
  return R"({"boot-source": {"kernel_image_path": "/k"}, "drives": [)" + drives + "]}";
}

TEST(VmConfig, ParsesDrivesRootFirst) {
  auto r = ParseVmConfig(WithDrives(R"(
      {"drive_id": "scratch", "path_on_host": "/s.img", "is_root_device": false, "is_read_only": true,
       "cache_type": "Writeback", "io_engine": "Async"},
      {"drive_id": "rootfs", "path_on_host": "/r.ext4", "is_root_device": true,
       "partuuid": "0eaa91a0-01", "rate_limiter": null})"));
  ASSERT_OK(r);
  ASSERT_EQ(r->drives.size(), 2u);
  const DriveConfig& root = r->drives[0];
  EXPECT_EQ(root.drive_id, "rootfs");
  EXPECT_EQ(root.path_on_host, "/r.ext4");
  EXPECT_TRUE(root.is_root_device);
  EXPECT_FALSE(root.is_read_only);
  EXPECT_EQ(root.partuuid, "0eaa91a0-01");
  EXPECT_EQ(root.cache_type, CacheType::kUnsafe);
  EXPECT_EQ(root.io_engine, IoEngine::kSync);
  const DriveConfig& scratch = r->drives[1];
  EXPECT_EQ(scratch.drive_id, "scratch");
  EXPECT_TRUE(scratch.is_read_only);
  EXPECT_EQ(scratch.cache_type, CacheType::kWriteback);
  EXPECT_EQ(scratch.io_engine, IoEngine::kAsync);
  EXPECT_FALSE(scratch.partuuid.has_value());
}

TEST(VmConfig, DriveWithSameIdReplacesEarlierOne) {
  auto r = ParseVmConfig(WithDrives(R"(
      {"drive_id": "d", "path_on_host": "/a", "is_root_device": false},
      {"drive_id": "d", "path_on_host": "/b", "is_root_device": false})"));
  ASSERT_OK(r);
  ASSERT_EQ(r->drives.size(), 1u);
  EXPECT_EQ(r->drives[0].path_on_host, "/b");
}

TEST(VmConfig, RejectsSecondRootDevice) {
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithDrives(R"(
      {"drive_id": "a", "path_on_host": "/a", "is_root_device": true},
      {"drive_id": "b", "path_on_host": "/b", "is_root_device": true})")),
                        "drives[1]: drive 'b': drive 'a' is already the root device");
}

TEST(VmConfig, RejectsBadDriveFields) {
  EXPECT_ERROR_CONTAINS(ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k"}, "drives": {}})"),
                        "drives: expected an array");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithDrives(R"("rootfs")")), "drives[0]: expected an object");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithDrives(R"({"path_on_host": "/a", "is_root_device": true})")),
                        "drives[0].drive_id: missing");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithDrives(R"({"drive_id": "a", "path_on_host": "/a"})")),
                        "drives[0].is_root_device: missing");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithDrives(R"({"drive_id": "a", "is_root_device": true})")),
                        "drives[0].path_on_host: missing");
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(WithDrives(R"({"drive_id": "a", "path_on_host": "", "is_root_device": true})")),
      "drives[0].path_on_host: empty");
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(WithDrives(R"({"drive_id": "a-b", "path_on_host": "/a", "is_root_device": true})")),
      "drives[0].drive_id: 'a-b' may contain only letters, digits and '_'");
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(WithDrives(R"({"drive_id": "", "path_on_host": "/a", "is_root_device": true})")),
      "drives[0].drive_id: must be 1 to 64 characters");
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(WithDrives(R"({"drive_id": "a", "path_on_host": "/a", "is_root_device": "yes"})")),
      "drives[0].is_root_device: expected a boolean, got string");
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(WithDrives(R"({"drive_id": "a", "path_on_host": "/a", "is_root_device": true, "size": 1})")),
      "drives[0]: unknown field 'size'");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithDrives(
                            R"({"drive_id": "a", "path_on_host": "/a", "is_root_device": true, "partuuid": "xyz"})")),
                        "drives[0].partuuid: 'xyz' is not a partition UUID");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithDrives(
                            R"({"drive_id": "a", "path_on_host": "/a", "is_root_device": true, "cache_type": "None"})")),
                        "drives[0].cache_type: 'None' is not Unsafe or Writeback");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithDrives(
                            R"({"drive_id": "a", "path_on_host": "/a", "is_root_device": true, "io_engine": "Uring"})")),
                        "drives[0].io_engine: 'Uring' is not Sync or Async");
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(WithDrives(R"({"drive_id": "a", "path_on_host": "/a", "is_root_device": true,
                                   "rate_limiter": {"bandwidth": {"size": 1}}})")),
      "drives[0].rate_limiter.bandwidth.refill_time: missing");
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(WithDrives(R"({"drive_id": "a", "path_on_host": "/a", "is_root_device": true,
                                   "rate_limiter": {"bandwidth": {"size": -1, "refill_time": 100}}})")),
      "drives[0].rate_limiter.bandwidth.size: must not be negative");
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(WithDrives(R"({"drive_id": "a", "path_on_host": "/a", "is_root_device": true,
                                   "rate_limiter": {"bytes": {"size": 1, "refill_time": 100}}})")),
      "drives[0].rate_limiter: unknown field 'bytes'");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithDrives(R"({"drive_id": "a", "is_root_device": true, "socket": "/vu"})")),
                        "drives[0].socket: vhost-user block devices are not supported");
}

TEST(ValidateResourceId, Limits) {
  EXPECT_OK(ValidateResourceId("rootfs_1", "id"));
  EXPECT_OK(ValidateResourceId(std::string(64, 'a'), "id"));
  EXPECT_ERROR_CONTAINS(ValidateResourceId(std::string(65, 'a'), "drive_id"),
                        "drive_id: must be 1 to 64 characters");
  EXPECT_ERROR_CONTAINS(ValidateResourceId("eth/0", "iface_id"), "iface_id: 'eth/0' may contain only");
}

std::string WithIfaces(const std::string& ifaces) {
  return R"({"boot-source": {"kernel_image_path": "/k"}, "network-interfaces": [)" + ifaces + "]}";
}

TEST(VmConfig, ParsesNetworkInterfaces) {
  auto r = ParseVmConfig(WithIfaces(R"(
      {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "AA:FC:00:00:00:01",
       "rx_rate_limiter": null, "tx_rate_limiter": null},
      {"iface_id": "eth1", "host_dev_name": "tap1"})"));
  ASSERT_OK(r);
  ASSERT_EQ(r->network_interfaces.size(), 2u);
  const auto& eth0 = r->network_interfaces[0];
  EXPECT_EQ(eth0.iface_id, "eth0");
  EXPECT_EQ(eth0.host_dev_name, "tap0");
  ASSERT_TRUE(eth0.guest_mac.has_value());
  EXPECT_EQ(*eth0.guest_mac, (std::array<uint8_t, 6>{0xaa, 0xfc, 0, 0, 0, 1}));
  EXPECT_FALSE(r->network_interfaces[1].guest_mac.has_value());
  EXPECT_FALSE(r->network_interfaces[1].mtu.has_value());
}

TEST(VmConfig, RejectsBadNetworkInterfaces) {
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithIfaces(R"({"iface_id": "eth0"})")),
                        "network-interfaces[0].host_dev_name: missing");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithIfaces(R"({"iface_id": "eth0", "host_dev_name": "tap0123456789abc"})")),
                        "network-interfaces[0].host_dev_name: 'tap0123456789abc' is not a valid interface name");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithIfaces(R"({"iface_id": "eth0", "host_dev_name": "../tap"})")),
                        "is not a valid interface name");
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(WithIfaces(R"({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "01:00:5e:00:00:01"})")),
      "network-interfaces[0].guest_mac: '01:00:5e:00:00:01' is a multicast MAC address");
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(WithIfaces(R"({"iface_id": "eth0", "host_dev_name": "tap0", "mtu": 67})")),
      "network-interfaces[0].mtu: 67 is not within 68 to 65535");
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(WithIfaces(R"({"iface_id": "eth0", "host_dev_name": "tap0", "mtu": 65536})")),
      "mtu: 65536 is not within 68 to 65535");
  // A valid MTU is refused while the device cannot offer VIRTIO_NET_F_MTU.
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(WithIfaces(R"({"iface_id": "eth0", "host_dev_name": "tap0", "mtu": 1500})")),
      "network-interfaces[0].mtu: not supported by this version of Hearth");
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(WithIfaces(R"({"iface_id": "eth0", "host_dev_name": "tap0", "tx_rate_limiter": []})")),
      "network-interfaces[0].tx_rate_limiter: expected an object");
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(WithIfaces(R"({"iface_id": "eth0", "host_dev_name": "tap0",
                                   "rx_rate_limiter": {"ops": {"size": 1, "refill_time": 1, "burst": 2}}})")),
      "network-interfaces[0].rx_rate_limiter.ops: unknown field 'burst'");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithIfaces(R"(
      {"iface_id": "eth0", "host_dev_name": "tap0"}, {"iface_id": "eth1", "host_dev_name": "tap0"})")),
                        "network-interfaces[1]: network interface 'eth1': host_dev_name 'tap0' is already used by 'eth0'");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(WithIfaces(R"(
      {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "02:00:00:00:00:01"},
      {"iface_id": "eth1", "host_dev_name": "tap1", "guest_mac": "02:00:00:00:00:01"})")),
                        "network interface 'eth1': guest_mac is already used by 'eth0'");
}

TEST(VmConfig, NetworkInterfaceWithSameIdReplaced) {
  auto r = ParseVmConfig(WithIfaces(R"(
      {"iface_id": "eth0", "host_dev_name": "tap0"}, {"iface_id": "eth0", "host_dev_name": "tap7"})"));
  ASSERT_OK(r);
  ASSERT_EQ(r->network_interfaces.size(), 1u);
  EXPECT_EQ(r->network_interfaces[0].host_dev_name, "tap7");
}

TEST(ParseMac, AcceptsBothCasesRejectsMalformed) {
  auto mac = ParseMac("02:aB:cD:0e:F0:99");
  ASSERT_OK(mac);
  EXPECT_EQ(*mac, (std::array<uint8_t, 6>{0x02, 0xab, 0xcd, 0x0e, 0xf0, 0x99}));
  EXPECT_ERROR_CONTAINS(ParseMac("02:00:00:00:00"), "'02:00:00:00:00' is not a MAC address");
  EXPECT_ERROR_CONTAINS(ParseMac("02-00-00-00-00-01"), "is not a MAC address");
  EXPECT_ERROR_CONTAINS(ParseMac("02:00:00:00:00:0g"), "is not a MAC address");
  EXPECT_ERROR_CONTAINS(ParseMac("02:00:00:00:00:011"), "is not a MAC address");
  EXPECT_ERROR_CONTAINS(ParseMac("03:00:00:00:00:01"), "is a multicast MAC address");
}

TEST(VmConfig, LoggerParsed) {
  auto r = ParseVmConfig(
      R"({"boot-source": {"kernel_image_path": "/k"}, "logger": {"level": "Warning", "show_log_origin": true}})");
  ASSERT_OK(r);
  ASSERT_TRUE(r->logger.has_value());
  EXPECT_EQ(r->logger->level, "Warning");
  EXPECT_FALSE(r->logger->log_path.has_value());
  EXPECT_FALSE(r->logger->show_level);
  EXPECT_TRUE(r->logger->show_log_origin);
  EXPECT_ERROR_CONTAINS(
      ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k"}, "logger": {"level": 3}})"),
      "logger.level: expected a string, got number");
  EXPECT_ERROR_CONTAINS(ParseVmConfig(R"({"boot-source": {"kernel_image_path": "/k"}, "logger": []})"),
                        "logger: expected an object");
}

TEST(ValidateMachineConfig, ChecksDirectly) {
  MachineConfig c;
  EXPECT_OK(ValidateMachineConfig(c));
  c.vcpu_count = 0;
  EXPECT_ERROR_CONTAINS(ValidateMachineConfig(c), "vcpu_count: 0 is out of range");
  c.vcpu_count = 5;
  c.smt = true;
  EXPECT_ERROR_CONTAINS(ValidateMachineConfig(c), "vcpu_count: 5 must be 1 or even");
}

TEST(VmConfigFile, LoadsFile) {
  unit::TempDir dir;
  std::string path = dir.WriteText("vm.json", kFullConfig);
  auto r = LoadVmConfigFile(path);
  ASSERT_OK(r);
  EXPECT_EQ(r->boot_source->kernel_image_path, "/images/vmlinux.bin");
  EXPECT_EQ(r->machine.mem_size_mib, 1024u);
}

TEST(VmConfigFile, MissingFileNamesPath) {
  unit::TempDir dir;
  std::string path = dir.File("absent.json");
  EXPECT_ERROR_CONTAINS(LoadVmConfigFile(path), "open " + path + ": No such file or directory");
}

TEST(VmConfigFile, RejectsFileOverOneMiB) {
  unit::TempDir dir;
  std::string body = R"({"boot-source": {"kernel_image_path": "/k"}})";
  body.append((1 << 20) + 1 - body.size(), ' ');
  std::string path = dir.WriteText("big.json", body);
  EXPECT_ERROR_CONTAINS(LoadVmConfigFile(path), "config file " + path + " is larger than 1 MiB");
  // Exactly 1 MiB is still accepted.
  body.pop_back();
  path = dir.WriteText("edge.json", body);
  EXPECT_OK(LoadVmConfigFile(path));
}

TEST(VmConfigFile, ParseErrorNamesFile) {
  unit::TempDir dir;
  std::string path = dir.WriteText("bad.json", R"({"boot-source": {}})");
  EXPECT_ERROR_CONTAINS(LoadVmConfigFile(path),
                        "config file " + path + ": boot-source.kernel_image_path: missing");
}

TEST(VmConfigFile, DirectoryRefused) {
  unit::TempDir dir;
  EXPECT_ERROR_CONTAINS(LoadVmConfigFile(dir.path()), dir.path() + ": not a regular file");
}

}  // namespace
}  // namespace hearth
