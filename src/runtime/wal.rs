//! Durable storage of a server's [`HardState`] (Figure 2, "Persistent state on all servers"): a
//! snapshot file and a write-ahead log of checksummed records in `--data-dir`.
//!
//! # File format
//! `DIR/raft.wal` is a sequence of frames `[magic "RRw1"][len: u32 LE][crc: u32 LE][payload]`,
//! where `crc` is CRC-32 (crc32fast) over the four `len` bytes followed by the payload, and the
//! payload is one JSON [`Record`]. The first record names the node the directory belongs to; each
//! later one is the difference a `Save` made: the new term and vote, and the log from index
//! `from` on (entries `1..from` are kept, the rest replaced by `entries`). Logs only change at
//! the end, so a save costs O(new entries), not a rewrite of the log.
//!
//! # Snapshots
//! `DIR/raft.snap` is one frame of the same shape holding the node's name and the log's
//! [`Snapshot`] (§7). When a save changes the snapshot (a compaction or an install), the
//! storage is checkpointed ([`write_snapshot`], then [`rotate`]): the snapshot goes to a
//! temporary file, fsync, rename, fsync of the directory; then a new log, whose header says
//! its entries start after the snapshot (`after`), holding one save of the whole state past
//! the snapshot, replaces `raft.wal` the same way. Disk then holds the snapshot and the
//! entries since it. A crash between the two renames leaves the new snapshot beside the old
//! log: recovery keeps the old log's entries after the snapshot only if the log holds the
//! snapshot's last entry (Log Matching), as an install does, and drops them otherwise.
//!
//! # Recovery contract
//! - Every complete frame must check out; a bad checksum, a frame that does not decode, or a
//!   record that does not fit the log so far is corruption: [`open`] fails with a message naming
//!   the file and offset, and the node does not start. It never silently starts empty.
//! - The only damage repaired is a torn tail: an incomplete last frame (a write cut short by a
//!   crash), with no valid frame after it. It was never synced, so nothing acknowledged depended
//!   on it; it is cut off and the node starts from the records before it.
//! - A snapshot file must decode whole: a short, damaged or foreign one is corruption, and so
//!   is a log that starts after a snapshot that is missing or older. Temporary files (a
//!   checkpoint cut short) are removed.

use crate::raft::{Entry, HardState, Index, Log, Snapshot, Term};
use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a data directory cannot be used. Each case is its own variant so that callers (and
/// tests) can tell a corrupt log from another node's directory.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is corrupt: {reason}; refusing to start", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{} belongs to node {owner}, not {node}; use that node's own directory",
        path.display()
    )]
    OtherNode {
        path: PathBuf,
        owner: String,
        node: SocketAddrV4,
    },
    #[error("{} is in use by another raftright process", path.display())]
    Locked { path: PathBuf },
    #[error("{} has format version {version}, which this build does not read", path.display())]
    UnknownVersion { path: PathBuf, version: u32 },
}

/// Why the records do not replay (before the file's path is known to the error).
enum ReplayError {
    Corrupt(String),
    OtherNode(String),
    UnknownVersion(u32),
}

pub const WAL_FILE: &str = "raft.wal";
pub const SNAPSHOT_FILE: &str = "raft.snap";
/// A file being written by a checkpoint; it only counts once renamed.
const TMP_SUFFIX: &str = ".tmp";
const MAGIC: [u8; 4] = *b"RRw1";
const FRAME_HEADER: usize = 12;
/// No record is larger (a sanity bound on the length field).
const MAX_RECORD: usize = 256 << 20;
const VERSION: u32 = 1;

/// One record of the log file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Record {
    /// The first record: whose directory this is, and the index the log's entries start after
    /// (the snapshot's last index when the log was rotated; 0 before any snapshot).
    Header {
        version: u32,
        node: String,
        #[serde(default)]
        after: Index,
    },
    /// A `Save`: set term and vote, keep the log up to `from - 1`, then append `entries`.
    Save {
        term: Term,
        voted_for: Option<Id>,
        from: Index,
        entries: Vec<Entry>,
    },
}

