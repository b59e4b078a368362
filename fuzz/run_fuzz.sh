#!/usr/bin/env bash
# Runs one fuzz target for a few seconds from its committed seed corpus (ctest's fuzz label).
#   run_fuzz.sh <fuzzer binary> <seed corpus dir> <scratch dir> <seconds>
# New inputs go to the scratch directory; the seeds are only read. A crash, leak, sanitizer
# report or timeout fails the test and leaves the input in the scratch directory.
set -euo pipefail
fuzzer="$1" seeds="$2" scratch="$3" seconds="$4"
mkdir -p "${scratch}/new" "${scratch}/artifacts"
exec "${fuzzer}" -max_total_time="${seconds}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="${scratch}/artifacts/" "${scratch}/new" "${seeds}"
