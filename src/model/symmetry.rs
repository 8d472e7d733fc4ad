//! Symmetry reduction: servers are interchangeable, so states that differ only by a
//! renaming of servers are checked once. Clients keep their names (each runs its own
//! workload), so only servers are permuted.

use super::actor::Unsynced;
use super::client::ClientState;
use super::history::Committed;
use super::{NodeState, State};
use crate::model::Choice;
use crate::raft::{
    Change, ChangeRefused, Command, Entry, HardState, Log, Membership, Msg, Reply, Role,
    ServerState, Snapshot, Timer, Tracker, Transfer,
};
use stateright::actor::{ActorModelState, Id};
use stateright::util::DenseNatMap;
use stateright::{Rewrite, RewritePlan};
use std::borrow::Cow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The canonical representative of `state`'s class: the same state for every renaming of the
/// servers, so an exhaustive count does not depend on the order states are visited in.
///
/// Servers are sorted by a signature that names no server; servers with equal signatures
/// are told apart by their messages in flight if they can be, then tried in every order, and
/// the candidate with the smallest hash is the representative. Usually one candidate is built.
pub fn representative(state: &State) -> State {
    let servers = state
        .actor_states
        .iter()
        .take_while(|a| a.as_server().is_some())
        .count();
    let mut signatures: Vec<Signature> =
        (0..servers).map(|i| signature(state, i, servers)).collect();
    let ties = |signatures: &[Signature], sorted: &[usize]| {
        sorted
            .windows(2)
            .any(|w| signatures[w[0]] == signatures[w[1]])
    };
    let mut sorted: Vec<usize> = (0..servers).collect();
    sorted.sort_by(|&a, &b| signatures[a].cmp(&signatures[b]));
    if ties(&signatures, &sorted) {
        // Whether there are ties is itself the same for every renaming, so refining only
        // then keeps the order canonical (and saves the work when there are none).
        for (i, traffic) in traffic(state, servers).into_iter().enumerate() {
            signatures[i].traffic = traffic;
        }
        sorted.sort_by(|&a, &b| signatures[a].cmp(&signatures[b]));
    }
    let renamed = |order: &[usize]| {
        // position[old index] = new index; clients keep their places.
        let mut position: Vec<usize> = (0..state.actor_states.len()).collect();
        for (new, &old) in order.iter().enumerate() {
            position[old] = new;
        }
        rename(state, &RewritePlan::<Id, _>::from_values_to_sort(&position))
    };
    if !ties(&signatures, &sorted) {
        if sorted.iter().enumerate().all(|(new, &old)| new == old) {
            return state.clone(); // already in canonical order
        }
        return renamed(&sorted);
    }
    let mut best: Option<(u64, State)> = None;
    for_each_tie_order(&mut sorted, 0, &signatures, &mut |order| {
        let candidate = renamed(order);
        let hash = stable_hash(&candidate);
        if best.as_ref().is_none_or(|(h, _)| hash < *h) {
            best = Some((hash, candidate));
        }
    });
    best.expect("at least one order").1
}

/// Calls `f` with every order of `sorted` that permutes only runs of equal signatures.
fn for_each_tie_order(
    sorted: &mut Vec<usize>,
    from: usize,
    signatures: &[Signature],
    f: &mut impl FnMut(&[usize]),
) {
    if from == sorted.len() {
        f(sorted);
        return;
    }
    let run_end = (from..sorted.len())
        .find(|&j| signatures[sorted[j]] != signatures[sorted[from]])
        .unwrap_or(sorted.len());
    permute_run(sorted, from, run_end, signatures, f);
}

/// Every order of `sorted[k..end]` by swapping, each continued with the next run.
fn permute_run(
    sorted: &mut Vec<usize>,
    k: usize,
    end: usize,
    signatures: &[Signature],
    f: &mut impl FnMut(&[usize]),
) {
    if k + 1 >= end {
        for_each_tie_order(sorted, end, signatures, f);
        return;
    }
    for j in k..end {
        sorted.swap(k, j);
        permute_run(sorted, k + 1, end, signatures, f);
        sorted.swap(k, j);
    }
}