/// [`Record::Save`] by reference, so encoding does not copy the entries.
#[derive(Serialize)]
#[serde(tag = "kind", rename = "save")]
struct SaveRef<'a> {
    term: Term,
    voted_for: Option<Id>,
    from: Index,
    entries: Vec<&'a Entry>,
}

/// Frames a payload: magic, length, checksum, payload.
fn frame(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("record below 4 GiB");
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len.to_le_bytes());
    crc.update(payload);
    let mut out = Vec::with_capacity(FRAME_HEADER + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(payload);
    out
}

enum Frame<'a> {
    /// A valid frame: its payload and its size on disk.
    Valid(&'a [u8], usize),
    /// Too short for its header or its length, or not a frame header at all.
    Incomplete,
    /// Complete, but the checksum does not match.
    BadChecksum,
}

fn read_frame(bytes: &[u8]) -> Frame<'_> {
    if bytes.len() < FRAME_HEADER || bytes[..4] != MAGIC {
        return Frame::Incomplete;
    }
    let len_bytes: [u8; 4] = bytes[4..8].try_into().expect("4 bytes");
    let len = u32::from_le_bytes(len_bytes) as usize;
    let crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if len == 0 || len > MAX_RECORD || bytes.len() - FRAME_HEADER < len {
        return Frame::Incomplete;
    }
    let payload = &bytes[FRAME_HEADER..FRAME_HEADER + len];
    let mut h = crc32fast::Hasher::new();
    h.update(&len_bytes);
    h.update(payload);
    if h.finalize() == crc {
        Frame::Valid(payload, FRAME_HEADER + len)
    } else {
        Frame::BadChecksum
    }
}

/// Whether any valid frame starts after `from`: if so, damage at `from` is not a torn tail.
fn valid_frame_after(bytes: &[u8], from: usize) -> bool {
    (from + 1..bytes.len().saturating_sub(FRAME_HEADER - 1))
        .filter(|&p| bytes[p..p + 4] == MAGIC)
        .any(|p| matches!(read_frame(&bytes[p..]), Frame::Valid(..)))
}

/// An opened, recovered log file, positioned for appending.
pub struct Opened {
    pub file: File,
    /// The state the records describe.
    pub storage: HardState,
    /// Records read (the header included).
    pub records: usize,
    /// Set when a torn tail was cut off: how many bytes, at which offset.
    pub repaired: Option<(u64, u64)>,
}

/// Opens (creating if needed) the log of `node` in `dir`, recovers its state, and locks it
/// against a second process. Errors are meant for the operator, and name the file.
pub fn open(dir: &Path, node: SocketAddrV4) -> Result<Opened, WalError> {
    let dir_existed = dir.exists();
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| WalError::Io {
            action,
            path,
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(io("create data directory", dir))?;
    let path = dir.join(WAL_FILE);
    let corrupt = |reason: String| WalError::Corrupt {
        path: path.clone(),
        reason,
    };
    let existed = path.exists();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io("open", &path))?;
    file.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => WalError::Locked { path: path.clone() },
        std::fs::TryLockError::Error(e) => io("lock", &path)(e),
    })?;
    for name in [WAL_FILE, SNAPSHOT_FILE] {
        // What a checkpoint cut short left (under the lock: no other process is writing it).
        let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
        if tmp.exists() {
            std::fs::remove_file(&tmp).map_err(io("remove", &tmp))?;
        }
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io("read", &path))?;

    let mut payloads = Vec::new();
    let mut off = 0;
    let mut repaired = None;
    while off < bytes.len() {
        match read_frame(&bytes[off..]) {
            Frame::Valid(payload, size) => {
                payloads.push((off, payload));
                off += size;
            }
            Frame::BadChecksum => {
                return Err(corrupt(format!(
                    "checksum mismatch in the record at byte {off}"
                )));
            }
            Frame::Incomplete if valid_frame_after(&bytes, off) => {
                return Err(corrupt(format!(
                    "damaged record at byte {off} followed by valid ones"
                )));
            }
            Frame::Incomplete => {
                repaired = Some(((bytes.len() - off) as u64, off as u64));
                break;
            }
        }
    }

    let records = payloads.len();
    let replayed = replay(&payloads, node).map_err(|e| match e {
        ReplayError::Corrupt(reason) => corrupt(reason),
        ReplayError::OtherNode(owner) => WalError::OtherNode {
            path: path.clone(),
            owner,
            node,
        },
        ReplayError::UnknownVersion(version) => WalError::UnknownVersion {
            path: path.clone(),
            version,
        },
    })?;
    let storage = assemble(read_snapshot(dir, node)?, replayed).map_err(corrupt)?;
    if let Some((_, at)) = repaired {
        file.set_len(at)
            .and_then(|()| file.sync_all())
            .map_err(io("cut the torn tail of", &path))?;
    }
    file.seek(SeekFrom::End(0)).map_err(io("seek in", &path))?;
    if records == 0 {
        file.write_all(&header(node, 0))
            .and_then(|()| file.sync_all())
            .map_err(io("write", &path))?;
        if !existed {
            // Make the new file's directory entry durable too, and the directory's own.
            let parent = dir
                .parent()
                .filter(|p| !dir_existed && !p.as_os_str().is_empty());
            for d in std::iter::once(dir).chain(parent) {
                File::open(d)
                    .and_then(|d| d.sync_all())
                    .map_err(io("sync directory", d))?;
            }
        }
    }
    Ok(Opened {
        file,
        storage,
        records,
        repaired,
    })
}

