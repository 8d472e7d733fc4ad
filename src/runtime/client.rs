//! The client library: one operation at a time against a cluster over UDP.
//!
//! A client picks a random id once and numbers its operations; a retried request carries the
//! same `(client_id, seq)`, so the cluster applies it once and answers it with the result it
//! got then. The leader answers only once the entry is committed and applied. A server that
//! is not the leader answers with its best hint; silence moves the client to the next server.
//! Every `Get` goes through the log, so reads are linearizable.
//!
//! Every datagram is authenticated with the cluster key (`auth.rs`), which binds the client's
//! own address: the socket is bound to the local IPv4 address that the route to the first
//! server uses, so the client knows the address the servers see (no NAT in between).

use super::auth::{Auth, MacError};
use super::wire::{self, NodeStatus};
use crate::raft::{Change, ChangeRefused, ClientId, Index, Msg, Op, OpResult, Reply, Status};
use stateright::actor::Id;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

/// Why an operation did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No committed answer within the timeout: no quorum, or no leader reachable. The
    /// operation may still take effect later.
    #[error(
        "no quorum: not committed within {} ms ({attempts} attempts; last: {last}); \
         the operation may or may not take effect",
        timeout.as_millis()
    )]
    Timeout {
        timeout: Duration,
        attempts: u32,
        last: String,
    },
    /// The request would exceed the largest datagram a node accepts.
    #[error(
        "request of {size} bytes exceeds the limit of {} bytes",
        wire::MAX_CLIENT_REQUEST
    )]
    TooLarge { size: usize },
    /// A leadership transfer or a snapshot request named a server outside the cluster.
    #[error(
        "{target} is not a member of the cluster (neither in --peers nor in its configuration)"
    )]
    NotAMember { target: SocketAddrV4 },
    /// The named server did not become leader in time.
    #[error(
        "{target} did not become leader within {} ms (last seen: {last})",
        timeout.as_millis()
    )]
    NotTransferred {
        target: SocketAddrV4,
        timeout: Duration,
        last: String,
    },
    /// The leader refused a configuration change; nothing changed.
    #[error("refused: {0}")]
    Refused(ChangeRefused),
    /// The leader took a configuration change, which did not commit in time.
    #[error(
        "the leader appended the change at index {index}, but it did not commit within {} ms \
         (no quorum?; last seen: {last}); it may still take effect: the members command shows \
         whether it did",
        timeout.as_millis()
    )]
    NotCommitted {
        index: Index,
        timeout: Duration,
        last: String,
    },
    #[error("network error: {0}")]
    Io(#[from] io::Error),
}

pub struct Client {
    socket: UdpSocket,
    /// This client's address as the servers see it.
    me: SocketAddrV4,
    auth: Auth,
    peers: Vec<SocketAddrV4>,
    client_id: ClientId,
    seq: u64,
    /// Where the next request goes: the leader as far as this client knows.
    target: usize,
    timeout: Duration,
    attempt: Duration,
    buf: Vec<u8>,
    /// The last answer that failed authentication, and from whom (for the error message).
    rejected: Option<(SocketAddrV4, MacError)>,
}

/// A UDP socket for talking to `peers`, bound to the local address that the route to the first
/// of them uses, and that address (what the servers will see as the source).
pub fn socket_towards(peers: &[SocketAddrV4]) -> io::Result<(UdpSocket, SocketAddrV4)> {
    let first = *peers
        .first()
        .ok_or_else(|| io::Error::other("no server to talk to"))?;
    // Connecting a UDP socket sends nothing; it only picks the route and the source address.
    let probe = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
    probe.connect(first)?;
    let local_ip = match probe.local_addr()? {
        SocketAddr::V4(a) => *a.ip(),
        SocketAddr::V6(a) => return Err(io::Error::other(format!("no IPv4 route: {a}"))),
    };
    let socket = UdpSocket::bind(SocketAddrV4::new(local_ip, 0))?;
    match socket.local_addr()? {
        SocketAddr::V4(me) => Ok((socket, me)),
        SocketAddr::V6(a) => Err(io::Error::other(format!("bound to IPv6 {a}"))),
    }
}

