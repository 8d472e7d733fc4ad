//! Group commit: many saves, one fsync.
//!
//! The actor's thread encodes each `Save` into a record and queues its bytes ([`Committer`]);
//! it never waits for the disk. A syncer thread takes everything queued, writes it, fsyncs
//! once, publishes the sequence number of the last record now durable, and sends a one-line
//! wake-up datagram to the node's own address so that the actor's thread runs and releases the
//! messages that waited for those records. While one fsync runs, the next batch gathers: the
//! more load, the more records each fsync covers.
//!
//! The node (see `node.rs`) holds back each message until what the protocol says it needs is
//! durable, and tells the protocol how far its log is durable. A lost wake-up costs nothing but
//! time: every event the node handles releases whatever has become durable.

use super::wal::{self, Encoder};
use crate::raft::{Durable, HardState, Index, Snapshot, Term};
use stateright::actor::Id;
use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::net::{SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// What a wake-up datagram says (any datagram from the syncer's socket is a wake-up).
pub const WAKE_UP: &[u8] = br#"{"type":"StatusRequest"}"#;

/// State shared between the actor's thread and the syncer thread.
pub struct Shared {
    queue: Mutex<Queue>,
    queued: Condvar,
    /// Sequence number of the last record known durable.
    synced: AtomicU64,
    /// Held while writing and syncing, and by a stopping process so that it never exits in the
    /// middle of a write.
    io: Mutex<()>,
}

#[derive(Default)]
struct Queue {
    /// A new snapshot to write before `bytes`, which then replace the log file.
    checkpoint: Option<Arc<Snapshot>>,
    bytes: Vec<u8>,
    /// Sequence number of the last record in `bytes` (or written before).
    last: u64,
}

impl Shared {
    /// Waits for a write in progress to finish and keeps further writes from starting; for a
    /// clean stop.
    pub fn quiesce(&self) -> std::sync::MutexGuard<'_, ()> {
        self.io.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Shared {
    fn new() -> Self {
        Self {
            queue: Mutex::new(Queue::default()),
            queued: Condvar::new(),
            synced: AtomicU64::new(0),
            io: Mutex::new(()),
        }
    }

    /// A `Shared` without a syncer thread, for tests that play the syncer themselves.
    #[cfg(test)]
    pub(crate) fn unstarted() -> Arc<Self> {
        Arc::new(Self::new())
    }

    /// Declares every record up to `seq` durable, as the syncer does after an fsync.
    #[cfg(test)]
    pub(crate) fn mark_synced(&self, seq: u64) {
        self.synced.store(seq, Ordering::Release);
    }
}

/// For tests only: a disk that loses, when the process is killed, exactly what no completed
/// fsync covers, as a power loss would. A killed process's written bytes otherwise survive in
/// the page cache, so a kill alone cannot show that something left before it was durable.
/// Each batch is held in memory for `fsync` (the fsync's duration) and reaches the file only
/// then, at the moment its fsync completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowerLoss {
    pub fsync: std::time::Duration,
}

/// Where the syncer writes: the log file, its data directory, and the node they belong to.
pub struct Store {
    pub file: File,
    pub dir: PathBuf,
    pub node: SocketAddrV4,
}

/// Starts the syncer thread for `store`; wake-ups go from `wake` to `target`.
pub fn start(
    store: Store,
    wake: UdpSocket,
    target: SocketAddrV4,
    power_loss: Option<PowerLoss>,
) -> std::io::Result<Arc<Shared>> {
    let shared = Arc::new(Shared::new());
    let s = shared.clone();
    std::thread::Builder::new()
        .name(format!("fsync {target}"))
        .spawn(move || sync_loop(&s, store, &wake, target, power_loss))?;
    Ok(shared)
}

/// Writes a new snapshot and replaces the log by `wal_bytes` (see `wal.rs`, "Snapshots").
fn checkpoint(store: &mut Store, snapshot: &Snapshot, wal_bytes: &[u8]) -> std::io::Result<()> {
    let started = std::time::Instant::now();
    let snapshot_bytes = wal::encode_snapshot(store.node, snapshot);
    wal::write_snapshot(&store.dir, &snapshot_bytes)?;
    store.file = wal::rotate(&store.dir, wal_bytes)?;
    log::info!(
        "{}: wrote a snapshot through index {} ({} bytes) and a new log of {} bytes in {} ms",
        store.node,
        snapshot.last.index,
        snapshot_bytes.len(),
        wal_bytes.len(),
        started.elapsed().as_millis()
    );
    Ok(())
}

fn sync_loop(
    shared: &Shared,
    mut store: Store,
    wake: &UdpSocket,
    target: SocketAddrV4,
    power_loss: Option<PowerLoss>,
) {
    let mut spare = Vec::new();
    let path = store.dir.join(wal::WAL_FILE);
    loop {
        let (mut batch, checkpoint_of, last) = {
            let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            while q.bytes.is_empty() {
                q = shared.queued.wait(q).unwrap_or_else(|e| e.into_inner());
            }
            let checkpoint_of = q.checkpoint.take();
            (
                std::mem::replace(&mut q.bytes, spare),
                checkpoint_of,
                q.last,
            )
        };
        if let Some(PowerLoss { fsync }) = power_loss {
            // Nothing of this batch is on disk until its fsync completes.
            std::thread::sleep(fsync);
        }
        let written = {
            let _io = shared.quiesce();
            match &checkpoint_of {
                Some(snapshot) => checkpoint(&mut store, snapshot, &batch),
                None => (store.file.write_all(&batch)).and_then(|()| store.file.sync_data()),
            }
        };
        if let Err(e) = written {
            // Nothing more can be made durable: stop rather than acknowledge what is not.
            log::error!("cannot write {}: {e}; stopping", path.display());
            eprintln!("error: cannot write {}: {e}; stopping", path.display());
            std::process::exit(1);
        }
        shared.synced.store(last, Ordering::Release);
        if let Err(e) = wake.send_to(WAKE_UP, target) {
            log::debug!("wake-up to {target} failed: {e}");
        }
        batch.clear();
        spare = batch;
    }
}

/// A record not yet known durable.
struct Pending {
    seq: u64,
    /// Log entries `1..=keep` were not touched by this record.
    keep: Index,
    /// The log's length, the term and the vote once this record is applied.
    len_after: Index,
    term: Term,
    vote: Option<Id>,
}

/// The actor thread's side: encodes saves, queues them, and tracks what is durable.
pub struct Committer {
    shared: Arc<Shared>,
    encoder: Encoder,
    last_seq: u64,
    pending: VecDeque<Pending>,
    /// Length of the log, term and vote as of the last record known durable.
    synced_len: Index,
    synced_term: Term,
    synced_vote: Option<Id>,
    synced_seq: u64,
}

impl Committer {
    /// `recovered` is the state already durable on disk, in the directory of `node`.
    pub fn new(shared: Arc<Shared>, recovered: &HardState, node: SocketAddrV4) -> Self {
        Self {
            shared,
            encoder: Encoder::new(recovered, node),
            last_seq: 0,
            pending: VecDeque::new(),
            synced_len: recovered.log.last_index(),
            synced_term: recovered.current_term,
            synced_vote: recovered.voted_for,
            synced_seq: 0,
        }
    }

    /// Queues the record for `storage`, if anything changed.
    pub fn save(&mut self, storage: &HardState) {
        let Some(encoded) = self.encoder.encode(storage) else {
            return;
        };
        self.last_seq += 1;
        self.pending.push_back(Pending {
            seq: self.last_seq,
            keep: encoded.keep,
            len_after: storage.log.last_index(),
            term: storage.current_term,
            vote: storage.voted_for,
        });
        let mut q = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        if encoded.checkpoint.is_some() {
            // A checkpoint holds the whole state: records queued before it are superseded.
            q.bytes.clear();
            q.checkpoint = encoded.checkpoint;
        }
        q.bytes.extend_from_slice(&encoded.bytes);
        q.last = self.last_seq;
        drop(q);
        self.shared.queued.notify_one();
    }

    /// Sequence number of the last record queued: a message produced now depends on it.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The sequence number durable as of the last [`Committer::refresh`].
    pub fn synced_seq(&self) -> u64 {
        self.synced_seq
    }

    /// Catches up with the syncer; returns the sequence number now durable.
    pub fn refresh(&mut self) -> u64 {
        let synced = self.shared.synced.load(Ordering::Acquire);
        while let Some(p) = self.pending.front() {
            if p.seq > synced {
                break;
            }
            self.synced_len = p.len_after;
            self.synced_term = p.term;
            self.synced_vote = p.vote;
            self.pending.pop_front();
        }
        self.synced_seq = synced;
        synced
    }

    /// The term and vote as of the last durable record.
    pub fn durable_term_vote(&self) -> (Term, Option<Id>) {
        (self.synced_term, self.synced_vote)
    }

    /// The longest prefix of the current log that is durable: entries `1..=n` are on disk and
    /// no record still in flight changes them.
    pub fn durable_prefix(&self) -> Index {
        self.pending
            .iter()
            .map(|p| p.keep)
            .fold(self.synced_len, Index::min)
    }

    /// Whether what `needs` names is durable for a server whose term and vote are now
    /// `term_vote`.
    pub fn is_durable(&self, needs: Durable, term_vote: (Term, Option<Id>)) -> bool {
        (!needs.term_vote || self.durable_term_vote() == term_vote)
            && needs.log_through <= self.durable_prefix()
    }
}
