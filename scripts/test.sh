#!/usr/bin/env bash
# Sets up what is missing, builds Hearth and the bundled guest, and runs every test.
#   scripts/test.sh [--sanitize [--unit] | --tsan] [--no-asan-unit] [--no-fuzz] [ctest arguments...]
#     (default)       the whole suite in build/; then the unit tests (ctest -L unit) again on an
#                     AddressSanitizer + UndefinedBehaviorSanitizer build of the unit-test
#                     executables only (build-asan/); then the short fuzz runs
#     --sanitize      instead: the whole suite (unit, KVM integration, Linux guest) on the
#                     ASan + UBSan build in build-asan/; with --unit only the unit tests (the step
#                     the default mode adds, alone)
#     --tsan          instead: the unit tests on a ThreadSanitizer build in build-tsan/
#     --no-asan-unit  skip the ASan + UBSan unit run of the default mode
#     --no-fuzz       skip the short fuzz runs (clang build in build-fuzz/, ctest label fuzz)
# Sanitizer runs fail on any report: UBSan does not recover, LeakSanitizer is on, and every
# process's report (hearth children included) goes to <build>/sanitizer-logs/, printed at the end.
# Tests that need /dev/kvm run here too (CI has it); they fail, not skip, without it.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode=default
asan_unit=1
unit_only=0
fuzz=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sanitize) mode=asan ;;
    --tsan) mode=tsan ;;
    --unit) unit_only=1 ;;
    --no-asan-unit) asan_unit=0 ;;
    --no-fuzz) fuzz=0 ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | cut -c3-; exit 0 ;;
    *) break ;;
  esac
  shift
done

# Runs ctest in build directory $1 with the sanitizer options set (ctest arguments follow), and
# fails if any process wrote a sanitizer report, whatever its exit status was.
run_sanitized_ctest() {
  local dir="$1" logs="$1/sanitizer-logs" rc=0
  shift
  rm -rf "${logs}"
  mkdir -p "${logs}"
  local common="halt_on_error=1:print_stacktrace=1:log_path=${logs}/report"
  (cd "${dir}" &&
    ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:strict_init_order=1:${common}" \
    UBSAN_OPTIONS="${common}" \
    TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:suppressions=${repo}/scripts/tsan.supp:log_path=${logs}/report" \
    ctest --output-on-failure -j"$(nproc)" "$@") || rc=$?
  if compgen -G "${logs}/report*" >/dev/null; then
    echo "sanitizer reports (${logs}):" >&2
    cat "${logs}"/report* >&2
    rc=1
  fi
  return "${rc}"
}

"${repo}/scripts/setup.sh"
status=0
case "${mode}" in
  asan)
    if ((unit_only)); then
      build_dir="$("${repo}/scripts/build.sh" --sanitize --unit | tail -n 1)"
      run_sanitized_ctest "${build_dir}" -L unit "$@" || status=$?
      exit "${status}"
    fi
    build_dir="$("${repo}/scripts/build.sh" --sanitize | tail -n 1)"
    "${repo}/resources/build-guest.sh"
    run_sanitized_ctest "${build_dir}" "$@" || status=$?
    exit "${status}"
    ;;
  tsan)
    build_dir="$("${repo}/scripts/build.sh" --tsan --unit | tail -n 1)"
    run_sanitized_ctest "${build_dir}" -L unit "$@" || status=$?
    exit "${status}"
    ;;
esac

build_dir="$("${repo}/scripts/build.sh" | tail -n 1)"
"${repo}/resources/build-guest.sh"
(cd "${build_dir}" && ctest --output-on-failure -j"$(nproc)" "$@") || status=$?
if ((asan_unit)); then
  # The unit tests again under ASan + UBSan, on every run (CI included): cheap next to the KVM
  # tests, and they drive the device code with hostile rings and registers.
  asan_dir="$("${repo}/scripts/build.sh" --sanitize --unit | tail -n 1)"
  run_sanitized_ctest "${asan_dir}" -L unit || status=$?
fi
if ((fuzz)); then
  # Every fuzz target for a few seconds from its seed corpus (fuzz/README.md).
  fuzz_dir="$("${repo}/fuzz/build.sh" | tail -n 1)"
  (cd "${fuzz_dir}" && ctest --output-on-failure -j"$(nproc)" -L fuzz) || status=$?
fi
exit "${status}"
