//! Datagram authentication: a MAC under the cluster key on every datagram, node to node,
//! client to node and node to client.
//!
//! A peer used to be recognised by its UDP source address alone, which anyone can forge. With a
//! cluster key, a datagram is believed only if it carries a tag that only a holder of the key
//! can compute, and a datagram that fails is dropped before it is decoded.
//!
//! # Format
//! An authenticated datagram is
//!
//! ```text
//! [0xB3] [payload: the JSON message] [tag: 16 bytes]
//! tag = the first 16 bytes of BLAKE3 keyed_hash(key, from || to || 0xB3 || payload)
//! ```
//!
//! where `from` and `to` are the sender's and the receiver's IPv4 address and port, 6 bytes each
//! (the four octets, then the port, big-endian), as the receiver sees them: the datagram's source
//! address and the receiver's own. They are not sent; both ends know them. Binding them means an
//! authentic datagram cannot be redirected to another receiver or presented as another sender's
//! (a vote that one candidate received, replayed to another as if from the voter, would let
//! one server's vote count for two candidates); replayed to its own receiver from its own
//! sender, it is a duplicate, which the protocol tolerates and the model checker explores.
//!
//! The first byte names the format (0xB3: keyed BLAKE3, 16-byte tag, addresses bound). It can
//! never begin a JSON text (it is not even a valid first byte of UTF-8), so a node tells an
//! authenticated datagram from a plain one and can say which side is misconfigured.
//!
//! Without a key ([`Auth::Insecure`], `--insecure`) a datagram is the payload alone, plain JSON,
//! and a datagram that carries a tag is refused.
//!
//! # Key file
//! 64 hex digits (32 bytes), optionally followed by a newline, written with mode 0600 by
//! [`ClusterKey::write_new`] (`raftright keygen FILE`).

use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddrV4;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The first byte of an authenticated datagram.
pub const FORMAT: u8 = 0xB3;
/// Bytes of tag. 16 bytes (128 bits) is the usual MAC strength (Poly1305, AES-GCM, truncated
/// HMAC-SHA-256): a forger has to guess, one datagram per guess over the network, and each
/// guess succeeds with probability 2^-128; a prefix of BLAKE3's output is as good a MAC as the
/// whole. The 16 bytes saved per datagram matter more on a heartbeat of ~150 bytes.
pub const TAG_LEN: usize = 16;
/// What authentication adds to a datagram: the format byte and the tag.
pub const OVERHEAD: usize = 1 + TAG_LEN;
/// Bytes of key.
pub const KEY_LEN: usize = blake3::KEY_LEN;

/// Why a cluster key cannot be had. Each names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the cluster key file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the cluster key file {} holds {found} characters, not a key of 64 hex digits \
         (`raftright keygen FILE` makes one)",
        path.display()
    )]
    Length { path: PathBuf, found: usize },
    #[error(
        "the cluster key file {} is not hex: a key is 64 hex digits (`raftright keygen FILE` \
         makes one)",
        path.display()
    )]
    NotHex { path: PathBuf },
    #[error("{} already exists; give --force to replace it", path.display())]
    Exists { path: PathBuf },
    #[error("cannot write the cluster key file {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot draw a random key from the operating system: {0}")]
    Random(String),
    #[error(
        "no cluster key: give --cluster-key-file FILE (`raftright keygen FILE` makes one; \
         `raftright spawn` keeps one in DATA_DIR/cluster.key), or --insecure to {insecure}"
    )]
    Missing { insecure: &'static str },
}

/// The secret every member of a cluster, and every client of it, holds. Its `Debug` does not
/// show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey([u8; KEY_LEN]);

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

