//! A linearizability checker for histories of a key-value store whose keys are independent
//! registers: a put writes, a get reads, and every written value is unique.
//!
//! Linearizability is compositional (Herlihy & Wing's locality), so each key is checked on its
//! own. Each key's history is searched with Wing & Gong's algorithm as Lowe improved it and
//! Porcupine implements it: operations are taken in real-time order, a call may be linearized
//! while no return precedes it, and a (linearized set, register value) pair already explored is
//! not explored again. The linearized set is remembered as a 128-bit Zobrist hash, so the memo
//! costs a few bytes per configuration whatever the history's length.
//!
//! An operation with no return (a client timed out) is indeterminate: a read is dropped (it
//! observed nothing); a write may take effect at any time after its invocation, or never.
//! A write nobody read is dropped too: it can always go last, where it changes nothing.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOp {
    Write(String),
    /// What the read returned (`None`: the key was absent).
    Read(Option<String>),
}

#[derive(Clone, Debug)]
pub struct Operation {
    pub client: String,
    pub op: RegisterOp,
    pub invoked: Duration,
    /// `None`: no answer came (indeterminate).
    pub returned: Option<Duration>,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.op {
            RegisterOp::Write(v) => format!("write {v}"),
            RegisterOp::Read(Some(v)) => format!("read -> {v}"),
            RegisterOp::Read(None) => "read -> (absent)".to_string(),
        };
        let returned = match self.returned {
            Some(r) => format!("{:.3}s", r.as_secs_f64()),
            None => "never".to_string(),
        };
        write!(
            f,
            "{}: {what} [{:.3}s, {returned}]",
            self.client,
            self.invoked.as_secs_f64()
        )
    }
}

/// Why a history is not linearizable (or could not be decided).
#[derive(Debug)]
pub struct Violation {
    pub key: String,
    pub explanation: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key {}: {}", self.key, self.explanation)
    }
}

/// Search steps per key before the checker gives up (reported as a failure, never a pass).
const STEP_BUDGET: u64 = 200_000_000;

/// Checks every key's register history on its own.
pub fn check_per_key(history: &[(String, Operation)]) -> Result<CheckStats, Violation> {
    let mut per_key: BTreeMap<&str, Vec<Operation>> = BTreeMap::new();
    for (key, op) in history {
        per_key.entry(key).or_default().push(op.clone());
    }
    let mut stats = CheckStats::default();
    for (key, ops) in per_key {
        let steps = check_register(&ops).map_err(|explanation| Violation {
            key: key.to_string(),
            explanation,
        })?;
        stats.keys += 1;
        stats.ops = stats.ops.max(ops.len());
        stats.steps += steps;
    }
    Ok(stats)
}

#[derive(Debug, Default, Clone, Copy)]
pub struct CheckStats {
    pub keys: usize,
    /// The most operations one key had.
    pub ops: usize,
    pub steps: u64,
}

/// Checks one register's history; `Ok(search steps)` or an explanation of the failure.
pub fn check_register(history: &[Operation]) -> Result<u64, String> {
    let read_values: HashSet<&str> = history
        .iter()
        .filter(|o| o.returned.is_some())
        .filter_map(|o| match &o.op {
            RegisterOp::Read(Some(v)) => Some(v.as_str()),
            _ => None,
        })
        .collect();
    let ops: Vec<&Operation> = history
        .iter()
        .filter(|o| match &o.op {
            RegisterOp::Read(_) => o.returned.is_some(),
            RegisterOp::Write(v) => o.returned.is_some() || read_values.contains(v.as_str()),
        })
        .collect();

    // Values become small numbers; a read of a value nobody wrote fails at once.
    let mut value_ids: HashMap<&str, u32> = HashMap::new();
    for o in &ops {
        if let RegisterOp::Write(v) = &o.op {
            let next = value_ids.len() as u32;
            if value_ids.insert(v, next).is_some() {
                return Err(format!(
                    "the value {v} was written twice; values must be unique"
                ));
            }
        }
    }
    let mut steps_of: Vec<Step> = Vec::with_capacity(ops.len());
    for o in &ops {
        steps_of.push(match &o.op {
            RegisterOp::Write(v) => Step::Write(value_ids[v.as_str()]),
            RegisterOp::Read(None) => Step::Read(None),
            RegisterOp::Read(Some(v)) => match value_ids.get(v.as_str()) {
                Some(&id) => Step::Read(Some(id)),
                None => return Err(format!("{o} read a value that was never written")),
            },
        });
    }
    let search = Search::new(&ops, steps_of);
    search.run().map_err(|failure| failure.explain(&ops))
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Write(u32),
    Read(Option<u32>),
}

type Value = Option<u32>;