/// What the log's records describe: term, vote, and the entries after index `after`.
struct Replayed {
    current_term: Term,
    voted_for: Option<Id>,
    after: Index,
    entries: Vec<Entry>,
}

/// Rebuilds the log's contents from the records, checking that each fits what came before.
fn replay(payloads: &[(usize, &[u8])], node: SocketAddrV4) -> Result<Replayed, ReplayError> {
    let mut out = Replayed {
        current_term: 0,
        voted_for: None,
        after: 0,
        entries: Vec::new(),
    };
    let corrupt = |reason: String| ReplayError::Corrupt(reason);
    for (i, (off, payload)) in payloads.iter().enumerate() {
        let record: Record = serde_json::from_slice(payload)
            .map_err(|e| corrupt(format!("the record at byte {off} does not decode: {e}")))?;
        match record {
            Record::Header {
                version,
                node: owner,
                after,
            } if i == 0 => {
                if version != VERSION {
                    return Err(ReplayError::UnknownVersion(version));
                }
                if owner != node.to_string() {
                    return Err(ReplayError::OtherNode(owner));
                }
                out.after = after;
            }
            Record::Header { .. } => return Err(corrupt(format!("a second header at byte {off}"))),
            Record::Save { .. } if i == 0 => {
                return Err(corrupt("it does not start with a header".into()));
            }
            Record::Save {
                term,
                voted_for,
                from,
                entries,
            } => {
                let end = out.after + out.entries.len() as Index;
                let keep = from.checked_sub(1).filter(|&k| k >= out.after && k <= end);
                let Some(keep) = keep else {
                    return Err(corrupt(format!(
                        "the record at byte {off} starts at index {from}, outside the log's \
                         indexes {}..={}",
                        out.after + 1,
                        end + 1
                    )));
                };
                out.entries.truncate((keep - out.after) as usize);
                out.entries.extend(entries);
                out.current_term = term;
                out.voted_for = voted_for;
            }
        }
    }
    Ok(out)
}

/// The log as it was saved: the snapshot, then the log's entries after it. Entries the
/// snapshot covers are dropped; the rest are kept only if they follow the snapshot's last entry
/// (a log not yet rotated after an install may hold a conflicting suffix).
fn assemble(snapshot: Option<Snapshot>, wal: Replayed) -> Result<HardState, String> {
    let snapshot = snapshot.unwrap_or_default();
    let last = snapshot.last;
    if wal.after > last.index {
        return Err(format!(
            "the log starts after index {}, but {}",
            wal.after,
            if last.index == 0 {
                format!("there is no {SNAPSHOT_FILE}")
            } else {
                format!("{SNAPSHOT_FILE} ends at index {}", last.index)
            }
        ));
    }
    let mut log = Log::new();
    if !snapshot.is_empty() {
        log.install(Arc::new(snapshot), false);
    }
    let skip = (last.index - wal.after) as usize;
    let follows = skip == 0 || wal.entries.get(skip - 1).map(|e| e.term) == Some(last.term);
    if follows && skip <= wal.entries.len() {
        log.append_after(last.index, &wal.entries[skip..]);
    }
    // A snapshot is committed, so some leader of at least its last term existed; a term below
    // it was never acted on in that term (its votes would be in the log).
    let (current_term, voted_for) = if wal.current_term < last.term {
        (last.term, None)
    } else {
        (wal.current_term, wal.voted_for)
    };
    Ok(HardState {
        current_term,
        voted_for,
        log,
    })
}

