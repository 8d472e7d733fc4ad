//! The wire format: one JSON-encoded [`Msg`] per UDP datagram, authenticated under the
//! cluster key (see `auth.rs` for the frame around the JSON), with size limits.
//!
//! A datagram's payload is exactly what `serde_json` makes of a [`Msg`]: an object whose
//! `"type"` names the variant (`ClientRequest`, `AppendEntries`, ...). With a cluster key the
//! datagram is `[0xB3] payload tag`; without one (`--insecure`), the payload alone. A node
//! drops what breaks a limit below, fails authentication or does not decode, and counts it by
//! [`Rejected`] reason; it answers a `StatusRequest` with a [`NodeStatus`]: the protocol's
//! `Status` and those counts.
//!
//! Limits keep every datagram well under the 64 KiB a UDP datagram can hold: a client request
//! is at most [`MAX_CLIENT_REQUEST`] bytes, a log entry is a client request plus a few fields,
//! and an AppendEntries carries at most [`MAX_APPEND_ENTRIES`] entries, so it stays below
//! about 36 KiB. [`MAX_DATAGRAM`] is the hard cap on anything sent or accepted, frame included.

use super::auth::{Auth, MacError};
use super::chunks::SnapshotChunk;
use super::lost::LostLogs;
use crate::raft::{Index, Msg, Status};
use serde::{Deserialize, Serialize};
use std::net::{SocketAddr, SocketAddrV4, ToSocketAddrs};

/// The largest datagram a node sends or accepts.
pub const MAX_DATAGRAM: usize = 60 * 1024;
/// The largest `ClientRequest` a node accepts (key, value and JSON framing together; the
/// authentication frame is not counted).
pub const MAX_CLIENT_REQUEST: usize = 4 * 1024;
/// Entries per AppendEntries: `MAX_APPEND_ENTRIES` entries of at most `MAX_CLIENT_REQUEST`
/// bytes plus their framing fit well within `MAX_DATAGRAM`.
pub const MAX_APPEND_ENTRIES: usize = 8;

/// Why a node dropped a datagram. A dropped datagram never reaches the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejected {
    /// It does not decode as a message.
    #[error("does not decode")]
    Junk,
    /// Larger than [`MAX_DATAGRAM`], or a client request larger than [`MAX_CLIENT_REQUEST`].
    #[error("is oversized")]
    Oversized,
    /// A peer message (one that carries a term) from an address that is neither a member of
    /// the configuration the node uses nor one of its `--peers` (or `--join`).
    #[error("is a peer message from an address neither in the configuration nor in --peers")]
    UnknownSender,
    /// It fails authentication (and was not decoded).
    #[error("fails authentication: it {0}")]
    BadMac(MacError),
}

/// A node's dropped datagrams since it started, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drops {
    pub junk: u64,
    pub oversized: u64,
    pub unknown_sender: u64,
    pub bad_mac: u64,
}

impl Drops {
    pub fn count(&mut self, why: Rejected) {
        let counter = match why {
            Rejected::Junk => &mut self.junk,
            Rejected::Oversized => &mut self.oversized,
            Rejected::UnknownSender => &mut self.unknown_sender,
            Rejected::BadMac(_) => &mut self.bad_mac,
        };
        *counter += 1;
    }

    pub fn total(&self) -> u64 {
        self.junk + self.oversized + self.unknown_sender + self.bad_mac
    }
}

/// What a node answers to a `StatusRequest`: the protocol's [`Status`] and the runtime's drop
/// counters, one JSON object (`{"type":"StatusResponse","role":..,"drops":{..}}`). It decodes
/// as a plain `Msg::StatusResponse` too (the protocol ignores `drops`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    #[serde(flatten)]
    pub status: Status,
    #[serde(default)]
    pub drops: Drops,
    /// This node lost its log: it had acknowledged through this index, and takes no part
    /// until it is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_log: Option<Index>,
    /// As a leader: the followers found to have lost their log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost_followers: Vec<SocketAddrV4>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type")]
enum StatusWire {
    StatusResponse(NodeStatus),
}

