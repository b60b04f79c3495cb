#!/usr/bin/env bash
# Build the fuzz targets and run each for SECONDS (default 30), one after
# the other, from its committed seeds (tests/fuzz/seeds/TARGET) and what
# earlier runs found (tests/fuzz/corpus/TARGET, not committed).
#
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz
# --locked`). Memory is bounded (-rss_limit_mb=2048) and each input to
# what its target reads. On a crash: libFuzzer's report, the reproducer's
# path (tests/fuzz/artifacts/TARGET/crash-...), and exit status 1 once
# every target has run; replay one with
#   cargo +nightly fuzz run --fuzz-dir tests/fuzz TARGET ARTIFACT
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-30}
shift || true
case "$seconds" in
  '' | *[!0-9]*)
    echo "run.sh: SECONDS must be a whole number, not '$seconds'" >&2
    exit 2
    ;;
esac
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(wire list config audit)

# The largest input worth trying, per target: a UDP query (a datagram
# longer than 4096 octets is never read as a query); a list, a config, a
# trail of a few files (enough for hundreds of entries, every key, dozens
# of records).
max_len() {
  case "$1" in
    wire) echo 4096 ;;
    list) echo 65536 ;;
    config) echo 32768 ;;
    audit) echo 65536 ;;
    *)
      echo "run.sh: unknown target '$1' (wire, list, config, audit)" >&2
      exit 2
      ;;
  esac
}

fuzz=(cargo +nightly fuzz)
echo "fuzz: building the targets"
"${fuzz[@]}" build --fuzz-dir tests/fuzz

failed=()
for t in "${targets[@]}"; do
  len=$(max_len "$t")
  mkdir -p "tests/fuzz/corpus/$t"
  # Tokens a mutation seldom spells out (JSON keys, boundary numbers).
  dict=()
  [ -f "tests/fuzz/dict/$t.dict" ] && dict=(-dict="tests/fuzz/dict/$t.dict")
  echo "fuzz: $t for ${seconds}s"
  log=$(mktemp)
  if "${fuzz[@]}" run --fuzz-dir tests/fuzz "$t" \
    "tests/fuzz/corpus/$t" "tests/fuzz/seeds/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -max_len="$len" \
    -timeout=10 -print_final_stats=1 "${dict[@]}" >"$log" 2>&1; then
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
  else
    # The panic and libFuzzer's summary, without the stack traces.
    grep -vE '^ +(#?[0-9]+[: ]| +at )' "$log" | tail -n 40
    artifact=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -n 1 | sed 's/^Test unit written to //' || true)
    echo "fuzz: $t FAILED; reproducer: ${artifact:-see the output above}" >&2
    failed+=("$t")
  fi
  rm -f "$log"
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no crash in ${targets[*]} (${seconds}s each)"
