//! Handler tests in the style of etcd's `raft_paper_test.go`: each test builds a server state,
//! steps one input, and asserts the exact effects and the state after. Each names the rule of
//! Figure 2 (or the section of the Raft paper) it checks.

mod all_servers;
mod append_entries;
mod hostile;
mod leaders;
mod membership;
mod pre_vote;
mod read_index;
mod request_vote;
mod snapshots;
mod transfer;

use super::{
    Command, Config, Durable, Effect, Entry, HardState, Index, Input, Log, Msg, Op, Progress, Role,
    ServerState, Term, Timer, Tracker,
};
use crate::raft::message::{Conflict, Reply};
use stateright::actor::Id;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::time::Duration;

/// Server `i` of the test cluster (clients are 10 and up).
pub fn id(i: usize) -> Id {
    Id::from(i)
}

/// A cluster of `n` servers, `S0..S(n-1)`, sending up to 8 entries per AppendEntries.
pub fn cluster(n: usize) -> Config {
    Config {
        servers: (0..n).map(id).collect(),
        election_timeout: Duration::from_millis(300)..Duration::from_millis(600),
        heartbeat: Duration::from_millis(100),
        max_append_entries: 8,
        pre_vote: false,
        check_quorum: false,
        read_index: false,
        mutant: None,
    }
}

/// A follower's progress as a leader holds it, neither recently active nor echoing a read round.
pub fn at(next_index: Index, match_index: Index) -> Progress {
    Progress {
        next_index,
        match_index,
        recent_active: false,
        read_ack: 0,
    }
}

/// A log of no-ops with these terms.
pub fn log(terms: &[Term]) -> Log {
    Log::from_entries(terms.iter().map(|&t| noop(t)))
}

pub fn noop(term: Term) -> Entry {
    Entry {
        term,
        command: Command::Noop,
    }
}

/// A client's Put of `key=value` as a log entry of `term`, answered to `C10`.
pub fn put(term: Term, seq: u64, key: &str, value: &str) -> Entry {
    Entry {
        term,
        command: Command::Client {
            client_id: 10,
            seq,
            op: Op::Put {
                key: key.into(),
                value: value.into(),
            },
            reply_to: id(10),
        },
    }
}

/// A follower in `term` with `log`, no vote, no leader known, nothing committed. Its
/// configuration is its cluster's initial one (set by [`step`]) unless its log holds one.
pub fn follower(term: Term, log: Log) -> ServerState {
    let hard = HardState {
        current_term: term,
        voted_for: None,
        log,
    };
    ServerState::restarted(hard, &cluster(3).initial_membership())
}

/// A candidate `me` in `term` that has voted for itself.
pub fn candidate(me: usize, term: Term, log: Log) -> ServerState {
    let mut s = follower(term, log);
    s.hard.voted_for = Some(id(me));
    s.role = Role::Candidate {
        votes: BTreeSet::from([id(me)]),
    };
    s
}

/// Server `me` leading `term` with `log` (its no-op included), every follower at `progress`.
pub fn leader(cfg: &Config, me: usize, term: Term, log: Log, progress: Progress) -> ServerState {
    let mut s = follower(term, log);
    s.hard.voted_for = Some(id(me));
    s.role = Role::Leader;
    s.progress = Tracker::default();
    s.membership = std::sync::Arc::new(cfg.initial_membership());
    for peer in s.membership.clone().peers(id(me)) {
        s.progress.insert(peer, progress);
    }
    s
}

/// Steps `state` of server `me` with `input`; returns the effects, and whether the state
/// changed.
pub fn step(cfg: &Config, me: usize, state: &mut ServerState, input: Input) -> (Vec<Effect>, bool) {
    if state.membership_index == 0 && state.log().membership().is_none() {
        state.membership = std::sync::Arc::new(cfg.initial_membership());
    }
    let mut cow = Cow::Borrowed(&*state);
    let effects = cfg.step(id(me), &mut cow, input);
    let changed = matches!(cow, Cow::Owned(_));
    if let Cow::Owned(next) = cow {
        *state = next;
    }
    (effects, changed)
}

/// `step` with a message from `from`.
pub fn deliver(
    cfg: &Config,
    me: usize,
    state: &mut ServerState,
    from: usize,
    msg: Msg,
) -> Vec<Effect> {
    step(cfg, me, state, Input::Msg(id(from), msg)).0
}

/// A message that needs nothing durable.
pub fn send(to: usize, msg: Msg) -> Effect {
    Effect::Send(id(to), msg, Durable::NOTHING)
}

/// An AppendEntries, which leaves once the leader's log through its prevLogIndex is durable.
pub fn send_append(to: usize, msg: Msg) -> Effect {
    let Msg::AppendEntries { prev_log_index, .. } = &msg else {
        panic!("not an AppendEntries: {msg:?}")
    };
    let needs = Durable::log_through(*prev_log_index);
    Effect::Send(id(to), msg, needs)
}

/// A message that leaves once `needs` is durable.
pub fn send_when(to: usize, msg: Msg, needs: Durable) -> Effect {
    Effect::Send(id(to), msg, needs)
}

pub fn request_vote(term: Term, candidate: usize, last_index: Index, last_term: Term) -> Msg {
    Msg::RequestVote {
        term,
        candidate_id: id(candidate),
        last_log_index: last_index,
        last_log_term: last_term,
        transfer: false,
    }
}

pub fn vote(term: Term, granted: bool) -> Msg {
    Msg::RequestVoteResponse {
        term,
        vote_granted: granted,
    }
}

pub fn append(
    term: Term,
    leader: usize,
    prev: (Index, Term),
    entries: Vec<Entry>,
    commit: Index,
) -> Msg {
    Msg::AppendEntries {
        term,
        leader_id: id(leader),
        prev_log_index: prev.0,
        prev_log_term: prev.1,
        entries,
        leader_commit: commit,
        read_round: 0,
    }
}

pub fn ack(term: Term, match_index: Index) -> Msg {
    Msg::AppendEntriesResponse {
        term,
        success: true,
        match_index,
        conflict: None,
        read_round: 0,
    }
}

pub fn reject(term: Term, conflict: Option<Conflict>) -> Msg {
    Msg::AppendEntriesResponse {
        term,
        success: false,
        match_index: 0,
        conflict,
        read_round: 0,
    }
}

pub fn ok(seq: u64, result: crate::raft::OpResult) -> Msg {
    Msg::ClientResponse {
        seq,
        reply: Reply::Ok { result },
    }
}
