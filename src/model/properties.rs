//! The properties the model checker proves, named and worded as in the Raft paper (Figure 3).
//! Each is a plain predicate over the servers' states so it can be tested on its own.
//!
//! Crashed servers keep their last state in the model until they recover. Their facts stay
//! true (a committed entry stays committed), so the properties include them.

use super::history::{Committed, KvSpec};
use super::{ModelCfg, RaftModel, State};
use crate::kv::KvStore;
use crate::raft::{Command, Entry, Index, Log, Op, ServerState, Snapshot, Term};
use im::OrdMap;
use stateright::Property;
use stateright::actor::Id;
use stateright::semantics::LinearizabilityTester;
use std::cell::RefCell;
use std::sync::Arc;

pub const ELECTION_SAFETY: &str = "Election Safety";
pub const LEADER_APPEND_ONLY: &str = "Leader Append-Only";
pub const LOG_MATCHING: &str = "Log Matching";
pub const LOG_TERMS_NEVER_DECREASE: &str = "Log Terms Never Decrease";
pub const LEADER_COMPLETENESS: &str = "Leader Completeness";
pub const STATE_MACHINE_SAFETY: &str = "State Machine Safety";
pub const REPLAYS_COMMITS: &str = "State Machine Replays Commits";
pub const COMMIT_INDEX_MONOTONIC: &str = "commitIndex monotonic";
pub const LINEARIZABLE: &str = "Linearizable";
pub const COMMITTED_IS_DURABLE: &str = "Committed Is Durable";
pub const ACKNOWLEDGED_WRITES_SURVIVE: &str = "Acknowledged Writes Survive";
pub const CATCH_UP: &str = "Catch-up after faults";
pub const TERMS_FROM_ELECTIONS: &str = "Terms Come From Elections";
pub const TERMS_FROM_VOTERS: &str = "Voters' Terms Come From Voters";
pub const LEADER_ELECTED: &str = "a leader is elected";
pub const ENTRY_COMMITTED: &str = "an entry commits";
pub const CLIENT_REPLIED: &str = "a client receives a reply";
pub const READ_SEES_WRITE: &str = "a read returns a written value";
pub const WRITE_OUTLIVES_LEADER: &str = "a committed write outlives its leader's term";
pub const BATCH_SENT: &str = "an AppendEntries carries several entries";
pub const READ_BY_INDEX: &str = "a read is answered by ReadIndex";
pub const SNAPSHOT_SENT: &str = "a leader sends a snapshot";
pub const SNAPSHOT_AND_ENTRIES: &str = "a log keeps entries after its snapshot";
pub const CONFLICTING_LOG_REPLACED: &str = "a snapshot replaces a conflicting log";
pub const TRANSFER_ELECTS: &str = "a leadership transfer elects its target";
pub const CHANGE_COMMITS: &str = "a configuration change commits";
pub const CHANGES_COMMIT: &str = "two configuration changes commit";

pub const ALWAYS: [&str; 14] = [
    ELECTION_SAFETY,
    LEADER_APPEND_ONLY,
    LOG_MATCHING,
    LOG_TERMS_NEVER_DECREASE,
    LEADER_COMPLETENESS,
    STATE_MACHINE_SAFETY,
    REPLAYS_COMMITS,
    COMMIT_INDEX_MONOTONIC,
    LINEARIZABLE,
    COMMITTED_IS_DURABLE,
    ACKNOWLEDGED_WRITES_SURVIVE,
    TERMS_FROM_ELECTIONS,
    TERMS_FROM_VOTERS,
    CATCH_UP,
];

