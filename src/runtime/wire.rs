//! The wire format: one JSON-encoded [`Msg`] per UDP datagram, with size limits.
//!
//! A datagram is exactly what `serde_json` makes of a [`Msg`]: an object whose `"type"` names
//! the variant (`ClientRequest`, `AppendEntries`, ...). Anything that does not decode, or that
//! breaks a limit below, is an error here; the caller drops it.
//!
//! Limits keep every datagram well under the 64 KiB a UDP datagram can hold: a client request
//! is at most [`MAX_CLIENT_REQUEST`] bytes, a log entry is a client request plus a few fields,
//! and an AppendEntries carries at most [`MAX_APPEND_ENTRIES`] entries, so it stays below
//! about 36 KiB. [`MAX_DATAGRAM`] is the hard cap on anything sent or accepted.

use crate::raft::Msg;
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};

/// The largest datagram a node sends or accepts.
pub const MAX_DATAGRAM: usize = 60 * 1024;
/// The largest `ClientRequest` a node accepts (key, value and framing together).
pub const MAX_CLIENT_REQUEST: usize = 4 * 1024;
/// Entries per AppendEntries: `MAX_APPEND_ENTRIES` entries of at most `MAX_CLIENT_REQUEST`
/// bytes plus their framing fit well within `MAX_DATAGRAM`.
pub const MAX_APPEND_ENTRIES: usize = 8;

fn too_big(text: String) -> serde_json::Error {
    <serde_json::Error as serde::de::Error>::custom(text)
}

/// Encodes a message; refuses one that would not fit in [`MAX_DATAGRAM`].
pub fn encode(msg: &Msg) -> Result<Vec<u8>, serde_json::Error> {
    let bytes = serde_json::to_vec(msg)?;
    if bytes.len() > MAX_DATAGRAM {
        return Err(too_big(format!(
            "datagram of {} bytes exceeds the limit of {MAX_DATAGRAM}",
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// Decodes one datagram; oversized, malformed, truncated or unknown input is an error.
pub fn decode(bytes: &[u8]) -> Result<Msg, serde_json::Error> {
    if bytes.len() > MAX_DATAGRAM {
        return Err(too_big(format!(
            "datagram of {} bytes exceeds the limit of {MAX_DATAGRAM}",
            bytes.len()
        )));
    }
    let msg: Msg = serde_json::from_slice(bytes)?;
    if matches!(msg, Msg::ClientRequest { .. }) && bytes.len() > MAX_CLIENT_REQUEST {
        return Err(too_big(format!(
            "client request of {} bytes exceeds the limit of {MAX_CLIENT_REQUEST}",
            bytes.len()
        )));
    }
    Ok(msg)
}

/// Parses one IPv4 `host:port` (a name resolves to its first IPv4 address).
pub fn parse_addr(s: &str) -> Result<SocketAddrV4, String> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddrV4>() {
        return Ok(addr);
    }
    let resolved = s
        .to_socket_addrs()
        .map_err(|e| format!("bad address '{s}' (expected IPv4 host:port): {e}"))?;
    resolved
        .into_iter()
        .find_map(|a| match a {
            SocketAddr::V4(v4) => Some(v4),
            SocketAddr::V6(_) => None,
        })
        .ok_or_else(|| format!("address '{s}' has no IPv4 address"))
}

/// Parses a comma-separated list of distinct IPv4 `host:port` addresses.
pub fn parse_peers(s: &str) -> Result<Vec<SocketAddrV4>, String> {
    let peers = s
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(parse_addr)
        .collect::<Result<Vec<_>, _>>()?;
    if peers.is_empty() {
        return Err("--peers lists no address".into());
    }
    for (i, p) in peers.iter().enumerate() {
        if peers[..i].contains(p) {
            return Err(format!("--peers lists {p} twice"));
        }
    }
    Ok(peers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::Op;

    #[test]
    fn round_trips_and_documents_the_shape() {
        let msg = Msg::ClientRequest {
            client_id: 7,
            seq: 1,
            op: Op::Put {
                key: "k".into(),
                value: "v".into(),
            },
        };
        let bytes = encode(&msg).unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"type":"ClientRequest","client_id":7,"seq":1,"op":{"op":"put","key":"k","value":"v"}}"#
        );
        assert_eq!(decode(&bytes).unwrap(), msg);
        assert_eq!(
            decode(br#"{"type":"StatusRequest"}"#).unwrap(),
            Msg::StatusRequest
        );
    }

    #[test]
    fn junk_is_an_error_not_a_panic() {
        for junk in [
            &b""[..],
            b"\xff\xfe",
            b"{",
            b"null",
            br#"{"type":"Nope"}"#,
            br#"{"type":"AppendEntries","term":1}"#,
            br#"{"type":"RequestVote","term":-1,"candidate_id":0,"last_log_index":0,"last_log_term":0}"#,
        ] {
            assert!(decode(junk).is_err(), "{junk:?}");
        }
        assert!(decode(&vec![b' '; MAX_DATAGRAM + 1]).is_err());
        let big = format!(
            r#"{{"type":"ClientRequest","client_id":1,"seq":1,"op":{{"op":"put","key":"k","value":"{}"}}}}"#,
            "x".repeat(MAX_CLIENT_REQUEST)
        );
        assert!(decode(big.as_bytes()).is_err());
    }

    #[test]
    fn a_full_append_entries_of_the_largest_requests_stays_well_under_64_kib() {
        use crate::raft::{Command, Entry};
        use stateright::actor::Id;
        // The largest request a node accepts, with the largest numbers.
        let request = |value_len: usize| Msg::ClientRequest {
            client_id: u64::MAX,
            seq: u64::MAX,
            op: Op::Put {
                key: "k".into(),
                value: "\u{1}".repeat(value_len / 6),
            },
        };
        let mut len = MAX_CLIENT_REQUEST;
        while encode(&request(len)).unwrap().len() > MAX_CLIENT_REQUEST {
            len -= 6;
        }
        let Msg::ClientRequest { op, .. } = request(len) else {
            unreachable!()
        };
        let entry = Entry {
            term: u64::MAX,
            command: Command::Client {
                client_id: u64::MAX,
                seq: u64::MAX,
                op,
                reply_to: Id::from(usize::MAX),
            },
        };
        let append = Msg::AppendEntries {
            term: u64::MAX,
            leader_id: Id::from(usize::MAX),
            prev_log_index: u64::MAX,
            prev_log_term: u64::MAX,
            entries: std::iter::repeat_n(entry, MAX_APPEND_ENTRIES).collect(),
            leader_commit: u64::MAX,
        };
        let size = encode(&append).unwrap().len();
        assert!(size < 40 * 1024, "{size} bytes");
    }

    #[test]
    fn peers_parse_and_reject_duplicates() {
        let p = parse_peers("127.0.0.1:3000,localhost:3001").unwrap();
        assert_eq!(p[1].port(), 3001);
        assert!(parse_peers("127.0.0.1:3000,127.0.0.1:3000").is_err());
        assert!(parse_peers("nonsense").is_err());
    }
}