fn rename(state: &State, plan: &RewritePlan<Id, DenseNatMap<Id, Id>>) -> State {
    ActorModelState {
        actor_states: plan.reindex(&state.actor_states),
        network: state.network.rewrite(plan),
        timers_set: plan.reindex(&state.timers_set),
        random_choices: plan
            .reindex(&state.random_choices)
            .into_iter()
            .map(|choices| {
                if choices.map.is_empty() {
                    return choices;
                }
                // Choices name servers (`reindex` renamed them); they are kept sorted so that
                // one set of choices has one representation.
                let mut renamed = choices;
                renamed.map.values_mut().for_each(|ids| ids.sort_unstable());
                renamed
            })
            .collect(),
        crashed: plan.reindex(&state.crashed),
        actor_storages: plan.reindex(&state.actor_storages),
        history: rename_history(&state.history, plan),
    }
}

/// The history names servers in its deaf and muted ones and in configurations (committed configuration
/// entries, the voters that committed an entry); most histories name none, and are shared.
fn rename_history(
    history: &super::History,
    plan: &RewritePlan<Id, DenseNatMap<Id, Id>>,
) -> super::History {
    let names =
        |c: &Committed| c.voters.is_some() || matches!(c.entry.command, Command::Membership(_));
    let renames_committed = history.committed.values().any(names);
    if history.deaf.is_none() && history.muted.is_none() && !renames_committed {
        return history.clone();
    }
    let mut renamed = history.clone();
    renamed.deaf = history.deaf.map(|d| d.rewrite(plan));
    renamed.muted = history.muted.map(|d| d.rewrite(plan));
    if renames_committed {
        renamed.committed = history
            .committed
            .iter()
            .map(|(&index, c)| {
                let c = Committed {
                    term: c.term,
                    entry: c.entry.rewrite(plan),
                    voters: c.voters.as_ref().map(|v| v.rewrite(plan)),
                };
                (index, c)
            })
            .collect();
    }
    renamed
}

fn stable_hash(state: &State) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    state.hash(&mut hasher);
    hasher.finish()
}

/// A message in flight as a server sees it, without names: (sent by it, kind, term, the
/// other end is a client).
type Traffic = (bool, u8, u64, bool);

/// Each server's messages in flight, sorted.
fn traffic(state: &State, servers: usize) -> Vec<Vec<Traffic>> {
    let mut traffic: Vec<Vec<Traffic>> = vec![Vec::new(); servers];
    for (src, dst, msg) in super::messages_in_flight(&state.network) {
        let (kind, term) = shape(msg);
        let (src, dst) = (usize::from(src), usize::from(dst));
        if src < servers {
            traffic[src].push((true, kind, term, dst >= servers));
        }
        if dst < servers {
            traffic[dst].push((false, kind, term, src >= servers));
        }
    }
    for t in &mut traffic {
        t.sort_unstable();
    }
    traffic
}

fn shape(msg: &Msg) -> (u8, u64) {
    match msg {
        Msg::RequestVote { term, .. } => (0, *term),
        Msg::RequestVoteResponse { term, .. } => (1, *term),
        Msg::AppendEntries { term, .. } => (2, *term),
        Msg::AppendEntriesResponse { term, .. } => (3, *term),
        Msg::ClientRequest { .. } => (4, 0),
        Msg::ClientResponse { .. } => (5, 0),
        Msg::PreVote { term, .. } => (7, *term),
        Msg::PreVoteResponse { term, .. } => (8, *term),
        Msg::InstallSnapshot { term, .. } => (9, *term),
        _ => (6, 0),
    }
}