/// The properties of a model; client witnesses only where the workload can reach them.
pub fn all(cfg: &ModelCfg) -> Vec<Property<RaftModel>> {
    let mut properties = vec![
        Property::always(ELECTION_SAFETY, |_, s: &State| {
            !s.history.second_leader_in_a_term
        }),
        Property::always(LEADER_APPEND_ONLY, |_, s: &State| {
            !s.history.leader_log_rewritten
        }),
        Property::always(LOG_MATCHING, |_, s: &State| {
            with_servers(s, |servers| log_matching(&s.history.committed, servers))
        }),
        Property::always(LOG_TERMS_NEVER_DECREASE, |_, s: &State| {
            iter_servers(s)
                .all(|v| terms_never_decrease(Logical::new(v.log(), &s.history.committed)))
        }),
        Property::always(LEADER_COMPLETENESS, |_, s: &State| {
            iter_servers(s).all(|l| leader_completeness(&s.history.committed, l))
        }),
        Property::always(STATE_MACHINE_SAFETY, |_, s: &State| {
            !s.history.applied_diverged && iter_servers(s).all(applies_only_its_log)
        }),
        Property::always(REPLAYS_COMMITS, |m: &RaftModel, s: &State| {
            replays_commits(m.cfg.servers, s)
        }),
        Property::always(COMMIT_INDEX_MONOTONIC, |_, s: &State| {
            !s.history.commit_regressed
        }),
        Property::always(LINEARIZABLE, |_, s: &State| linearizable(&s.history.tester)),
        Property::always(COMMITTED_IS_DURABLE, |m: &RaftModel, s: &State| {
            committed_is_durable(&m.cfg, s)
        }),
        Property::always(ACKNOWLEDGED_WRITES_SURVIVE, |m: &RaftModel, s: &State| {
            acknowledged_writes_survive(&m.cfg, s)
        }),
        Property::always(TERMS_FROM_ELECTIONS, |_, s: &State| {
            iter_servers(s).all(|v| v.current_term() <= s.history.campaigned)
        }),
        Property::always(TERMS_FROM_VOTERS, |_, s: &State| terms_from_voters(s)),
        Property::always(CATCH_UP, super::liveness::catches_up),
        Property::sometimes(LEADER_ELECTED, |_, s| {
            iter_servers(s).any(|v| v.is_leader())
        }),
        Property::sometimes(ENTRY_COMMITTED, |_, s| {
            iter_servers(s).any(|v| v.commit_index > 0)
        }),
    ];
    if cfg.max_append_entries >= 2 {
        properties.push(Property::sometimes(BATCH_SENT, |_, s: &State| {
            super::messages_in_flight(&s.network).iter().any(
                |(_, _, m)| matches!(m, crate::raft::Msg::AppendEntries { entries, .. } if entries.len() >= 2),
            )
        }));
    }
    if cfg.max_compactions > 0 {
        properties.push(Property::sometimes(SNAPSHOT_SENT, |_, s: &State| {
            super::messages_in_flight(&s.network)
                .iter()
                .any(|(_, _, m)| matches!(m, crate::raft::Msg::InstallSnapshot { .. }))
        }));
        properties.push(Property::sometimes(SNAPSHOT_AND_ENTRIES, |_, s: &State| {
            iter_servers(s).any(|v| v.log().snapshot_index() > 0 && !v.log().is_empty())
        }));
    }
    if cfg.mute_first_leader && cfg.max_compactions > 0 {
        properties.push(Property::sometimes(
            CONFLICTING_LOG_REPLACED,
            |_, s: &State| s.history.conflicting_log_replaced,
        ));
    }
    let ops: Vec<Op> = (0..cfg.clients).flat_map(|c| cfg.workload(c)).collect();
    if !ops.is_empty() {
        properties.push(Property::sometimes(CLIENT_REPLIED, |_, s: &State| {
            s.history.tester.len() > s.history.in_flight.len()
        }));
    }
    let puts = ops.iter().any(|op| matches!(op, Op::Put { .. }));
    let gets = ops.iter().any(|op| matches!(op, Op::Get { .. }));
    // Room for two leaders' no-ops and the write; an isolated first leader commits only its
    // no-op before it is cut off; with configuration changes, the log bound is theirs.
    if puts
        && cfg.max_term >= 2
        && cfg.max_log_len >= 3
        && !cfg.isolate_first_leader
        && cfg.max_changes == 0
    {
        properties.push(Property::sometimes(
            WRITE_OUTLIVES_LEADER,
            |_, s: &State| write_outlives_leader(s),
        ));
    }
    if gets && cfg.read_index {
        // A leader that started a round of reads and waits for none has answered one.
        properties.push(Property::sometimes(READ_BY_INDEX, |_, s: &State| {
            iter_servers(s).any(|v| v.is_leader() && v.read_round > 0 && v.reads.is_empty())
        }));
    }
    if cfg.transfers {
        // The target of a transfer leads the term its TimeoutNow election asked for.
        properties.push(Property::sometimes(TRANSFER_ELECTS, |_, s: &State| {
            super::messages_in_flight(&s.network).iter().any(|(_, _, m)| {
                matches!(m, crate::raft::Msg::RequestVote { transfer: true, term, candidate_id, .. }
                    if s.actor_states[usize::from(*candidate_id)]
                        .as_server()
                        .is_some_and(|v| v.is_leader() && v.current_term() == *term))
            })
        }));
    }
    // The operator's changes do commit, two in turn when the bound allows them.
    if cfg.max_changes == 1 {
        properties.push(Property::sometimes(CHANGE_COMMITS, |_, s: &State| {
            committed_changes(s) >= 1
        }));
    }
    if cfg.max_changes >= 2 {
        properties.push(Property::sometimes(CHANGES_COMMIT, |_, s: &State| {
            committed_changes(s) >= 2
        }));
    }
    if puts && gets {
        properties.push(Property::sometimes(READ_SEES_WRITE, |_, s: &State| {
            s.history.read_saw_write
        }));
    }
    properties
}