impl Client {
    /// A client of the cluster `peers`, authenticating with `auth`; each operation gives up
    /// after `timeout`.
    pub fn new(peers: Vec<SocketAddrV4>, auth: Auth, timeout: Duration) -> io::Result<Self> {
        assert!(!peers.is_empty(), "a client needs at least one server");
        let (socket, me) = socket_towards(&peers)?;
        Ok(Self {
            target: rand::random_range(0..peers.len()),
            socket,
            me,
            auth,
            peers,
            client_id: rand::random(),
            seq: 0,
            timeout,
            attempt: (timeout / 10).clamp(Duration::from_millis(100), Duration::from_secs(1)),
            buf: vec![0; 65_536],
            rejected: None,
        })
    }

    /// How long one attempt waits for an answer before the client tries the next server.
    pub fn with_attempt_timeout(mut self, attempt: Duration) -> Self {
        self.attempt = attempt;
        self
    }

    pub fn client_id(&self) -> ClientId {
        self.client_id
    }

    pub fn put(&mut self, key: &str, value: &str) -> Result<(), ClientError> {
        self.execute(Op::Put {
            key: key.into(),
            value: value.into(),
        })
        .map(drop)
    }

    pub fn delete(&mut self, key: &str) -> Result<(), ClientError> {
        self.execute(Op::Delete { key: key.into() }).map(drop)
    }

    /// The value of `key` (linearizable: the read is committed through the log).
    pub fn get(&mut self, key: &str) -> Result<Option<String>, ClientError> {
        match self.execute(Op::Get { key: key.into() })? {
            OpResult::Value(v) => Ok(v),
            OpResult::Done => Ok(None),
        }
    }

