#!/usr/bin/env bash
# Hearth's main job on the bundled guest: set up what is missing, build Hearth and the guest,
# boot the guest, show its console, print the boot time, and exit when the guest powers off.
#   scripts/demo.sh [--vcpus N] [--mem MIB]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vcpus=2
mem=256
while (($#)); do
  case "$1" in
    --vcpus) vcpus="$2"; shift 2 ;;
    --mem) mem="$2"; shift 2 ;;
    *) echo "demo: unknown argument $1" >&2; exit 2 ;;
  esac
done

"${repo}/scripts/setup.sh"
build_dir="$("${repo}/scripts/build.sh" | tail -n 1)"
"${repo}/resources/build-guest.sh" >/dev/null
guest="${repo}/build/guest"
hearth="${build_dir}/src/hearth"

# Where guest user space can run (hardware virtualization), busybox init prints its marker,
# runs a command and powers off. On a kvm_pvm host guest user space cannot make system calls,
# so the guest kernel's built-in agent reports and powers off before init starts.
host_kind="$("${hearth}" --print-host-kind)"
args="console=ttyS0 reboot=k panic=1 pci=off nomodule i8042.noaux i8042.nomux i8042.nopnp"
args+=" i8042.dumbkbd quiet hearth_agent.checks=cpus,mem"
if [[ "${host_kind}" == pvm ]]; then
  args+=" hearth_agent.action=poweroff"
else
  args+=" hearth_init.cmd=uname+-a hearth_init.then=poweroff"
fi
mkdir -p "${build_dir}/demo"
config="${build_dir}/demo/vm.json"
cat >"${config}" <<JSON
{
  "boot-source": {
    "kernel_image_path": "${guest}/vmlinux",
    "initrd_path": "${guest}/initramfs.cpio",
    "boot_args": "${args}"
  },
  "machine-config": {"vcpu_count": ${vcpus}, "mem_size_mib": ${mem}}
}
JSON
echo "demo: booting ${guest}/vmlinux on a ${host_kind} host with ${vcpus} vCPUs, ${mem} MiB"
if [[ "${host_kind}" == pvm ]]; then
  echo "demo: this host interprets guest kernel code (kvm_pvm): expect 30-60 s, not milliseconds"
fi
exec "${hearth}" --no-api --config-file "${config}" --boot-timer
