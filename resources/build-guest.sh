#!/usr/bin/env bash
# Builds Hearth's test guest: a lean Linux 6.1 kernel with the in-kernel agent
# and a busybox user space.
#
#   resources/build-guest.sh [--out DIR] [--variant NAME]
#
# Produces in DIR (default: <repo>/build/guest, or <repo>/build/guest/qemu for
# the qemu-int3skip variant):
#   vmlinux             ELF kernel with the PVH entry note (what Hearth boots)
#   bzImage             the same kernel in the bzImage format
#   initramfs.cpio      busybox + /init (newc, owned by root, reproducible),
#                       uncompressed: the fastest to boot where guest kernel
#                       code is interpreted (no gunzip in the guest)
#   initramfs.cpio.gz   the same archive, gzip -9
#   rootfs.ext4         the same tree as an ext4 image, with /sbin/init, plus
#                       fio and iperf3 with their shared libraries (for hosts
#                       where guest user space runs)
#   kernel.config       the resolved kernel .config, for reference
#
# Variants:
#   default         the kernel Hearth boots
#   qemu-int3skip   the same kernel with the early int3 self-test skipped; ONLY
#                   for running the guest under QEMU on kvm_pvm hosts (QEMU
#                   cannot deliver that int3 there, Hearth can). See README.md.
#
# Results are cached in ${HEARTH_CACHE_DIR:-$HOME/.cache/hearth}/guest/<hash>/,
# the hash covering every input (see compute_hash); a cache hit only copies the
# files to DIR. The kernel is built out of tree (O=) in a per-variant work
# directory under the cache, guarded by a lock, so variants can build in
# parallel and a changed input rebuilds incrementally.

set -euo pipefail

# The whole script is one brace group: bash parses it completely before
# running it, so editing this file while a build runs is safe.
{

RESOURCES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly RESOURCES_DIR
REPO_DIR="$(dirname "${RESOURCES_DIR}")"
readonly REPO_DIR
SELF="${RESOURCES_DIR}/$(basename "${BASH_SOURCE[0]}")"
readonly SELF
readonly CACHE_DIR="${HEARTH_CACHE_DIR:-${HOME}/.cache/hearth}"
readonly LINUX_TARBALL="${HEARTH_LINUX_TARBALL:-/usr/src/linux-source-6.1.tar.xz}"
readonly BUSYBOX="${HEARTH_BUSYBOX:-/bin/busybox}"
JOBS="$(nproc)"
readonly JOBS

# Fixed metadata, so that rebuilding the same inputs gives the same bytes.
export KBUILD_BUILD_TIMESTAMP="1970-01-01 00:00:00 UTC"
export KBUILD_BUILD_USER="hearth"
export KBUILD_BUILD_HOST="hearth"
export KBUILD_BUILD_VERSION="1"
export SOURCE_DATE_EPOCH=0
export E2FSPROGS_FAKE_TIME=1  # mke2fs: fixed timestamps (0 would mean "unset")
export LC_ALL=C
# Fixed UUIDs for rootfs.ext4 (file system UUID and directory hash seed).
readonly ROOTFS_UUID="6a1f8e3c-0d2b-4c6e-9f4a-2b7d5e8c1a90"
readonly ROOTFS_HASH_SEED="0b3c5d7e-9f1a-4b2c-8d4e-6f7a8b9c0d1e"
# rootfs.ext4: the tree's size plus this much free space (MiB), at least
# ROOTFS_MIN_MIB.
readonly ROOTFS_MIN_MIB=32
readonly ROOTFS_FREE_MIB=16
# Dynamically linked tools copied into rootfs.ext4 (not the initramfs, which
# the guest kernel unpacks on every boot) with their libraries and loader.
readonly ROOTFS_TOOLS=(/usr/bin/fio /usr/bin/iperf3)

log() { printf 'build-guest: %s\n' "$*"; }
die() { printf 'build-guest: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${SELF}"
  exit "${1:-0}"
}

# ---------------------------------------------------------------- arguments --

out_dir=""
variant="default"
while (($#)); do
  case "$1" in
    --out) (($# >= 2)) || die "--out needs a directory"; out_dir="$2"; shift 2 ;;
    --out=*) out_dir="${1#--out=}"; shift ;;
    --variant) (($# >= 2)) || die "--variant needs a name"; variant="$2"; shift 2 ;;
    --variant=*) variant="${1#--variant=}"; shift ;;
    -h|--help) usage 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

case "${variant}" in
  default) default_out="${REPO_DIR}/build/guest" ;;
  qemu-int3skip) default_out="${REPO_DIR}/build/guest/qemu" ;;
  *) die "unknown variant '${variant}' (known: default, qemu-int3skip)" ;;
