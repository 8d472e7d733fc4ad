#!/usr/bin/env bash
# The README's cluster walkthrough as a script: three node processes, writes, kill -9 of
# whichever node leads, a write under the new leader, a restart of exactly that node, and a
# check that every acknowledged write is still there; then a fourth server added (as a learner,
# then promoted) and removed again; last, a follower's disk wiped, the loss found, and the
# server replaced.
#
#   scripts/walkthrough.sh                     # raftright on PATH (cargo install --path .)
#   RAFTRIGHT=target/debug/raftright P=127.0.0.1:4000,127.0.0.1:4001,127.0.0.1:4002 N=127.0.0.1:4003 scripts/walkthrough.sh
#
# It works in a fresh temporary directory (WORK to choose one) and stops every node it started.
set -euo pipefail

RAFTRIGHT=${RAFTRIGHT:-raftright}
P=${P:-127.0.0.1:3000,127.0.0.1:3001,127.0.0.1:3002}
N=${N:-127.0.0.1:3003}   # the server added, then removed
WORK=${WORK:-$(mktemp -d)}
raftright() { "$RAFTRIGHT" "$@"; }

cd "$WORK"
NODES=()
# Each node names its own process in its pid file (the shell's $! is a subshell here).
stop_nodes() {
  for pid in "${NODES[@]}" $(cat data/*/raftright.pid 2>/dev/null); do
    kill "$pid" 2>/dev/null || true
  done
}
trap stop_nodes EXIT
step() { echo; echo "\$ $*"; }
# Reads KEY and fails unless it holds VALUE.
expect_value() {
  local got
  got=$(raftright client --peers "$P" $K get "$1")
  [[ $got == "$2" ]] || { echo "walkthrough: $1 is '$got', expected '$2'" >&2; exit 1; }
  echo "$got"
}

# One process per server.
step raftright keygen cluster.key
raftright keygen cluster.key
K="--cluster-key-file cluster.key"
step raftright node --id 0 --peers "$P" --data-dir data/0 $K "&"
raftright node --id 0 --peers "$P" --data-dir data/0 $K &
NODES+=($!)
step raftright node --id 1 --peers "$P" --data-dir data/1 $K "&"
raftright node --id 1 --peers "$P" --data-dir data/1 $K &
NODES+=($!)
step raftright node --id 2 --peers "$P" --data-dir data/2 $K "&"
raftright node --id 2 --peers "$P" --data-dir data/2 $K &
NODES+=($!)

# Write, read, inspect.
step raftright client --peers "$P" $K put greeting hello
raftright client --peers "$P" $K put greeting hello
step raftright client --peers "$P" $K get greeting
expect_value greeting hello
step raftright client --peers "$P" $K put colour blue
raftright client --peers "$P" $K put colour blue
step raftright client --peers "$P" $K delete colour
raftright client --peers "$P" $K delete colour
step raftright client --peers "$P" $K status
raftright client --peers "$P" $K status

# Kill the leader, whichever it is, and watch the cluster recover.
step 'LEADER=$(raftright client --peers $P $K status | awk '"'"'$3 == "Leader" { print $1 }'"'"')'
LEADER=
for _ in $(seq 50); do   # a leader is known once a write has committed; asked again in case of a re-election
  LEADER=$(raftright client --peers "$P" $K status | awk '$3 == "Leader" { print $1 }')
  [[ -n $LEADER ]] && break
  sleep 0.2
done
[[ -n $LEADER ]] || { echo "walkthrough: no leader found" >&2; exit 1; }
echo "node $LEADER leads"
step kill -9 '$(cat data/$LEADER/raftright.pid)'
kill -9 "$(cat "data/$LEADER/raftright.pid")"
wait "${NODES[$LEADER]}" 2>/dev/null || true
step raftright client --peers "$P" $K put after-crash yes
raftright client --peers "$P" $K put after-crash yes
step raftright client --peers "$P" $K status
raftright client --peers "$P" $K status
step raftright node --id '$LEADER' --peers "$P" --data-dir 'data/$LEADER' $K "&"
raftright node --id "$LEADER" --peers "$P" --data-dir "data/$LEADER" $K &
NODES[LEADER]=$!

# Every acknowledged write is still there, and the restarted node follows again.
step raftright client --peers "$P" $K get greeting
expect_value greeting hello
step raftright client --peers "$P" $K get after-crash
expect_value after-crash yes
step raftright client --peers "$P" $K get colour
expect_value colour ""
for _ in $(seq 50); do
  ROW=$(raftright client --peers "$P" $K status -w json | grep "\"id\":$LEADER," || true)
  [[ $ROW == *'"answered":true'* ]] && break
  sleep 0.2
done
step raftright client --peers "$P" $K status
raftright client --peers "$P" $K status
[[ $ROW == *'"answered":true'* ]] || { echo "walkthrough: node $LEADER did not come back" >&2; exit 1; }
echo
echo "walkthrough: every acknowledged write survived the leader's kill -9; node $LEADER is back"

# Changing membership: a fourth server joins as a learner, is promoted, then removed.
step raftright node --join "$P" --addr "$N" --data-dir data/3 $K "&"
raftright node --join "$P" --addr "$N" --data-dir data/3 $K &
NODES+=($!)
step raftright client --peers "$P" $K add-server "$N" --learner
raftright client --peers "$P" $K add-server "$N" --learner
step raftright client --peers "$P" $K members
MEMBERS=$(raftright client --peers "$P" $K members)
echo "$MEMBERS"
[[ $MEMBERS == *"$N  learner"* ]] || { echo "walkthrough: $N is no learner" >&2; exit 1; }
step raftright client --peers "$P" $K status
raftright client --peers "$P" $K status
step raftright client --peers "$P" $K promote "$N"
raftright client --peers "$P" $K promote "$N"
step raftright client --peers "$P" $K remove-server "$N"
raftright client --peers "$P" $K remove-server "$N"
step kill '$(cat data/3/raftright.pid)'
kill "$(cat data/3/raftright.pid)"
MEMBERS=$(raftright client --peers "$P" $K members)
echo "$MEMBERS"
VOTERS=$(grep -c ' voter' <<<"$MEMBERS")
[[ $VOTERS == 3 && $MEMBERS != *"$N"* ]] || { echo "walkthrough: not back to 3 voters" >&2; exit 1; }
expect_value greeting hello
echo "walkthrough: grew to 4 servers and shrank back to 3"

# A lost disk: a follower wiped and restarted is found by the leader, then replaced.
LEADER=
for _ in $(seq 50); do
  LEADER=$(raftright client --peers "$P" $K status | awk '$3 == "Leader" { print $1 }')
  [[ -n $LEADER ]] && break
  sleep 0.2
done
[[ -n $LEADER ]] || { echo "walkthrough: no leader found" >&2; exit 1; }
I=$(( (LEADER + 1) % 3 ))
W=$(cut -d, -f$((I + 1)) <<<"$P")
echo "wiping node $I ($W), a follower"
kill "$(cat "data/$I/raftright.pid")"
while kill -0 "${NODES[$I]}" 2>/dev/null; do sleep 0.1; done
rm -rf "data/$I"
raftright node --id "$I" --peers "$P" --data-dir "data/$I" $K &
NODES[I]=$!
step raftright client --peers "$P" $K status
for _ in $(seq 50); do
  STATUS=$(raftright client --peers "$P" $K status)
  [[ $STATUS == *"followers lost their log"* && $STATUS == *"LOST ITS LOG"* ]] && break
  sleep 0.2
done
echo "$STATUS"
[[ $STATUS == *"followers lost their log"* ]] || { echo "walkthrough: the lost log was not reported" >&2; exit 1; }
step raftright client --peers "$P" $K remove-server "$W"
raftright client --peers "$P" $K remove-server "$W"
step kill '$(cat data/$I/raftright.pid)'
kill "$(cat "data/$I/raftright.pid")"
while kill -0 "${NODES[$I]}" 2>/dev/null; do sleep 0.1; done
step rm -rf 'data/$I'
rm -rf "data/$I"
step raftright node --join "$P" --addr "$W" --data-dir 'data/$I' $K "&"
raftright node --join "$P" --addr "$W" --data-dir "data/$I" $K &
NODES[I]=$!
step raftright client --peers "$P" $K add-server "$W" --learner
raftright client --peers "$P" $K add-server "$W" --learner
step raftright client --peers "$P" $K promote "$W"
for _ in $(seq 50); do   # promotion waits until the learner has caught up enough to be asked
  raftright client --peers "$P" $K promote "$W" && break
  sleep 0.2
done
MEMBERS=$(raftright client --peers "$P" $K members)
echo "$MEMBERS"
VOTERS=$(grep -c ' voter' <<<"$MEMBERS")
[[ $VOTERS == 3 && $MEMBERS == *"$W"* ]] || { echo "walkthrough: $W is not back as a voter" >&2; exit 1; }
expect_value greeting hello
expect_value after-crash yes
echo "walkthrough: a wiped follower was found, removed, and replaced; every acknowledged write is there"
