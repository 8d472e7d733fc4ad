//! The properties the model checker proves, named and worded as in the Raft paper (Figure 3).
//! Each is a plain predicate over the servers' states so it can be tested on its own.
//!
//! Crashed servers keep their last state in the model until they recover. Their facts stay
//! true (a committed entry stays committed), so the properties include them.

use super::history::KvSpec;
use super::{ModelCfg, RaftModel, State};
use crate::raft::{Index, Log, Op, ServerState};
use stateright::Property;
use stateright::actor::Id;
use stateright::semantics::LinearizabilityTester;
use std::cell::RefCell;
use std::sync::Arc;

pub const ELECTION_SAFETY: &str = "Election Safety";
pub const LEADER_APPEND_ONLY: &str = "Leader Append-Only";
pub const LOG_MATCHING: &str = "Log Matching";
pub const LEADER_COMPLETENESS: &str = "Leader Completeness";
pub const STATE_MACHINE_SAFETY: &str = "State Machine Safety";
pub const COMMIT_INDEX_MONOTONIC: &str = "commitIndex monotonic";
pub const LINEARIZABLE: &str = "Linearizable";
pub const LEADER_ELECTED: &str = "a leader is elected";
pub const ENTRY_COMMITTED: &str = "an entry commits";
pub const CLIENT_REPLIED: &str = "a client receives a reply";
pub const READ_SEES_WRITE: &str = "a read returns a written value";

pub const ALWAYS: [&str; 7] = [
    ELECTION_SAFETY,
    LEADER_APPEND_ONLY,
    LOG_MATCHING,
    LEADER_COMPLETENESS,
    STATE_MACHINE_SAFETY,
    COMMIT_INDEX_MONOTONIC,
    LINEARIZABLE,
];

/// The properties of a model; client witnesses only where the workload can reach them.
pub fn all(cfg: &ModelCfg) -> Vec<Property<RaftModel>> {
    let mut properties = vec![
        Property::always(ELECTION_SAFETY, |_, s| with_servers(s, election_safety)),
        Property::always(LEADER_APPEND_ONLY, |_, s: &State| {
            !s.history.leader_log_rewritten
        }),
        Property::always(LOG_MATCHING, |_, s| with_servers(s, log_matching)),
        Property::always(LEADER_COMPLETENESS, |_, s| {
            with_servers(s, leader_completeness)
        }),
        Property::always(STATE_MACHINE_SAFETY, |_, s| {
            with_servers(s, state_machine_safety)
        }),
        Property::always(COMMIT_INDEX_MONOTONIC, |_, s: &State| {
            !s.history.commit_regressed
        }),
        Property::always(LINEARIZABLE, |_, s: &State| linearizable(&s.history.tester)),
        Property::sometimes(LEADER_ELECTED, |_, s| {
            iter_servers(s).any(|v| v.is_leader())
        }),
        Property::sometimes(ENTRY_COMMITTED, |_, s| {
            iter_servers(s).any(|v| v.commit_index > 0)
        }),
    ];
    let ops: Vec<Op> = (0..cfg.clients).flat_map(|c| cfg.workload(c)).collect();
    if !ops.is_empty() {
        properties.push(Property::sometimes(CLIENT_REPLIED, |_, s: &State| {
            s.history.tester.len() > s.history.in_flight.len()
        }));
    }
    let puts = ops.iter().any(|op| matches!(op, Op::Put { .. }));
    let gets = ops.iter().any(|op| matches!(op, Op::Get { .. }));
    if puts && gets {
        properties.push(Property::sometimes(READ_SEES_WRITE, |_, s: &State| {
            s.history.read_saw_write
        }));
    }
    properties
}

pub fn servers(state: &State) -> Vec<&ServerState> {
    iter_servers(state).collect()
}

fn iter_servers(state: &State) -> impl Iterator<Item = &ServerState> {
    state.actor_states.iter().filter_map(|a| a.as_server())
}

/// `f(&servers(state))` without the allocation: properties run on every state.
fn with_servers<R>(state: &State, f: impl FnOnce(&[&ServerState]) -> R) -> R {
    const MAX: usize = 8;
    let mut iter = iter_servers(state);
    let Some(first) = iter.next() else {
        return f(&[]);
    };
    let mut buf = [first; MAX];
    let mut n = 1;
    for s in iter {
        if n == MAX {
            return f(&servers(state));
        }
        buf[n] = s;
        n += 1;
    }
    f(&buf[..n])
}