esac
out_dir="${out_dir:-${default_out}}"

# ------------------------------------------------------------- dependencies --

# One clear line per missing package; the names match resources/packages.txt.
need_cmd() {  # need_cmd COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found: install the Debian package '$2' (see resources/packages.txt)"
}
need_file() {  # need_file PATH PACKAGE
  [[ -e "$1" ]] || die "'$1' not found: install the Debian package '$2' (see resources/packages.txt)"
}

need_cmd make build-essential
need_cmd gcc build-essential
need_cmd readelf build-essential
need_cmd flex flex
need_cmd bison bison
need_cmd bc bc
need_cmd xz xz-utils
need_cmd cpio cpio
need_cmd gzip gzip
need_cmd mkfs.ext4 e2fsprogs
need_cmd flock util-linux
need_cmd sha256sum coreutils
need_file /usr/include/libelf.h libelf-dev
need_file /usr/include/openssl/opensslv.h libssl-dev
need_file "${LINUX_TARBALL}" linux-source-6.1
need_file "${BUSYBOX}" busybox-static
need_cmd fio fio
need_cmd iperf3 iperf3
need_cmd ldd libc-bin
need_cmd debugfs e2fsprogs
# A dynamically linked busybox would not run in the guest.
if readelf -l "${BUSYBOX}" | grep -q 'INTERP'; then
  die "${BUSYBOX} is dynamically linked: install the Debian package 'busybox-static'"
fi

# ---------------------------------------------------------- input snapshot --

# Hash and build from a private copy of resources/guest, so an edit made
# while a build runs cannot end up in a cache entry keyed by the old inputs.
SNAPSHOT="$(mktemp -d "${TMPDIR:-/tmp}/hearth-guest.XXXXXX")"
readonly SNAPSHOT
trap 'rm -rf "${SNAPSHOT}"' EXIT
cp -a "${RESOURCES_DIR}/guest" "${SNAPSHOT}/guest"
readonly GUEST_DIR="${SNAPSHOT}/guest"

# -------------------------------------------------------------------- hash --

# The files ROOTFS_TOOLS need at run time: the tools, every shared library
# ldd resolves for them, and the dynamic loader (absolute host paths, as the
# dynamic loader finds them; symlinks not resolved).
tool_files() {
  local tool
  for tool in "${ROOTFS_TOOLS[@]}"; do
    echo "${tool}"
    # Lines: "libx.so.1 => /path (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)".
    ldd "${tool}" | sed -n -e 's|.*=> \(/[^ ]*\) .*|\1|p' -e 's|^[[:space:]]*\(/[^ ]*\) .*|\1|p'
  done | sort -u
}

# Hashes every input of the build: the resources/guest tree (config, agent,
# init, patches), this script, the kernel source tarball (name, size, mtime),
# busybox (version and bytes), the rootfs tools and their libraries (path,
# size, mtime), the compiler, and the variant.
compute_hash() {
  (
    cd "${GUEST_DIR}"
    find . -type f -print0 | sort -z | xargs -0 sha256sum
    sha256sum "${SELF}"
    stat -L -c 'linux-tarball %n %s %Y' "${LINUX_TARBALL}"
    "${BUSYBOX}" 2>/dev/null | head -n 1 || true
    sha256sum "${BUSYBOX}"
    tool_files | xargs stat -L -c 'tool %n %s %Y'
    gcc --version | head -n 1
    echo "variant ${variant}"
  ) | sha256sum | cut -c 1-16
}

