//! InstallSnapshot over UDP: the protocol sends a snapshot whole (`Msg::InstallSnapshot`), which
//! may be far larger than a datagram. The sender cuts its JSON into [`SnapshotChunk`]s of
//! [`CHUNK_BYTES`] (hex in the datagram, so each stays under [`super::wire::MAX_DATAGRAM`]),
//! each sealed and authenticated like every datagram; the receiver puts them back together
//! ([`Reassembly`]) and hands the protocol the whole message.
//!
//! A transfer is named by its term, leader and the snapshot's last entry. The receiver holds
//! one transfer at a time, at most [`MAX_SNAPSHOT`] bytes: chunks of it fill their places
//! whatever their order, a duplicate changes nothing, a chunk of an older transfer is dropped,
//! and one of a newer transfer discards the partial one. The leader sends [`WINDOW`] chunks
//! each time the protocol sends the snapshot, the next ones the next time, round and round as
//! long as the follower needs it, so a chunk lost in one round is filled in by the next.

use crate::raft::{Index, LogId, Msg, Snapshot, Term};
use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use std::sync::Arc;

/// Snapshot bytes per chunk (twice that as hex in the datagram).
pub const CHUNK_BYTES: usize = 24 * 1024;
/// Chunks sent each time the protocol sends an InstallSnapshot (every heartbeat while the
/// follower needs it); the next time, the next ones, round and round. A few datagrams at a
/// time fit a receiver's socket buffer (208 KiB by default on Linux) where a whole snapshot in
/// one burst would not.
pub const WINDOW: usize = 4;
/// The largest snapshot a node reassembles.
pub const MAX_SNAPSHOT: u64 = 256 << 20;

/// One piece of a snapshot's JSON, bytes `offset..offset + data.len() / 2` of `total`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    pub term: Term,
    pub leader_id: Id,
    /// The snapshot's last entry.
    pub last: LogId,
    pub total: u64,
    pub offset: u64,
    /// Hex.
    pub data: String,
}

impl SnapshotChunk {
    /// Which transfer this chunk belongs to, ordered so that a later one is newer.
    fn transfer(&self) -> (Term, Index, Term, Id, u64) {
        (
            self.term,
            self.last.index,
            self.last.term,
            self.leader_id,
            self.total,
        )
    }
}

/// The snapshot's JSON, the bytes that go out in chunks.
pub fn encode(snapshot: &Snapshot) -> Vec<u8> {
    serde_json::to_vec(snapshot).expect("snapshot encodes")
}

/// The chunks of an InstallSnapshot of `term` from `leader_id`, given its snapshot's JSON.
pub fn split(term: Term, leader_id: Id, last: LogId, json: &[u8]) -> Vec<SnapshotChunk> {
    json.chunks(CHUNK_BYTES)
        .enumerate()
        .map(|(i, piece)| SnapshotChunk {
            term,
            leader_id,
            last,
            total: json.len() as u64,
            offset: (i * CHUNK_BYTES) as u64,
            data: to_hex(piece),
        })
        .collect()
}

/// The chunks (by position) to send this time when the last sending stopped before `cursor`,
/// and where the next one starts: [`WINDOW`] of them, round and round.
pub fn window(cursor: usize, chunks: usize) -> (Vec<usize>, usize) {
    if chunks == 0 {
        return (Vec::new(), 0);
    }
    let cursor = cursor % chunks;
    let n = WINDOW.min(chunks);
    let picked = (0..n).map(|k| (cursor + k) % chunks).collect();
    (picked, (cursor + n) % chunks)
}

/// What a chunk did.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Its transfer is not complete yet (or the chunk was a duplicate).
    Pending,
    /// Of a transfer older than the one under way: dropped.
    Stale,
    /// Malformed; the reason. Dropped.
    Bad(String),
    /// It completed its transfer: the message the chunks carried.
    Complete(Msg),
}

struct Partial {
    transfer: (Term, Index, Term, Id, u64),
    bytes: Vec<u8>,
    have: Vec<bool>,
    missing: usize,
}

/// The receiver's side: at most one transfer under way.
#[derive(Default)]
pub struct Reassembly {
    partial: Option<Partial>,
}