/// What a renaming of servers leaves unchanged about server `i`: everything but the names
/// it holds (whom it voted for, its leader, its voters and followers), and the messages it
/// has in flight, by kind and term.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Signature<'a> {
    /// Whether it votes, or learns, in its own configuration, and that configuration's size.
    member: (bool, bool, usize, usize),
    term: u64,
    role: (u8, usize, Vec<(u64, u64)>),
    voted: u8,
    commit_index: u64,
    log: Cow<'a, Log>,
    crashed: bool,
    timers: u8,
    stored: Option<(u64, u8, Cow<'a, Log>)>,
    traffic: Vec<Traffic>,
}

/// `log` without the names its configurations hold (each becomes the first voters and learners
/// of its sizes), so that a signature names no server. A log whose only configuration is every
/// server as a voter, which no renaming changes, is used as it is.
fn name_free(log: &Log, servers: usize) -> Cow<'_, Log> {
    let everyone = |m: &Membership| m.learners.is_empty() && m.voters.len() == servers;
    let entries_name = log
        .iter()
        .any(|e| matches!(e.command, Command::Membership(_)));
    let snapshot_names = log
        .snapshot()
        .membership
        .as_ref()
        .is_some_and(|m| !everyone(m));
    if !entries_name && !snapshot_names {
        return Cow::Borrowed(log);
    }
    Cow::Owned(log.map_memberships(|m| {
        Membership {
            voters: (0..m.voters.len()).map(Id::from).collect(),
            learners: (m.voters.len()..m.voters.len() + m.learners.len())
                .map(Id::from)
                .collect(),
        }
    }))
}

fn signature(state: &State, i: usize, servers: usize) -> Signature<'_> {
    let server = state.actor_states[i]
        .as_server()
        .expect("servers come first");
    let me = Id::from(i);
    let voted = |v: Option<Id>| match v {
        None => 0,
        Some(id) if id == me => 1,
        Some(_) => 2,
    };
    let role = match &server.role {
        Role::Follower { leader } => (0, usize::from(leader.is_some()), Vec::new()),
        Role::Candidate { votes } => (1, votes.len(), Vec::new()),
        Role::PreCandidate { votes } => (3, votes.len(), Vec::new()),
        Role::Leader => {
            let mut p: Vec<(u64, u64)> = server
                .progress
                .iter()
                .map(|(_, p)| (p.next_index, p.match_index * 2 + u64::from(p.recent_active)))
                .collect();
            p.sort_unstable();
            (2, p.len(), p)
        }
    };
    let timers = state.timers_set[i].iter().fold(0u8, |bits, t| {
        bits | match t {
            Timer::Election => 1,
            Timer::Heartbeat => 2,
            Timer::CheckQuorum => 4,
            Timer::Lease => 8,
            Timer::Transfer => 16,
        }
    });
    let m = &server.membership;
    Signature {
        member: (
            m.is_voter(me),
            m.learners.contains(&me),
            m.voters.len(),
            m.learners.len(),
        ),
        term: server.current_term(),
        role,
        voted: voted(server.hard.voted_for),
        commit_index: server.commit_index,
        log: name_free(server.log(), servers),
        crashed: state.crashed[i],
        timers,
        stored: state.actor_storages[i].as_ref().map(|s| {
            (
                s.current_term,
                voted(s.voted_for),
                name_free(&s.log, servers),
            )
        }),
        traffic: Vec::new(),
    }
}

impl Rewrite<Id> for NodeState {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        match self {
            NodeState::Server(s, u) => NodeState::Server(
                s.rewrite(plan),
                Unsynced {
                    term_vote: u.term_vote,
                    held: {
                        let mut held: Vec<(Id, Msg)> = u
                            .held
                            .iter()
                            .map(|(to, msg)| (to.rewrite(plan), msg.rewrite(plan)))
                            .collect();
                        held.sort_by_key(|(to, _)| *to); // stable: per destination, as sent
                        held.into()
                    },
                },
            ),
            NodeState::Client(c) => NodeState::Client(c.rewrite(plan)),
        }
    }
}

