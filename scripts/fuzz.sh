#!/usr/bin/env bash
# Builds urunc's fuzz targets (fuzz/fuzz_targets/*.rs) with libFuzzer and runs each for a
# while. No cargo-fuzz needed: the same instrumentation it passes to rustc (SanitizerCoverage
# for libFuzzer, AddressSanitizer, debug assertions, overflow checks), on the stable toolchain
# with RUSTC_BOOTSTRAP=1 for the -Z flag.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 20 s, every target)
# A crash leaves its input in fuzz/artifacts/<target>/ and makes the script fail.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
triple="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTC_BOOTSTRAP=1
# --target keeps these flags off build scripts and proc macros
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Zsanitizer=address \
-Cdebug-assertions -Coverflow-checks"
# targets that need a file (urunc.json in a rootfs, an ELF) write it under here, not /tmp
export TMPDIR="$PWD/target/scratch"
mkdir -p "$TMPDIR"
trap 'rm -rf "$TMPDIR"' EXIT
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
cargo build --release --target "$triple" "${bins[@]}"
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  # committed seeds (fuzz/seeds/<target>/) start the corpus where inputs have a rigid layout
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  echo "fuzz $t for ${secs}s"
  status=0
  "target/$triple/release/$t" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 "corpus/$t" "${seeds[@]}" >"artifacts/$t.log" 2>&1 ||
    status=$?
  if [ "$status" -ne 0 ]; then
    grep -E -A8 "panicked|ERROR" "artifacts/$t.log" | head -n 40
    echo "fuzz target $t failed (status $status): input in fuzz/artifacts/$t/, log fuzz/artifacts/$t.log"
    exit 1
  fi
  grep -E "^Done|stat::(number_of_executed_units|new_units_added|peak_rss_mb)" "artifacts/$t.log"
done
