//! Durable storage of a server's [`HardState`] (Figure 2, "Persistent state on all servers"): a
//! snapshot file and a write-ahead log of checksummed records in `--data-dir`.
//!
//! # File format
//! The log is a chain of segment files, `DIR/raft.wal`, then `raft.wal.1`, `raft.wal.2`, ...
//! Each is a sequence of frames `[magic "RRw1"][len: u32 LE][crc: u32 LE][payload]`, where
//! `crc` is CRC-32 (crc32fast) over the four `len` bytes followed by the payload, and the
//! payload is one JSON [`Record`]. A segment's first record names the node the directory
//! belongs to and the index its entries start after (`after`); each later one is the difference
//! a `Save` made: the new term and vote, and the log from index `from` on (entries `1..from`
//! are kept, the rest replaced by `entries`). Logs only change at the end, so a save costs
//! O(new entries), not a rewrite of the log.
//!
//! # Snapshots
//! `DIR/raft.snap` is one frame of the same shape holding the node's name and the log's
//! [`Snapshot`] (§7), replaced whole ([`write_snapshot`]: temporary file, fsync, rename, fsync
//! of the directory). When a save changes the snapshot, the log goes on in a new segment
//! ([`LogFiles::rotate`]), begun only once the segments before it are durable, and whose first
//! save holds everything past the snapshot. A compaction's snapshot covers entries the log on
//! disk already holds, so it may reach disk at any time, before or after the new segment: the
//! runtime writes it on a thread of its own while the log keeps going. An install's snapshot
//! covers entries the log does not hold (or holds in conflict), so it is made durable before
//! the new segment begins. Once a snapshot is durable, the segments before the last durable one
//! that starts at or before it are no longer needed and are removed.
//!
//! # Recovery contract
//! - Recovery starts at the last segment that starts at or before the snapshot's last index
//!   and replays it and every later one, in order; a log whose first segment starts after the
//!   snapshot (or with no snapshot) is corruption. The entries the snapshot covers are dropped;
//!   the rest are kept only if the log holds the snapshot's last entry (Log Matching): after an
//!   install not yet followed by its segment, or a snapshot durable before the log's copy of
//!   its entries, they are not.
//! - Every complete frame must check out; a bad checksum, a frame that does not decode, or a
//!   record that does not fit the log so far is corruption: [`open`] fails with a message naming
//!   the file and offset, and the node does not start. It never silently starts empty.
//! - The only damage repaired is a torn tail: an incomplete last frame of the last segment (a
//!   write cut short by a crash), with no valid frame after it. It was never synced, so nothing
//!   acknowledged depended on it; it is cut off and the node starts from the records before it.
//!   A last segment without its header and first save whole is a rotation cut short: it is
//!   removed, and the segments before it, durable before it began, hold the log.
//! - A snapshot file must decode whole: a short, damaged or foreign one is corruption.
//!   Temporary files (a snapshot write cut short) are removed.

use crate::raft::{Entry, HardState, Index, Log, Snapshot, Term};
use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
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

/// The name of log segment `number`: `raft.wal` for the first, `raft.wal.N` after it.
fn segment_path(dir: &Path, number: u64) -> PathBuf {
    match number {
        0 => dir.join(WAL_FILE),
        n => dir.join(format!("{WAL_FILE}.{n}")),
    }
}

/// The log segments in `dir`, oldest first, with their numbers.
fn list_segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        let number = match name.strip_prefix(WAL_FILE) {
            Some("") => Some(0),
            Some(rest) => rest.strip_prefix('.').and_then(|n| n.parse().ok()),
            None => None,
        };
        if let Some(n) = number.filter(|&n| n > 0 || name == WAL_FILE) {
            found.push((n, segment_path(dir, n)));
        }
    }
    found.sort();
    Ok(found)
}

/// The log files in `dir` (the segments), oldest first: what a node's log takes on disk.
pub fn log_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    Ok(list_segments(dir)?.into_iter().map(|(_, p)| p).collect())
}

/// The log's files, open for appending: the segment being written and the older ones still
/// needed. Holds the data directory's lock.
pub struct LogFiles {
    dir: PathBuf,
    /// The lock on the directory, held for as long as the files are in use.
    _lock: File,
    file: File,
    /// The live segments, oldest first, the one being written last: number, and the index its
    /// entries start after.
    segments: Vec<(u64, Index)>,
    /// Bytes written to the current segment since its last sync.
    dirty: bool,
    /// The current segment is new: its directory entry is not yet durable.
    created: bool,
}

