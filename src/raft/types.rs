//! The vocabulary of the protocol: terms, indexes and log entries.

pub use crate::kv::{ClientId, Op, OpResult};
use serde::{Deserialize, Serialize};
use stateright::actor::Id;

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
}

/// One log entry: the term of the leader that created it and its command.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub command: Command,
}