    /// Runs one operation to its committed result, retrying with the same sequence number.
    pub fn execute(&mut self, op: Op) -> Result<OpResult, ClientError> {
        self.seq += 1;
        let seq = self.seq;
        let request = Msg::ClientRequest {
            client_id: self.client_id,
            seq,
            op,
        };
        let payload = serde_json::to_vec(&request).map_err(io::Error::other)?;
        if payload.len() > wire::MAX_CLIENT_REQUEST {
            return Err(ClientError::TooLarge {
                size: payload.len(),
            });
        }
        let deadline = Instant::now() + self.timeout;
        let mut attempts = 0;
        let mut last = "no server answered".to_string();
        let mut refusals = 0;
        // Servers that let an attempt of this operation time out. A hint naming one of them is
        // most likely stale (followers keep naming a dead leader until they elect another), so
        // it is not followed: the client moves on round the servers instead.
        let mut silent = vec![false; self.peers.len()];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(ClientError::Timeout {
                    timeout: self.timeout,
                    attempts,
                    last,
                });
            }
            attempts += 1;
            let to = self.peers[self.target];
            let datagram = self.auth.seal(self.me, to, &payload);
            let sent = self.socket.send_to(&datagram, to);
            match self.wait_reply(seq, (now + self.attempt).min(deadline))? {
                Some(Reply::Ok { result }) => return Ok(result),
                Some(Reply::NotLeader { leader_hint }) => {
                    last = self.not_leader(to, leader_hint, &mut silent, &mut refusals, deadline);
                }
                None => {
                    last = match (sent, self.rejected.take()) {
                        (Err(e), _) => format!("cannot send to {to}: {e}"),
                        (Ok(_), Some((from, why))) => format!(
                            "an answer from {from} failed authentication: it {why}{}",
                            wrong_key_hint(why)
                        ),
                        (Ok(_), None) => format!("{to} did not answer"),
                    };
                    silent[self.target] = true;
                    self.target = (self.target + 1) % self.peers.len();
                    refusals = 0;
                }
            }
        }
    }

    /// `to` answered that it is not the leader, naming `hint`. Follows the hint (to a leader
    /// added after `--peers` was written too) unless it names a server that was `silent` in
    /// this operation, else moves on round the servers; once every server has refused in turn,
    /// an election is probably under way, so it pauses. Returns what a timeout would report.
    fn not_leader(
        &mut self,
        to: SocketAddrV4,
        hint: Option<Id>,
        silent: &mut Vec<bool>,
        refusals: &mut usize,
        deadline: Instant,
    ) -> String {
        let hint = hint.map(SocketAddrV4::from);
        self.learn(hint.map(Id::from));
        silent.resize(self.peers.len(), false);
        let hinted = hint.and_then(|h| self.peers.iter().position(|&p| p == h));
        self.target = match hinted {
            Some(i) if i != self.target && !silent[i] => i,
            _ => (self.target + 1) % self.peers.len(),
        };
        *refusals += 1;
        if *refusals >= self.peers.len() {
            *refusals = 0;
            pause_until(deadline, Duration::from_millis(50));
        }
        match hint {
            Some(h) => format!("{to} is not the leader (it names {h})"),
            None => format!("{to} is not the leader and knows none"),
        }
    }

    /// Waits for the answer to `seq` until `until`; other datagrams are ignored.
    fn wait_reply(&mut self, seq: u64, until: Instant) -> io::Result<Option<Reply>> {
        self.wait_for(until, |msg| match msg {
            Msg::ClientResponse { seq: s, reply } if s == seq => Some(reply),
            _ => None,
        })
    }

    /// Waits until `until` for an authentic message that `pick` takes; other datagrams are
    /// ignored (one that fails authentication is remembered for the error message).
    fn wait_for<T>(
        &mut self,
        until: Instant,
        mut pick: impl FnMut(Msg) -> Option<T>,
    ) -> io::Result<Option<T>> {
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.socket.set_read_timeout(Some(left))?;
            let (len, from) = match self.socket.recv_from(&mut self.buf) {
                Ok((len, SocketAddr::V4(from))) => (len, from),
                Ok(_) => continue,
                Err(e) if is_timeout(&e) => return Ok(None),
                // A signal during the wait is no answer and no error: wait on.
                Err(e) if is_retry(&e) => continue,
                Err(e) => return Err(e),
            };
            match self.auth.open(from, self.me, &self.buf[..len]) {
                Ok(payload) => {
                    if let Some(picked) = wire::decode(payload).ok().and_then(&mut pick) {
                        return Ok(Some(picked));
                    }
                }
                Err(why) => self.rejected = Some((from, why)),
            }
        }
    }

    /// Asks every server for its status (the protocol's and its drop counters); `None` for a
    /// server that did not answer within `wait`. Unanswered requests are re-sent every 200 ms.
    pub fn status(&mut self, wait: Duration) -> io::Result<Vec<Option<NodeStatus>>> {
        let request = wire::encode(&Msg::StatusRequest).map_err(io::Error::other)?;
        let everyone = vec![true; self.peers.len()];
        self.ask_for_status(&request, &everyone, wait)
    }

    /// As [`Client::status`], for every server `--peers` names and every member that a
    /// configuration they report names; returns those servers and their answers, aligned.
    pub fn status_of_members(
        &mut self,
        wait: Duration,
    ) -> io::Result<(Vec<SocketAddrV4>, Vec<Option<NodeStatus>>)> {
        let known = self.peers.len();
        let mut answers = self.status_learning(wait)?;
        if self.peers.len() > known {
            answers = self.status(wait)?;
        }
        Ok((self.peers.clone(), answers))
    }

    /// Asks `target` to compact its log through what it has applied (§7), and returns its
    /// status after, or `None` if it did not answer within `wait`.
    pub fn snapshot(
        &mut self,
        target: SocketAddrV4,
        wait: Duration,
    ) -> Result<Option<NodeStatus>, ClientError> {
        if !self.peers.contains(&target) {
            // It may have been added since `--peers` was written.
            self.status_learning(Duration::from_millis(300))?;
        }
        let Some(t) = self.peers.iter().position(|&p| p == target) else {
            return Err(ClientError::NotAMember { target });
        };
        let request = serde_json::to_vec(&wire::snapshot_request()).map_err(io::Error::other)?;
        let only_target: Vec<bool> = (0..self.peers.len()).map(|i| i == t).collect();
        Ok(self
            .ask_for_status(&request, &only_target, wait)?
            .swap_remove(t))
    }

    /// Sends `request` to each server `ask` names until each has answered with its status or
    /// `wait` is over; re-sends every 200 ms.
    fn ask_for_status(
        &mut self,
        request: &[u8],
        ask: &[bool],
        wait: Duration,
    ) -> io::Result<Vec<Option<NodeStatus>>> {
        let mut answers: Vec<Option<NodeStatus>> = vec![None; self.peers.len()];
        let waiting = |answers: &[Option<NodeStatus>]| {
            answers
                .iter()
                .zip(ask)
                .any(|(a, &asked)| asked && a.is_none())
        };
        let deadline = Instant::now() + wait;
        let mut next_send = Instant::now();
        while waiting(&answers) {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            if now >= next_send {
                for ((peer, answer), &asked) in self.peers.iter().zip(&answers).zip(ask) {
                    if asked && answer.is_none() {
                        let datagram = self.auth.seal(self.me, *peer, request);
                        let _ = self.socket.send_to(&datagram, peer);
                    }
                }
                next_send = now + Duration::from_millis(200);
            }
            let left = next_send.min(deadline).saturating_duration_since(now);
            if left.is_zero() {
                continue;
            }
            self.socket.set_read_timeout(Some(left))?;
            let (len, src) = match self.socket.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if is_timeout(&e) || is_retry(&e) => {
                    continue;
                }
                Err(e) => return Err(e),
            };
            let SocketAddr::V4(src) = src else { continue };
            let payload = match self.auth.open(src, self.me, &self.buf[..len]) {
                Ok(payload) => payload,
                Err(why) => {
                    self.rejected = Some((src, why));
                    continue;
                }
            };
            if let Some(status) = wire::decode_status(payload)
                && let Some(i) = self.peers.iter().position(|&p| p == src)
                && answers[i].is_none()
            {
                answers[i] = Some(status);
            }
        }
        Ok(answers)
    }

    /// Leadership transfer (thesis §3.10): asks the leader to hand its leadership to `target`,
    /// and returns once `target` says it leads. Polls every server's status; asks whichever
    /// leads, again after each poll (the leader ignores a repeat of the transfer under way,
    /// and starts it anew after one it abandoned).
    pub fn transfer_leader(&mut self, target: SocketAddrV4) -> Result<(), ClientError> {
        if !self.peers.contains(&target) {
            // It may have been added since `--peers` was written.
            self.status_learning(Duration::from_millis(300))?;
        }
        let Some(t) = self.peers.iter().position(|&p| p == target) else {
            return Err(ClientError::NotAMember { target });
        };
        let request = wire::encode(&Msg::TransferLeader {
            target: target.into(),
        })
        .map_err(io::Error::other)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let answers = self.status(Duration::from_millis(300))?;
            let leader = answers
                .iter()
                .enumerate()
                .filter_map(|(i, a)| a.as_ref().map(|a| (i, &a.status)))
                .filter(|(_, s)| s.role == "Leader")
                .max_by_key(|(_, s)| s.term);
            let last = match leader {
                Some((i, _)) if i == t => return Ok(()),
                Some((i, s)) => {
                    let datagram = self.auth.seal(self.me, self.peers[i], &request);
                    self.socket.send_to(&datagram, self.peers[i])?;
                    format!("{} leads term {}", self.peers[i], s.term)
                }
                None => "no leader".to_string(),
            };
            if Instant::now() >= deadline {
                return Err(ClientError::NotTransferred {
                    target,
                    timeout: self.timeout,
                    last,
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Adds the servers `ids` names that this client did not know (a configuration grows
    /// past `--peers`), so that it can ask them too.
    fn learn(&mut self, ids: impl IntoIterator<Item = Id>) {
        for id in ids {
            let addr = SocketAddrV4::from(id);
            if !self.peers.contains(&addr) {
                self.peers.push(addr);
            }
        }
    }

    /// Every known server's status, after learning the configuration members they name.
    fn status_learning(&mut self, wait: Duration) -> io::Result<Vec<Option<NodeStatus>>> {
        let answers = self.status(wait)?;
        let members: Vec<Id> = answers
            .iter()
            .flatten()
            .flat_map(|a| a.status.voters.iter().chain(&a.status.learners).copied())
            .collect();
        self.learn(members);
        Ok(answers)
    }

    /// The configuration as the leader with the highest term reports it, and that leader's
    /// address; `None` when no server leads within `wait` (asked again every 300 ms: an
    /// election may be under way). Servers that a configuration names are asked too, though
    /// not in `--peers`.
    pub fn members(&mut self, wait: Duration) -> io::Result<Option<(SocketAddrV4, Status)>> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (peers, answers) = self.status_of_members(left.min(Duration::from_millis(300)))?;
            let leader = peers
                .into_iter()
                .zip(answers)
                .filter_map(|(addr, a)| a.map(|a| (addr, a.status)))
                .filter(|(_, s)| s.role == "Leader")
                .max_by_key(|(_, s)| s.term);
            if leader.is_some() || Instant::now() >= deadline {
                return Ok(leader);
            }
            pause_until(deadline, Duration::from_millis(50));
        }
    }

    /// A configuration change (thesis §4.1): finds the leader as [`Client::execute`] does,
    /// asks it for `change`, and returns the index of the change's entry once that has
    /// committed. A refusal other than "not the leader" or "not ready yet" is returned at once.
    pub fn change_membership(&mut self, change: Change) -> Result<Index, ClientError> {
        let request = wire::encode(&Msg::ChangeMembership { change }).map_err(io::Error::other)?;
        let deadline = Instant::now() + self.timeout;
        let mut attempts = 0;
        let mut last = "no server answered".to_string();
        let mut refusals = 0;
        // An attempt went unanswered: its change may have been made, and a refusal of a retry
        // (already a member, in progress) may be about this very change.
        let mut unanswered = false;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(ClientError::Timeout {
                    timeout: self.timeout,
                    attempts,
                    last,
                });
            }
            attempts += 1;
            let to = self.peers[self.target];
            let datagram = self.auth.seal(self.me, to, &request);
            let _ = self.socket.send_to(&datagram, to);
            let outcome = self.wait_change_reply((now + self.attempt).min(deadline))?;
            match outcome {
                Some((Ok(index), _)) => return self.wait_committed(change, index, deadline),
                Some((Err(ChangeRefused::NotLeader), hint)) => {
                    last = self.not_leader(to, hint, &mut Vec::new(), &mut refusals, deadline);
                }
                Some((Err(ChangeRefused::LeaderNotReady), _)) => {
                    last = format!("{to} leads, but has not committed an entry of its term yet");
                    pause_until(deadline, Duration::from_millis(50));
                }
                Some((Err(why), _)) => {
                    let leader = self.members(Duration::from_millis(300))?;
                    let now = leader.as_ref().map(|(_, s)| s);
                    if unanswered && let Some(s) = now.filter(|s| reflects(change, s)) {
                        return self.wait_committed(change, s.membership_index, deadline);
                    }
                    // Promoting a server that is no member at all: say that, not "no learner".
                    let why = match (why, now) {
                        (ChangeRefused::NotALearner(id), Some(s))
                            if !s.voters.contains(&id) && !s.learners.contains(&id) =>
                        {
                            ChangeRefused::UnknownServer(id)
                        }
                        _ => why,
                    };
                    return Err(ClientError::Refused(why));
                }
                None => {
                    last = format!("{to} did not answer");
                    unanswered = true;
                    self.target = (self.target + 1) % self.peers.len();
                    refusals = 0;
                }
            }
        }
    }

    /// Waits for the answer to a configuration change until `until`.
    #[allow(clippy::type_complexity)]
    fn wait_change_reply(
        &mut self,
        until: Instant,
    ) -> io::Result<Option<(Result<Index, ChangeRefused>, Option<Id>)>> {
        self.wait_for(until, |msg| match msg {
            Msg::ChangeMembershipResponse {
                outcome,
                leader_hint,
            } => Some((outcome, leader_hint)),
            _ => None,
        })
    }

    /// Polls every known server until one reports a committed configuration at or after
    /// `index` that reflects `change`.
    fn wait_committed(
        &mut self,
        change: Change,
        index: Index,
        deadline: Instant,
    ) -> Result<Index, ClientError> {
        let mut last = "no server answered".to_string();
        loop {
            let answers = self.status_learning(Duration::from_millis(300))?;
            for s in answers.iter().flatten().map(|a| &a.status) {
                if s.membership_index >= index && s.commit_index >= s.membership_index {
                    if reflects(change, s) {
                        return Ok(s.membership_index);
                    }
                } else if s.role == "Leader" {
                    last = format!(
                        "the leader's commit index is {}, its configuration's index {}",
                        s.commit_index, s.membership_index
                    );
                }
            }
            if Instant::now() >= deadline {
                return Err(ClientError::NotCommitted {
                    index,
                    timeout: self.timeout,
                    last,
                });
            }
            pause_until(deadline, Duration::from_millis(50));
        }
    }

    /// The last answer that failed authentication since this was last asked, and why.
    pub fn take_rejected(&mut self) -> Option<(SocketAddrV4, MacError)> {
        self.rejected.take()
    }
}