impl LogFiles {
    /// The segment being written.
    pub fn path(&self) -> PathBuf {
        let number = self.segments.last().map_or(0, |s| s.0);
        segment_path(&self.dir, number)
    }

    /// Writes bytes at the end of the current segment (durable at the next [`LogFiles::sync`]).
    pub fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.dirty |= !bytes.is_empty();
        self.file.write_all(bytes)
    }

    /// Makes everything written so far durable.
    pub fn sync(&mut self) -> std::io::Result<()> {
        if self.dirty {
            self.file.sync_data()?;
            self.dirty = false;
        }
        if self.created {
            sync_dir(&self.dir)?;
            self.created = false;
        }
        Ok(())
    }

    /// Makes what was written durable, then starts a new segment, whose first bytes must be a
    /// header saying its entries start after `after` and a save of everything past it
    /// (a checkpoint's bytes from [`Encoder::encode`]). Recovery reads a segment only after the
    /// ones before it, so they must be durable before it has content.
    pub fn rotate(&mut self, after: Index) -> std::io::Result<()> {
        self.sync()?;
        let number = self.segments.last().map_or(0, |s| s.0) + 1;
        self.file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(segment_path(&self.dir, number))?;
        self.segments.push((number, after));
        self.created = true;
        Ok(())
    }

    /// The segments a durable snapshot through index `snapshot` makes unnecessary: those
    /// before the last durable segment that starts at or before it. They are forgotten here;
    /// the caller removes the files (a removal need not be durable: recovery starts at that
    /// segment anyway).
    pub fn superseded(&mut self, snapshot: Index) -> Vec<PathBuf> {
        let durable = self.segments.len() - usize::from(self.created || self.dirty);
        let Some(first) = (0..durable).rev().find(|&i| self.segments[i].1 <= snapshot) else {
            return Vec::new();
        };
        let dir = &self.dir;
        let gone = self.segments.drain(..first);
        gone.map(|(n, _)| segment_path(dir, n)).collect()
    }
}

/// An opened, recovered log, positioned for appending.
pub struct Opened {
    pub files: LogFiles,
    /// The state the records describe.
    pub storage: HardState,
    /// Records read (the headers included).
    pub records: usize,
    /// Set when a torn tail was cut off: how many bytes, at which offset of which segment.
    pub repaired: Option<(u64, u64, PathBuf)>,
}

/// One segment as read from disk.
struct SegmentBytes {
    number: u64,
    path: PathBuf,
    bytes: Vec<u8>,
    /// Where each valid frame's payload starts, and its payload's length.
    frames: Vec<(usize, usize)>,
    /// A torn tail: where it starts.
    torn: Option<usize>,
}

impl SegmentBytes {
    fn payloads(&self) -> Vec<(usize, &[u8])> {
        let at = |off: usize, len: usize| (off, &self.bytes[off + FRAME_HEADER..][..len]);
        self.frames.iter().map(|&(off, len)| at(off, len)).collect()
    }
}

/// Splits a segment into frames; a damaged frame is corruption unless it is a torn tail.
fn read_segment(number: u64, path: PathBuf) -> Result<SegmentBytes, WalError> {
    let bytes = std::fs::read(&path).map_err(|source| WalError::Io {
        action: "read",
        path: path.clone(),
        source,
    })?;
    let mut frames = Vec::new();
    let mut off = 0;
    let mut torn = None;
    while off < bytes.len() {
        match read_frame(&bytes[off..]) {
            Frame::Valid(payload, size) => {
                frames.push((off, payload.len()));
                off += size;
            }
            Frame::BadChecksum => {
                return Err(WalError::Corrupt {
                    path,
                    reason: format!("checksum mismatch in the record at byte {off}"),
                });
            }
            Frame::Incomplete if valid_frame_after(&bytes, off) => {
                return Err(WalError::Corrupt {
                    path,
                    reason: format!("damaged record at byte {off} followed by valid ones"),
                });
            }
            Frame::Incomplete => {
                torn = Some(off);
                break;
            }
        }
    }
    Ok(SegmentBytes {
        number,
        path,
        bytes,
        frames,
        torn,
    })
}

