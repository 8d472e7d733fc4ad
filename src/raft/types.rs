//! The vocabulary of the protocol: terms, indexes and log entries.

pub use crate::kv::{ClientId, Op, OpResult};
use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use std::collections::BTreeSet;

/// A Raft term (§5.1). Term 0 is the term before any election.
pub type Term = u64;
/// A 1-based log index; index 0 is the empty position before the first entry.
pub type Index = u64;

/// A position in the log, named by the term that wrote it and its index.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct LogId {
    pub term: Term,
    pub index: Index,
}

/// What a log entry asks the state machine to do.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    /// Appended by every new leader so that it can commit entries of earlier terms (§5.4.2, §8).
    Noop,
    /// A client's operation. `(client_id, seq)` makes a retried request apply once.
    Client {
        client_id: ClientId,
        seq: u64,
        op: Op,
        /// Where the leader that applies this entry sends the result.
        reply_to: Id,
    },
    /// A configuration change (thesis §4.1): from this entry on, the servers use this
    /// membership, committed or not; truncating the entry reverts to the one before.
    Membership(Membership),
}

/// Who takes part in the cluster: voters elect leaders and count toward commit; learners
/// receive the log and have no vote (thesis §4.2.1: a new server catches up before it votes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Membership {
    pub voters: BTreeSet<Id>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub learners: BTreeSet<Id>,
}

/// One single-server change (thesis §4.1): any majority of the configuration before it and
/// any majority of the one after share a server, so the two cannot decide apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "change", content = "server", rename_all = "snake_case")]
pub enum Change {
    AddVoter(Id),
    AddLearner(Id),
    /// A learner becomes a voter.
    Promote(Id),
    /// A voter or a learner leaves.
    Remove(Id),
}

impl Membership {
    pub fn of_voters(voters: impl IntoIterator<Item = Id>) -> Self {
        Self {
            voters: voters.into_iter().collect(),
            learners: BTreeSet::new(),
        }
    }

    pub fn is_voter(&self, id: Id) -> bool {
        self.voters.contains(&id)
    }

    pub fn contains(&self, id: Id) -> bool {
        self.voters.contains(&id) || self.learners.contains(&id)
    }

    /// Voters needed for a decision.
    pub fn majority(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// Every voter and learner but `id`: the servers a leader replicates to.
    pub fn peers(&self, id: Id) -> impl Iterator<Item = Id> + '_ {
        self.voters
            .iter()
            .chain(&self.learners)
            .copied()
            .filter(move |&s| s != id)
    }

    /// How many of `ids` are voters.
    pub fn count_voters<'a>(&self, ids: impl IntoIterator<Item = &'a Id>) -> usize {
        ids.into_iter().filter(|id| self.is_voter(**id)).count()
    }

    /// The membership after `change`, or why it cannot be made.
    pub fn changed(&self, change: Change) -> Result<Membership, ChangeRefused> {
        let mut next = self.clone();
        match change {
            Change::AddVoter(id) | Change::AddLearner(id) if self.contains(id) => {
                return Err(ChangeRefused::AlreadyMember(id));
            }
            Change::AddVoter(id) => {
                next.voters.insert(id);
            }
            Change::AddLearner(id) => {
                next.learners.insert(id);
            }
            Change::Promote(id) if !self.learners.contains(&id) => {
                return Err(ChangeRefused::NotALearner(id));
            }
            Change::Promote(id) => {
                next.learners.remove(&id);
                next.voters.insert(id);
            }
            Change::Remove(id) if !self.contains(id) => {
                return Err(ChangeRefused::UnknownServer(id));
            }
            Change::Remove(id) if self.voters.len() == 1 && self.is_voter(id) => {
                return Err(ChangeRefused::LastVoter(id));
            }
            Change::Remove(id) => {
                next.voters.remove(&id);
                next.learners.remove(&id);
            }
        }
        Ok(next)
    }
}

/// Why a leader refused a configuration change. It changed nothing.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    thiserror::Error,
)]
#[serde(tag = "refused", content = "server", rename_all = "snake_case")]
pub enum ChangeRefused {
    #[error("this server is not the leader")]
    NotLeader,
    #[error("a configuration change is already in progress (not yet committed)")]
    InProgress,
    #[error("the leader has not yet committed an entry of its term; try again")]
    LeaderNotReady,
    #[error("{} is already a member", crate::raft::types::addr(*.0))]
    AlreadyMember(Id),
    #[error("{} is not a learner", crate::raft::types::addr(*.0))]
    NotALearner(Id),
    #[error("{} is not a member", crate::raft::types::addr(*.0))]
    UnknownServer(Id),
    #[error("{} is the last voter", crate::raft::types::addr(*.0))]
    LastVoter(Id),
}

/// An id as the address it stands for on a real network.
pub fn addr(id: Id) -> std::net::SocketAddrV4 {
    id.into()
}

/// One log entry: the term of the leader that created it and its command.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub command: Command,
}
