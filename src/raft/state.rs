//! A server's state: what it persists (Figure 2's `currentTerm`, `votedFor`, `log[]`), what it
//! keeps in memory, and the role it plays.

use super::log::Log;
use super::message::Status;
use super::progress::Tracker;
use super::types::{ClientId, Command, Entry, Index, Term};
use crate::kv::KvStore;
use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use std::collections::BTreeSet;

/// What survives a crash (Figure 2, "Persistent state on all servers"). A server saves it
/// before it sends anything that depends on it (§5.1), and restarts from it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this server has seen.
    pub current_term: Term,
    /// The candidate this server voted for in `current_term`, if any.
    pub voted_for: Option<Id>,
    pub log: Log,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Role {
    Follower {
        /// The leader of `current_term`, once heard from.
        leader: Option<Id>,
    },
    Candidate {
        /// Servers that granted their vote in `current_term` (this one included).
        votes: BTreeSet<Id>,
    },
    /// Its per-follower progress is the state's [`Tracker`].
    Leader,
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Follower { .. } => "Follower",
            Role::Candidate { .. } => "Candidate",
            Role::Leader => "Leader",
        }
    }
}

/// A server's whole state.
///
/// Invariants: `commit_index <= hard.log.last_index()`; `progress` is empty unless the role is
/// `Leader`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ServerState {
    #[serde(flatten)]
    pub hard: HardState,
    /// Highest index known committed; entries up to it are applied to `kv` as soon as known.
    pub commit_index: Index,
    pub role: Role,
    /// The leader's view of each follower (Figure 2: `nextIndex[]`, `matchIndex[]`).
    pub progress: Tracker,
    /// The state machine, holding exactly the entries `1..=commit_index`.
    pub kv: KvStore,
}

impl ServerState {
    /// A server as it (re)starts from `hard`: a follower that knows no leader and knows
    /// committed only what its snapshot covers (§5.1, §7; volatile state is rebuilt).
    pub fn restarted(hard: HardState) -> Self {
        let snapshot = hard.log.snapshot();
        Self {
            commit_index: snapshot.last.index,
            kv: snapshot.state.clone(),
            hard,
            role: Role::Follower { leader: None },
            progress: Tracker::default(),
        }
    }

    pub fn current_term(&self) -> Term {
        self.hard.current_term
    }

    pub fn log(&self) -> &Log {
        &self.hard.log
    }

    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// Who this server believes leads its current term.
    pub fn leader_hint(&self, id: Id) -> Option<Id> {
        match &self.role {
            Role::Follower { leader } => *leader,
            Role::Candidate { .. } => None,
            Role::Leader => Some(id),
        }
    }

    pub fn status(&self, id: Id) -> Status {
        Status {
            role: self.role.name().to_owned(),
            term: self.hard.current_term,
            voted_for: self.hard.voted_for,
            commit_index: self.commit_index,
            last_log_index: self.hard.log.last_index(),
            last_log_term: self.hard.log.last_term(),
            snapshot_index: self.hard.log.snapshot_index(),
            first_index: self.hard.log.first_index(),
            leader: self.leader_hint(id),
        }
    }

    /// Whether `(client_id, seq)` is already in the log, waiting to commit (past the snapshot,
    /// which `commit_index` covers).
    pub fn has_pending(&self, client_id: ClientId, seq: u64) -> bool {
        let log = &self.hard.log;
        (self.commit_index + 1..=log.last_index()).any(|i| {
            matches!(log.get(i), Some(Entry { command: Command::Client { client_id: c, seq: s, .. }, .. })
                if *c == client_id && *s == seq)
        })
    }

    /// Panics if an invariant above is broken; every step of a correct server checks them in
    /// debug builds (a deliberately broken variant may break them, and is judged by the model).
    pub fn check_invariants(&self) {
        assert!(
            self.commit_index <= self.hard.log.last_index(),
            "commit_index {} past the log's end {}",
            self.commit_index,
            self.hard.log.last_index()
        );
        assert!(
            self.is_leader() || self.progress.is_empty(),
            "a {} keeps leader progress",
            self.role.name()
        );
    }
}