/// Opens (creating if needed) the log of `node` in `dir`, recovers its state, and locks the
/// directory against a second process. Errors are meant for the operator, and name the file.
///
/// The log is a chain of segments: each after the first starts with a header (the index its
/// entries start after) and a save of everything past that index, and was begun only once the
/// segments before it were durable. Recovery starts at the last segment that starts at or
/// before the snapshot, and replays it and every later one in order.
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
    let lock = File::open(dir).map_err(io("open", dir))?;
    lock.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => WalError::Locked {
            path: dir.to_path_buf(),
        },
        std::fs::TryLockError::Error(e) => io("lock", dir)(e),
    })?;
    for name in [WAL_FILE, SNAPSHOT_FILE] {
        // What a checkpoint cut short left (under the lock: no other process is writing it).
        let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
        if tmp.exists() {
            std::fs::remove_file(&tmp).map_err(io("remove", &tmp))?;
        }
    }
    let snapshot = read_snapshot(dir, node)?;
    let snapshot_index = snapshot.as_ref().map_or(0, |s| s.last.index);

    let listed = list_segments(dir).map_err(io("list", dir))?;
    let mut segments = Vec::new();
    for (number, path) in listed {
        segments.push(read_segment(number, path)?);
    }
    // A new segment is written whole (header and save) before anything else goes to it: one
    // with less is a rotation cut short, never synced, so the segments before it hold all.
    if segments.len() > 1 && segments.last().is_some_and(|s| s.frames.len() < 2) {
        let cut = segments.pop().expect("a last segment");
        std::fs::remove_file(&cut.path).map_err(io("remove", &cut.path))?;
        log::warn!(
            "removed {}, a new log segment cut short",
            cut.path.display()
        );
    }
    let corrupt = |path: &Path, reason: String| WalError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(s) = segments[..segments.len().saturating_sub(1)]
        .iter()
        .find(|s| s.torn.is_some())
    {
        let at = s.torn.expect("torn");
        return Err(corrupt(
            &s.path,
            format!("the record at byte {at} is cut short, and a later segment follows"),
        ));
    }
    let mut afters = Vec::new();
    for s in &segments {
        let after = match s.payloads().first() {
            Some((_, payload)) => header_after(payload, node).map_err(|e| e.at(&s.path, node))?,
            None => snapshot_index,
        };
        afters.push(after);
    }
    let start = (0..segments.len())
        .rev()
        .find(|&i| afters[i] <= snapshot_index);
    let Some(start) = start.or(segments.is_empty().then_some(0)) else {
        let snapshot_is = if snapshot_index == 0 {
            format!("there is no {SNAPSHOT_FILE}")
        } else {
            format!("{SNAPSHOT_FILE} ends at index {snapshot_index}")
        };
        return Err(corrupt(
            &segments[0].path,
            format!(
                "the log starts after index {}, but {snapshot_is}",
                afters[0]
            ),
        ));
    };
    let mut replayed = Replayed {
        current_term: 0,
        voted_for: None,
        after: afters.get(start).copied().unwrap_or(snapshot_index),
        entries: Vec::new(),
    };
    let mut records = 0;
    for s in &segments[start..] {
        let payloads = s.payloads();
        records += payloads.len();
        replay(&mut replayed, &payloads).map_err(|e| e.at(&s.path, node))?;
    }
    let storage = assemble(snapshot, replayed);
    for s in segments.drain(..start) {
        // Superseded by the snapshot and the segments after them.
        std::fs::remove_file(&s.path).map_err(io("remove", &s.path))?;
    }
    let (number, after, path, repaired) = match segments.pop() {
        Some(last) => {
            let repaired = last
                .torn
                .map(|at| ((last.bytes.len() - at) as u64, at as u64, last.path.clone()));
            (
                last.number,
                afters[start + segments.len()],
                last.path,
                repaired,
            )
        }
        None => (0, snapshot_index, segment_path(dir, 0), None),
    };
    let existed = path.exists();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io("open", &path))?;
    if let Some((_, at, _)) = &repaired {
        file.set_len(*at)
            .and_then(|()| file.sync_all())
            .map_err(io("cut the torn tail of", &path))?;
    }
    file.seek(SeekFrom::End(0)).map_err(io("seek in", &path))?;
    if records == 0 {
        file.write_all(&header(node, after))
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
    let mut live: Vec<(u64, Index)> = segments
        .iter()
        .zip(&afters[start..])
        .map(|(s, &a)| (s.number, a))
        .collect();
    live.push((number, after));
    Ok(Opened {
        files: LogFiles {
            dir: dir.to_path_buf(),
            _lock: lock,
            file,
            segments: live,
            dirty: false,
            created: false,
        },
        storage,
        records,
        repaired,
    })
}