impl Rewrite<Id> for Choice {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        match self {
            Choice::ResendTo(server) => Choice::ResendTo(server.rewrite(plan)),
            Choice::CompactThrough(index) => Choice::CompactThrough(*index),
            Choice::Fsync => Choice::Fsync,
            Choice::TransferTo(server) => Choice::TransferTo(server.rewrite(plan)),
            Choice::Change(change) => Choice::Change(change.rewrite(plan)),
        }
    }
}

impl Rewrite<Id> for ClientState {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        ClientState {
            target: self.target.rewrite(plan),
            ..self.clone()
        }
    }
}

impl Rewrite<Id> for ServerState {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        ServerState {
            hard: self.hard.rewrite(plan),
            commit_index: self.commit_index,
            role: self.role.rewrite(plan),
            progress: self.progress.rewrite(plan),
            kv: self.kv.clone(),
            log_synced: self.log_synced,
            lease: self.lease,
            read_round: self.read_round,
            reads: self.reads.clone(), // reads name clients only
            transfer: self.transfer.map(|t| Transfer {
                target: t.target.rewrite(plan),
                ..t
            }),
            membership: {
                let renamed = (*self.membership).rewrite(plan);
                if renamed == *self.membership {
                    Arc::clone(&self.membership)
                } else {
                    Arc::new(renamed)
                }
            },
            membership_index: self.membership_index,
        }
    }
}

impl Rewrite<Id> for Role {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        match self {
            Role::Follower { leader } => Role::Follower {
                leader: leader.rewrite(plan),
            },
            Role::Candidate { votes } => Role::Candidate {
                votes: votes.rewrite(plan),
            },
            Role::PreCandidate { votes } => Role::PreCandidate {
                votes: votes.rewrite(plan),
            },
            Role::Leader => Role::Leader,
        }
    }
}

impl Rewrite<Id> for Tracker {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        let mut renamed = Tracker::default();
        for (id, p) in self.iter() {
            renamed.insert(id.rewrite(plan), p);
        }
        renamed
    }
}

impl Rewrite<Id> for HardState {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        HardState {
            current_term: self.current_term,
            voted_for: self.voted_for.rewrite(plan),
            log: self.log.rewrite(plan),
        }
    }
}

/// Log entries name clients (`reply_to`), which keep their names, and configurations name
/// servers.
impl Rewrite<Id> for Log {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        self.map_memberships(|m| m.rewrite(plan))
    }
}

impl Rewrite<Id> for Membership {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        Membership {
            voters: self.voters.rewrite(plan),
            learners: self.learners.rewrite(plan),
        }
    }
}

impl Rewrite<Id> for Change {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        match *self {
            Change::AddVoter(id) => Change::AddVoter(id.rewrite(plan)),
            Change::AddLearner(id) => Change::AddLearner(id.rewrite(plan)),
            Change::Promote(id) => Change::Promote(id.rewrite(plan)),
            Change::Remove(id) => Change::Remove(id.rewrite(plan)),
        }
    }
}

impl Rewrite<Id> for Entry {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        match &self.command {
            Command::Membership(m) => Entry {
                term: self.term,
                command: Command::Membership(m.rewrite(plan)),
            },
            _ => self.clone(),
        }
    }
}

impl Rewrite<Id> for ChangeRefused {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        match *self {
            ChangeRefused::AlreadyMember(id) => ChangeRefused::AlreadyMember(id.rewrite(plan)),
            ChangeRefused::NotALearner(id) => ChangeRefused::NotALearner(id.rewrite(plan)),
            ChangeRefused::UnknownServer(id) => ChangeRefused::UnknownServer(id.rewrite(plan)),
            ChangeRefused::LastVoter(id) => ChangeRefused::LastVoter(id.rewrite(plan)),
            other => other,
        }
    }
}