HASH="$(compute_hash)"
readonly HASH
readonly RESULT_DIR="${CACHE_DIR}/guest/${HASH}"
readonly ARTIFACTS=(vmlinux bzImage initramfs.cpio initramfs.cpio.gz rootfs.ext4 kernel.config)

# Copies the cached artifacts to the output dir. Real copies (or reflinks):
# tests modify rootfs.ext4 copies and must never touch the cache.
install_outputs() {
  mkdir -p "${out_dir}"
  local f
  for f in "${ARTIFACTS[@]}"; do
    cp --reflink=auto -f "${RESULT_DIR}/${f}" "${out_dir}/${f}.tmp.$$"
    mv -f "${out_dir}/${f}.tmp.$$" "${out_dir}/${f}"
  done
  log "variant ${variant}, inputs ${HASH}"
  log "output: ${out_dir}"
}

if [[ -f "${RESULT_DIR}/complete" ]]; then
  log "cache hit: ${RESULT_DIR}"
  install_outputs
  exit 0
fi

# ----------------------------------------------------------- kernel source --

# Extracts the tarball once into the cache; the pristine tree is never built
# in or modified (each variant works on a hard-link copy of it).
readonly SRC_ROOT="${CACHE_DIR}/src"
PRISTINE="${SRC_ROOT}/$(basename "${LINUX_TARBALL}" .tar.xz)"
readonly PRISTINE
TARBALL_ID="$(stat -L -c '%n %s %Y' "${LINUX_TARBALL}")"
readonly TARBALL_ID

extract_source() {
  mkdir -p "${SRC_ROOT}"
  exec 8>"${SRC_ROOT}/.lock"
  flock 8
  if [[ "$(cat "${PRISTINE}/.hearth-extracted" 2>/dev/null)" == "${TARBALL_ID}" ]]; then
    exec 8>&-
    return
  fi
  log "extracting ${LINUX_TARBALL} into ${SRC_ROOT} (about a minute)"
  local tmp="${SRC_ROOT}/.extract.$$"
  rm -rf "${tmp}" "${PRISTINE}"
  mkdir -p "${tmp}"
  tar -C "${tmp}" -xJf "${LINUX_TARBALL}"
  mv "${tmp}/$(basename "${PRISTINE}")" "${PRISTINE}"
  rm -rf "${tmp}"
  echo "${TARBALL_ID}" >"${PRISTINE}/.hearth-extracted"
  exec 8>&-
}

# ----------------------------------------------------------- kernel build --

readonly WORK_DIR="${CACHE_DIR}/guest/work/${variant}"
readonly SRC="${WORK_DIR}/src"  # hard-link copy of the pristine tree + changes
readonly OBJ="${WORK_DIR}/obj"  # out-of-tree objects, kept for incremental builds
readonly BUILD_LOG="${WORK_DIR}/build.log"

kmake() {
  make -C "${SRC}" O="${OBJ}" ARCH=x86_64 "$@"
}

# Applies one patch to the hard-link tree, first giving each file it touches
# its own inode so the pristine tree is left alone.
apply_patch() {
  local patch="$1" path
  while read -r path; do
    [[ -f "${SRC}/${path}" ]] || continue
    cp -p "${SRC}/${path}" "${SRC}/${path}.unlink"
    mv -f "${SRC}/${path}.unlink" "${SRC}/${path}"
  done < <(sed -n 's|^+++ b/||p' "${patch}")
  patch -d "${SRC}" -p1 -s --forward --no-backup-if-mismatch <"${patch}" \
    || die "patch ${patch} does not apply"
}