impl ReplayError {
    /// The error for the operator, naming the segment it is in.
    fn at(self, path: &Path, node: SocketAddrV4) -> WalError {
        let path = path.to_path_buf();
        match self {
            ReplayError::Corrupt(reason) => WalError::Corrupt { path, reason },
            ReplayError::OtherNode(owner) => WalError::OtherNode { path, owner, node },
            ReplayError::UnknownVersion(version) => WalError::UnknownVersion { path, version },
        }
    }
}

/// What the log's records describe: term, vote, and the entries after index `after`.
struct Replayed {
    current_term: Term,
    voted_for: Option<Id>,
    after: Index,
    entries: Vec<Entry>,
}

/// The index a segment's entries start after, from its first record, which must be a header
/// of this build's format and of this node.
fn header_after(payload: &[u8], node: SocketAddrV4) -> Result<Index, ReplayError> {
    match serde_json::from_slice(payload) {
        Ok(Record::Header {
            version,
            node: owner,
            after,
        }) => {
            if version != VERSION {
                return Err(ReplayError::UnknownVersion(version));
            }
            if owner != node.to_string() {
                return Err(ReplayError::OtherNode(owner));
            }
            Ok(after)
        }
        Ok(Record::Save { .. }) => Err(ReplayError::Corrupt(
            "it does not start with a header".into(),
        )),
        Err(e) => Err(ReplayError::Corrupt(format!(
            "the record at byte 0 does not decode: {e}"
        ))),
    }
}

