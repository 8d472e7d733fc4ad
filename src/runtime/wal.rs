//! Durable storage of a server's [`HardState`] (Figure 2, "Persistent state on all servers"): a
//! write-ahead log of checksummed records in `--data-dir`.
//!
//! # File format
//! `DIR/raft.wal` is a sequence of frames `[magic "RRw1"][len: u32 LE][crc: u32 LE][payload]`,
//! where `crc` is CRC-32 (crc32fast) over the four `len` bytes followed by the payload, and the
//! payload is one JSON [`Record`]. The first record names the node the directory belongs to; each
//! later one is the difference a `Save` made: the new term and vote, and the log from index
//! `from` on (entries `1..from` are kept, the rest replaced by `entries`). Logs only change at
//! the end, so a save costs O(new entries), not a rewrite of the log.
//!
//! # Recovery contract
//! - Every complete frame must check out; a bad checksum, a frame that does not decode, or a
//!   record that does not fit the log so far is corruption: [`open`] fails with a message naming
//!   the file and offset, and the node does not start. It never silently starts empty.
//! - The only damage repaired is a torn tail: an incomplete last frame (a write cut short by a
//!   crash), with no valid frame after it. It was never synced, so nothing acknowledged depended
//!   on it; it is cut off and the node starts from the records before it.

use crate::raft::{Entry, HardState, Index, Log, Term};
use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};

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
const MAGIC: [u8; 4] = *b"RRw1";
const FRAME_HEADER: usize = 12;
/// No record is larger (a sanity bound on the length field).
const MAX_RECORD: usize = 256 << 20;
const VERSION: u32 = 1;

/// One record of the log file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Record {
    /// The first record: whose directory this is.
    Header { version: u32, node: String },
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
    let storage = replay(&payloads, node).map_err(|e| match e {
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
    if let Some((_, at)) = repaired {
        file.set_len(at)
            .and_then(|()| file.sync_all())
            .map_err(io("cut the torn tail of", &path))?;
    }
    file.seek(SeekFrom::End(0)).map_err(io("seek in", &path))?;
    if records == 0 {
        let header = serde_json::to_vec(&Record::Header {
            version: VERSION,
            node: node.to_string(),
        })
        .expect("header encodes");
        file.write_all(&frame(&header))
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

/// Rebuilds the storage from the records, checking that each fits what came before.
fn replay(payloads: &[(usize, &[u8])], node: SocketAddrV4) -> Result<HardState, ReplayError> {
    let mut storage = HardState::default();
    let mut log: Vec<Entry> = Vec::new();
    let corrupt = |reason: String| ReplayError::Corrupt(reason);
    for (i, (off, payload)) in payloads.iter().enumerate() {
        let record: Record = serde_json::from_slice(payload)
            .map_err(|e| corrupt(format!("the record at byte {off} does not decode: {e}")))?;
        match record {
            Record::Header {
                version,
                node: owner,
            } if i == 0 => {
                if version != VERSION {
                    return Err(ReplayError::UnknownVersion(version));
                }
                if owner != node.to_string() {
                    return Err(ReplayError::OtherNode(owner));
                }
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
                let keep = from.checked_sub(1).filter(|&k| k <= log.len() as Index);
                let Some(keep) = keep else {
                    return Err(corrupt(format!(
                        "the record at byte {off} starts at index {from}, past the log's end {}",
                        log.len()
                    )));
                };
                log.truncate(keep as usize);
                log.extend(entries);
                storage.current_term = term;
                storage.voted_for = voted_for;
            }
        }
    }
    storage.log = Log::from_entries(log);
    Ok(storage)
}

/// Turns each `Save` into the record that changes the persisted state into the saved one.
///
/// It remembers only the persisted term, vote and the term of each log entry, never a copy of
/// the log itself: a copy would share the log's chunks with the server, and every append would
/// then copy the shared tail.
#[derive(Debug)]
pub struct Encoder {
    current_term: Term,
    voted_for: Option<Id>,
    /// The term of each persisted entry (`terms[i - 1]` for index `i`).
    terms: Vec<Term>,
}

/// One encoded save.
pub struct Encoded {
    pub bytes: Vec<u8>,
    /// Entries `1..=keep` of the log were left as they were.
    pub keep: Index,
}

impl Encoder {
    pub fn new(persisted: &HardState) -> Self {
        Self {
            current_term: persisted.current_term,
            voted_for: persisted.voted_for,
            terms: persisted.log.iter().map(|e| e.term).collect(),
        }
    }

    /// The record for `new`, or `None` when nothing changed. Only the changed suffix of the log
    /// is written: by Log Matching, logs that agree on the term at an index agree on every entry
    /// up to it, so the first difference is found walking back from the shorter end.
    pub fn encode(&mut self, new: &HardState) -> Option<Encoded> {
        let new_len = new.log.last_index();
        let mut keep = (self.terms.len() as Index).min(new_len);
        while keep > 0 && new.log.term_at(keep) != Some(self.terms[keep as usize - 1]) {
            keep -= 1;
        }
        let log_same = keep == self.terms.len() as Index && keep == new_len;
        if log_same && self.current_term == new.current_term && self.voted_for == new.voted_for {
            return None;
        }
        let suffix: Vec<&Entry> = (keep + 1..=new_len)
            .map(|i| new.log.get(i).expect("index within the log"))
            .collect();
        let payload = serde_json::to_vec(&SaveRef {
            term: new.current_term,
            voted_for: new.voted_for,
            from: keep + 1,
            entries: suffix.clone(),
        })
        .expect("storage encodes");
        self.current_term = new.current_term;
        self.voted_for = new.voted_for;
        self.terms.truncate(keep as usize);
        self.terms.extend(suffix.iter().map(|e| e.term));
        Some(Encoded {
            bytes: frame(&payload),
            keep,
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
        let mut enc = Encoder::new(&opened.storage);
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
        let mut enc = Encoder::new(&storage(1, &[1, 1]));
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
}