impl Step {
    /// The register's value after this step from `value`, or `None` if the step is illegal.
    fn apply(self, value: Value) -> Option<Value> {
        match self {
            Step::Write(v) => Some(Some(v)),
            Step::Read(seen) => (seen == value).then_some(value),
        }
    }
}

/// Call and return events in one doubly linked list, in real-time order (Porcupine's layout):
/// entry `2k` is operation k's call, `2k + 1` its return; `HEAD` and `TAIL` are sentinels.
struct Search {
    steps: Vec<Step>,
    next: Vec<usize>,
    prev: Vec<usize>,
    zobrist: Vec<u128>,
    head: usize,
    tail: usize,
}

struct Failure {
    /// The most operations linearized at once, the value then, and the calls that were
    /// candidates to go next (all failed).
    deepest: usize,
    value: Value,
    candidates: Vec<usize>,
    blocking_return: Option<usize>,
    budget_exhausted: bool,
}

impl Search {
    fn new(ops: &[&Operation], steps: Vec<Step>) -> Self {
        let n = ops.len();
        let mut events: Vec<(Duration, bool, usize)> = Vec::with_capacity(2 * n);
        for (k, o) in ops.iter().enumerate() {
            events.push((o.invoked, false, 2 * k));
            events.push((o.returned.unwrap_or(Duration::MAX), true, 2 * k + 1));
        }
        // At equal times a call goes first: touching operations count as concurrent.
        events.sort_by_key(|&(time, is_return, _)| (time, is_return));
        let (head, tail) = (2 * n, 2 * n + 1);
        let mut next = vec![tail; 2 * n + 2];
        let mut prev = vec![head; 2 * n + 2];
        let mut last = head;
        for &(_, _, entry) in &events {
            next[last] = entry;
            prev[entry] = last;
            last = entry;
        }
        next[last] = tail;
        prev[tail] = last;
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let zobrist = (0..n)
            .map(|_| (u128::from(splitmix64(&mut seed)) << 64) | u128::from(splitmix64(&mut seed)))
            .collect();
        Self {
            steps,
            next,
            prev,
            zobrist,
            head,
            tail,
        }
    }