/// A snapshot names servers in its configuration only.
fn rewrite_snapshot<S>(snapshot: &Arc<Snapshot>, plan: &RewritePlan<Id, S>) -> Arc<Snapshot> {
    match &snapshot.membership {
        Some(m) if m.rewrite(plan) != *m => Arc::new(Snapshot {
            membership: Some(m.rewrite(plan)),
            ..(**snapshot).clone()
        }),
        _ => Arc::clone(snapshot),
    }
}

impl Rewrite<Id> for Msg {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        match self {
            Msg::RequestVote {
                term,
                candidate_id,
                last_log_index,
                last_log_term,
                transfer,
            } => Msg::RequestVote {
                term: *term,
                candidate_id: candidate_id.rewrite(plan),
                last_log_index: *last_log_index,
                last_log_term: *last_log_term,
                transfer: *transfer,
            },
            Msg::TransferLeader { target } => Msg::TransferLeader {
                target: target.rewrite(plan),
            },
            Msg::ChangeMembership { change } => Msg::ChangeMembership {
                change: change.rewrite(plan),
            },
            Msg::ChangeMembershipResponse {
                outcome,
                leader_hint,
            } => Msg::ChangeMembershipResponse {
                outcome: outcome.map_err(|why| why.rewrite(plan)),
                leader_hint: leader_hint.rewrite(plan),
            },
            Msg::PreVote {
                term,
                candidate_id,
                last_log_index,
                last_log_term,
            } => Msg::PreVote {
                term: *term,
                candidate_id: candidate_id.rewrite(plan),
                last_log_index: *last_log_index,
                last_log_term: *last_log_term,
            },
            Msg::AppendEntries {
                term,
                leader_id,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                read_round,
            } => Msg::AppendEntries {
                term: *term,
                leader_id: leader_id.rewrite(plan),
                prev_log_index: *prev_log_index,
                prev_log_term: *prev_log_term,
                entries: entries.iter().map(|e| e.rewrite(plan)).collect(),
                leader_commit: *leader_commit,
                read_round: *read_round,
            },
            Msg::InstallSnapshot {
                term,
                leader_id,
                snapshot,
            } => Msg::InstallSnapshot {
                term: *term,
                leader_id: leader_id.rewrite(plan),
                snapshot: rewrite_snapshot(snapshot, plan),
            },
            Msg::ClientResponse {
                seq,
                reply: Reply::NotLeader { leader_hint },
            } => Msg::ClientResponse {
                seq: *seq,
                reply: Reply::NotLeader {
                    leader_hint: leader_hint.rewrite(plan),
                },
            },
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelCfg, RaftModel, walk};
    use stateright::Model;

    /// Renames servers by `order` (new name of server i is `order[i]`).
    fn renamed(state: &State, order: &[usize]) -> State {
        let mut position: Vec<usize> = (0..state.actor_states.len()).collect();
        position[..order.len()].copy_from_slice(order);
        rename(state, &RewritePlan::<Id, _>::from_values_to_sort(&position))
    }

