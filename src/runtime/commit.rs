//! Group commit: many saves, one fsync.
//!
//! The actor's thread encodes each `Save` into a record and queues its bytes ([`Committer`]);
//! it never waits for the disk. A syncer thread takes everything queued, writes it, fsyncs
//! once, publishes the sequence number of the last record now durable, and sends a one-line
//! wake-up datagram to the node's own address so that the actor's thread runs and releases the
//! messages that waited for those records. While one fsync runs, the next batch gathers: the
//! more load, the more records each fsync covers.
//!
//! A compaction's snapshot does not wait in that line: the syncer begins a new log segment at
//! the compaction's place in the log (a batch boundary, costing an fsync or two, not the
//! snapshot), and a snapshot thread serializes the snapshot and writes it beside the log (see
//! `wal.rs`, "Snapshots"), then removes the segments it makes unnecessary. Only an install,
//! whose snapshot must be on disk before the log that follows it, is written by the syncer in
//! order.
//!
//! The node (see `node.rs`) holds back each message until what the protocol says it needs is
//! durable, and tells the protocol how far its log is durable. A lost wake-up costs nothing but
//! time: every event the node handles releases whatever has become durable.

use super::wal::{self, Encoder, LogFiles};
use crate::raft::{Durable, HardState, Index, LogId, Snapshot, Term};
use stateright::actor::Id;
use std::collections::VecDeque;
use std::net::{SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// What a wake-up datagram says (any datagram from the syncer's socket is a wake-up).
pub const WAKE_UP: &[u8] = br#"{"type":"StatusRequest"}"#;

/// State shared between the actor's thread, the syncer thread and the snapshot thread.
pub struct Shared {
    queue: Mutex<Queue>,
    queued: Condvar,
    /// Sequence number of the last record known durable.
    synced: AtomicU64,
    /// Held while writing and syncing, and by a stopping process so that it never exits in the
    /// middle of a write.
    io: Mutex<()>,
    snapshots: Mutex<SnapshotWork>,
    snapshot_queued: Condvar,
    /// The snapshot on disk; held while one is written.
    snapshot_file: Mutex<LogId>,
    /// Its last index, to read without waiting for a write.
    snapshot_durable: AtomicU64,
}

#[derive(Default)]
struct Queue {
    bytes: Vec<u8>,
    /// Where in `bytes` a new log segment starts, in order.
    rotations: Vec<Rotation>,
    /// Sequence number of the last record in `bytes` (or written before).
    last: u64,
}

impl Queue {
    /// What the syncer writes next: the bytes, the new segments among them, and the sequence
    /// number of their last record. The records before a new segment are a batch of their own,
    /// made durable without waiting for the new segment's syncs.
    fn take_batch(&mut self, spare: Vec<u8>) -> (Vec<u8>, Vec<Rotation>, u64) {
        match self.rotations.first() {
            Some(&Rotation { at, seq_before, .. }) if at > 0 => {
                let rest = self.bytes.split_off(at);
                for r in &mut self.rotations {
                    r.at -= at;
                }
                (
                    std::mem::replace(&mut self.bytes, rest),
                    Vec::new(),
                    seq_before,
                )
            }
            _ => {
                let rotations = std::mem::take(&mut self.rotations);
                (
                    std::mem::replace(&mut self.bytes, spare),
                    rotations,
                    self.last,
                )
            }
        }
    }
}

/// A new segment that starts at byte `at` of the queued bytes.
struct Rotation {
    at: usize,
    /// Sequence number of the last record before it.
    seq_before: u64,
    /// The index its entries start after.
    after: Index,
    /// A snapshot to make durable before the segment begins (an install).
    snapshot_first: Option<Arc<Snapshot>>,
}

/// What the snapshot thread has to do.
#[derive(Default)]
struct SnapshotWork {
    /// The newest snapshot to write; an older one not yet written is skipped.
    snapshot: Option<Arc<Snapshot>>,
    /// Log segments no longer needed.
    remove: Vec<PathBuf>,
}

impl Shared {
    /// Waits for a write in progress to finish and keeps further writes from starting; for a
    /// clean stop.
    pub fn quiesce(&self) -> std::sync::MutexGuard<'_, ()> {
        self.io.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Shared {
    fn new(snapshot_on_disk: LogId) -> Self {
        Self {
            queue: Mutex::new(Queue::default()),
            queued: Condvar::new(),
            synced: AtomicU64::new(0),
            io: Mutex::new(()),
            snapshots: Mutex::new(SnapshotWork::default()),
            snapshot_queued: Condvar::new(),
            snapshot_file: Mutex::new(snapshot_on_disk),
            snapshot_durable: AtomicU64::new(snapshot_on_disk.index),
        }
    }

    /// A `Shared` without a syncer thread, for tests that play the syncer themselves.
    #[cfg(test)]
    pub(crate) fn unstarted() -> Arc<Self> {
        Arc::new(Self::new(LogId::default()))
    }

    /// Declares every record up to `seq` durable, as the syncer does after an fsync.
    #[cfg(test)]
    pub(crate) fn mark_synced(&self, seq: u64) {
        self.synced.store(seq, Ordering::Release);
    }

    /// Hands work to the snapshot thread.
    fn to_snapshot_thread(&self, work: impl FnOnce(&mut SnapshotWork)) {
        work(&mut self.snapshots.lock().unwrap_or_else(|e| e.into_inner()));
        self.snapshot_queued.notify_one();
    }

    /// Replaces the snapshot file by `snapshot` unless the one on disk is as new (a compaction
    /// written late, after an install); returns the bytes written.
    fn write_snapshot(&self, store: &Store, snapshot: &Snapshot) -> std::io::Result<usize> {
        let mut on_disk = self.snapshot_file.lock().unwrap_or_else(|e| e.into_inner());
        if snapshot.last.index < on_disk.index || snapshot.last == *on_disk {
            return Ok(0);
        }
        let bytes = wal::encode_snapshot(store.node, snapshot);
        wal::write_snapshot(&store.dir, &bytes)?;
        *on_disk = snapshot.last;
        self.snapshot_durable
            .store(snapshot.last.index, Ordering::Release);
        Ok(bytes.len())
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

/// Where the storage threads write: the data directory, and the node it belongs to.
#[derive(Clone)]
pub struct Store {
    pub dir: PathBuf,
    pub node: SocketAddrV4,
}

/// Starts the syncer thread, which writes to `files`, and the snapshot thread; wake-ups go
/// from `wake` to `target`. `snapshot_on_disk` is the last entry of the snapshot recovered.
pub fn start(
    store: Store,
    files: LogFiles,
    snapshot_on_disk: LogId,
    wake: UdpSocket,
    target: SocketAddrV4,
    power_loss: Option<PowerLoss>,
) -> std::io::Result<Arc<Shared>> {
    let shared = Arc::new(Shared::new(snapshot_on_disk));
    let s = shared.clone();
    let st = store.clone();
    std::thread::Builder::new()
        .name(format!("snapshot {target}"))
        .spawn(move || snapshot_loop(&s, &st))?;
    let s = shared.clone();
    std::thread::Builder::new()
        .name(format!("fsync {target}"))
        .spawn(move || sync_loop(&s, store, files, &wake, target, power_loss))?;
    Ok(shared)
}

/// Stops the process: nothing more can be made durable, and nothing may be acknowledged.
fn cannot_write(what: &Path, e: &std::io::Error) -> ! {
    log::error!("cannot write {}: {e}; stopping", what.display());
    eprintln!("error: cannot write {}: {e}; stopping", what.display());
    std::process::exit(1);
}

/// Writes compactions' snapshots beside the log, off the path of commits, and removes the log
/// segments they make unnecessary.
fn snapshot_loop(shared: &Shared, store: &Store) {
    loop {
        let work = {
            let mut w = shared.snapshots.lock().unwrap_or_else(|e| e.into_inner());
            while w.snapshot.is_none() && w.remove.is_empty() {
                w = shared
                    .snapshot_queued
                    .wait(w)
                    .unwrap_or_else(|e| e.into_inner());
            }
            std::mem::take(&mut *w)
        };
        for path in &work.remove {
            match std::fs::remove_file(path) {
                Ok(()) => log::debug!("{}: removed {}", store.node, path.display()),
                Err(e) => log::warn!("{}: cannot remove {}: {e}", store.node, path.display()),
            }
        }
        if let Some(snapshot) = work.snapshot {
            let started = std::time::Instant::now();
            match shared.write_snapshot(store, &snapshot) {
                Ok(0) => {}
                Ok(bytes) => log::info!(
                    "{}: wrote a snapshot through index {} ({bytes} bytes) in {} ms",
                    store.node,
                    snapshot.last.index,
                    started.elapsed().as_millis()
                ),
                Err(e) => cannot_write(&store.dir.join(wal::SNAPSHOT_FILE), &e),
            }
        }
    }
}

/// Writes one batch: the bytes for the current segment, then each new segment's.
fn write_batch(
    shared: &Shared,
    store: &Store,
    files: &mut LogFiles,
    batch: &[u8],
    rotations: &[Rotation],
) -> std::io::Result<()> {
    let started = std::time::Instant::now();
    let mut from = 0;
    for r in rotations {
        files.append(&batch[from..r.at])?;
        if let Some(snapshot) = &r.snapshot_first {
            files.sync()?;
            let started = std::time::Instant::now();
            let bytes = shared.write_snapshot(store, snapshot)?;
            log::info!(
                "{}: wrote an installed snapshot through index {} ({bytes} bytes) in {} ms",
                store.node,
                snapshot.last.index,
                started.elapsed().as_millis()
            );
        }
        files.rotate(r.after)?;
        from = r.at;
    }
    files.append(&batch[from..])?;
    files.sync()?;
    if let Some(r) = rotations.last() {
        log::info!(
            "{}: began a log segment after index {} (a batch of {} bytes written in {} us)",
            store.node,
            r.after,
            batch.len(),
            started.elapsed().as_micros()
        );
    }
    Ok(())
}

fn sync_loop(
    shared: &Shared,
    store: Store,
    mut files: LogFiles,
    wake: &UdpSocket,
    target: SocketAddrV4,
    power_loss: Option<PowerLoss>,
) {
    let mut spare = Vec::new();
    loop {
        let (mut batch, rotations, last) = {
            let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            while q.bytes.is_empty() {
                q = shared.queued.wait(q).unwrap_or_else(|e| e.into_inner());
            }
            q.take_batch(spare)
        };
        if let Some(PowerLoss { fsync }) = power_loss {
            // Nothing of this batch is on disk until its fsync completes.
            std::thread::sleep(fsync);
        }
        let written = {
            let _io = shared.quiesce();
            write_batch(shared, &store, &mut files, &batch, &rotations)
        };
        if let Err(e) = written {
            // Nothing more can be made durable: stop rather than acknowledge what is not.
            cannot_write(&files.path(), &e);
        }
        shared.synced.store(last, Ordering::Release);
        if let Err(e) = wake.send_to(WAKE_UP, target) {
            log::debug!("wake-up to {target} failed: {e}");
        }
        let superseded = files.superseded(shared.snapshot_durable.load(Ordering::Acquire));
        if !superseded.is_empty() {
            shared.to_snapshot_thread(|w| w.remove.extend(superseded));
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
        if let Some(checkpoint) = encoded.checkpoint {
            let snapshot = checkpoint.snapshot;
            let after = snapshot.last.index;
            let at = q.bytes.len();
            let snapshot_first = if checkpoint.snapshot_first {
                Some(snapshot)
            } else {
                // The log on disk holds what the snapshot does: write it beside, off this path.
                self.shared
                    .to_snapshot_thread(|w| w.snapshot = Some(snapshot));
                None
            };
            q.rotations.push(Rotation {
                at,
                seq_before: self.last_seq - 1,
                after,
                snapshot_first,
            });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::{Command, Entry, Log};
    use std::net::Ipv4Addr;

    fn node() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4000)
    }

    /// A log of `n` entries of term 1, compacted through `through` (0: not at all).
    fn storage(n: u64, through: Index) -> HardState {
        let noop = || Entry {
            term: 1,
            command: Command::Noop,
        };
        let mut log = Log::from_entries(std::iter::repeat_with(noop).take(n as usize));
        if through > 0 {
            log.compact_through(through, log.replay_through(through));
        }
        HardState {
            current_term: 1,
            voted_for: None,
            log,
        }
    }

    #[test]
    fn a_compaction_starts_a_segment_and_leaves_its_snapshot_to_the_snapshot_thread() {
        let shared = Shared::unstarted();
        let mut committer = Committer::new(shared.clone(), &storage(0, 0), node());
        committer.save(&storage(3, 0));
        committer.save(&storage(5, 0));
        committer.save(&storage(5, 4));
        committer.save(&storage(6, 4));
        assert_eq!(committer.last_seq(), 4);
        let work = shared.snapshots.lock().unwrap().snapshot.clone();
        assert_eq!(work.map(|s| s.last.index), Some(4));

        let mut q = shared.queue.lock().unwrap();
        // The records before the new segment are durable after one sync of the old one.
        let (before, rotations, last) = q.take_batch(Vec::new());
        assert!(rotations.is_empty());
        assert_eq!(last, 2);
        assert_eq!(String::from_utf8_lossy(&before).matches("noop").count(), 5);
        // Then the new segment: its header and everything past the snapshot, and what follows.
        let (segment, rotations, last) = q.take_batch(Vec::new());
        assert_eq!(last, 4);
        assert_eq!(rotations.len(), 1);
        assert_eq!((rotations[0].at, rotations[0].after), (0, 4));
        assert!(rotations[0].snapshot_first.is_none());
        let text = String::from_utf8_lossy(&segment);
        assert!(text.contains(r#""after":4"#), "{text}");
        assert_eq!(text.matches("noop").count(), 2, "{text}");
        assert!(q.bytes.is_empty() && q.rotations.is_empty());
    }
}