type Tester = LinearizabilityTester<Id, KvSpec>;

thread_local! {
    /// Recent testers and their verdicts. A tester changes only on an invocation or a return,
    /// so most states share (or equal) one just checked; the search is the costly part.
    static VERDICTS: RefCell<Vec<(Arc<Tester>, bool)>> = const { RefCell::new(Vec::new()) };
}

/// `tester.serialized_history().is_some()`, remembered for recently seen testers.
fn linearizable(tester: &Arc<Tester>) -> bool {
    const CACHED: usize = 16;
    VERDICTS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((_, ok)) = cache.iter().find(|(t, _)| Arc::ptr_eq(t, tester)) {
            return *ok;
        }
        if let Some(k) = cache.iter().position(|(t, _)| **t == **tester) {
            let ok = cache[k].1;
            // Share the pointer from now on so the next lookup is the cheap one.
            cache[k].0 = Arc::clone(tester);
            return ok;
        }
        let ok = tester.serialized_history().is_some();
        if cache.len() == CACHED {
            cache.remove(0);
        }
        cache.push((Arc::clone(tester), ok));
        ok
    })
}

/// Election Safety: at most one leader can be elected in a given term (§5.2).
pub fn election_safety(servers: &[&ServerState]) -> bool {
    let mut leader_terms: Vec<_> = servers
        .iter()
        .filter(|s| s.is_leader())
        .map(|s| s.current_term())
        .collect();
    leader_terms.sort_unstable();
    leader_terms.windows(2).all(|w| w[0] != w[1])
}

/// Leader Append-Only, over one step: a leader never overwrites or deletes entries in its log;
/// it only appends new entries (§5.3). `before` and `after` are one server's states.
pub fn leader_append_only(before: &ServerState, after: &ServerState) -> bool {
    let same_reign =
        before.is_leader() && after.is_leader() && before.current_term() == after.current_term();
    !same_reign || is_prefix(before.log(), after.log(), before.log().last_index())
}

/// Log Matching: if two logs contain an entry with the same index and term, then the logs are
/// identical in all entries up through the given index (§5.3).
pub fn log_matching(servers: &[&ServerState]) -> bool {
    pairs(servers).all(|(a, b)| {
        let shared = a.log().last_index().min(b.log().last_index());
        match (1..=shared)
            .rev()
            .find(|&i| a.log().term_at(i) == b.log().term_at(i))
        {
            Some(i) => is_prefix(a.log(), b.log(), i),
            None => true,
        }
    })
}

/// Leader Completeness: if a log entry is committed in a given term, then that entry will be
/// present in the logs of the leaders for all higher-numbered terms (§5.4). A server that has
/// committed up to c while in term t committed those entries in a term no later than t, so
/// every leader of a later term must hold them.
pub fn leader_completeness(servers: &[&ServerState]) -> bool {
    servers.iter().filter(|l| l.is_leader()).all(|leader| {
        servers
            .iter()
            .filter(|s| s.current_term() < leader.current_term())
            .all(|s| is_prefix(s.log(), leader.log(), s.commit_index))
    })
}

/// State Machine Safety: if a server has applied a log entry at a given index to its state
/// machine, no other server will ever apply a different log entry for the same index (§5.4.3).
/// Also: what a server has applied is in its log.
pub fn state_machine_safety(servers: &[&ServerState]) -> bool {
    servers
        .iter()
        .all(|s| s.commit_index <= s.log().last_index())
        && pairs(servers).all(|(a, b)| {
            let both = a.commit_index.min(b.commit_index);
            is_prefix(a.log(), b.log(), both)
        })
}

/// Whether `a` and `b` hold the same entries at `1..=upto` (both must have them).
fn is_prefix(a: &Log, b: &Log, upto: Index) -> bool {
    (1..=upto).all(|i| matches!((a.get(i), b.get(i)), (Some(x), Some(y)) if x == y))
}

fn pairs<'a>(
    servers: &'a [&'a ServerState],
) -> impl Iterator<Item = (&'a ServerState, &'a ServerState)> {
    servers
        .iter()
        .enumerate()
        .flat_map(move |(i, a)| servers[i + 1..].iter().map(move |b| (*a, *b)))
}