/// Whether the configuration `status` reports is one that `change` has been made to.
fn reflects(change: Change, status: &Status) -> bool {
    match change {
        Change::AddVoter(id) | Change::Promote(id) => status.voters.contains(&id),
        Change::AddLearner(id) => status.learners.contains(&id),
        Change::Remove(id) => !status.voters.contains(&id) && !status.learners.contains(&id),
    }
}

/// Sleeps for `pause`, but not past `deadline`.
fn pause_until(deadline: Instant, pause: Duration) {
    std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
}

fn wrong_key_hint(why: MacError) -> &'static str {
    match why {
        MacError::Wrong => " (another cluster key?)",
        MacError::Missing => " (the server runs --insecure?)",
        MacError::Unexpected => " (the server has a cluster key; this client runs --insecure)",
    }
}

/// A receive to try again at once: an ICMP "port unreachable" from an earlier send, or a
/// signal that interrupted the wait.
fn is_retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::Interrupted
    )
}

pub(crate) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use stateright::actor::Id;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fake server on loopback: counts the client requests it receives and answers each
    /// with `reply` (or never, for `None`).
    fn fake_server(reply: Option<Reply>) -> (SocketAddrV4, Arc<AtomicUsize>) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let SocketAddr::V4(addr) = socket.local_addr().unwrap() else {
            unreachable!()
        };
        let received = Arc::new(AtomicUsize::new(0));
        let count = received.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0; 65_536];
            while let Ok((len, from)) = socket.recv_from(&mut buf) {
                let Ok(Msg::ClientRequest { seq, .. }) = wire::decode(&buf[..len]) else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                if let Some(reply) = &reply {
                    let answer = Msg::ClientResponse {
                        seq,
                        reply: reply.clone(),
                    };
                    let _ = socket.send_to(&wire::encode(&answer).unwrap(), from);
                }
            }
        });
        (addr, received)
    }

    #[test]
    fn a_hint_to_a_server_that_was_silent_in_this_operation_is_not_followed() {
        // Server 0 is a dead old leader; server 1 still names it; server 2 leads now.
        let (dead, dead_got) = fake_server(None);
        let (stale, _) = fake_server(Some(Reply::NotLeader {
            leader_hint: Some(Id::from(dead)),
        }));
        let (leader, leader_got) = fake_server(Some(Reply::Ok {
            result: OpResult::Done,
        }));
        let mut client = Client::new(
            vec![dead, stale, leader],
            Auth::Insecure,
            Duration::from_secs(3),
        )
        .unwrap()
        .with_attempt_timeout(Duration::from_millis(200));
        client.target = 0;
        client.put("k", "v").expect("the put reaches the leader");
        assert_eq!(leader_got.load(Ordering::SeqCst), 1);
        assert_eq!(
            dead_got.load(Ordering::SeqCst),
            1,
            "the stale hint led the client back to the silent server"
        );
    }

    #[test]
    fn a_hint_naming_a_server_outside_peers_is_followed() {
        // The leader was added after the client's --peers were written.
        let (leader, leader_got) = fake_server(Some(Reply::Ok {
            result: OpResult::Done,
        }));
        let (follower, _) = fake_server(Some(Reply::NotLeader {
            leader_hint: Some(Id::from(leader)),
        }));
        let mut client = Client::new(vec![follower], Auth::Insecure, Duration::from_secs(3))
            .unwrap()
            .with_attempt_timeout(Duration::from_millis(200));
        client.put("k", "v").expect("the put reaches the leader");
        assert_eq!(leader_got.load(Ordering::SeqCst), 1);
        assert_eq!(client.peers, [follower, leader]);
    }

    #[test]
    fn a_change_is_made_once_the_configuration_reflects_it() {
        let (a, b) = (Id::from(1), Id::from(2));
        let status = |voters: Vec<Id>, learners: Vec<Id>| Status {
            role: "Leader".into(),
            term: 1,
            voted_for: None,
            commit_index: 0,
            last_log_index: 0,
            last_log_term: 0,
            snapshot_index: 0,
            first_index: 1,
            leader: None,
            voters,
            learners,
            membership_index: 0,
        };
        let learner = status(vec![a], vec![b]);
        let voter = status(vec![a, b], vec![]);
        let gone = status(vec![a], vec![]);
        assert!(reflects(Change::AddLearner(b), &learner));
        assert!(!reflects(Change::AddVoter(b), &learner));
        assert!(!reflects(Change::Promote(b), &learner));
        assert!(reflects(Change::Promote(b), &voter));
        assert!(reflects(Change::AddVoter(b), &voter));
        assert!(!reflects(Change::Remove(b), &learner));
        assert!(!reflects(Change::Remove(b), &voter));
        assert!(reflects(Change::Remove(b), &gone));
    }
}
