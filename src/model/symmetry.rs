//! Symmetry reduction: servers are interchangeable, so states that differ only by a
//! renaming of servers are checked once. Clients keep their names (each runs its own
//! workload), so only servers are permuted.

use super::client::ClientState;
use super::{NodeState, State};
use crate::raft::{Command, Entry, Log, Msg, Reply, Role, ServerState, Storage};
use stateright::actor::{ActorModelState, Id};
use stateright::{Rewrite, RewritePlan};

/// The representative of `state`'s class: servers sorted by their state, every server `Id`
/// renamed to match.
pub fn representative(state: &State) -> State {
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum Key<'a> {
        Server(&'a ServerState),
        Client(usize),
    }
    let keys: Vec<Key> = state
        .actor_states
        .iter()
        .enumerate()
        .map(|(i, a)| match &**a {
            NodeState::Server(s) => Key::Server(s),
            NodeState::Client(_) => Key::Client(i),
        })
        .collect();
    let plan = RewritePlan::<Id, _>::from_values_to_sort(&keys);
    ActorModelState {
        actor_states: plan.reindex(&state.actor_states),
        network: state.network.rewrite(&plan),
        timers_set: plan.reindex(&state.timers_set),
        random_choices: plan.reindex(&state.random_choices),
        crashed: plan.reindex(&state.crashed),
        actor_storages: plan.reindex(&state.actor_storages),
        history: state.history.clone(),
    }
}

impl Rewrite<Id> for NodeState {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        match self {
            NodeState::Server(s) => NodeState::Server(s.rewrite(plan)),
            NodeState::Client(c) => NodeState::Client(c.rewrite(plan)),
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
            current_term: self.current_term,
            voted_for: self.voted_for.rewrite(plan),
            log: self.log.rewrite(plan),
            commit_index: self.commit_index,
            role: self.role.rewrite(plan),
            kv: self.kv.clone(),
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
            Role::Leader { progress } => Role::Leader {
                progress: progress
                    .iter()
                    .map(|(id, p)| (id.rewrite(plan), *p))
                    .collect(),
            },
        }
    }
}

impl Rewrite<Id> for Storage {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        Storage {
            current_term: self.current_term,
            voted_for: self.voted_for.rewrite(plan),
            log: self.log.rewrite(plan),
        }
    }
}

impl Rewrite<Id> for Log {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        Log::from_entries(self.iter().map(|e| e.rewrite(plan)))
    }
}

impl Rewrite<Id> for Entry {
    fn rewrite<S>(&self, plan: &RewritePlan<Id, S>) -> Self {
        let command = match &self.command {
            Command::Noop => Command::Noop,
            Command::Client {
                client_id,
                seq,
                op,
                reply_to,
            } => Command::Client {
                client_id: *client_id,
                seq: *seq,
                op: op.clone(),
                reply_to: reply_to.rewrite(plan),
            },
        };
        Entry {
            term: self.term,
            command,
        }
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
            } => Msg::RequestVote {
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
            } => Msg::AppendEntries {
                term: *term,
                leader_id: leader_id.rewrite(plan),
                prev_log_index: *prev_log_index,
                prev_log_term: *prev_log_term,
                entries: entries.iter().map(|e| e.rewrite(plan)).collect(),
                leader_commit: *leader_commit,
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
