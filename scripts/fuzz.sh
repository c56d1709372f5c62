#!/usr/bin/env bash
# Fuzzes podid's network-facing parsers (fuzz/fuzz_targets/*) with cargo-fuzz and libFuzzer, for a bounded time
# per target, on the pinned stable toolchain. Quiet on success: one summary line per target.
#
# Usage: scripts/fuzz.sh [seconds-per-target]      (default 20)
#
# - cargo-fuzz is installed once into target/tools/cargo-fuzz (pinned version) and reused.
# - Builds go to target/fuzz (their own cargo target directory: different RUSTFLAGS from the workspace build, so
#   they never invalidate it and never wait for its lock), logs to target/fuzz/logs.
# - The working corpus grows in fuzz/corpus/<target> and crash inputs land in fuzz/artifacts/<target> (both
#   git-ignored); fuzz/seeds/<target> is the committed seed corpus, read but never written.
# - Exits non-zero when a target crashes (a failed invariant is a panic), printing the saved input and the
#   command that replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

# cargo-fuzz release installed into the project (bump deliberately; the build flags below were checked with it).
CARGO_FUZZ_VERSION="0.13.2"
# Default fuzzing time per target, seconds.
DEFAULT_SECS_PER_TARGET=20
# libFuzzer stops a run whose resident memory passes this (MiB): these targets need a few tens of MiB.
RSS_LIMIT_MB=1024
# Longest input libFuzzer generates (bytes): request paths and queries beyond this add nothing.
MAX_LEN_BYTES=4096
# One input taking longer than this (seconds) is a finding (a quadratic parser, a loop).
TIMEOUT_PER_INPUT_SECS=10
TARGETS=(nmi_request nmi_pod_index)

SECS="${1:-$DEFAULT_SECS_PER_TARGET}"
if ! [[ "$SECS" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [seconds-per-target]   (a positive integer; default $DEFAULT_SECS_PER_TARGET)" >&2
  exit 2
fi

TOOLS="$ROOT/target/tools/cargo-fuzz"
TARGET_DIR="$ROOT/target/fuzz"
LOGS="$TARGET_DIR/logs"
mkdir -p "$LOGS"

say() { printf '[fuzz] %s\n' "$*" >&2; }
fail_with_log() { say "$1 (last lines of $2):"; tail -n 40 "$2" >&2; exit 1; }

# libfuzzer-sys compiles libFuzzer (C++) in its build script.
if ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1; then
  say "no C++ compiler found: libFuzzer needs one (Debian: apt-get install -y g++)"
  exit 1
fi

# === cargo-fuzz, installed once into the project ===
if ! grep -qs "^\"cargo-fuzz $CARGO_FUZZ_VERSION " "$TOOLS/.crates.toml" || [ ! -x "$TOOLS/bin/cargo-fuzz" ]; then
  say "installing cargo-fuzz $CARGO_FUZZ_VERSION into target/tools/cargo-fuzz (once)"
  cargo install cargo-fuzz --version "=$CARGO_FUZZ_VERSION" --locked --root "$TOOLS" \
    >"$LOGS/install.log" 2>&1 || fail_with_log "installing cargo-fuzz failed" "$LOGS/install.log"
fi
export PATH="$TOOLS/bin:$PATH"

# === build ===
# `--sanitizer none` keeps the build on the stable toolchain: cargo-fuzz's default AddressSanitizer adds
# `-Zsanitizer=address` (needs nightly or RUSTC_BOOTSTRAP=1) and would only catch memory errors in unsafe code,
# which podid-core forbids. Everything else cargo-fuzz passes is stable: the libFuzzer coverage instrumentation
# (`-Cpasses=sancov-module`, `-Cllvm-args=-sanitizer-coverage-*`), `--cfg fuzzing`, and its default profile,
# release optimisations with `-Cdebug-assertions` (so overflow checks and debug_assert! run while fuzzing).
BUILD_FLAGS=(--fuzz-dir fuzz --sanitizer none --target-dir "$TARGET_DIR")
cargo fuzz build "${BUILD_FLAGS[@]}" >"$LOGS/build.log" 2>&1 ||
  fail_with_log "building the fuzz targets failed" "$LOGS/build.log"
HOST="$(rustc -vV | sed -n 's/^host: //p')"
BIN_DIR="$TARGET_DIR/$HOST/release"

# === run ===
failed=()
for t in "${TARGETS[@]}"; do
  bin="$BIN_DIR/$t"
  log="$LOGS/$t.log"
  corpus="fuzz/corpus/$t"
  artifacts="fuzz/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  dirs=("$corpus")
  if [ -d "fuzz/seeds/$t" ]; then dirs+=("fuzz/seeds/$t"); fi
  start=$(date +%s)
  rc=0
  "$bin" -max_total_time="$SECS" -rss_limit_mb="$RSS_LIMIT_MB" -max_len="$MAX_LEN_BYTES" \
    -timeout="$TIMEOUT_PER_INPUT_SECS" -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "${dirs[@]}" >"$log" 2>&1 || rc=$?
  took=$(($(date +%s) - start))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  if [ "$rc" -eq 0 ]; then
    printf '[fuzz] %-14s ok: %s runs in %s s, corpus %s inputs\n' "$t" "${runs:-?}" "$took" \
      "$(find "$corpus" -type f | wc -l)"
    continue
  fi
  failed+=("$t")
  crash=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)
  say "$t FAILED (exit $rc after $took s, ${runs:-?} runs); log: ${log#"$ROOT"/}"
  # The panic (a failed invariant names itself) or libFuzzer's verdict (timeout, out of memory).
  grep -E -A 1 -m 1 "panicked at" "$log" | sed 's/^/[fuzz]   /' >&2 || true
  grep -E -m 1 "ERROR: libFuzzer" "$log" | sed 's/^/[fuzz]   /' >&2 || true
  if [ -n "$crash" ]; then
    say "  crash input: $crash"
    say "  replay:      ${bin#"$ROOT"/} $crash"
    say "  minimise:    PATH=target/tools/cargo-fuzz/bin:\$PATH cargo fuzz tmin --fuzz-dir fuzz --sanitizer none --target-dir target/fuzz $t $crash"
  else
    tail -n 20 "$log" >&2
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  say "FAILED: ${failed[*]}"
  exit 1
fi