/// The snapshot file's contents.
#[derive(Serialize, Deserialize)]
struct SnapshotRecord<T> {
    version: u32,
    node: String,
    snapshot: T,
}

/// The framed contents of `DIR/raft.snap` for `snapshot`.
pub fn encode_snapshot(node: SocketAddrV4, snapshot: &Snapshot) -> Vec<u8> {
    let payload = serde_json::to_vec(&SnapshotRecord {
        version: VERSION,
        node: node.to_string(),
        snapshot,
    })
    .expect("snapshot encodes");
    frame(&payload)
}

/// Reads `DIR/raft.snap`, if there is one; anything but one whole valid frame is corruption.
fn read_snapshot(dir: &Path, node: SocketAddrV4) -> Result<Option<Snapshot>, WalError> {
    let path = dir.join(SNAPSHOT_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(WalError::Io {
                action: "read",
                path,
                source,
            });
        }
    };
    let corrupt = |reason: String| WalError::Corrupt {
        path: path.clone(),
        reason,
    };
    let payload = match read_frame(&bytes) {
        Frame::Valid(payload, size) if size == bytes.len() => payload,
        Frame::Valid(_, size) => {
            return Err(corrupt(format!(
                "{} bytes follow the snapshot",
                bytes.len() - size
            )));
        }
        Frame::Incomplete => {
            return Err(corrupt(format!(
                "it is truncated or not a snapshot ({} bytes)",
                bytes.len()
            )));
        }
        Frame::BadChecksum => return Err(corrupt("checksum mismatch".into())),
    };
    let record: SnapshotRecord<Snapshot> =
        serde_json::from_slice(payload).map_err(|e| corrupt(format!("it does not decode: {e}")))?;
    if record.version != VERSION {
        return Err(WalError::UnknownVersion {
            path,
            version: record.version,
        });
    }
    if record.node != node.to_string() {
        return Err(WalError::OtherNode {
            path,
            owner: record.node,
            node,
        });
    }
    Ok(Some(record.snapshot))
}

/// Makes a rename or a new file in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `DIR/NAME.tmp` and fsyncs it; returns the file, open for appending.
fn write_tmp(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<(File, PathBuf)> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok((file, tmp))
}

/// Checkpoint, first half: replaces `DIR/raft.snap` by `snapshot_bytes` (from
/// [`encode_snapshot`]) so that a crash leaves either the old file or the new one.
pub fn write_snapshot(dir: &Path, snapshot_bytes: &[u8]) -> std::io::Result<()> {
    replace_file(dir, SNAPSHOT_FILE, snapshot_bytes)
}