    #[test]
    fn every_renaming_of_a_state_has_one_representative() {
        let durability = crate::model::file::shipped("models/durability.toml").unwrap();
        for cfg in [ModelCfg::default(), durability.cfg] {
            let model = RaftModel::new(cfg);
            let orders = [[0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
            for seed in 0..200 {
                for (_, state) in walk::random_walk(&model, seed, 40) {
                    let canonical = representative(&state);
                    for order in &orders {
                        let other = representative(&renamed(&state, order));
                        assert!(
                            other == canonical,
                            "{}",
                            crate::model::story::state(&model.cfg, &state)
                        );
                    }
                }
            }
        }
    }

    /// The classes (representatives' hashes) of the states that follow `state`, in order.
    fn successors(model: &RaftModel, state: &State) -> Vec<u64> {
        let mut actions = Vec::new();
        model.actions(state, &mut actions);
        let mut next: Vec<u64> = actions
            .into_iter()
            .filter_map(|a| model.next_state(state, a))
            .filter(|n| model.within_boundary(n))
            .map(|n| stable_hash(&representative(&n)))
            .collect();
        next.sort_unstable();
        next.dedup();
        next
    }

    /// Symmetry reduction explores one member of each class, so it is sound, and its counts
    /// are the same on every run, only if the model treats servers alike: a renamed state's
    /// successors are the renamed successors. An order that depends on server names (say, of
    /// messages held for an fsync) breaks this.
    #[test]
    fn renaming_a_state_renames_its_successors() {
        let orders = [[0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
        let others = [
            "models/transfer.toml",
            "models/published-bound.toml",
            "models/votes.toml",
        ];
        for name in crate::model::file::DEFAULT_SUITE.iter().chain(&others) {
            let model = RaftModel::new(crate::model::file::shipped(name).unwrap().cfg);
            if model.cfg.servers != 3 {
                continue;
            }
            for seed in 0..100 {
                for (_, state) in walk::random_walk(&model, seed, 40) {
                    let expected = successors(&model, &state);
                    for order in &orders {
                        assert!(
                            successors(&model, &renamed(&state, order)) == expected,
                            "{name}: renaming {order:?} changes what follows\n{}",
                            crate::model::story::state(&model.cfg, &state)
                        );
                    }
                }
            }
        }
    }

    /// With configuration changes, the initial configuration is in every server's saved log
    /// from the start, and configurations in logs, messages and the history are renamed: every
    /// renaming of all four servers (the one outside the initial configuration included) is a
    /// symmetry, with one representative, and renamed successors.
    #[test]
    fn configurations_are_renamed_with_the_servers_they_name() {
        let model = RaftModel::new(
            crate::model::file::shipped("models/membership.toml")
                .unwrap()
                .cfg,
        );
        let successors = |state: &State| successors(&model, state);
        let orders = [[3, 1, 2, 0], [1, 3, 0, 2], [2, 0, 3, 1], [3, 2, 1, 0]];
        let mut named = 0;
        for seed in 0..30 {
            for (_, state) in walk::random_walk(&model, seed, 40) {
                let canonical = representative(&state);
                let expected = successors(&state);
                for order in &orders {
                    let other = renamed(&state, order);
                    assert!(representative(&other) == canonical);
                    assert!(successors(&other) == expected);
                }
                let configured = |s: &ServerState| {
                    s.log()
                        .iter()
                        .any(|e| matches!(e.command, Command::Membership(_)))
                };
                named += usize::from(servers_of(&state).any(configured));
            }
        }
        assert!(named > 0, "no walk reached a configuration entry");
    }

    fn servers_of(state: &State) -> impl Iterator<Item = &ServerState> {
        state.actor_states.iter().filter_map(|a| a.as_server())
    }

    /// Entries name clients only in `reply_to` (clients keep their names) and servers only in
    /// configurations, which renaming renames.
    #[test]
    fn log_entries_name_clients_and_configurations_name_servers() {
        let membership = crate::model::file::shipped("models/membership.toml").unwrap();
        for cfg in [ModelCfg::default(), membership.cfg] {
            let model = RaftModel::new(cfg.clone());
            for seed in 0..40 {
                for (_, state) in walk::random_walk(&model, seed, 40) {
                    for server in servers_of(&state) {
                        for entry in server.log().iter() {
                            match &entry.command {
                                Command::Client { reply_to, .. } => {
                                    assert!(!cfg.is_server(*reply_to))
                                }
                                Command::Membership(m) => {
                                    assert!(m.voters.iter().all(|&v| cfg.is_server(v)))
                                }
                                Command::Noop => {}
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_representative_is_a_renaming_of_the_state() {
        let model = RaftModel::new(ModelCfg::default());
        let orders = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        for seed in 0..10 {
            for (_, state) in walk::random_walk(&model, seed, 40) {
                let r = representative(&state);
                assert!(orders.iter().any(|o| renamed(&state, o) == r));
            }
        }
    }
}
