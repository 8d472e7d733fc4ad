//! The Raft protocol: pure, deterministic, and the same code under the model checker and over UDP.

pub mod log;
pub mod message;
pub mod mutant;
pub mod progress;
pub mod server;
pub mod types;

pub use log::Log;
pub use message::{Conflict, Msg, Reply, Status};
pub use mutant::Mutant;
pub use progress::Progress;
pub use server::{Role, Server, ServerState, Storage, Timer};
pub use types::{ClientId, Command, Entry, Index, LogId, Op, OpResult, Term};