impl ClusterKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        use rand::TryRngCore;
        let mut bytes = [0; KEY_LEN];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self(bytes))
    }

    /// The key as the file holds it: 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses a key file's text: 64 hex digits; surrounding whitespace (a final newline) is
    /// allowed.
    pub fn parse(text: &str, path: &Path) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.len() != 2 * KEY_LEN {
            return Err(KeyError::Length {
                path: path.into(),
                found: text.chars().count(),
            });
        }
        let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        let mut bytes = [0; KEY_LEN];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => *byte = hi << 4 | lo,
                _ => return Err(KeyError::NotHex { path: path.into() }),
            }
        }
        Ok(Self(bytes))
    }

    /// Reads a key file. A file that others may read is used, with a warning.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let read = |source| KeyError::Read {
            path: path.into(),
            source,
        };
        let bytes = std::fs::read(path).map_err(read)?;
        let text = String::from_utf8(bytes).map_err(|_| KeyError::NotHex { path: path.into() })?;
        let key = Self::parse(&text, path)?;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            log::warn!(
                "the cluster key file {} may be read by others (mode {:o}); `chmod 600` it",
                path.display(),
                meta.permissions().mode() & 0o777
            );
        }
        Ok(key)
    }

    /// Writes the key to a new file of mode 0600; an existing file is an error unless `force`.
    /// The key is written to a temporary file beside `path` and then linked (or, with `force`,
    /// renamed) into place, so a reader never sees half a key.
    pub fn write_new(&self, path: &Path, force: bool) -> Result<(), KeyError> {
        let write = |source| KeyError::Write {
            path: path.into(),
            source,
        };
        let name = path.file_name().ok_or_else(|| {
            write(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a file name",
            ))
        })?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(
            ".{}.{}.tmp",
            std::process::id(),
            rand::random::<u32>()
        ));
        let temp = path.with_file_name(temp_name);
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut file| {
                writeln!(file, "{}", self.to_hex())?;
                file.sync_all()
            });
        let placed = written.and_then(|()| {
            if force {
                std::fs::rename(&temp, path)
            } else {
                std::fs::hard_link(&temp, path)
            }
        });
        let _ = std::fs::remove_file(&temp);
        placed.map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => KeyError::Exists { path: path.into() },
            _ => write(e),
        })
    }

    /// The key in `path`, made (mode 0600) if the file does not exist; `true` if it was made.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        if path.exists() {
            return Ok((Self::load(path)?, false));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| KeyError::Write {
                path: path.into(),
                source,
            })?;
        }
        let key = Self::generate()?;
        key.write_new(path, false)?;
        Ok((key, true))
    }

    fn tag(&self, from: SocketAddrV4, to: SocketAddrV4, body: &[u8]) -> [u8; TAG_LEN] {
        let mut hasher = blake3::Hasher::new_keyed(&self.0);
        hasher.update(&addr_bytes(from));
        hasher.update(&addr_bytes(to));
        hasher.update(body);
        let mut tag = [0; TAG_LEN];
        tag.copy_from_slice(&hasher.finalize().as_bytes()[..TAG_LEN]);
        tag
    }
}

fn addr_bytes(a: SocketAddrV4) -> [u8; 6] {
    let [a0, a1, a2, a3] = a.ip().octets();
    let [p0, p1] = a.port().to_be_bytes();
    [a0, a1, a2, a3, p0, p1]
}

/// How a process authenticates its datagrams: with the cluster key, or not at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    Key(ClusterKey),
    /// `--insecure`: plain JSON, believed from whoever sends it.
    Insecure,
}

/// Why a datagram failed authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum MacError {
    /// Plain JSON (or anything without the format byte) at a node that has a key.
    #[error("carries no MAC")]
    Missing,
    /// The tag does not match: another key, or a forgery.
    #[error("has a wrong MAC")]
    Wrong,
    /// A tagged datagram at a node that runs `--insecure`.
    #[error("carries a MAC, but this side runs --insecure")]
    Unexpected,
}

impl Auth {
    pub fn is_insecure(&self) -> bool {
        matches!(self, Auth::Insecure)
    }

    /// An empty datagram to write a payload into, then [`Auth::finish`]: the format byte when
    /// authenticated.
    pub fn begin(&self, capacity: usize) -> Vec<u8> {
        let mut datagram = Vec::with_capacity(capacity + OVERHEAD);
        if let Auth::Key(_) = self {
            datagram.push(FORMAT);
        }
        datagram
    }

    /// Appends the tag to a datagram made by [`Auth::begin`] and a payload.
    pub fn finish(&self, from: SocketAddrV4, to: SocketAddrV4, datagram: &mut Vec<u8>) {
        if let Auth::Key(key) = self {
            let tag = key.tag(from, to, datagram);
            datagram.extend_from_slice(&tag);
        }
    }

    /// The datagram that carries `payload` from `from` to `to`.
    pub fn seal(&self, from: SocketAddrV4, to: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
        let mut datagram = self.begin(payload.len());
        datagram.extend_from_slice(payload);
        self.finish(from, to, &mut datagram);
        datagram
    }