    fn unlink(&mut self, entry: usize) {
        let (p, n) = (self.prev[entry], self.next[entry]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    fn relink(&mut self, entry: usize) {
        let (p, n) = (self.prev[entry], self.next[entry]);
        self.next[p] = entry;
        self.prev[n] = entry;
    }

    fn lift(&mut self, op: usize) {
        self.unlink(2 * op);
        self.unlink(2 * op + 1);
    }

    fn unlift(&mut self, op: usize) {
        self.relink(2 * op + 1);
        self.relink(2 * op);
    }

    /// The calls before the first return in the list, and that return's operation.
    fn frontier(&self) -> (Vec<usize>, Option<usize>) {
        let mut calls = Vec::new();
        let mut e = self.next[self.head];
        while e != self.tail {
            if e % 2 == 1 {
                return (calls, Some(e / 2));
            }
            calls.push(e / 2);
            e = self.next[e];
        }
        (calls, None)
    }

    fn run(mut self) -> Result<u64, Failure> {
        let mut seen: HashSet<(u128, Value)> = HashSet::new();
        let mut stack: Vec<(usize, Value)> = Vec::new();
        let mut value: Value = None;
        let mut linearized: u128 = 0;
        let mut steps: u64 = 0;
        let mut deepest = (0, None, Vec::new(), None);
        let mut entry = self.next[self.head];
        while self.next[self.head] != self.tail {
            steps += 1;
            if steps > STEP_BUDGET {
                let (depth, value, candidates, blocking_return) = deepest;
                return Err(Failure {
                    deepest: depth,
                    value,
                    candidates,
                    blocking_return,
                    budget_exhausted: true,
                });
            }
            if entry.is_multiple_of(2) {
                let op = entry / 2;
                if let Some(after) = self.steps[op].apply(value) {
                    let with_op = linearized ^ self.zobrist[op];
                    if seen.insert((with_op, after)) {
                        stack.push((op, value));
                        value = after;
                        linearized = with_op;
                        self.lift(op);
                        if stack.len() > deepest.0 {
                            let (calls, ret) = self.frontier();
                            deepest = (stack.len(), value, calls, ret);
                        }
                        entry = self.next[self.head];
                        continue;
                    }
                }
                entry = self.next[entry];
            } else {
                // A return whose operation is not linearized: undo the latest choice.
                let Some((op, before)) = stack.pop() else {
                    let (depth, value, candidates, blocking_return) = if deepest.0 == 0 {
                        let (calls, ret) = self.frontier();
                        (0, None, calls, ret)
                    } else {
                        deepest
                    };
                    return Err(Failure {
                        deepest: depth,
                        value,
                        candidates,
                        blocking_return,
                        budget_exhausted: false,
                    });
                };
                value = before;
                linearized ^= self.zobrist[op];
                self.unlift(op);
                entry = self.next[2 * op];
            }
        }
        Ok(steps)
    }
}

impl Failure {
    fn explain(&self, ops: &[&Operation]) -> String {
        let value = match self.value {
            Some(v) => ops
                .iter()
                .find_map(|o| match &o.op {
                    RegisterOp::Write(w) if value_index(ops, w) == Some(v) => Some(w.clone()),
                    _ => None,
                })
                .unwrap_or_default(),
            None => "(absent)".to_string(),
        };
        let mut text = if self.budget_exhausted {
            format!(
                "undecided: the search exceeded {STEP_BUDGET} steps (deepest: {} of {} operations linearized)",
                self.deepest,
                ops.len()
            )
        } else {
            format!(
                "not linearizable: at most {} of {} operations can be linearized; the register \
                 then holds {value}",
                self.deepest,
                ops.len()
            )
        };
        if let Some(r) = self.blocking_return {
            text += &format!(
                "\n  this operation returned, yet cannot be linearized: {}",
                ops[r]
            );
        }
        for &c in &self.candidates {
            text += &format!("\n  candidate (invoked, not yet linearized): {}", ops[c]);
        }
        text
    }
}

fn value_index(ops: &[&Operation], value: &str) -> Option<u32> {
    ops.iter()
        .filter(|o| matches!(o.op, RegisterOp::Write(_)))
        .position(|o| matches!(&o.op, RegisterOp::Write(w) if w == value))
        .map(|i| i as u32)
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: u64) -> Duration {
        Duration::from_millis(t)
    }

    fn write(client: &str, v: &str, from: u64, to: Option<u64>) -> Operation {
        Operation {
            client: client.into(),
            op: RegisterOp::Write(v.into()),
            invoked: ms(from),
            returned: to.map(ms),
        }
    }

    fn read(client: &str, v: Option<&str>, from: u64, to: u64) -> Operation {
        Operation {
            client: client.into(),
            op: RegisterOp::Read(v.map(str::to_string)),
            invoked: ms(from),
            returned: Some(ms(to)),
        }
    }

    #[test]
    fn a_sequential_history_is_linearizable() {
        let h = [
            read("a", None, 0, 1),
            write("a", "1", 2, Some(3)),
            read("b", Some("1"), 4, 5),
            write("b", "2", 6, Some(7)),
            read("a", Some("2"), 8, 9),
        ];
        check_register(&h).unwrap();
    }

    #[test]
    fn a_read_concurrent_with_a_write_may_see_either_value() {
        for seen in [Some("1"), Some("2")] {
            let h = [
                write("a", "1", 0, Some(1)),
                write("a", "2", 2, Some(10)),
                read("b", seen, 3, 4),
                read("b", Some("2"), 11, 12),
            ];
            check_register(&h).unwrap();
        }
    }

    #[test]
    fn concurrent_reads_that_disagree_on_the_order_fail() {
        // Two writes overlap; one reader sees 1 then 2, another (later) sees 2 then 1.
        let h = [
            write("a", "1", 0, Some(10)),
            write("b", "2", 0, Some(10)),
            read("c", Some("1"), 1, 2),
            read("c", Some("2"), 3, 4),
            read("d", Some("1"), 5, 6),
        ];
        check_register(&h).unwrap_err();
    }

    #[test]
    fn a_stale_read_fails() {
        let h = [
            write("a", "1", 0, Some(1)),
            write("a", "2", 2, Some(3)),
            read("b", Some("1"), 4, 5),
        ];
        let e = check_register(&h).unwrap_err();
        assert!(e.contains("not linearizable"), "{e}");
        assert!(e.contains("b: read -> 1"), "{e}");
    }

    #[test]
    fn a_lost_acknowledged_write_fails() {
        let h = [write("a", "1", 0, Some(1)), read("b", None, 2, 3)];
        check_register(&h).unwrap_err();
        let h = [
            write("a", "1", 0, Some(1)),
            write("a", "2", 2, Some(3)),
            read("b", Some("1"), 4, 5),
            read("b", Some("1"), 6, 7),
        ];
        check_register(&h).unwrap_err();
    }

    #[test]
    fn a_read_of_a_value_never_written_fails() {
        let h = [write("a", "1", 0, Some(1)), read("b", Some("7"), 2, 3)];
        let e = check_register(&h).unwrap_err();
        assert!(e.contains("never written"), "{e}");
    }

    #[test]
    fn a_read_before_the_write_was_invoked_fails() {
        let h = [read("b", Some("1"), 0, 1), write("a", "1", 2, None)];
        check_register(&h).unwrap_err();
    }

    #[test]
    fn an_indeterminate_write_may_take_effect_late_or_never() {
        // Never: nobody reads it.
        let h = [
            write("a", "1", 0, None),
            write("b", "2", 5, Some(6)),
            read("b", Some("2"), 7, 8),
        ];
        check_register(&h).unwrap();
        // Late: read long after the writer gave up, and after a later acknowledged write.
        let h = [
            write("a", "1", 0, None),
            write("b", "2", 5, Some(6)),
            read("b", Some("2"), 7, 8),
            read("b", Some("1"), 100, 101),
            read("c", Some("1"), 102, 103),
        ];
        check_register(&h).unwrap();
    }

    #[test]
    fn an_indeterminate_write_takes_effect_once() {
        // Seen, overwritten, then seen again: it would have to take effect twice.
        let h = [
            write("a", "1", 0, None),
            read("b", Some("1"), 1, 2),
            write("b", "2", 3, Some(4)),
            read("b", Some("1"), 5, 6),
        ];
        check_register(&h).unwrap_err();
    }

    #[test]
    fn a_read_of_an_indeterminate_write_then_of_an_older_value_fails() {
        let h = [
            write("a", "1", 0, Some(1)),
            write("a", "2", 2, None),
            read("b", Some("2"), 3, 4),
            read("b", Some("1"), 5, 6),
        ];
        check_register(&h).unwrap_err();
    }

    #[test]
    fn keys_are_checked_separately() {
        let h = vec![
            ("x".to_string(), write("a", "x1", 0, Some(1))),
            ("y".to_string(), write("a", "y1", 2, Some(3))),
            ("x".to_string(), read("b", Some("x1"), 4, 5)),
            ("y".to_string(), read("b", Some("y1"), 4, 5)),
        ];
        let stats = check_per_key(&h).unwrap();
        assert_eq!(stats.keys, 2);
        let mut bad = h.clone();
        bad.push(("y".to_string(), read("c", Some("x1"), 6, 7)));
        let e = check_per_key(&bad).unwrap_err();
        assert_eq!(e.key, "y");
    }

    /// A register driven by several clients at once, with each operation taking effect at a
    /// random instant inside its interval: linearizable by construction.
    fn simulated(ops: usize, clients: usize, timeouts: bool, seed: u64) -> Vec<Operation> {
        let mut rng = seed;
        let mut free_at = vec![0u64; clients];
        let mut events: Vec<(u64, usize, bool)> = Vec::new(); // (effect time, op, is_write)
        let mut history = Vec::new();
        for k in 0..ops {
            let c = (splitmix64(&mut rng) % clients as u64) as usize;
            let invoked = free_at[c] + splitmix64(&mut rng) % 5;
            let length = 1 + splitmix64(&mut rng) % 20;
            let effect = invoked + splitmix64(&mut rng) % length;
            let is_write = splitmix64(&mut rng).is_multiple_of(2);
            let lost = timeouts && is_write && splitmix64(&mut rng).is_multiple_of(20);
            free_at[c] = invoked + length + 1;
            events.push((effect * 1000 + k as u64 % 1000, k, is_write));
            history.push(Operation {
                client: format!("c{c}"),
                op: RegisterOp::Write(format!("v{k}")),
                invoked: ms(invoked),
                returned: (!lost).then(|| ms(invoked + length)),
            });
        }
        // Reads return the value of the latest write to take effect before them.
        events.sort();
        let mut current: Option<String> = None;
        for (_, k, is_write) in events {
            if is_write {
                current = Some(format!("v{k}"));
            } else {
                history[k].op = RegisterOp::Read(current.clone());
            }
        }
        history
    }

    #[test]
    fn thousands_of_concurrent_operations_are_checked_quickly() {
        for seed in 0..3 {
            let h = simulated(5_000, 6, true, seed);
            let start = std::time::Instant::now();
            let steps = check_register(&h).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            eprintln!(
                "seed {seed}: {} operations, {steps} steps, {:?}",
                h.len(),
                start.elapsed()
            );
        }
    }

    #[test]
    fn one_stale_read_among_thousands_is_found() {
        let mut h = simulated(3_000, 5, true, 7);
        // Replace a late read's result by the value of an early acknowledged write that a later
        // acknowledged write overwrote long before.
        let early = h
            .iter()
            .position(|o| matches!(o.op, RegisterOp::Write(_)) && o.returned.is_some())
            .unwrap();
        let RegisterOp::Write(old) = h[early].op.clone() else {
            unreachable!()
        };
        let late = h
            .iter()
            .rposition(|o| matches!(o.op, RegisterOp::Read(_)))
            .unwrap();
        h[late].op = RegisterOp::Read(Some(old));
        check_register(&h).unwrap_err();
    }
}