prepare_tree() {
  log "preparing source tree ${SRC}"
  rm -rf "${SRC}"
  cp -al "${PRISTINE}" "${SRC}" 2>/dev/null || cp -a "${PRISTINE}" "${SRC}"
  local patch
  for patch in "${GUEST_DIR}"/patches/common/*.patch; do
    apply_patch "${patch}"
  done
  if [[ "${variant}" != default ]]; then
    for patch in "${GUEST_DIR}/patches/${variant}"/*.patch; do
      apply_patch "${patch}"
    done
  fi
  cp "${GUEST_DIR}/agent/hearth_agent.c" "${SRC}/drivers/misc/hearth_agent.c"
}

# Fails if an option set in the fragment did not survive Kconfig (a missing
# dependency silently drops options, and the guest then hangs at boot).
verify_config() {
  local line key want have bad=()
  while IFS= read -r line; do
    [[ "${line}" =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]] || continue
    key="${BASH_REMATCH[1]}"
    want="${BASH_REMATCH[2]}"
    have="$(sed -n "s/^${key}=//p" "${OBJ}/.config")"
    if [[ "${want}" == n ]]; then
      [[ -z "${have}" ]] || bad+=("${key}=${have} (want n)")
    elif [[ "${have}" != "${want}" ]]; then
      bad+=("${key}=${have:-n} (want ${want})")
    fi
  done <"${GUEST_DIR}/kernel.config"
  ((${#bad[@]} == 0)) || die "kernel config: ${bad[*]}"
}

build_kernel() {
  mkdir -p "${OBJ}"
  log "configuring: allnoconfig + resources/guest/kernel.config"
  kmake -s allnoconfig KCONFIG_ALLCONFIG="${GUEST_DIR}/kernel.config" >"${BUILD_LOG}" 2>&1 \
    || { tail -n 20 "${BUILD_LOG}" >&2; die "kernel configuration failed (log: ${BUILD_LOG})"; }
  verify_config
  log "building kernel with ${JOBS} jobs (log: ${BUILD_LOG}; a cold build takes minutes)"
  if ! kmake -j"${JOBS}" bzImage >>"${BUILD_LOG}" 2>&1; then
    tail -n 30 "${BUILD_LOG}" >&2
    die "kernel build failed (log: ${BUILD_LOG})"
  fi
  readelf -n "${OBJ}/vmlinux" | grep -q 'Xen' \
    || die "vmlinux has no PVH (Xen ELF) note; is CONFIG_PVH set?"
}

# ----------------------------------------------------------------- rootfs --

readonly TREE="${WORK_DIR}/rootfs"

make_tree() {
  log "assembling the busybox tree"
  rm -rf "${TREE}"
  mkdir -p "${TREE}"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,etc,mnt,run}
  chmod 1777 "${TREE}/tmp"
  install -m 0755 "${BUSYBOX}" "${TREE}/bin/busybox"
  local applet
  while read -r applet; do
    # Our init script, not busybox's init, is /sbin/init.
    [[ "${applet}" == sbin/init || "${applet}" == linuxrc || "${applet}" == bin/busybox ]] && continue
    mkdir -p "${TREE}/$(dirname "${applet}")"
    ln -sf /bin/busybox "${TREE}/${applet}"
  done < <("${BUSYBOX}" --list-full)
  install -m 0755 "${GUEST_DIR}/rootfs/init" "${TREE}/init"
  install -m 0755 "${GUEST_DIR}/rootfs/init" "${TREE}/sbin/init"
  # Same timestamps on every build.
  find "${TREE}" -exec touch -h -d "@${SOURCE_DATE_EPOCH}" {} +
}

# rootfs.ext4's tree: the busybox tree plus ROOTFS_TOOLS, their libraries
# and the loader at their host paths, with merged-/usr links (/lib ->
# usr/lib, /lib64 -> usr/lib64) as on Debian 12.
readonly EXT4_TREE="${WORK_DIR}/rootfs-ext4"

make_ext4_tree() {
  log "adding ${ROOTFS_TOOLS[*]} and their libraries to the ext4 tree"
  rm -rf "${EXT4_TREE}"
  cp -a "${TREE}" "${EXT4_TREE}"
  mkdir -p "${EXT4_TREE}/usr/lib" "${EXT4_TREE}/usr/lib64"
  ln -s usr/lib "${EXT4_TREE}/lib"
  ln -s usr/lib64 "${EXT4_TREE}/lib64"
  local file dest
  while read -r file; do
    # /lib/... and /lib64/... live under /usr in the merged layout.
    case "${file}" in
      /lib/*|/lib64/*) dest="/usr${file}" ;;
      *) dest="${file}" ;;
    esac
    mkdir -p "${EXT4_TREE}$(dirname "${dest}")"
    cp -L "${file}" "${EXT4_TREE}${dest}"
  done < <(tool_files)
  find "${EXT4_TREE}" -exec touch -h -d "@${SOURCE_DATE_EPOCH}" {} +
}

# The tools must start in the tree: run them in a chroot of it (needs root;
# skipped with a note otherwise).
check_ext4_tree() {
  if [[ "$(id -u)" != 0 ]]; then
    log "not root: skipping the chroot check of ${ROOTFS_TOOLS[*]}"
    return
  fi
  local tool out
  for tool in "${ROOTFS_TOOLS[@]}"; do
    out="$(chroot "${EXT4_TREE}" "${tool}" --version 2>&1 | head -n 1)" \
      || die "${tool} does not run in a chroot of ${EXT4_TREE}: ${out}"
    log "chroot check: ${out}"
  done
}

make_initramfs() {  # make_initramfs OUTPUT_CPIO OUTPUT_CPIO_GZ
  log "packing initramfs.cpio and initramfs.cpio.gz"
  (cd "${TREE}" && find . -mindepth 1 | sort \
    | cpio --quiet -o -H newc -R 0:0 --reproducible) >"$1"
  gzip -9 -n <"$1" >"$2"
}

make_ext4() {  # make_ext4 OUTPUT
  local tree_mib size_mib listing tool
  tree_mib="$(du -s -B 1M "${EXT4_TREE}" | cut -f 1)"
  size_mib=$((tree_mib + tree_mib / 8 + ROOTFS_FREE_MIB))
  ((size_mib >= ROOTFS_MIN_MIB)) || size_mib="${ROOTFS_MIN_MIB}"
  log "making rootfs.ext4 (${size_mib} MiB for a ${tree_mib} MiB tree)"
  rm -f "$1"
  truncate -s "${size_mib}M" "$1"
  mkfs.ext4 -q -F -L hearth-root -U "${ROOTFS_UUID}" \
    -E "root_owner=0:0,hash_seed=${ROOTFS_HASH_SEED}" -d "${EXT4_TREE}" "$1" \
    || die "mkfs.ext4 failed"
  # The image holds /sbin/init and the tools.
  listing="$(debugfs -R 'ls -l /usr/bin' "$1" 2>/dev/null)"
  for tool in "${ROOTFS_TOOLS[@]}"; do
    grep -q " $(basename "${tool}")\$" <<<"${listing}" \
      || die "rootfs.ext4 has no ${tool}"
  done
  debugfs -R 'stat /sbin/init' "$1" 2>/dev/null | grep -q 'Type: regular' \
    || die "rootfs.ext4 has no /sbin/init"
}

# ------------------------------------------------------------------- main --

start="${SECONDS}"
mkdir -p "${WORK_DIR}"
exec 9>"${WORK_DIR}.lock"
log "cache miss for ${HASH}; waiting for the ${variant} work directory lock"
flock 9
# Another run may have produced the same result while we waited.
if [[ -f "${RESULT_DIR}/complete" ]]; then
  log "cache hit: ${RESULT_DIR}"
  install_outputs
  exit 0
fi

extract_source
prepare_tree
build_kernel
make_tree
make_ext4_tree
check_ext4_tree

staging="${CACHE_DIR}/guest/.staging.${HASH}.$$"
rm -rf "${staging}"
mkdir -p "${staging}"
cp "${OBJ}/vmlinux" "${staging}/vmlinux"
cp "${OBJ}/arch/x86/boot/bzImage" "${staging}/bzImage"
cp "${OBJ}/.config" "${staging}/kernel.config"
make_initramfs "${staging}/initramfs.cpio" "${staging}/initramfs.cpio.gz"
make_ext4 "${staging}/rootfs.ext4"
touch "${staging}/complete"
rm -rf "${RESULT_DIR}"
mv "${staging}" "${RESULT_DIR}"
log "built in $((SECONDS - start)) s, cached in ${RESULT_DIR}"
install_outputs
exit 0
}