/// Replays one segment's records onto what the segments before it left, checking that each
/// fits what came before (its header was checked by [`header_after`]).
fn replay(out: &mut Replayed, payloads: &[(usize, &[u8])]) -> Result<(), ReplayError> {
    let corrupt = |reason: String| ReplayError::Corrupt(reason);
    for (off, payload) in payloads.iter().skip(1) {
        let record: Record = serde_json::from_slice(payload)
            .map_err(|e| corrupt(format!("the record at byte {off} does not decode: {e}")))?;
        match record {
            Record::Header { .. } => return Err(corrupt(format!("a second header at byte {off}"))),
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
    Ok(())
}

/// The log as it was saved: the snapshot, then the log's entries after it. Entries the
/// snapshot covers are dropped; the rest are kept only if they follow the snapshot's last entry
/// (a log whose new segment was not begun after an install may hold a conflicting suffix, and
/// a snapshot may be durable before the log's copy of its last entries is).
fn assemble(snapshot: Option<Snapshot>, wal: Replayed) -> HardState {
    let snapshot = snapshot.unwrap_or_default();
    let last = snapshot.last;
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
    HardState {
        current_term,
        voted_for,
        log,
    }
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

/// Replaces `DIR/raft.snap` by `snapshot_bytes` (from [`encode_snapshot`]) so that a crash
/// leaves either the old file or the new one.
pub fn write_snapshot(dir: &Path, snapshot_bytes: &[u8]) -> std::io::Result<()> {
    replace_file(dir, SNAPSHOT_FILE, snapshot_bytes)
}

/// Replaces `DIR/NAME` by `bytes` so that a crash leaves either the old file or the new one:
/// temporary file, fsync, rename, fsync of the directory.
pub fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
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
    /// A record to append to the log; with a checkpoint, the start of a new segment instead
    /// (a header and a save of everything past the snapshot).
    pub bytes: Vec<u8>,
    /// Entries `1..=keep` of the log were left as they were.
    pub keep: Index,
    /// The save changed the snapshot.
    pub checkpoint: Option<Checkpoint>,
}

/// A new snapshot, and how it goes to disk (see [`LogFiles::rotate`]).
pub struct Checkpoint {
    pub snapshot: Arc<Snapshot>,
    /// The log on disk does not hold the snapshot's last entry (an install past its end or
    /// over a conflicting suffix): the new segment may only begin once the snapshot is
    /// durable. Otherwise (a compaction) the log on disk already holds everything the snapshot
    /// does, and the snapshot may be written at any time, beside the log.
    pub snapshot_first: bool,
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
        let snapshot_first =
            checkpoint && self.persisted_term(new_base) != Some(snapshot.last.term);
        if snapshot_first && new_base > self.base {
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
            checkpoint: checkpoint.then(|| Checkpoint {
                snapshot: new.log.snapshot_shared(),
                snapshot_first,
            }),
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
                opened.files.append(&e.bytes).unwrap();
            }
        }
        opened.files.sync().unwrap();
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

    /// Writes the saves as the storage threads do, checkpoints included: a compaction's new
    /// segment, then its snapshot; an install's snapshot, then its new segment; then the
    /// segments no longer needed are removed.
    fn write_all(dir: &Path, saves: &[HardState]) {
        let mut opened = open(dir, node()).unwrap();
        let mut enc = Encoder::new(&opened.storage, node());
        for s in saves {
            let Some(e) = enc.encode(s) else { continue };
            let Some(Checkpoint {
                snapshot,
                snapshot_first,
            }) = e.checkpoint
            else {
                opened.files.append(&e.bytes).unwrap();
                continue;
            };
            let snapshot_bytes = encode_snapshot(node(), &snapshot);
            if snapshot_first {
                opened.files.sync().unwrap();
                write_snapshot(dir, &snapshot_bytes).unwrap();
            }
            opened.files.rotate(snapshot.last.index).unwrap();
            opened.files.append(&e.bytes).unwrap();
            opened.files.sync().unwrap();
            if !snapshot_first {
                write_snapshot(dir, &snapshot_bytes).unwrap();
            }
            for path in opened.files.superseded(snapshot.last.index) {
                std::fs::remove_file(path).unwrap();
            }
        }
        opened.files.sync().unwrap();
    }

    fn log_bytes(dir: &Path) -> u64 {
        let files = log_files(dir).unwrap();
        files
            .iter()
            .map(|f| std::fs::metadata(f).unwrap().len())
            .sum()
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
            log_bytes(dir.path())
        };
        write_all(dir.path(), &saves[1..]);
        let opened = open(dir.path(), node()).unwrap();
        assert_eq!(opened.storage, saves[3]);
        assert_eq!(opened.storage.log.snapshot_index(), 140);
        assert_eq!(
            log_files(dir.path()).unwrap(),
            [segment_path(dir.path(), 1)]
        );
        let after = log_bytes(dir.path());
        assert!(
            after * 2 < before,
            "the log holds 60 entries in {after} bytes, 150 in {before}"
        );
        // Appends after a checkpoint go to the new segment, and a second checkpoint starts
        // another one.
        drop(opened);
        write_all(dir.path(), &[compacted(2, &terms, 190)]);
        assert_eq!(
            open(dir.path(), node()).unwrap().storage,
            compacted(2, &terms, 190)
        );
        assert_eq!(
            log_files(dir.path()).unwrap(),
            [segment_path(dir.path(), 2)]
        );
    }

    #[test]
    fn a_segment_goes_only_once_a_durable_snapshot_and_a_durable_later_segment_cover_it() {
        let dir = tempfile::tempdir().unwrap();
        let terms = [1, 1, 2, 2, 2, 2];
        let before = compacted(2, &terms, 0);
        write_all(dir.path(), std::slice::from_ref(&before));
        let mut opened = open(dir.path(), node()).unwrap();
        let mut enc = Encoder::new(&opened.storage, node());
        let start = enc.encode(&compacted(2, &terms, 4)).unwrap();
        opened.files.rotate(4).unwrap();
        opened.files.append(&start.bytes).unwrap();
        let none: [PathBuf; 0] = [];
        assert_eq!(
            opened.files.superseded(4),
            none,
            "the new segment is not durable"
        );
        opened.files.sync().unwrap();
        assert_eq!(
            opened.files.superseded(3),
            none,
            "no snapshot reaches its start"
        );
        assert_eq!(opened.files.superseded(4), [wal(dir.path())]);
        assert_eq!(
            opened.files.superseded(4),
            none,
            "forgotten once handed out"
        );
    }

    /// How far a compaction's two writers got when the power went: the snapshot thread
    /// (`SnapAt`) and the fsync thread (`LogAt`), in any interleaving.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum SnapAt {
        NotStarted,
        HalfOfTmp,
        WholeTmp,
        Renamed,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    enum LogAt {
        /// Only the records queued before the compaction, in the old segment.
        OldSegmentOnly,
        /// The new segment's file exists, empty.
        Created,
        /// Its header and part of the save of everything past the snapshot.
        TornStart,
        /// Its header and that save, whole.
        Started,
        /// And the saves made while the snapshot was being written.
        LaterSaves,
        /// And the old segment removed (only once the snapshot is renamed).
        OldRemoved,
    }

    /// Entries of terms `terms` durable in the old segment, then a compaction through `snapshot`
    /// and the saves `later` after it, stopped at (`snap`, `log`); returns the state recovered.
    fn crash_during_compaction(
        before: &HardState,
        compaction: &HardState,
        later: &HardState,
        snap: SnapAt,
        log: LogAt,
    ) -> HardState {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        write_all(dir, std::slice::from_ref(before));
        let mut enc = Encoder::new(before, node());
        let start = enc.encode(compaction).unwrap();
        let cp = start.checkpoint.as_ref().unwrap();
        assert!(
            !cp.snapshot_first,
            "a compaction writes its snapshot beside the log"
        );
        let snapshot = encode_snapshot(node(), &cp.snapshot);
        let saves = enc.encode(later).map_or(Vec::new(), |e| {
            assert!(e.checkpoint.is_none());
            e.bytes
        });
        let tmp = dir.join(format!("{SNAPSHOT_FILE}{TMP_SUFFIX}"));
        match snap {
            SnapAt::NotStarted => {}
            SnapAt::HalfOfTmp => std::fs::write(&tmp, &snapshot[..snapshot.len() / 2]).unwrap(),
            SnapAt::WholeTmp => std::fs::write(&tmp, &snapshot).unwrap(),
            SnapAt::Renamed => write_snapshot(dir, &snapshot).unwrap(),
        }
        let new_segment = segment_path(dir, 1);
        let mut bytes = Vec::new();
        if log >= LogAt::TornStart {
            bytes.extend_from_slice(&start.bytes);
        }
        if log == LogAt::TornStart {
            bytes.truncate(start.bytes.len() - 3);
        }
        if log >= LogAt::LaterSaves {
            bytes.extend_from_slice(&saves);
        }
        if log >= LogAt::Created {
            std::fs::write(&new_segment, &bytes).unwrap();
        }
        if log == LogAt::OldRemoved {
            std::fs::remove_file(wal(dir)).unwrap();
        }
        let opened = open(dir, node()).unwrap();
        assert!(!tmp.exists());
        let live = log_files(dir).unwrap();
        if log >= LogAt::Started && snap == SnapAt::Renamed {
            assert_eq!(live, [new_segment], "the old segment is not needed");
        } else if log >= LogAt::Started {
            assert_eq!(live, [wal(dir), new_segment], "both segments are needed");
        } else {
            assert_eq!(live, [wal(dir)], "a new segment cut short is removed");
        }
        opened.storage
    }

    #[test]
    fn a_crash_at_any_point_of_a_compaction_loses_nothing_durable() {
        let terms = [1, 1, 2, 2, 2, 2, 3, 3];
        let before = compacted(2, &terms[..6], 0);
        let compaction = compacted(2, &terms[..6], 4);
        let later = compacted(3, &terms, 4);
        let snaps = [
            SnapAt::NotStarted,
            SnapAt::HalfOfTmp,
            SnapAt::WholeTmp,
            SnapAt::Renamed,
        ];
        let logs = [
            LogAt::OldSegmentOnly,
            LogAt::Created,
            LogAt::TornStart,
            LogAt::Started,
            LogAt::LaterSaves,
            LogAt::OldRemoved,
        ];
        for snap in snaps {
            for log in logs {
                if log == LogAt::OldRemoved && snap != SnapAt::Renamed {
                    continue; // removed only once the snapshot is durable
                }
                let recovered = crash_during_compaction(&before, &compaction, &later, snap, log);
                // The log as far as it was written, compacted as far as the snapshot file says.
                let through = if snap == SnapAt::Renamed { 4 } else { 0 };
                let expected = if log >= LogAt::LaterSaves {
                    compacted(3, &terms, through)
                } else {
                    compacted(2, &terms[..6], through)
                };
                assert_eq!(recovered, expected, "crash at {snap:?}, {log:?}");
            }
        }
    }

    /// A leader may compact through entries a majority of followers made durable before its
    /// own fsync of them completes: the snapshot can reach disk before the log's copy.
    #[test]
    fn a_snapshot_durable_before_the_log_it_covers_is_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let terms = [1, 1, 2, 2, 2, 2];
        write_all(dir.path(), &[compacted(2, &terms[..3], 0)]);
        let ahead = compacted(2, &terms, 4);
        write_snapshot(dir.path(), &encode_snapshot(node(), ahead.log.snapshot())).unwrap();
        let recovered = open(dir.path(), node()).unwrap().storage;
        assert_eq!(recovered, compacted(2, &terms[..4], 4));
    }

    #[test]
    fn a_segment_cut_short_before_a_later_one_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let terms = [1, 1, 2, 2, 2, 2, 3, 3];
        let before = compacted(2, &terms[..6], 0);
        write_all(dir.path(), std::slice::from_ref(&before));
        let mut enc = Encoder::new(&before, node());
        let start = enc.encode(&compacted(2, &terms[..6], 4)).unwrap();
        std::fs::write(segment_path(dir.path(), 1), &start.bytes).unwrap();
        let len = std::fs::metadata(wal(dir.path())).unwrap().len();
        let old = OpenOptions::new()
            .write(true)
            .open(wal(dir.path()))
            .unwrap();
        old.set_len(len - 2).unwrap();
        let err = open(dir.path(), node()).err().expect("refused");
        assert!(matches!(err, WalError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("a later segment follows"), "{err}");
    }

    /// The files an install's checkpoint from `before` to `after` leaves when it stops after
    /// `steps` of its steps: snapshot written to its temporary file, renamed, new segment
    /// begun but cut short, whole, the old segment removed. Returns the state recovered.
    fn crash_during_checkpoint(before: &HardState, after: &HardState, steps: usize) -> HardState {
        let dir = tempfile::tempdir().unwrap();
        write_all(dir.path(), std::slice::from_ref(before));
        let mut enc = Encoder::new(before, node());
        let e = enc.encode(after).unwrap();
        let cp = e.checkpoint.as_ref().unwrap();
        assert!(cp.snapshot_first, "an install writes its snapshot first");
        let snapshot = encode_snapshot(node(), &cp.snapshot);
        let tmp = dir.path().join(format!("{SNAPSHOT_FILE}{TMP_SUFFIX}"));
        if steps == 1 {
            std::fs::write(&tmp, &snapshot[..snapshot.len() / 2]).unwrap();
        }
        if steps >= 2 {
            write_snapshot(dir.path(), &snapshot).unwrap();
        }
        if steps == 3 {
            std::fs::write(segment_path(dir.path(), 1), &e.bytes[..e.bytes.len() - 3]).unwrap();
        }
        if steps >= 4 {
            std::fs::write(segment_path(dir.path(), 1), &e.bytes).unwrap();
        }
        if steps >= 5 {
            std::fs::remove_file(wal(dir.path())).unwrap();
        }
        let opened = open(dir.path(), node()).unwrap();
        assert!(!tmp.exists());
        opened.storage
    }

    #[test]
    fn a_crash_at_any_step_of_a_compaction_restarts_with_the_same_log() {
        let before = compacted(2, &[1, 1, 2, 2, 2], 0);
        let after = compacted(2, &[1, 1, 2, 2, 2], 3);
        for snap in [SnapAt::NotStarted, SnapAt::HalfOfTmp, SnapAt::WholeTmp] {
            for log in [LogAt::OldSegmentOnly, LogAt::TornStart, LogAt::Started] {
                let recovered = crash_during_compaction(&before, &after, &after, snap, log);
                assert_eq!(recovered, before, "crash at {snap:?}, {log:?}");
            }
        }
        for log in [LogAt::OldSegmentOnly, LogAt::Started, LogAt::OldRemoved] {
            let recovered = crash_during_compaction(&before, &after, &after, SnapAt::Renamed, log);
            assert_eq!(recovered, after, "crash at {log:?}");
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
        assert_eq!(crash_during_checkpoint(&before, &after, 0), before);
        assert_eq!(crash_during_checkpoint(&before, &after, 1), before);
        for steps in 2..=5 {
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