fn too_big(text: String) -> serde_json::Error {
    <serde_json::Error as serde::de::Error>::custom(text)
}

/// Encodes a message as plain JSON; refuses one that would not fit in [`MAX_DATAGRAM`].
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

/// Decodes one plain JSON payload; oversized, malformed, truncated or unknown input is an error.
pub fn decode(bytes: &[u8]) -> Result<Msg, Rejected> {
    if bytes.len() > MAX_DATAGRAM {
        return Err(Rejected::Oversized);
    }
    let msg: Msg = serde_json::from_slice(bytes).map_err(|_| Rejected::Junk)?;
    if matches!(msg, Msg::ClientRequest { .. }) && bytes.len() > MAX_CLIENT_REQUEST {
        return Err(Rejected::Oversized);
    }
    Ok(msg)
}

/// The datagram that carries `msg` from `from` to `to`: JSON, authenticated by `auth`. Refuses
/// one that would not fit in [`MAX_DATAGRAM`].
pub fn seal<T: Serialize + ?Sized>(
    auth: &Auth,
    from: SocketAddrV4,
    to: SocketAddrV4,
    msg: &T,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut datagram = auth.begin(256);
    serde_json::to_writer(&mut datagram, msg)?;
    auth.finish(from, to, &mut datagram);
    if datagram.len() > MAX_DATAGRAM {
        return Err(too_big(format!(
            "datagram of {} bytes exceeds the limit of {MAX_DATAGRAM}",
            datagram.len()
        )));
    }
    Ok(datagram)
}

/// The message in a datagram that `to` received from `from`: the size is checked first, then
/// the MAC, and only an authentic datagram is decoded.
pub fn open(
    auth: &Auth,
    from: SocketAddrV4,
    to: SocketAddrV4,
    datagram: &[u8],
) -> Result<Msg, Rejected> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(Rejected::Oversized);
    }
    let payload = auth.open(from, to, datagram).map_err(Rejected::BadMac)?;
    decode(payload)
}

/// A node's answer to a `StatusRequest`, from a datagram's authentic payload.
pub fn decode_status(payload: &[u8]) -> Option<NodeStatus> {
    match serde_json::from_slice(payload).ok()? {
        StatusWire::StatusResponse(status) => Some(status),
    }
}

/// Datagrams between nodes, or from an operator, that are not the protocol's messages.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type")]
enum RuntimeWire {
    /// A piece of an InstallSnapshot (see `chunks.rs`).
    SnapshotChunk(SnapshotChunk),
    /// An operator asks a node to compact its log through what it has applied now; the node
    /// answers with its status.
    SnapshotRequest,
    /// A leader tells a follower that it lost the log it had acknowledged through this index.
    LostLog { acknowledged: Index },
}

/// What an authentic datagram carries.
#[derive(Debug)]
pub enum Incoming {
    Msg(Msg),
    Chunk(SnapshotChunk),
    SnapshotRequest,
    LostLog { acknowledged: Index },
}

/// The datagram payload of one snapshot chunk.
pub fn chunk_message(chunk: &SnapshotChunk) -> impl Serialize {
    RuntimeWire::SnapshotChunk(chunk.clone())
}

/// The datagram payload that asks a node to take a snapshot now.
pub fn snapshot_request() -> impl Serialize {
    RuntimeWire::SnapshotRequest
}

/// The datagram payload that tells a follower it lost its log.
pub fn lost_log_message(acknowledged: Index) -> impl Serialize {
    RuntimeWire::LostLog { acknowledged }
}

/// Like [`open`], for any datagram a node accepts: a protocol message, a snapshot chunk or a
/// snapshot request.
pub fn open_incoming(
    auth: &Auth,
    from: SocketAddrV4,
    to: SocketAddrV4,
    datagram: &[u8],
) -> Result<Incoming, Rejected> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(Rejected::Oversized);
    }
    let payload = auth.open(from, to, datagram).map_err(Rejected::BadMac)?;
    match decode(payload) {
        Err(Rejected::Junk) => match serde_json::from_slice(payload) {
            Ok(RuntimeWire::SnapshotChunk(chunk)) => Ok(Incoming::Chunk(chunk)),
            Ok(RuntimeWire::SnapshotRequest) => Ok(Incoming::SnapshotRequest),
            Ok(RuntimeWire::LostLog { acknowledged }) => Ok(Incoming::LostLog { acknowledged }),
            Err(_) => Err(Rejected::Junk),
        },
        other => other.map(Incoming::Msg),
    }
}