/// How many configuration entries have committed.
fn committed_changes(state: &State) -> usize {
    let committed = state.history.committed.values();
    committed
        .filter(|c| matches!(c.entry.command, Command::Membership(_)))
        .count()
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

/// A log as the properties read it: the logical log, its snapshot's entries being the ones
/// committed at their indexes (the snapshot itself is judged by State Machine Replays Commits).
#[derive(Clone, Copy)]
pub struct Logical<'a> {
    pub log: &'a Log,
    pub committed: &'a OrdMap<Index, Committed>,
}

impl<'a> Logical<'a> {
    pub fn new(log: &'a Log, committed: &'a OrdMap<Index, Committed>) -> Self {
        Self { log, committed }
    }

    pub fn last_index(&self) -> Index {
        self.log.last_index()
    }

    pub fn get(&self, index: Index) -> Option<&'a Entry> {
        if index == 0 || index > self.log.snapshot_index() {
            self.log.get(index)
        } else {
            self.committed.get(&index).map(|c| &c.entry)
        }
    }

    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == 0 {
            Some(0)
        } else {
            self.get(index).map(|e| e.term)
        }
    }
}

/// Leader Append-Only, over one step: a leader never overwrites or deletes entries in its log;
/// it only appends new entries (§5.3). `before` and `after` are one server's states.
pub fn leader_append_only(
    committed: &OrdMap<Index, Committed>,
    before: &ServerState,
    after: &ServerState,
) -> bool {
    let same_reign =
        before.is_leader() && after.is_leader() && before.current_term() == after.current_term();
    let (b, a) = (
        Logical::new(before.log(), committed),
        Logical::new(after.log(), committed),
    );
    !same_reign || is_prefix(b, a, b.last_index())
}

/// Log Matching: if two logs contain an entry with the same index and term, then the logs are
/// identical in all entries up through the given index (§5.3).
pub fn log_matching(committed: &OrdMap<Index, Committed>, servers: &[&ServerState]) -> bool {
    pairs(servers).all(|(a, b)| {
        let (a, b) = (
            Logical::new(a.log(), committed),
            Logical::new(b.log(), committed),
        );
        let shared = a.last_index().min(b.last_index());
        match (1..=shared)
            .rev()
            .find(|&i| a.term_at(i).is_some() && a.term_at(i) == b.term_at(i))
        {
            Some(i) => is_prefix(a, b, i),
            None => true,
        }
    })
}

/// Log Terms Never Decrease: along every log, each entry's term is at least the one before
/// it (a leader appends in its own term, the latest in its log, and a follower's log is a
/// prefix of some leader's). The up-to-date check reads only the last term, so it relies on
/// this; a log kept behind a snapshot it conflicts with (Figure 13, step 7) breaks it.
pub fn terms_never_decrease(log: Logical) -> bool {
    let mut previous = 0;
    (1..=log.last_index()).all(|i| match log.term_at(i) {
        Some(term) => std::mem::replace(&mut previous, term) <= term,
        None => true,
    })
}

/// Leader Completeness: if a log entry is committed in a given term, then that entry will be
/// present in the logs of the leaders for all higher-numbered terms (§5.4). Judged against
/// every entry ever committed (the history), so a restart that resets a commitIndex, or a
/// crash that takes a server's copy away, hides nothing.
pub fn leader_completeness(committed: &OrdMap<Index, Committed>, server: &ServerState) -> bool {
    !server.is_leader()
        || committed.iter().all(|(&index, c)| {
            c.term >= server.current_term()
                || Logical::new(server.log(), committed).get(index) == Some(&c.entry)
        })
}

/// State Machine Safety, the part a single state shows: no server has applied past the end of
/// its own log. The rest (no two servers apply different entries at an index, and each state
/// machine is the replay of what its server committed) is recorded step by step in the
/// history, against every entry ever committed.
pub fn applies_only_its_log(server: &ServerState) -> bool {
    server.commit_index <= server.log().last_index()
}