/// Replaces `DIR/NAME` by `bytes` so that a crash leaves either the old file or the new one.
pub fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let (_, tmp) = write_tmp(dir, name, bytes)?;
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Checkpoint, second half: replaces `DIR/raft.wal` by a log of `wal_bytes` (a header and a
/// save, from [`Encoder::encode`]), locked like the one it replaces; returns it, positioned for
/// appending.
pub fn rotate(dir: &Path, wal_bytes: &[u8]) -> std::io::Result<File> {
    let (file, tmp) = write_tmp(dir, WAL_FILE, wal_bytes)?;
    file.try_lock().map_err(std::io::Error::other)?;
    std::fs::rename(&tmp, dir.join(WAL_FILE))?;
    sync_dir(dir)?;
    Ok(file)
}

/// The framed header of a log whose entries start after index `after`.
fn header(node: SocketAddrV4, after: Index) -> Vec<u8> {
    let header = serde_json::to_vec(&Record::Header {
        version: VERSION,
        node: node.to_string(),
        after,
    })
    .expect("header encodes");
    frame(&header)
}

/// Turns each `Save` into the record that changes the persisted state into the saved one.
///
/// It remembers only the persisted term, vote, snapshot index and the term of each kept log
/// entry, never a copy of the log itself: a copy would share the log's chunks with the server,
/// and every append would then copy the shared tail.
#[derive(Debug)]
pub struct Encoder {
    node: SocketAddrV4,
    current_term: Term,
    voted_for: Option<Id>,
    /// The persisted snapshot's last index and term.
    base: Index,
    base_term: Term,
    /// The term of each persisted entry after the snapshot (`terms[i - base - 1]` for index `i`).
    terms: Vec<Term>,
}

/// One encoded save.
pub struct Encoded {
    /// A record to append to the log; with a checkpoint, the whole new log instead.
    pub bytes: Vec<u8>,
    /// Entries `1..=keep` of the log were left as they were.
    pub keep: Index,
    /// The save changed the snapshot: write it, then replace the log by `bytes`.
    pub checkpoint: Option<Arc<Snapshot>>,
}

impl Encoder {
    pub fn new(persisted: &HardState, node: SocketAddrV4) -> Self {
        let snapshot = persisted.log.snapshot();
        Self {
            node,
            current_term: persisted.current_term,
            voted_for: persisted.voted_for,
            base: snapshot.last.index,
            base_term: snapshot.last.term,
            terms: persisted.log.iter().map(|e| e.term).collect(),
        }
    }

    fn persisted_last(&self) -> Index {
        self.base + self.terms.len() as Index
    }

    /// The persisted term at `index`, for an index past the snapshot (or its last).
    fn persisted_term(&self, index: Index) -> Option<Term> {
        match index.checked_sub(self.base) {
            Some(0) => Some(self.base_term),
            Some(k) => self.terms.get(k as usize - 1).copied(),
            None => None,
        }
    }

    /// The record for `new`, or `None` when nothing changed. Only the changed suffix of the log
    /// is written: by Log Matching, logs that agree on the term at an index agree on every entry
    /// up to it, so the first difference is found walking back from the shorter end. A new
    /// snapshot makes a checkpoint instead.
    pub fn encode(&mut self, new: &HardState) -> Option<Encoded> {
        let snapshot = new.log.snapshot();
        let new_base = snapshot.last.index;
        let new_len = new.log.last_index();
        let checkpoint = new_base != self.base || snapshot.last.term != self.base_term;
        // Entries below both snapshots are committed, the same in every log.
        let floor = self.base.max(new_base);
        let mut keep = self.persisted_last().min(new_len);
        if checkpoint
            && new_base > self.base
            && self.persisted_term(new_base) != Some(snapshot.last.term)
        {
            // The persisted log does not hold the new snapshot's last entry: only what the old
            // snapshot covered is known the same.
            keep = self.base.min(keep);
        }
        while keep > floor && new.log.term_at(keep) != self.persisted_term(keep) {
            keep -= 1;
        }
        let log_same = keep == self.persisted_last() && keep == new_len && !checkpoint;
        if log_same && self.current_term == new.current_term && self.voted_for == new.voted_for {
            return None;
        }
        let from = if checkpoint { new_base } else { keep }.max(new_base);
        let suffix: Vec<&Entry> = (from + 1..=new_len)
            .map(|i| new.log.get(i).expect("index within the log"))
            .collect();
        let payload = serde_json::to_vec(&SaveRef {
            term: new.current_term,
            voted_for: new.voted_for,
            from: from + 1,
            entries: suffix.clone(),
        })
        .expect("storage encodes");
        self.current_term = new.current_term;
        self.voted_for = new.voted_for;
        let bytes = if checkpoint {
            self.base = new_base;
            self.base_term = snapshot.last.term;
            self.terms.clear();
            let mut bytes = header(self.node, new_base);
            bytes.extend_from_slice(&frame(&payload));
            bytes
        } else {
            self.terms.truncate((keep - self.base) as usize);
            frame(&payload)
        };
        self.terms.extend(suffix.iter().map(|e| e.term));
        Some(Encoded {
            bytes,
            keep,
            checkpoint: checkpoint.then(|| new.log.snapshot_shared()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::Command;
    use std::net::Ipv4Addr;

    fn node() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4000)
    }

    fn storage(term: Term, terms: &[Term]) -> HardState {
        HardState {
            current_term: term,
            voted_for: Some(Id::from(node())),
            log: Log::from_entries(terms.iter().map(|&term| Entry {
                term,
                command: Command::Noop,
            })),
        }
    }

    /// Encodes the saves into a fresh directory's log, as the runtime does.
    fn write(dir: &Path, saves: &[HardState]) {
        let mut opened = open(dir, node()).unwrap();
        let mut enc = Encoder::new(&opened.storage, node());
        for s in saves {
            if let Some(e) = enc.encode(s) {
                opened.file.write_all(&e.bytes).unwrap();
            }
        }
        opened.file.sync_all().unwrap();
    }

    fn wal(dir: &Path) -> std::path::PathBuf {
        dir.join(WAL_FILE)
    }

    #[test]
    fn saves_round_trip_including_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let saves = [
            storage(1, &[1]),
            storage(1, &[1, 1, 1]),
            storage(2, &[1, 1, 1]),
            storage(3, &[1, 3]),
            storage(3, &[1, 3, 3]),
        ];
        write(dir.path(), &saves);
        let opened = open(dir.path(), node()).unwrap();
        assert_eq!(opened.storage, saves[4]);
        assert_eq!(opened.records, 1 + saves.len());
        assert!(opened.repaired.is_none());
    }

    #[test]
    fn an_unchanged_save_writes_nothing_and_an_append_writes_only_the_suffix() {
        let mut enc = Encoder::new(&storage(1, &[1, 1]), node());
        assert!(enc.encode(&storage(1, &[1, 1])).is_none());
        let e = enc.encode(&storage(1, &[1, 1, 1])).unwrap();
        assert_eq!(e.keep, 2);
        let text = String::from_utf8_lossy(&e.bytes[FRAME_HEADER..]).to_string();
        assert_eq!(text.matches("noop").count(), 1, "{text}");
    }

    #[test]
    fn a_torn_tail_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[storage(1, &[1]), storage(1, &[1, 1])]);
        let len = std::fs::metadata(wal(dir.path())).unwrap().len();
        let f = OpenOptions::new()
            .write(true)
            .open(wal(dir.path()))
            .unwrap();
        f.set_len(len - 5).unwrap();
        drop(f);
        let opened = open(dir.path(), node()).unwrap();
        assert_eq!(opened.storage, storage(1, &[1]));
        assert!(opened.repaired.is_some());
        drop(opened);
        // Repaired for good: the next open finds a clean file.
        assert!(open(dir.path(), node()).unwrap().repaired.is_none());
    }

    #[test]
    fn a_flipped_byte_anywhere_is_corruption_not_an_empty_start() {
        let dir = tempfile::tempdir().unwrap();
        let saves = [storage(1, &[1]), storage(1, &[1, 1]), storage(2, &[1, 1])];
        write(dir.path(), &saves[..2]);
        let last_start = std::fs::metadata(wal(dir.path())).unwrap().len() as usize;
        std::fs::remove_file(wal(dir.path())).unwrap();
        write(dir.path(), &saves);
        let clean = std::fs::read(wal(dir.path())).unwrap();
        for at in (0..clean.len()).step_by(7) {
            let mut bad = clean.clone();
            bad[at] ^= 0x40;
            std::fs::write(wal(dir.path()), &bad).unwrap();
            match open(dir.path(), node()) {
                Err(e) => assert!(matches!(e, WalError::Corrupt { .. }), "{e}"),
                // Damage to the last frame's header reads as a torn tail: earlier records survive.
                Ok(o) => {
                    assert!(
                        at < last_start + FRAME_HEADER,
                        "byte {at} silently accepted"
                    );
                    assert!(at >= last_start, "byte {at} silently accepted");
                    assert_eq!(o.storage, saves[1]);
                }
            }
        }
    }

    #[test]
    fn a_directory_of_another_node_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &[storage(1, &[1])]);
        let other = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4001);
        let err = open(dir.path(), other).err().unwrap();
        assert!(
            matches!(&err, WalError::OtherNode { owner, .. } if owner == "127.0.0.1:4000"),
            "{err}"
        );
    }

    #[test]
    fn a_second_process_cannot_open_the_same_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _first = open(dir.path(), node()).unwrap();
        let err = open(dir.path(), node()).err().unwrap();
        assert!(matches!(err, WalError::Locked { .. }), "{err}");
    }

    /// A log of puts, one per term in `terms`, compacted through `snapshot` (0: not at all).
    fn compacted(term: Term, terms: &[Term], snapshot: Index) -> HardState {
        let entries = terms.iter().enumerate().map(|(i, &term)| Entry {
            term,
            command: Command::Client {
                client_id: 1,
                seq: i as u64 + 1,
                op: crate::kv::Op::Put {
                    key: format!("k{}", i % 3),
                    value: i.to_string(),
                },
                reply_to: Id::from(9),
            },
        });
        let mut log = Log::from_entries(entries);
        if snapshot > 0 {
            log.compact_through(snapshot, log.replay_through(snapshot));
        }
        HardState {
            current_term: term,
            voted_for: None,
            log,
        }
    }

    /// Writes the saves as the syncer does, checkpoints included.
    fn write_all(dir: &Path, saves: &[HardState]) {
        let mut opened = open(dir, node()).unwrap();
        let mut enc = Encoder::new(&opened.storage, node());
        for s in saves {
            let Some(e) = enc.encode(s) else { continue };
            match e.checkpoint {
                Some(snapshot) => {
                    write_snapshot(dir, &encode_snapshot(node(), &snapshot)).unwrap();
                    opened.file = rotate(dir, &e.bytes).unwrap();
                }
                None => opened.file.write_all(&e.bytes).unwrap(),
            }
        }
        opened.file.sync_all().unwrap();
    }

    #[test]
    fn a_checkpoint_round_trips_and_leaves_only_the_entries_after_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let terms: Vec<Term> = std::iter::repeat_n(1, 200).collect();
        let saves = [
            compacted(1, &terms[..150], 0),
            compacted(1, &terms[..150], 140),
            compacted(1, &terms, 140),
            compacted(2, &terms, 140),
        ];
        let before = {
            write_all(dir.path(), &saves[..1]);
            std::fs::metadata(wal(dir.path())).unwrap().len()
        };
        write_all(dir.path(), &saves[1..]);
        let opened = open(dir.path(), node()).unwrap();
        assert_eq!(opened.storage, saves[3]);
        assert_eq!(opened.storage.log.snapshot_index(), 140);
        let after = std::fs::metadata(wal(dir.path())).unwrap().len();
        assert!(
            after * 2 < before,
            "the log holds 60 entries in {after} bytes, 150 in {before}"
        );
        // Appends after a checkpoint go to the new log, and a second checkpoint replaces it.
        drop(opened);
        write_all(dir.path(), &[compacted(2, &terms, 190)]);
        assert_eq!(
            open(dir.path(), node()).unwrap().storage,
            compacted(2, &terms, 190)
        );
    }

    /// The files a checkpoint from `before` to `after` leaves when it stops after `steps` of
    /// its four steps: snapshot written to its temporary file, renamed, log written to its
    /// temporary file, renamed. Returns the state recovered.
    fn crash_during_checkpoint(before: &HardState, after: &HardState, steps: usize) -> HardState {
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path(), std::slice::from_ref(before));
        let mut enc = Encoder::new(before, node());
        let e = enc.encode(after).unwrap();
        let snapshot = encode_snapshot(node(), e.checkpoint.as_ref().unwrap());
        let tmp = |name: &str| dir.path().join(format!("{name}{TMP_SUFFIX}"));
        if steps == 1 {
            std::fs::write(tmp(SNAPSHOT_FILE), &snapshot[..snapshot.len() / 2]).unwrap();
        }
        if steps >= 2 {
            write_snapshot(dir.path(), &snapshot).unwrap();
        }
        if steps == 3 {
            std::fs::write(tmp(WAL_FILE), &e.bytes[..e.bytes.len() - 3]).unwrap();
        }
        if steps >= 4 {
            drop(rotate(dir.path(), &e.bytes).unwrap());
        }
        let opened = open(dir.path(), node()).unwrap();
        assert!(!tmp(SNAPSHOT_FILE).exists() && !tmp(WAL_FILE).exists());
        opened.storage
    }

    #[test]
    fn a_crash_at_any_step_of_a_compaction_restarts_with_the_same_log() {
        let before = compacted(2, &[1, 1, 2, 2, 2], 0);
        let after = compacted(2, &[1, 1, 2, 2, 2], 3);
        assert_eq!(crash_during_checkpoint(&before, &after, 0), before);
        assert_eq!(crash_during_checkpoint(&before, &after, 1), before);
        for steps in 2..=4 {
            let recovered = crash_during_checkpoint(&before, &after, steps);
            assert_eq!(recovered, after, "crash after step {steps}");
        }
    }

    #[test]
    fn a_crash_during_an_install_never_keeps_entries_that_conflict_with_the_snapshot() {
        // The log has index 3 from term 2; the leader's snapshot ends there with term 3.
        let before = compacted(2, &[1, 1, 2, 2], 0);
        let leader = compacted(3, &[1, 1, 3], 3);
        let mut after = before.clone();
        after.current_term = 3;
        after.log.install(leader.log.snapshot_shared(), false);
        assert_eq!(crash_during_checkpoint(&before, &after, 1), before);
        for steps in 2..=4 {
            let recovered = crash_during_checkpoint(&before, &after, steps);
            assert_eq!(recovered.log, after.log, "crash after step {steps}");
            assert_eq!(recovered.current_term, 3, "the snapshot's term at least");
        }
    }

    /// What a checkpoint leaves untouched is what the runtime may call durable before it is
    /// written: all of a compacted log, none of a log an install replaced.
    #[test]
    fn a_checkpoint_keeps_as_durable_only_the_entries_both_logs_share() {
        let keep = |before: &HardState, after: &HardState| {
            Encoder::new(before, node()).encode(after).unwrap().keep
        };
        let log = compacted(2, &[1, 1, 2, 2, 2], 0);
        assert_eq!(keep(&log, &compacted(2, &[1, 1, 2, 2, 2], 3)), 5);
        let before = compacted(2, &[1, 1, 2, 2], 0);
        let install = |leader: &HardState, keep_suffix: bool| {
            let mut after = before.clone();
            after.current_term = leader.current_term;
            after.log.install(leader.log.snapshot_shared(), keep_suffix);
            after
        };
        let conflicting = install(&compacted(3, &[1, 1, 3], 3), false);
        assert_eq!(keep(&before, &conflicting), 0);
        let matching = install(&compacted(2, &[1, 1, 2], 3), true);
        assert_eq!(keep(&before, &matching), 4);
        let past_the_end = install(&compacted(3, &[1, 1, 2, 2, 3, 3], 6), false);
        assert_eq!(keep(&before, &past_the_end), 0);
    }

    #[test]
    fn a_damaged_or_missing_snapshot_refuses_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let terms = [1, 1, 1, 1];
        write_all(
            dir.path(),
            &[compacted(1, &terms, 0), compacted(1, &terms, 3)],
        );
        let snap = dir.path().join(SNAPSHOT_FILE);
        let clean = std::fs::read(&snap).unwrap();
        let refused = |bytes: &[u8]| {
            std::fs::write(&snap, bytes).unwrap();
            let err = open(dir.path(), node()).err().expect("refused");
            assert!(matches!(err, WalError::Corrupt { .. }), "{err}");
            err.to_string()
        };
        for at in (0..clean.len()).step_by(5) {
            let mut bad = clean.clone();
            bad[at] ^= 0x40;
            refused(&bad);
        }
        for len in [0, 5, FRAME_HEADER, clean.len() - 1] {
            let text = refused(&clean[..len]);
            assert!(text.contains("raft.snap is corrupt"), "{text}");
        }
        let mut longer = clean.clone();
        longer.push(b'\n');
        refused(&longer);
        std::fs::remove_file(&snap).unwrap();
        let err = open(dir.path(), node()).err().unwrap();
        assert!(err.to_string().contains("there is no raft.snap"), "{err}");
        std::fs::write(&snap, &clean).unwrap();
        assert_eq!(
            open(dir.path(), node()).unwrap().storage,
            compacted(1, &terms, 3)
        );
    }
}