/// The answer to a `StatusRequest`, as a node sends it.
pub fn status_response(status: Status, drops: Drops, lost: &LostLogs) -> impl Serialize {
    StatusWire::StatusResponse(NodeStatus {
        status,
        drops,
        lost_log: lost.own,
        lost_followers: lost.followers.keys().map(|&f| f.into()).collect(),
    })
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

/// Addresses as `--peers` takes them: joined by commas.
pub fn peers_text(peers: &[SocketAddrV4]) -> String {
    let addrs: Vec<String> = peers.iter().map(ToString::to_string).collect();
    addrs.join(",")
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
    use crate::raft::{Op, OpResult};
    use crate::runtime::auth::{ClusterKey, FORMAT};
    use stateright::actor::Id;

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

    /// A RequestVote from a server that predates leadership transfer is an ordinary one.
    #[test]
    fn leadership_transfer_fields_default_and_round_trip() {
        let old = br#"{"type":"RequestVote","term":3,"candidate_id":1,"last_log_index":2,"last_log_term":2}"#;
        assert_eq!(
            decode(old).unwrap(),
            Msg::RequestVote {
                term: 3,
                candidate_id: Id::from(1),
                last_log_index: 2,
                last_log_term: 2,
                transfer: false,
            }
        );
        assert_eq!(
            decode(br#"{"type":"TimeoutNow","term":3}"#).unwrap(),
            Msg::TimeoutNow { term: 3 }
        );
        let transfer = Msg::TransferLeader {
            target: Id::from(2),
        };
        assert_eq!(decode(&encode(&transfer).unwrap()).unwrap(), transfer);
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
            read_round: 0,
        };
        let size = encode(&append).unwrap().len();
        assert!(size < 40 * 1024, "{size} bytes");
    }

    fn at(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, port)
    }

    fn key(byte: u8) -> Auth {
        Auth::Key(ClusterKey::from_bytes(
            [byte; crate::runtime::auth::KEY_LEN],
        ))
    }

    #[test]
    fn a_sealed_message_opens_only_at_its_receiver_from_its_sender() {
        let msg = Msg::RequestVote {
            term: u64::MAX,
            candidate_id: Id::from(at(1)),
            last_log_index: 0,
            last_log_term: 0,
            transfer: true,
        };
        let k = key(1);
        let datagram = seal(&k, at(1), at(2), &msg).unwrap();
        assert_eq!(datagram[0], FORMAT);
        assert_eq!(open(&k, at(1), at(2), &datagram), Ok(msg.clone()));
        let bad = Err(Rejected::BadMac(MacError::Wrong));
        assert_eq!(open(&k, at(3), at(2), &datagram), bad, "another sender");
        assert_eq!(open(&k, at(1), at(3), &datagram), bad, "another receiver");
        assert_eq!(open(&key(2), at(1), at(2), &datagram), bad, "another key");
        let plain = encode(&msg).unwrap();
        assert_eq!(
            open(&k, at(1), at(2), &plain),
            Err(Rejected::BadMac(MacError::Missing))
        );
        assert_eq!(open(&Auth::Insecure, at(1), at(2), &plain), Ok(msg));
        assert_eq!(
            open(&Auth::Insecure, at(1), at(2), &datagram),
            Err(Rejected::BadMac(MacError::Unexpected))
        );
        assert_eq!(
            open(&k, at(1), at(2), &vec![FORMAT; MAX_DATAGRAM + 1]),
            Err(Rejected::Oversized)
        );
        // Authentic but not a message: junk, found only after the MAC checked out.
        let junk = k.seal(at(1), at(2), b"{\"type\":\"Nope\"}");
        assert_eq!(open(&k, at(1), at(2), &junk), Err(Rejected::Junk));
    }

    #[test]
    fn a_status_answer_carries_the_drop_counters_and_still_decodes_as_a_status() {
        let status = Status {
            role: "Leader".into(),
            term: 3,
            voted_for: Some(Id::from(at(1))),
            commit_index: 4,
            last_log_index: 5,
            last_log_term: 3,
            snapshot_index: 2,
            first_index: 3,
            leader: Some(Id::from(at(1))),
            voters: vec![Id::from(at(1)), Id::from(at(2))],
            learners: Vec::new(),
            membership_index: 0,
        };
        let drops = Drops {
            junk: 1,
            oversized: 2,
            unknown_sender: 3,
            bad_mac: 4,
        };
        let lost = LostLogs::default();
        let bytes = serde_json::to_vec(&status_response(status.clone(), drops, &lost)).unwrap();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(
            text.starts_with(r#"{"type":"StatusResponse","role":"Leader","term":3,"#),
            "{text}"
        );
        assert!(
            text.ends_with(r#""drops":{"junk":1,"oversized":2,"unknown_sender":3,"bad_mac":4}}"#),
            "{text}"
        );
        assert_eq!(
            decode_status(&bytes),
            Some(NodeStatus {
                status: status.clone(),
                drops,
                lost_log: None,
                lost_followers: Vec::new(),
            })
        );
        assert_eq!(decode(&bytes), Ok(Msg::StatusResponse(status.clone())));
        // A plain protocol answer (no counters) reads as zero drops.
        let plain = encode(&Msg::StatusResponse(status.clone())).unwrap();
        assert_eq!(decode_status(&plain).unwrap().drops, Drops::default());
        assert_eq!(decode_status(br#"{"type":"StatusRequest"}"#), None);
    }

    #[test]
    fn drops_count_by_reason() {
        let mut d = Drops::default();
        for why in [
            Rejected::Junk,
            Rejected::Oversized,
            Rejected::UnknownSender,
            Rejected::BadMac(MacError::Wrong),
            Rejected::BadMac(MacError::Missing),
        ] {
            d.count(why);
        }
        assert_eq!(
            (d.junk, d.oversized, d.unknown_sender, d.bad_mac),
            (1, 1, 1, 2)
        );
        assert_eq!(d.total(), 5);
    }

    mod properties {
        use super::*;
        use crate::raft::{Command, Conflict, Entry, Reply};
        use crate::runtime::auth::OVERHEAD;
        use proptest::prelude::*;

        fn any_id() -> impl Strategy<Value = Id> {
            any::<u64>().prop_map(|n| Id::from(n as usize))
        }

        fn any_text() -> impl Strategy<Value = String> {
            prop_oneof![".{0,12}", "[a-z\"\\\\{}]{0,12}"]
        }

        fn any_op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (any_text(), any_text()).prop_map(|(key, value)| Op::Put { key, value }),
                any_text().prop_map(|key| Op::Get { key }),
                any_text().prop_map(|key| Op::Delete { key }),
            ]
        }

        fn any_entry() -> impl Strategy<Value = Entry> {
            let command = prop_oneof![
                Just(Command::Noop),
                (any::<u64>(), any::<u64>(), any_op(), any_id()).prop_map(
                    |(client_id, seq, op, reply_to)| Command::Client {
                        client_id,
                        seq,
                        op,
                        reply_to
                    }
                ),
            ];
            (any::<u64>(), command).prop_map(|(term, command)| Entry { term, command })
        }

        fn any_msg() -> impl Strategy<Value = Msg> {
            let u = any::<u64>;
            prop_oneof![
                (u(), any_id(), u(), u(), any::<bool>()).prop_map(
                    |(term, candidate_id, i, t, transfer)| Msg::RequestVote {
                        term,
                        candidate_id,
                        last_log_index: i,
                        last_log_term: t,
                        transfer,
                    }
                ),
                u().prop_map(|term| Msg::TimeoutNow { term }),
                any_id().prop_map(|target| Msg::TransferLeader { target }),
                (u(), any::<bool>()).prop_map(|(term, vote_granted)| Msg::RequestVoteResponse {
                    term,
                    vote_granted
                }),
                (
                    u(),
                    any_id(),
                    u(),
                    u(),
                    proptest::collection::vec(any_entry(), 0..=MAX_APPEND_ENTRIES),
                    u()
                )
                    .prop_map(
                        |(term, leader_id, pi, pt, entries, leader_commit)| {
                            Msg::AppendEntries {
                                term,
                                leader_id,
                                prev_log_index: pi,
                                prev_log_term: pt,
                                entries,
                                leader_commit,
                                read_round: 0,
                            }
                        }
                    ),
                (
                    u(),
                    any::<bool>(),
                    u(),
                    proptest::option::of((proptest::option::of(u()), u()))
                )
                    .prop_map(|(term, success, match_index, c)| {
                        Msg::AppendEntriesResponse {
                            term,
                            success,
                            match_index,
                            conflict: c.map(|(term, index)| Conflict { term, index }),
                            read_round: 0,
                        }
                    }),
                (u(), u(), any_op()).prop_map(|(client_id, seq, op)| Msg::ClientRequest {
                    client_id,
                    seq,
                    op
                }),
                (
                    u(),
                    prop_oneof![
                        Just(OpResult::Done),
                        proptest::option::of(any_text()).prop_map(OpResult::Value)
                    ]
                    .prop_map(|result| Reply::Ok { result })
                )
                    .prop_map(|(seq, reply)| Msg::ClientResponse { seq, reply }),
                proptest::option::of(any_id()).prop_map(|leader_hint| Msg::ClientResponse {
                    seq: 1,
                    reply: Reply::NotLeader { leader_hint }
                }),
                Just(Msg::StatusRequest),
            ]
        }

        /// Arbitrary bytes, some shaped like an authenticated datagram.
        fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
            let raw = proptest::collection::vec(any::<u8>(), 0..300);
            prop_oneof![
                raw.clone(),
                raw.clone().prop_map(|mut b| {
                    b.insert(0, FORMAT);
                    b
                }),
                any_msg().prop_map(|m| encode(&m).unwrap()),
                (
                    any_msg(),
                    proptest::collection::vec(any::<u8>(), OVERHEAD - 1..=OVERHEAD)
                )
                    .prop_map(|(m, tag)| {
                        let mut b = vec![FORMAT];
                        b.extend(encode(&m).unwrap());
                        b.extend(tag);
                        b
                    }),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn arbitrary_bytes_never_panic_and_never_pass_a_key(bytes in any_bytes(), from in 1u16.., to in 1u16..) {
                let _ = decode(&bytes);
                let _ = decode_status(&bytes);
                let _ = open(&Auth::Insecure, at(from), at(to), &bytes);
                let verdict = open(&key(9), at(from), at(to), &bytes);
                prop_assert!(matches!(verdict, Err(Rejected::BadMac(_))), "{verdict:?}");
            }

            #[test]
            fn authenticated_messages_round_trip(msg in any_msg(), from in 1u16.., to in 1u16..) {
                for auth in [key(9), Auth::Insecure] {
                    let datagram = seal(&auth, at(from), at(to), &msg).unwrap();
                    prop_assert_eq!(open(&auth, at(from), at(to), &datagram), Ok(msg.clone()));
                }
                let datagram = seal(&key(9), at(from), at(to), &msg).unwrap();
                prop_assert_eq!(
                    open(&key(9), at(from), at(to.wrapping_add(1).max(1)), &datagram),
                    Err(Rejected::BadMac(MacError::Wrong))
                );
                prop_assert_eq!(
                    open(&key(8), at(from), at(to), &datagram),
                    Err(Rejected::BadMac(MacError::Wrong))
                );
            }
        }
    }

    #[test]
    fn peers_parse_and_reject_duplicates() {
        let p = parse_peers("127.0.0.1:3000,localhost:3001").unwrap();
        assert_eq!(p[1].port(), 3001);
        assert!(parse_peers("127.0.0.1:3000,127.0.0.1:3000").is_err());
        assert!(parse_peers("nonsense").is_err());
    }
}
