//! A server's state: what it persists (Figure 2's `currentTerm`, `votedFor`, `log[]`), what it
//! keeps in memory, and the role it plays.

use super::log::Log;
use super::message::Status;
use super::progress::Tracker;
use super::types::{ClientId, Command, Entry, Index, Membership, Term};
use crate::kv::KvStore;
use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use std::collections::BTreeSet;
use std::sync::Arc;

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
    /// PreVote: asking whether it could win an election of `current_term + 1`, before
    /// raising any term.
    PreCandidate {
        /// Servers that would grant their vote in `current_term + 1` (this one included).
        votes: BTreeSet<Id>,
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
            Role::PreCandidate { .. } => "PreCandidate",
            Role::Candidate { .. } => "Candidate",
            Role::Leader => "Leader",
        }
    }
}

/// A server's whole state.
///
/// Invariants: `commit_index <= hard.log.last_index()`; `log_synced <= hard.log.last_index()`;
/// `progress` is empty unless the role is `Leader`; only a follower that knows its leader holds
/// a `lease`.
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
    /// The log is known durable through this index (the last `Input::Synced`, lowered when
    /// entries it covered are replaced). A leader counts its own log toward commit only this
    /// far.
    pub log_synced: Index,
    /// CheckQuorum: a follower heard from the leader of `current_term` within the minimum
    /// election timeout, so it ignores requests for (pre-)votes of later terms.
    pub lease: bool,
    /// ReadIndex, a leader's latest round of heartbeats that confirm its leadership (0 when it
    /// does not lead). Every AppendEntries carries it; followers echo it.
    pub read_round: u64,
    /// ReadIndex: the Gets this leader is waiting to answer, oldest first.
    pub reads: Vec<PendingRead>,
    /// Leadership transfer (thesis §3.10): the leader is handing its leadership over, and
    /// takes no client writes meanwhile.
    pub transfer: Option<Transfer>,
    /// The configuration in force: the latest in the log, committed or not (thesis §4.1), or
    /// the initial one. Derived from the log, kept at hand (shared: every model state clones it).
    pub membership: Arc<Membership>,
    /// The index of `membership`'s entry (0 for the initial configuration).
    pub membership_index: Index,
}

/// A leadership transfer under way at the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Transfer {
    /// The server that is to lead next.
    pub target: Id,
    /// TimeoutNow has gone to the target (once: a second would start a second election).
    pub timeout_now_sent: bool,
}

/// ReadIndex (thesis §6.4): a Get waiting at the leader until a majority has echoed `round` (so
/// the leader was still the leader after the Get arrived) and the leader has applied `index`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PendingRead {
    pub client_id: ClientId,
    pub seq: u64,
    pub key: String,
    pub reply_to: Id,
    /// The read index: the commit index when the Get arrived.
    pub index: Index,
    /// The round of heartbeats sent after the Get arrived.
    pub round: u64,
}

impl ServerState {
    /// A server as it (re)starts from `hard`: a follower that knows no leader and knows
    /// committed only what its snapshot covers (§5.1, §7; volatile state is rebuilt).
    pub fn restarted(hard: HardState, initial: &Membership) -> Self {
        let snapshot = hard.log.snapshot();
        let (membership_index, membership) = match hard.log.membership() {
            Some((index, m)) => (index, m.clone()),
            None => (0, initial.clone()),
        };
        let membership = Arc::new(membership);
        Self {
            membership,
            membership_index,
            commit_index: snapshot.last.index,
            kv: snapshot.state.clone(),
            log_synced: hard.log.last_index(),
            hard,
            role: Role::Follower { leader: None },
            progress: Tracker::default(),
            lease: false,
            read_round: 0,
            reads: Vec::new(),
            transfer: None,
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

    /// Campaigning: a candidate, or a pre-candidate asking whether it could be one.
    pub fn is_candidate(&self) -> bool {
        matches!(
            self.role,
            Role::Candidate { .. } | Role::PreCandidate { .. }
        )
    }

    /// Who this server believes leads its current term.
    pub fn leader_hint(&self, id: Id) -> Option<Id> {
        match &self.role {
            Role::Follower { leader } => *leader,
            Role::PreCandidate { .. } | Role::Candidate { .. } => None,
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
            voters: self.membership.voters.iter().copied().collect(),
            learners: self.membership.learners.iter().copied().collect(),
            membership_index: self.membership_index,
        }
    }

    /// Whether this server votes in the configuration it uses.
    pub fn is_voter(&self, id: Id) -> bool {
        self.membership.is_voter(id)
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
            self.log_synced <= self.hard.log.last_index(),
            "log_synced {} past the log's end {}",
            self.log_synced,
            self.hard.log.last_index()
        );
        assert!(
            self.is_leader() || self.progress.is_empty(),
            "a {} keeps leader progress",
            self.role.name()
        );
        assert!(
            self.is_leader() || (self.reads.is_empty() && self.read_round == 0),
            "a {} keeps reads",
            self.role.name()
        );
        assert!(
            self.is_leader() || self.transfer.is_none(),
            "a {} transfers leadership",
            self.role.name()
        );
        assert!(
            !self.lease || matches!(self.role, Role::Follower { leader: Some(_) }),
            "a {} holds a lease",
            self.role.name()
        );
    }
}