impl Reassembly {
    /// Bytes held for the transfer under way.
    pub fn held(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.bytes.len())
    }

    pub fn accept(&mut self, chunk: SnapshotChunk) -> Outcome {
        if chunk.total == 0 || chunk.total > MAX_SNAPSHOT {
            return Outcome::Bad(format!("a snapshot of {} bytes", chunk.total));
        }
        let total = chunk.total as usize;
        let Some(data) = from_hex(&chunk.data) else {
            return Outcome::Bad("a chunk that is not hex".into());
        };
        let offset = chunk.offset as usize;
        let expected = total.saturating_sub(offset).min(CHUNK_BYTES);
        if !offset.is_multiple_of(CHUNK_BYTES) || offset >= total || data.len() != expected {
            return Outcome::Bad(format!(
                "a chunk of {} bytes at {offset} of {total}",
                data.len()
            ));
        }
        let transfer = chunk.transfer();
        match &self.partial {
            Some(p) if p.transfer > transfer => return Outcome::Stale,
            Some(p) if p.transfer == transfer => {}
            _ => {
                let chunks = total.div_ceil(CHUNK_BYTES);
                self.partial = Some(Partial {
                    transfer,
                    bytes: vec![0; total],
                    have: vec![false; chunks],
                    missing: chunks,
                });
            }
        }
        let p = self.partial.as_mut().expect("a transfer under way");
        let k = offset / CHUNK_BYTES;
        if p.have[k] {
            return Outcome::Pending;
        }
        p.bytes[offset..offset + data.len()].copy_from_slice(&data);
        p.have[k] = true;
        p.missing -= 1;
        if p.missing > 0 {
            return Outcome::Pending;
        }
        let p = self.partial.take().expect("a transfer under way");
        match serde_json::from_slice::<Snapshot>(&p.bytes) {
            Ok(snapshot) if snapshot.last == chunk.last => {
                Outcome::Complete(Msg::InstallSnapshot {
                    term: chunk.term,
                    leader_id: chunk.leader_id,
                    snapshot: Arc::new(snapshot),
                })
            }
            Ok(snapshot) => Outcome::Bad(format!(
                "a snapshot through {:?} sent as one through {:?}",
                snapshot.last, chunk.last
            )),
            Err(e) => Outcome::Bad(format!("a snapshot that does not decode: {e}")),
        }
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{KvStore, Op};
    use crate::runtime::auth::{Auth, ClusterKey, KEY_LEN};
    use crate::runtime::wire::{self, Incoming, MAX_DATAGRAM};
    use std::net::{Ipv4Addr, SocketAddrV4};

    /// A snapshot of `keys` keys with 100-byte values: about `keys * 120` bytes of JSON.
    fn snapshot(keys: usize, index: Index) -> Snapshot {
        let mut state = KvStore::default();
        for k in 0..keys {
            let op = Op::Put {
                key: format!("key{k}"),
                value: "v".repeat(100),
            };
            state.apply(1, k as u64 + 1, &op);
        }
        Snapshot {
            last: LogId { term: 2, index },
            state,
            membership: None,
        }
    }

    fn chunks_of(snapshot: &Snapshot, term: Term) -> Vec<SnapshotChunk> {
        split(term, Id::from(1), snapshot.last, &encode(snapshot))
    }

    fn complete(outcome: Outcome) -> Snapshot {
        match outcome {
            Outcome::Complete(Msg::InstallSnapshot { snapshot, .. }) => (*snapshot).clone(),
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn every_chunk_of_a_large_snapshot_fits_a_datagram_sealed() {
        let snap = snapshot(20_000, 9);
        let chunks = chunks_of(&snap, 3);
        assert!(chunks.len() > 50, "{} chunks", chunks.len());
        let at = |port| SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        let auth = Auth::Key(ClusterKey::from_bytes([7; KEY_LEN]));
        let mut r = Reassembly::default();
        let mut outcome = Outcome::Pending;
        for c in &chunks {
            let sealed = wire::seal(&auth, at(1), at(2), &wire::chunk_message(c)).unwrap();
            assert!(sealed.len() < MAX_DATAGRAM, "{} bytes", sealed.len());
            let Ok(Incoming::Chunk(opened)) = wire::open_incoming(&auth, at(1), at(2), &sealed)
            else {
                panic!("a chunk does not open as one")
            };
            outcome = r.accept(opened);
        }
        assert_eq!(complete(outcome), snap);
        assert_eq!(r.held(), 0, "nothing kept after completion");
    }

    #[test]
    fn windows_go_round_every_chunk() {
        let mut seen = vec![0; 13];
        let mut cursor = 0;
        for _ in 0..13usize.div_ceil(WINDOW) {
            let (picked, next) = window(cursor, 13);
            assert_eq!(picked.len(), WINDOW);
            for k in picked {
                seen[k] += 1;
            }
            cursor = next;
        }
        assert!(seen.iter().all(|&n| n >= 1), "{seen:?}");
        assert_eq!(window(0, 2), (vec![0, 1], 0));
        assert_eq!(window(5, 3).0, vec![2, 0, 1], "a stale cursor wraps");
        assert_eq!(window(0, 0), (vec![], 0));
    }

    #[test]
    fn reordered_and_duplicated_chunks_reassemble_the_same_snapshot() {
        let snap = snapshot(2_000, 9);
        let mut chunks = chunks_of(&snap, 3);
        assert!(chunks.len() >= 5);
        chunks.reverse();
        let last = chunks.pop().unwrap();
        let mut r = Reassembly::default();
        for c in chunks.iter().chain(&chunks) {
            assert_eq!(r.accept(c.clone()), Outcome::Pending);
        }
        assert_eq!(complete(r.accept(last)), snap);
    }

    #[test]
    fn a_lost_chunk_is_filled_in_by_the_next_sending() {
        let snap = snapshot(2_000, 9);
        let chunks = chunks_of(&snap, 3);
        let mut r = Reassembly::default();
        for c in chunks.iter().skip(1).step_by(2) {
            assert_eq!(r.accept(c.clone()), Outcome::Pending);
        }
        let mut done = None;
        for c in chunks.iter().step_by(2) {
            if let Outcome::Complete(m) = r.accept(c.clone()) {
                done = Some(m);
            }
        }
        assert!(done.is_some(), "the second sending completed it");
    }

    #[test]
    fn a_newer_transfer_discards_a_partial_one_and_an_older_one_is_dropped() {
        let old = snapshot(1_000, 9);
        let new = snapshot(1_500, 12);
        let (old_chunks, new_chunks) = (chunks_of(&old, 3), chunks_of(&new, 3));
        let mut r = Reassembly::default();
        assert_eq!(r.accept(old_chunks[0].clone()), Outcome::Pending);
        for c in &new_chunks[..new_chunks.len() - 1] {
            assert_eq!(r.accept(c.clone()), Outcome::Pending);
        }
        for c in &old_chunks {
            assert_eq!(r.accept(c.clone()), Outcome::Stale);
        }
        assert_eq!(complete(r.accept(new_chunks.last().unwrap().clone())), new);
        // A later term is newer, even for an older snapshot.
        let mut r = Reassembly::default();
        assert_eq!(r.accept(new_chunks[0].clone()), Outcome::Pending);
        let later_term = chunks_of(&old, 4);
        let mut outcome = Outcome::Pending;
        for c in &later_term {
            outcome = r.accept(c.clone());
        }
        assert_eq!(complete(outcome), old);
    }

    #[test]
    fn malformed_chunks_are_refused_and_memory_is_bounded() {
        let snap = snapshot(100, 9);
        let good = chunks_of(&snap, 3).remove(0);
        let mut r = Reassembly::default();
        let bad = [
            SnapshotChunk {
                total: MAX_SNAPSHOT + 1,
                ..good.clone()
            },
            SnapshotChunk {
                total: 0,
                ..good.clone()
            },
            SnapshotChunk {
                data: "zz".into(),
                ..good.clone()
            },
            SnapshotChunk {
                data: "abc".into(),
                ..good.clone()
            },
            SnapshotChunk {
                offset: 1,
                ..good.clone()
            },
            SnapshotChunk {
                offset: good.total,
                ..good.clone()
            },
            SnapshotChunk {
                data: good.data[2..].into(),
                ..good.clone()
            },
        ];
        for c in bad {
            assert!(matches!(r.accept(c.clone()), Outcome::Bad(_)), "{c:?}");
            assert_eq!(r.held(), 0);
        }
        // Bytes that do not decode, or a snapshot other than the one named, are refused whole.
        let lie = SnapshotChunk {
            last: LogId { term: 2, index: 10 },
            ..good.clone()
        };
        assert!(matches!(r.accept(lie), Outcome::Bad(_)));
        let junk = split(3, Id::from(1), snap.last, b"{not json");
        assert!(matches!(r.accept(junk[0].clone()), Outcome::Bad(_)));
    }
}
