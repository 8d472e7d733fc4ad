//! The Raft protocol: pure, deterministic, and the same code under the model checker and over
//! UDP. No sockets, clocks, files or randomness: inputs are messages and timers, outputs are
//! [`Effect`]s.
//!
//! - [`types`], [`log`], [`message`]: the vocabulary, the log, the RPCs.
//! - [`state`]: what a server holds; [`config`]: what it is configured with.
//! - [`server`]: `start` and `step`, and the stateright `Actor`; the handlers are in
//!   `election.rs`, `replication.rs`, `clients.rs` and `transfer.rs`, the role changes in `step.rs`.
//! - [`rules`]: Figure 2's decisions, one function each; [`mutant`]: the broken variants
//!   that check the checker.
//! - [`progress`]: nextIndex/matchIndex per follower and the quorum arithmetic.

mod clients;
pub mod config;
mod election;
pub mod log;
mod membership;
pub mod message;
pub mod mutant;
pub mod progress;
mod replication;
pub mod rules;
pub mod server;
pub mod state;
pub mod step;
mod transfer;
pub mod types;
pub mod validate;

#[cfg(test)]
mod tests;

pub use config::{Config, Timer};
pub use log::{Log, Snapshot};
pub use message::{Conflict, Msg, Reply, Status};
pub use mutant::Mutant;
pub use progress::{Progress, Tracker};
pub use state::{HardState, PendingRead, Role, ServerState, Transfer};
pub use step::{Durable, Effect, Input};
pub use types::{
    Change, ChangeRefused, ClientId, Command, Entry, Index, LogId, Membership, Op, OpResult, Term,
};
pub use validate::Refusal;
