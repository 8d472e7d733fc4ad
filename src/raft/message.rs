//! Every message the protocol sends: the two RPCs of Figure 2 with their replies, the client
//! interface, and a status probe for operators. One variant per message, exactly its fields.

use super::log::Snapshot;
use super::types::{Change, ChangeRefused, ClientId, Entry, Index, Op, OpResult, Term};
use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Msg {
    /// Invoked by candidates to gather votes (§5.2).
    RequestVote {
        term: Term,
        candidate_id: Id,
        last_log_index: Index,
        last_log_term: Term,
        /// Leadership transfer (thesis §3.10): the candidate campaigns because its leader sent
        /// it TimeoutNow, so a follower answers it even under CheckQuorum's lease.
        #[serde(default)]
        transfer: bool,
    },
    RequestVoteResponse {
        term: Term,
        vote_granted: bool,
    },
    /// PreVote (thesis §9.6): would the receiver vote for this candidate in `term` (the
    /// sender's current term + 1)? Changes no term, vote or timer at either end.
    PreVote {
        term: Term,
        candidate_id: Id,
        last_log_index: Index,
        last_log_term: Term,
    },
    /// A granted pre-vote carries the request's term; a refusal the voter's current term.
    PreVoteResponse {
        term: Term,
        vote_granted: bool,
    },
    /// Invoked by the leader to replicate entries (§5.3); also the heartbeat (§5.2).
    AppendEntries {
        term: Term,
        leader_id: Id,
        prev_log_index: Index,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: Index,
        /// ReadIndex (thesis §6.4): the leader's latest round of confirming its leadership for
        /// reads; echoed in the answer. 0 when no read has asked for one.
        #[serde(default)]
        read_round: u64,
    },
    /// Sent by the leader to a follower whose nextIndex fell inside the leader's snapshot:
    /// the entries it needs are gone (§7, Figure 13). Sent whole; a transport may cut it into
    /// chunks. Answered by an `AppendEntriesResponse` acknowledging the snapshot's last index.
    InstallSnapshot {
        term: Term,
        leader_id: Id,
        snapshot: Arc<Snapshot>,
    },
    AppendEntriesResponse {
        term: Term,
        success: bool,
        /// On success, the last index the request covered (prev_log_index + entries); 0 on failure.
        match_index: Index,
        /// On failure, why: lets the leader skip back a whole term at a time.
        conflict: Option<Conflict>,
        /// The request's `read_round`: this server took it for its leader's in this term.
        #[serde(default)]
        read_round: u64,
    },
    /// Leadership transfer (thesis §3.10): the leader has brought the receiver's log up to its
    /// own and asks it to start an election at once, without PreVote.
    TimeoutNow {
        term: Term,
    },
    /// An operator asks the leader to hand its leadership to `target`. A follower answers
    /// `ClientResponse { seq: 0, NotLeader }` with its hint; the leader does not answer (the
    /// operator polls the status).
    TransferLeader {
        target: Id,
    },
    /// An operator asks the leader for a configuration change (thesis §4.1).
    ChangeMembership {
        change: Change,
    },
    /// The leader appended the change at `index` (it is in force from now on, and done once
    /// `index` commits), or why not.
    ChangeMembershipResponse {
        outcome: Result<Index, ChangeRefused>,
        leader_hint: Option<Id>,
    },
    /// A client's operation; `(client_id, seq)` identifies it across retries.
    ClientRequest {
        client_id: ClientId,
        seq: u64,
        op: Op,
    },
    ClientResponse {
        seq: u64,
        reply: Reply,
    },
    /// Asks a server for its [`Status`].
    StatusRequest,
    StatusResponse(Status),
}

/// A follower's reason for rejecting an AppendEntries (the back-off hint of §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Conflict {
    /// The follower's term at prev_log_index, or `None` when its log is shorter than that.
    pub term: Option<Term>,
    /// The first index of that term in the follower's log, or its last index + 1.
    pub index: Index,
}

/// A server's answer to a client.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Reply {
    /// The operation committed and was applied.
    Ok { result: OpResult },
    /// This server is not the leader; try `leader_hint` if known.
    NotLeader { leader_hint: Option<Id> },
}

/// A server's view of itself, for operators and the `status` command.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Status {
    pub role: String,
    pub term: Term,
    pub voted_for: Option<Id>,
    pub commit_index: Index,
    pub last_log_index: Index,
    pub last_log_term: Term,
    /// The last index the snapshot covers (0 without one).
    #[serde(default)]
    pub snapshot_index: Index,
    /// The first index whose entry the log keeps.
    #[serde(default)]
    pub first_index: Index,
    pub leader: Option<Id>,
    /// The configuration this server uses (the latest in its log).
    #[serde(default)]
    pub voters: Vec<Id>,
    #[serde(default)]
    pub learners: Vec<Id>,
    /// The index of that configuration's entry (0: the initial configuration).
    #[serde(default)]
    pub membership_index: Index,
}

impl Msg {
    /// The sender's term for the peer RPCs; `None` for client and status traffic.
    pub fn term(&self) -> Option<Term> {
        match self {
            Msg::RequestVote { term, .. }
            | Msg::RequestVoteResponse { term, .. }
            | Msg::PreVote { term, .. }
            | Msg::PreVoteResponse { term, .. }
            | Msg::AppendEntries { term, .. }
            | Msg::InstallSnapshot { term, .. }
            | Msg::AppendEntriesResponse { term, .. }
            | Msg::TimeoutNow { term } => Some(*term),
            _ => None,
        }
    }
}