/// State Machine Replays Commits: every server's state machine is the replay of the entries
/// committed at `1..=commitIndex` (the prefix it claims), and every snapshot, in memory or
/// saved, is the replay of the committed entries it covers and ends in the committed entry's
/// term. Replayed from the history, not from the server's own log, so a snapshot that reverts
/// or skips committed entries cannot vouch for itself.
pub fn replays_commits(servers: usize, state: &State) -> bool {
    let committed = &state.history.committed;
    let mut claims: Vec<(Index, &KvStore)> = Vec::new();
    let saved = state.actor_storages[..servers].iter().flatten();
    let logs = iter_servers(state)
        .map(|s| s.log())
        .chain(saved.map(|h| &h.log));
    for log in logs {
        let snap = log.snapshot();
        if !snap.is_empty() {
            if !snapshot_term_committed(committed, snap) {
                return false;
            }
            claims.push((snap.last.index, &snap.state));
        }
    }
    claims.extend(iter_servers(state).map(|s| (s.commit_index, &s.kv)));
    claims.sort_unstable_by_key(|(index, _)| *index);
    let mut kv = KvStore::default();
    let mut applied = 0;
    for (index, claimed) in claims {
        while applied < index {
            applied += 1;
            let Some(c) = committed.get(&applied) else {
                return false; // claims an index nobody committed
            };
            if let Command::Client {
                client_id, seq, op, ..
            } = &c.entry.command
            {
                kv.apply(*client_id, *seq, op);
            }
        }
        if *claimed != kv {
            return false;
        }
    }
    true
}

/// Whether a snapshot's last term is that of the entry committed at its last index.
fn snapshot_term_committed(committed: &OrdMap<Index, Committed>, snap: &Snapshot) -> bool {
    committed.get(&snap.last.index).map(|c| c.entry.term) == Some(snap.last.term)
}

/// Whether a majority of the voters that committed `c` (every server, when none are recorded)
/// have a saved log (stateright's storage; with `fsync`, only what an fsync covered: what
/// survives a crash of every server now) for which `holds`. Runs on every state: no allocation.
fn durable_on_majority(
    cfg: &ModelCfg,
    state: &State,
    c: Option<&Committed>,
    holds: impl Fn(&Log) -> bool,
) -> bool {
    let on = |v: Id| {
        state.actor_storages[usize::from(v)]
            .as_ref()
            .is_some_and(|h| holds(&h.log))
    };
    let (on, of) = match c.and_then(|c| c.voters.as_ref()) {
        Some(voters) => (voters.iter().filter(|&&v| on(v)).count(), voters.len()),
        None => {
            let all = (0..cfg.servers).map(Id::from);
            (all.filter(|&v| on(v)).count(), cfg.servers)
        }
    };
    on > of / 2
}

/// Committed Is Durable (etcd's `CommittedIsDurableInv`): every entry ever committed is in
/// the saved log of a majority of the voters of the configuration that committed it, so no set
/// of crashes can take it away.
pub fn committed_is_durable(cfg: &ModelCfg, state: &State) -> bool {
    let committed = &state.history.committed;
    committed.iter().all(|(&index, c)| {
        durable_on_majority(cfg, state, Some(c), |l| {
            Logical::new(l, committed).get(index) == Some(&c.entry)
        })
    })
}

/// Voters' Terms Come From Voters: every term a voter of its own configuration is in was
/// stood for by a voter of its own configuration. A server outside the configuration (one not
/// yet added, a learner, one removed) never raises the members' terms (thesis §4.2.3).
pub fn terms_from_voters(state: &State) -> bool {
    state
        .actor_states
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.as_server().map(|s| (Id::from(i), s)))
        .all(|(id, s)| !s.is_voter(id) || s.current_term() <= state.history.voter_campaigned)
}

/// Acknowledged Writes Survive: a write a client was told succeeded is in the saved log of a
/// majority of the voters that committed it (of the latest configuration to commit anything,
/// if it never committed), in every state after the answer.
pub fn acknowledged_writes_survive(cfg: &ModelCfg, state: &State) -> bool {
    let committed = &state.history.committed;
    state.history.acknowledged.iter().all(|&(client, seq)| {
        let is_it = |c: &&Committed| {
            matches!(c.entry.command, Command::Client { client_id, seq: s, .. }
                if client_id == client && s == seq)
        };
        let decided = committed
            .values()
            .find(is_it)
            .or(committed.values().next_back());
        let holds = |log: &Log| {
            let in_snapshot = log.snapshot().state.sessions.get(&client);
            in_snapshot.is_some_and(|s| s.seq >= seq)
                || log.iter().any(|e| {
                    matches!(e.command, Command::Client { client_id, seq: s, .. }
                        if client_id == client && s == seq)
                })
        };
        durable_on_majority(cfg, state, decided, holds)
    })
}

/// Witness for the log bound: some leader of a later term holds a client's committed entry,
/// so client entries do survive a change of leader in this model.
fn write_outlives_leader(state: &State) -> bool {
    let committed = &state.history.committed;
    iter_servers(state).filter(|l| l.is_leader()).any(|l| {
        committed.iter().any(|(_, c)| {
            matches!(c.entry.command, Command::Client { .. }) && c.term < l.current_term()
        })
    })
}

/// Whether `a` and `b` hold the same entries at `1..=upto` (both must have them).
fn is_prefix(a: Logical, b: Logical, upto: Index) -> bool {
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
