//! The runtime: the only layer that touches the OS. It hosts the protocol's actor, unchanged,
//! under `stateright::actor::spawn` over real UDP, keeps its persistent state durable on disk,
//! and provides the client library that finds the leader and retries.
//!
//! - [`auth`]: the cluster key, its file, and the MAC that authenticates every datagram.
//! - [`wire`]: the datagram codec (JSON, one message per datagram, authenticated), its size
//!   limits, and the reasons a datagram is dropped.
//! - [`wal`]: the snapshot file, the checksummed write-ahead log, and their recovery.
//! - [`chunks`]: InstallSnapshot cut into datagrams and put back together.
//! - [`commit`]: group commit, one fsync for many saves, on a thread of its own.
//! - [`lost`]: a follower that lost what it acknowledged, found and kept out until replaced.
//! - [`node`]: the wrapper actor that persists `Save`s itself, and the spawn wiring.
//! - [`outbox`]: each message waits for what the protocol says it needs on disk.
//! - [`client`]: leader discovery through hints, retries with the same client id and sequence.
//! - [`loadgen`]: many concurrent clients over one socket, for the benchmark.

pub mod auth;
pub mod chunks;
pub mod client;
pub mod commit;
pub mod loadgen;
pub mod lost;
pub mod node;
pub mod outbox;
pub mod wal;
pub mod wire;
