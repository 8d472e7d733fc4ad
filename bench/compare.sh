#!/usr/bin/env bash
# compare.sh: raftright's cluster benchmark beside a 3-member etcd on the same machine.
#
# Builds raftright (release), runs `raftright bench --runs RUNS` (medians of RUNS runs per
# concurrency), then bench/etcd-baseline.sh (Debian's etcd 3.4, installed on first use), and
# prints one Markdown table: committed puts/s, p50 and p99 of both, and the ratio of puts/s.
# Both drive 1, 16 and 64 clients with one put in flight each, 8-byte keys, 16-byte values.
#
# Usage: bench/compare.sh            (RUNS=3 SECONDS_PER_RUN=5 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

cargo build --release -q
echo "# raftright bench --runs $RUNS --seconds $SECONDS_PER_RUN" >&2
target/release/raftright bench --runs "$RUNS" --seconds "$SECONDS_PER_RUN" \
  | tee "$out/raftright.txt" >&2
echo "# bench/etcd-baseline.sh" >&2
CLIENTS="1 16 64" bench/etcd-baseline.sh | tee "$out/etcd.txt" >&2

# "median raftright C=16 puts/s=... p50_ms=... p99_ms=..." and "etcd C=16 puts/s=... ..."
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
echo
echo "| clients | raftright puts/s | p50 ms | p99 ms | etcd puts/s | etcd p50 ms | etcd p99 ms | ratio |"
echo "|--:|--:|--:|--:|--:|--:|--:|--:|"
for c in 1 16 64; do
  if [[ $RUNS -gt 1 ]]; then
    r=$(grep "^median raftright C=$c " "$out/raftright.txt")
  else
    r=$(grep "^raftright C=$c " "$out/raftright.txt")
  fi
  e=$(grep "^etcd C=$c " "$out/etcd.txt")
  rp=$(field puts/s <<<"$r"); ep=$(field puts/s <<<"$e")
  ratio=$(awk -v a="$rp" -v b="$ep" 'BEGIN { printf "%.1fx", (b > 0 ? a / b : 0) }')
  echo "| $c | $rp | $(field p50_ms <<<"$r") | $(field p99_ms <<<"$r") | $ep | $(field p50_ms <<<"$e") | $(field p99_ms <<<"$e") | $ratio |"
done
