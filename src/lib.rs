//! raftright: Raft, written once as a stateright actor, model-checked exhaustively and run
//! for real over UDP.

pub mod kv;
pub mod model;
pub mod raft;
pub mod runtime;