    /// The payload of a datagram that `to` received from `from`, if it is authentic. The tag
    /// is compared in constant time.
    pub fn open<'d>(
        &self,
        from: SocketAddrV4,
        to: SocketAddrV4,
        datagram: &'d [u8],
    ) -> Result<&'d [u8], MacError> {
        match self {
            Auth::Insecure if datagram.first() == Some(&FORMAT) => Err(MacError::Unexpected),
            Auth::Insecure => Ok(datagram),
            Auth::Key(_) if datagram.first() != Some(&FORMAT) => Err(MacError::Missing),
            Auth::Key(_) if datagram.len() < OVERHEAD => Err(MacError::Wrong),
            Auth::Key(key) => {
                let (body, tag) = datagram.split_at(datagram.len() - TAG_LEN);
                let tag: &[u8; TAG_LEN] = tag.try_into().expect("split at TAG_LEN");
                if constant_time_eq::constant_time_eq_n(tag, &key.tag(from, to, body)) {
                    Ok(&body[1..])
                } else {
                    Err(MacError::Wrong)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn a(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)
    }

    fn key(byte: u8) -> Auth {
        Auth::Key(ClusterKey::from_bytes([byte; KEY_LEN]))
    }

    #[test]
    fn the_documented_format() {
        let k = ClusterKey::from_bytes([7; KEY_LEN]);
        let datagram = Auth::Key(k.clone()).seal(a(1), a(2), b"{}");
        let mut input = vec![127, 0, 0, 1, 0, 1, 127, 0, 0, 1, 0, 2, FORMAT];
        input.extend_from_slice(b"{}");
        let tag = blake3::keyed_hash(&[7; KEY_LEN], &input);
        let mut expected = vec![FORMAT, b'{', b'}'];
        expected.extend_from_slice(&tag.as_bytes()[..TAG_LEN]);
        assert_eq!(datagram, expected);
        assert_eq!(Auth::Insecure.seal(a(1), a(2), b"{}"), b"{}");
    }

    #[test]
    fn a_datagram_opens_only_between_the_same_ends_under_the_same_key() {
        let auth = key(1);
        let datagram = auth.seal(a(1), a(2), b"hello");
        assert_eq!(auth.open(a(1), a(2), &datagram), Ok(&b"hello"[..]));
        assert_eq!(auth.open(a(3), a(2), &datagram), Err(MacError::Wrong));
        assert_eq!(auth.open(a(1), a(3), &datagram), Err(MacError::Wrong));
        assert_eq!(key(2).open(a(1), a(2), &datagram), Err(MacError::Wrong));
        for i in 0..datagram.len() {
            let mut flipped = datagram.clone();
            flipped[i] ^= 1;
            assert!(auth.open(a(1), a(2), &flipped).is_err(), "byte {i}");
        }
        assert_eq!(auth.open(a(1), a(2), b"hello"), Err(MacError::Missing));
        assert_eq!(auth.open(a(1), a(2), &[FORMAT]), Err(MacError::Wrong));
        assert_eq!(
            Auth::Insecure.open(a(1), a(2), &datagram),
            Err(MacError::Unexpected)
        );
        assert_eq!(Auth::Insecure.open(a(1), a(2), b"{}"), Ok(&b"{}"[..]));
    }

    #[test]
    fn key_files_round_trip_and_bad_ones_name_themselves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.key");
        let k = ClusterKey::generate().unwrap();
        k.write_new(&path, false).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(ClusterKey::load(&path).unwrap(), k);
        assert!(matches!(
            k.write_new(&path, false),
            Err(KeyError::Exists { .. })
        ));
        let other = ClusterKey::generate().unwrap();
        other.write_new(&path, true).unwrap();
        assert_eq!(ClusterKey::load(&path).unwrap(), other);
        assert_ne!(k, other);

        let bad = |text: &[u8]| {
            std::fs::write(&path, text).unwrap();
            let e = ClusterKey::load(&path).unwrap_err();
            assert!(e.to_string().contains("cluster.key"), "{e}");
            e
        };
        assert!(matches!(bad(b"abcd\n"), KeyError::Length { found: 4, .. }));
        assert!(matches!(bad(&[b'g'; 64]), KeyError::NotHex { .. }));
        assert!(matches!(bad(&[0xff; 64]), KeyError::NotHex { .. }));
        assert!(matches!(bad(&[b'0'; 65]), KeyError::Length { .. }));
        let e = ClusterKey::load(&dir.path().join("absent")).unwrap_err();
        assert!(matches!(e, KeyError::Read { .. }), "{e}");
        std::fs::write(&path, format!("{}\n", "aB".repeat(32))).unwrap();
        assert_eq!(
            ClusterKey::load(&path).unwrap(),
            ClusterKey::from_bytes([0xab; KEY_LEN])
        );
    }

    #[test]
    fn the_key_stays_out_of_debug_output() {
        let k = ClusterKey::from_bytes([0xab; KEY_LEN]);
        assert!(!format!("{:?}", Auth::Key(k)).contains("ab"));
    }
}
