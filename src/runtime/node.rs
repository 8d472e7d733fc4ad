//! A node: the protocol's [`Config`], unchanged, hosted by `stateright::actor::spawn` over UDP.
//!
//! [`Node`] wraps the server as an actor whose own `HardState` is `()`, so spawn never writes its
//! `<addr>.storage` file (rewritten in place, unsynced) and never starts a server empty because
//! that file did not parse. Instead:
//! - `on_start` hands the server the state recovered from `--data-dir` before spawn ran (a store
//!   that cannot be read stops the node with an error before it ever listens);
//! - after every handler, each `Save` becomes a record in the write-ahead log (see `storage.rs`,
//!   made durable by group commit, `commit.rs`), and every other command passes through in
//!   order, except that a message leaves only once what the protocol tagged it with
//!   ([`crate::raft::Durable`]) is durable, which the outbox (`outbox.rs`) carries out;
//! - after every event, the server hears how far its log has become durable
//!   (`Input::Synced`), which is as far as a leader counts its own copy toward commit;
//! - once `--snapshot-entries` applied entries follow the snapshot, a replay thread computes
//!   the state they leave from a copy of the log, and the server is told to compact with it
//!   (`Input::CompactWith`; an operator's `SnapshotRequest` compacts at once, `Input::Compact`);
//!   the save that follows begins a new log segment, and the snapshot thread writes the
//!   snapshot file (`commit.rs`, `wal.rs`);
//! - an InstallSnapshot leaves in chunks and arrives as chunks put back together (`chunks.rs`).
//!
//! The actor's message type is a raw [`Datagram`]: spawn's (de)serialisers pass bytes through,
//! and the node itself, which holds the cluster key, checks each incoming datagram (size, then
//! MAC, then decoding, then that a peer message comes from a peer; `wire::open`) and seals each
//! outgoing message (`wire::seal`). A datagram that fails is counted by reason ([`Drops`],
//! reported in the answer to a `StatusRequest`) and never reaches the protocol. The syncer's
//! wake-ups come from the node's own wake socket and are recognised by that address alone (a
//! forged one only makes the node look at what has become durable, as any event does).

use super::auth::{Auth, MacError};
use super::chunks::{self, Outcome, Reassembly};
use super::commit::{self, Committer, Shared};
use super::lost::LostLogs;
use super::outbox::Outbox;
use super::wal::{self, WalError};
use super::wire::{self, Drops, Incoming, Rejected};
use crate::kv::KvStore;
use crate::raft::{
    Config, Effect, HardState, Index, Input, Log, LogId, Msg, Refusal, ServerState, Timer,
};
use stateright::actor::{Actor, Id, Out};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Why a node cannot start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    BadConfig(String),
    #[error("cannot listen on {addr}: address already in use")]
    PortInUse { addr: SocketAddrV4 },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddrV4,
        source: std::io::Error,
    },
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("cannot {what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("a node stopped: {0}")]
    Stopped(String),
}

/// Everything needed to run one server.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The initial configuration's voters, in the same order on every node (`--peers`); or,
    /// for a joining node, the members it was told of (`--join`) and then its own address.
    /// A configuration in the log or the snapshot takes precedence over them.
    pub peers: Vec<SocketAddrV4>,
    /// This node's position in `peers`.
    pub index: usize,
    /// Started with `--join`: not a member until the leader adds it, so its initial
    /// configuration is `peers` without itself, and it never campaigns.
    pub joining: bool,
    pub data_dir: PathBuf,
    /// Election timeouts are drawn from `[election_timeout, 2 * election_timeout)`.
    pub election_timeout: Duration,
    pub heartbeat: Duration,
    /// PreVote (thesis §9.6): a server that cannot win an election does not raise terms.
    pub pre_vote: bool,
    /// CheckQuorum (thesis §6.2): a leader that hears from no majority steps down.
    pub check_quorum: bool,
    /// ReadIndex (thesis §6.4): a Get costs a round of heartbeats, not a log entry.
    pub read_index: bool,
    /// The cluster key every datagram is authenticated with, or `Auth::Insecure`.
    pub auth: Auth,
    /// Compact the log (§7) once this many applied entries follow the snapshot; 0: never.
    pub snapshot_entries: u64,
    /// For tests only: the disk as a power loss would leave it (see [`commit::PowerLoss`]).
    pub power_loss: Option<commit::PowerLoss>,
    /// For tests only: a deliberately broken variant of the protocol; `None` in every real run.
    pub mutant: Option<crate::raft::Mutant>,
}

impl NodeConfig {
    pub fn addr(&self) -> SocketAddrV4 {
        self.peers[self.index]
    }

    fn server(&self) -> Config {
        Config {
            servers: self
                .peers
                .iter()
                .filter(|&&a| !(self.joining && a == self.addr()))
                .map(|&a| Id::from(a))
                .collect(),
            election_timeout: self.election_timeout..self.election_timeout * 2,
            heartbeat: self.heartbeat,
            max_append_entries: wire::MAX_APPEND_ENTRIES,
            pre_vote: self.pre_vote,
            check_quorum: self.check_quorum,
            read_index: self.read_index,
            mutant: self.mutant,
        }
    }

    pub fn validate(&self) -> Result<(), NodeError> {
        if self.index >= self.peers.len() {
            return Err(NodeError::BadConfig(format!(
                "--id {} is out of range: --peers lists {} addresses",
                self.index,
                self.peers.len()
            )));
        }
        if self.heartbeat.is_zero() || self.heartbeat >= self.election_timeout {
            return Err(NodeError::BadConfig(
                "--heartbeat-ms must be above 0 and below --election-timeout-ms".into(),
            ));
        }
        Ok(())
    }
}

/// One UDP datagram, as it came off or goes onto the wire: the node's actor message. Spawn
/// only copies the bytes; the node authenticates and decodes them itself, because spawn's
/// (de)serialisers are plain `fn`s that cannot hold a key (or count what they drop).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Datagram(pub Vec<u8>);

impl fmt::Debug for Datagram {
    /// The payload as text (spawn logs every datagram at `info`), without the frame's bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = &self.0;
        let (framed, payload) = match bytes.first() {
            Some(&super::auth::FORMAT) if bytes.len() >= super::auth::OVERHEAD => {
                (true, &bytes[1..bytes.len() - super::auth::TAG_LEN])
            }
            _ => (false, &bytes[..]),
        };
        let text = String::from_utf8_lossy(&payload[..payload.len().min(512)]);
        let more = if payload.len() > 512 { "..." } else { "" };
        let tagged = if framed { "tagged " } else { "" };
        write!(f, "Datagram({tagged}{text:?}{more})")
    }
}

/// The wrapper actor. Runtime bookkeeping lives in a `RefCell` because spawn runs each actor
/// on its own thread and hands handlers `&self`; the protocol state stays in `ServerState`.
pub struct Node {
    server: Config,
    addr: SocketAddrV4,
    /// `--peers` or `--join`: known senders besides the members of the configuration in use.
    seeds: Vec<Id>,
    auth: Auth,
    snapshot_entries: u64,
    data_dir: PathBuf,
    rt: RefCell<Runtime>,
}

struct Runtime {
    committer: Committer,
    /// The recovered storage, until `on_start` hands it to the server.
    recovered: Option<HardState>,
    /// Messages waiting for their records to be durable.
    outbox: Outbox,
    /// The syncer's socket: a datagram from it means "more is durable".
    wake: Id,
    /// Dropped datagrams since start, by reason.
    drops: Drops,
    /// Keeps logging about dropped datagrams to a few lines a minute, whatever arrives.
    drop_log: DropLog,
    /// The InstallSnapshot being received in chunks.
    reassembly: Reassembly,
    /// The JSON of the last snapshot sent, while the leader keeps sending it.
    sent_snapshot: Option<(LogId, Arc<Vec<u8>>)>,
    /// Per follower: the snapshot being sent to it and the chunk its next window starts at.
    snapshot_cursor: BTreeMap<Id, (LogId, usize)>,
    /// Followers that lost their log, and whether this node did.
    lost: LostLogs,
    replayer: Replayer,
    /// The index a compaction's replay in progress runs through.
    replaying: Option<Index>,
}

/// Replays the entries a compaction covers on a thread of its own: 10,000 of them take
/// milliseconds, during which the node's thread would handle nothing. The log is handed over
/// as a copy (cheap: its entries are shared), and the state comes back with a wake-up.
struct Replayer {
    jobs: mpsc::Sender<(Log, Index)>,
    done: Arc<Mutex<Option<(Index, KvStore)>>>,
}

impl Replayer {
    /// Starts the thread; its wake-ups go from `wake` (the syncer's socket) to `target`.
    fn start(wake: UdpSocket, target: SocketAddrV4) -> std::io::Result<Self> {
        let (jobs, received) = mpsc::channel::<(Log, Index)>();
        let done = Arc::new(Mutex::new(None));
        let out = Arc::clone(&done);
        std::thread::Builder::new()
            .name(format!("replay {target}"))
            .spawn(move || {
                for (log, through) in received {
                    let started = Instant::now();
                    let state = log.replay_through(through);
                    log::info!(
                        "{target}: replayed {} entries for a snapshot through index {through} \
                         in {} ms",
                        through - log.snapshot_index(),
                        started.elapsed().as_millis()
                    );
                    *out.lock().unwrap_or_else(|e| e.into_inner()) = Some((through, state));
                    if let Err(e) = wake.send_to(commit::WAKE_UP, target) {
                        log::debug!("wake-up to {target} failed: {e}");
                    }
                }
            })?;
        Ok(Self { jobs, done })
    }
}

/// Recovers a node's storage, starts its syncer and builds its actor. A port already in use
/// or a store that cannot be read is an error here, before anything listens.
pub fn prepare(cfg: &NodeConfig) -> Result<(Node, Arc<Shared>), NodeError> {
    cfg.validate()?;
    let addr = cfg.addr();
    drop(UdpSocket::bind(addr).map_err(|source| match source.kind() {
        std::io::ErrorKind::AddrInUse => NodeError::PortInUse { addr },
        _ => NodeError::Listen { addr, source },
    })?);
    let opened = wal::open(&cfg.data_dir, addr)?;
    if let Some((bytes, at, path)) = &opened.repaired {
        log::warn!(
            "{addr}: cut a torn tail of {bytes} bytes at byte {at} of {}",
            path.display()
        );
    }
    let local = if addr.ip().is_unspecified() {
        Ipv4Addr::LOCALHOST
    } else {
        *addr.ip()
    };
    let io = |what| move |source| NodeError::Io { what, source };
    let wake =
        UdpSocket::bind(SocketAddrV4::new(local, 0)).map_err(io("open the wake-up socket"))?;
    let wake_id = match wake
        .local_addr()
        .map_err(io("read the wake-up socket's address"))?
    {
        SocketAddr::V4(a) => Id::from(a),
        SocketAddr::V6(a) => unreachable!("bound to an IPv4 address, got {a}"),
    };
    let target = SocketAddrV4::new(local, addr.port());
    let store = commit::Store {
        dir: cfg.data_dir.clone(),
        node: addr,
    };
    let snapshot_on_disk = opened.storage.log.snapshot().last;
    let replayer = Replayer::start(
        wake.try_clone().map_err(io("open the wake-up socket"))?,
        target,
    )
    .map_err(io("start the replay thread"))?;
    let shared = commit::start(
        store,
        opened.files,
        snapshot_on_disk,
        wake,
        target,
        cfg.power_loss,
    )
    .map_err(io("start the storage threads"))?;
    log::info!(
        "{addr}: recovered term {}, {} log entries from {} records",
        opened.storage.current_term,
        opened.storage.log.len(),
        opened.records
    );
    let lost = LostLogs::open(&cfg.data_dir);
    if let Some(acknowledged) = lost.own {
        log::error!(
            "{addr}: this node lost the log it had acknowledged through index {acknowledged} \
             ({} says so): it neither votes nor acknowledges until it is replaced (remove it, \
             wipe {}, start it with --join, add it back)",
            cfg.data_dir.join(super::lost::MARKER_FILE).display(),
            cfg.data_dir.display()
        );
    }
    if cfg.auth.is_insecure() {
        log::warn!(
            "{addr}: running --insecure: datagrams carry no MAC, and this node believes any \
             datagram from anyone who can send to it (a forged source address included)"
        );
    }
    let node = Node {
        server: cfg.server(),
        addr,
        seeds: cfg.peers.iter().map(|&a| Id::from(a)).collect(),
        auth: cfg.auth.clone(),
        snapshot_entries: cfg.snapshot_entries,
        data_dir: cfg.data_dir.clone(),
        rt: RefCell::new(Runtime {
            committer: Committer::new(shared.clone(), &opened.storage, addr),
            recovered: Some(opened.storage),
            outbox: Outbox::default(),
            wake: wake_id,
            drops: Drops::default(),
            drop_log: DropLog::new(),
            reassembly: Reassembly::default(),
            sent_snapshot: None,
            snapshot_cursor: BTreeMap::new(),
            lost,
            replayer,
            replaying: None,
        }),
    };
    Ok((node, shared))
}

/// Runs the given servers in this process until a signal stops it. `ready` runs once every
/// server's port and store have been checked, just before they start serving (so that a
/// banner never precedes an error such as a port in use).
pub fn run(cfgs: &[NodeConfig], ready: impl FnOnce()) -> Result<(), NodeError> {
    let mut actors = Vec::new();
    let mut shared = Vec::new();
    for cfg in cfgs {
        let (node, s) = prepare(cfg)?;
        actors.push((cfg.addr(), node));
        shared.push(s);
    }
    ctrlc::set_handler(move || {
        // Let a write in progress finish, keep new ones from starting, then go.
        let _quiet: Vec<_> = shared.iter().map(|s| s.quiesce()).collect();
        log::info!("stopping on signal");
        std::process::exit(0);
    })
    .map_err(|e| NodeError::Io {
        what: "install the signal handler",
        source: std::io::Error::other(e),
    })?;
    ready();
    stateright::actor::spawn(
        |datagram: &Datagram| Ok(datagram.0.clone()),
        |bytes| Ok(Datagram(bytes.to_vec())),
        |()| serde_json::to_vec(&()),
        |bytes| serde_json::from_slice(bytes),
        actors,
    )
    .map_err(|panic| {
        let text = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        NodeError::Stopped(text)
    })
}

impl Runtime {
    /// Sends every held message whose records are now durable.
    fn release(&mut self, node: &Node, o: &mut Out<Node>) {
        self.committer.refresh();
        for (to, msg) in self.outbox.release(&self.committer) {
            self.send(node, o, to, &msg);
        }
    }

    /// Encodes and authenticates one message; an answer to a status request carries the drop
    /// counters too, and an InstallSnapshot goes in chunks.
    fn send(&mut self, node: &Node, o: &mut Out<Node>, to: Id, msg: &Msg) {
        let dst = SocketAddrV4::from(to);
        let sealed = match msg {
            Msg::InstallSnapshot {
                term,
                leader_id,
                snapshot,
            } => {
                let json = match &self.sent_snapshot {
                    Some((last, json)) if *last == snapshot.last => Arc::clone(json),
                    _ => {
                        let json = Arc::new(chunks::encode(snapshot));
                        self.sent_snapshot = Some((snapshot.last, Arc::clone(&json)));
                        json
                    }
                };
                let pieces = chunks::split(*term, *leader_id, snapshot.last, &json);
                // A window of chunks per sending, the next window the next time: a burst of a
                // whole snapshot would overflow the receiver's socket buffer, and lose the
                // same chunks every time.
                let cursor = match self.snapshot_cursor.get(&to) {
                    Some(&(last, next)) if last == snapshot.last => next,
                    _ => 0,
                };
                let (picked, next) = chunks::window(cursor, pieces.len());
                self.snapshot_cursor.insert(to, (snapshot.last, next));
                log::debug!(
                    "{}: sending chunks {picked:?} of {} of a snapshot through index {} to {dst}",
                    node.addr,
                    pieces.len(),
                    snapshot.last.index,
                );
                for k in picked {
                    let chunk = wire::chunk_message(&pieces[k]);
                    match wire::seal(&node.auth, node.addr, dst, &chunk) {
                        Ok(bytes) => o.send(to, Datagram(bytes)),
                        Err(e) => log::warn!("{}: cannot send to {dst}: {e}", node.addr),
                    }
                }
                return;
            }
            Msg::StatusResponse(status) => {
                let answer = wire::status_response(status.clone(), self.drops, &self.lost);
                wire::seal(&node.auth, node.addr, dst, &answer)
            }
            _ => wire::seal(&node.auth, node.addr, dst, msg),
        };
        match sealed {
            Ok(bytes) => o.send(to, Datagram(bytes)),
            Err(e) => log::warn!("{}: cannot send to {dst}: {e}", node.addr),
        }
    }

    /// Carries out the server's effects: saves to the log, messages through the outbox,
    /// timers at once, refusals to the log.
    fn forward(
        &mut self,
        node: &Node,
        effects: Vec<Effect>,
        state: &ServerState,
        o: &mut Out<Node>,
    ) {
        self.release(node, o);
        let term_vote = (state.current_term(), state.hard.voted_for);
        let mut now = Vec::new();
        for effect in effects {
            match effect {
                Effect::Save => self.committer.save(&state.hard),
                Effect::Send(to, msg, needs) => {
                    let c = &self.committer;
                    self.outbox.send(c, term_vote, to, msg, needs, &mut now)
                }
                Effect::SetTimer(timer) => o.set_timer(timer, node.server.timer_range(timer)),
                Effect::CancelTimer(timer) => o.cancel_timer(timer),
                Effect::Refused(Refusal::FollowerLostEntries {
                    follower,
                    holds,
                    acknowledged,
                }) => self.follower_behind(node, o, follower, holds, acknowledged),
                Effect::Refused(why) => log::warn!("{}: refused: {why}", node.addr),
            }
        }
        for (to, msg) in now {
            self.send(node, o, to, &msg);
        }
    }

    /// As a leader: `follower` answered a heartbeat holding `holds` entries, fewer than the
    /// `acknowledged` it had acknowledged. Heartbeats answered so in a row mean a lost disk:
    /// say so once, loudly, and tell the follower at every such answer (a datagram may be lost).
    fn follower_behind(
        &mut self,
        node: &Node,
        o: &mut Out<Node>,
        follower: Id,
        holds: Index,
        acknowledged: Index,
    ) {
        let dst = SocketAddrV4::from(follower);
        let known = self.lost.followers.contains_key(&follower);
        if !self.lost.answered_behind(follower, acknowledged) {
            log::warn!(
                "{}: {dst} holds {holds} entries but acknowledged through index {acknowledged} \
                 (a stale answer, or a lost disk)",
                node.addr
            );
            return;
        }
        if !known {
            log::error!(
                "{}: {dst} LOST ITS LOG: it acknowledged through index {acknowledged} and now \
                 holds {holds} entries (its disk was wiped or its log cut). It no longer votes or \
                 counts toward commit; replace it: remove-server, wipe its data directory, start \
                 it with --join, add-server",
                node.addr
            );
        }
        match wire::seal(
            &node.auth,
            node.addr,
            dst,
            &wire::lost_log_message(acknowledged),
        ) {
            Ok(bytes) => o.send(follower, Datagram(bytes)),
            Err(e) => log::warn!("{}: cannot send to {dst}: {e}", node.addr),
        }
    }

    /// Counts and logs a dropped datagram.
    fn dropped(
        &mut self,
        node: &Node,
        state: &ServerState,
        from: SocketAddrV4,
        why: Rejected,
        len: usize,
    ) {
        self.drops.count(why);
        let peer = node.knows(state, Id::from(from));
        let _logged = self
            .drop_log
            .note(node.addr, from, peer, why, len, Instant::now());
    }
}

/// Logging of dropped datagrams that a flood cannot turn into a flood of lines: each drop at
/// `debug`; at `warn`, a peer whose datagrams fail authentication (a wrong key, or one side
/// `--insecure`) at most once a minute per peer; and every other drop in a summary of at most
/// one line a minute (`warn` if it includes authentication failures, `info` otherwise).
struct DropLog {
    /// Per peer: when it was last warned about, and failures since.
    peers: Vec<(SocketAddrV4, Option<Instant>, u64)>,
    /// Drops since the last summary, and when that was.
    since_summary: Drops,
    summarised: Instant,
    /// Whether anything has been summarised yet (the first drop is reported at once).
    started: bool,
}

const DROP_LOG_EVERY: Duration = Duration::from_secs(60);

impl DropLog {
    fn new() -> Self {
        Self {
            peers: Vec::new(),
            since_summary: Drops::default(),
            summarised: Instant::now(),
            started: false,
        }
    }

    /// Logs one drop; returns whether that took a line above `debug`.
    fn note(
        &mut self,
        me: SocketAddrV4,
        from: SocketAddrV4,
        peer: bool,
        why: Rejected,
        len: usize,
        now: Instant,
    ) -> bool {
        log::debug!("{me}: dropped a datagram of {len} bytes from {from}: it {why}");
        if let (true, Rejected::BadMac(mac)) = (peer, why) {
            return self.peer_fails(me, from, mac, now);
        }
        self.since_summary.count(why);
        if self.started && now.duration_since(self.summarised) < DROP_LOG_EVERY {
            return false;
        }
        let d = std::mem::take(&mut self.since_summary);
        let level = if d.bad_mac > 0 {
            log::Level::Warn
        } else {
            log::Level::Info
        };
        let window = if self.started {
            format!(
                "in the last {} s",
                now.duration_since(self.summarised).as_secs()
            )
        } else {
            "so far".to_string()
        };
        log::log!(
            level,
            "{me}: dropped {} datagram(s) {window} (junk {}, oversized {}, unknown_sender {}, \
             bad_mac {}); the next summary in a minute at the soonest",
            d.total(),
            d.junk,
            d.oversized,
            d.unknown_sender,
            d.bad_mac
        );
        self.summarised = now;
        self.started = true;
        true
    }

    fn peer_fails(
        &mut self,
        me: SocketAddrV4,
        from: SocketAddrV4,
        mac: MacError,
        now: Instant,
    ) -> bool {
        let i = match self.peers.iter().position(|p| p.0 == from) {
            Some(i) => i,
            None => {
                self.peers.push((from, None, 0));
                self.peers.len() - 1
            }
        };
        let (_, last, count) = &mut self.peers[i];
        *count += 1;
        if last.is_some_and(|t| now.duration_since(t) < DROP_LOG_EVERY) {
            return false;
        }
        let guess = match mac {
            MacError::Wrong => "wrong cluster key?",
            MacError::Missing => "does that node run --insecure?",
            MacError::Unexpected => "every node needs the same key, or all of them --insecure",
        };
        log::warn!(
            "{me}: datagrams from peer {from} fail authentication ({count} dropped; it {mac}): \
             {guess}"
        );
        *last = Some(now);
        *count = 0;
        true
    }
}

impl Node {
    /// Whether `id` is a known sender of peer messages: a member of the configuration this
    /// server uses (voter or learner, however late it was added), or one of `--peers` /
    /// `--join`.
    fn knows(&self, state: &ServerState, id: Id) -> bool {
        state.membership.contains(id) || self.seeds.contains(&id)
    }

    /// What a datagram from `from` carries, if it is authentic, decodes, and (for a peer
    /// message) comes from a known sender.
    fn accept(
        &self,
        state: &ServerState,
        from: SocketAddrV4,
        datagram: &[u8],
    ) -> Result<Incoming, Rejected> {
        let incoming = wire::open_incoming(&self.auth, from, self.addr, datagram)?;
        let from_peer = match &incoming {
            Incoming::Msg(msg) => msg.term().is_some(),
            Incoming::Chunk(_) | Incoming::LostLog { .. } => true,
            Incoming::SnapshotRequest => false,
        };
        if from_peer && !self.knows(state, Id::from(from)) {
            return Err(Rejected::UnknownSender);
        }
        Ok(incoming)
    }

    /// Compacts the log (§7) once `--snapshot-entries` applied entries follow the snapshot,
    /// through all but a tenth of them, which stay for followers a little behind. The replay
    /// of the entries runs on the replay thread; the compaction happens when it is back.
    fn maybe_compact(
        &self,
        rt: &mut Runtime,
        id: Id,
        state: &mut Cow<ServerState>,
        o: &mut Out<Self>,
    ) {
        let replayed = rt
            .replayer
            .done
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some((through, kv)) = replayed {
            rt.replaying = None;
            // A snapshot asked for by hand, or installed, may have gone past it meanwhile.
            if through > state.log().snapshot_index() {
                let started = Instant::now();
                let input = Input::CompactWith { through, state: kv };
                let effects = self.server.step(id, state, input);
                log::info!(
                    "{}: compacted the log through index {through} in {} ms",
                    self.addr,
                    started.elapsed().as_millis()
                );
                rt.forward(self, effects, state, o);
            }
        }
        let every = self.snapshot_entries;
        let trail = every / 10;
        let applied = state.commit_index;
        if every > 0
            && rt.replaying.is_none()
            && applied >= state.log().snapshot_index() + every + trail
        {
            let through = applied - trail;
            if rt
                .replayer
                .jobs
                .send((state.log().clone(), through))
                .is_ok()
            {
                rt.replaying = Some(through);
            }
        }
    }

    fn compact(
        &self,
        rt: &mut Runtime,
        id: Id,
        state: &mut Cow<ServerState>,
        o: &mut Out<Self>,
        through: Index,
    ) {
        let started = Instant::now();
        let effects = self.server.step(id, state, Input::Compact(through));
        log::info!(
            "{}: compacted the log through index {through} in {} ms",
            self.addr,
            started.elapsed().as_millis()
        );
        rt.forward(self, effects, state, o);
    }

    /// Tells the server how far its log has become durable, if further than it knows (a
    /// leader counts its own copy toward commit only that far).
    fn report_synced(
        &self,
        rt: &mut Runtime,
        id: Id,
        state: &mut Cow<ServerState>,
        o: &mut Out<Self>,
    ) {
        let log_through = rt.committer.durable_prefix();
        if log_through > state.log_synced {
            let effects = self.server.step(id, state, Input::Synced { log_through });
            rt.forward(self, effects, state, o);
        }
    }

    /// A leader says this node lost the log it acknowledged through `acknowledged`. True only
    /// if the log is indeed shorter; then the node records it and takes no further part.
    fn told_lost_log(
        &self,
        rt: &mut Runtime,
        state: &ServerState,
        leader: SocketAddrV4,
        acknowledged: Index,
    ) {
        let holds = state.log().last_index();
        if holds >= acknowledged {
            log::debug!(
                "{}: {leader} says this node lost its log, but it holds {holds} entries",
                self.addr
            );
            return;
        }
        match rt.lost.mark_own(&self.data_dir, acknowledged, leader) {
            Ok(false) => {}
            Ok(true) => log::error!(
                "{}: THIS NODE LOST ITS LOG: {leader} says it acknowledged through index \
                 {acknowledged}, and it holds {holds} entries. It neither votes nor acknowledges \
                 from now on, across restarts; replace it: remove-server, wipe {}, start it with \
                 --join, add-server",
                self.addr,
                self.data_dir.display()
            ),
            Err(e) => log::error!(
                "{}: lost its log (acknowledged through {acknowledged}, holds {holds}), and \
                 cannot record it in {}: {e}",
                self.addr,
                self.data_dir.display()
            ),
        }
    }

    fn log_transition(&self, id: Id, before: Standing, state: &ServerState) {
        let after = Standing::of(id, state);
        if (after.role, after.term) != (before.role, before.term) {
            log::info!("{}: {} in term {}", self.addr, after.role, after.term);
        }
        let me = self.addr;
        if after.membership_index != before.membership_index {
            let list = |ids: &std::collections::BTreeSet<Id>| {
                let addrs: Vec<String> = ids
                    .iter()
                    .map(|&i| SocketAddrV4::from(i).to_string())
                    .collect();
                addrs.join(",")
            };
            let m = &state.membership;
            log::info!(
                "{me}: configuration of index {}: voters [{}], learners [{}]",
                after.membership_index,
                list(&m.voters),
                list(&m.learners)
            );
            let role = |voter: bool| if voter { "a voter" } else { "a learner" };
            match (before.member, m.contains(id)) {
                (true, false) => log::warn!(
                    "{me}: removed from the configuration (index {}): this server no longer \
                     campaigns; stop it, or add it back",
                    after.membership_index
                ),
                (false, true) => log::info!(
                    "{me}: added to the configuration (index {}) as {}",
                    after.membership_index,
                    role(m.is_voter(id))
                ),
                (true, true) if before.voter != m.is_voter(id) => log::info!(
                    "{me}: now {} (configuration of index {})",
                    role(m.is_voter(id)),
                    after.membership_index
                ),
                _ => {}
            }
        }
        if before.role == "Leader" && after.role != "Leader" && !state.membership.is_voter(id) {
            log::warn!(
                "{me}: stepped down: the configuration that removed this server (index {}) has \
                 committed",
                after.membership_index
            );
        }
    }
}

/// A server's standing, which [`Node::log_transition`] compares before and after an event:
/// role, term and configuration.
struct Standing {
    role: &'static str,
    term: u64,
    membership_index: Index,
    member: bool,
    voter: bool,
}

impl Standing {
    fn of(id: Id, state: &ServerState) -> Self {
        Self {
            role: state.role.name(),
            term: state.current_term(),
            membership_index: state.membership_index,
            member: state.membership.contains(id),
            voter: state.membership.is_voter(id),
        }
    }
}

impl Actor for Node {
    type Msg = Datagram;
    type State = ServerState;
    type Timer = Timer;
    type Random = ();
    type Storage = ();

    fn name(&self) -> String {
        format!("raftright node {}", self.addr)
    }

    fn on_start(&self, id: Id, _spawn_storage: &Option<()>, o: &mut Out<Self>) -> ServerState {
        let mut rt = self.rt.borrow_mut();
        let recovered = rt.recovered.take();
        let (state, effects) = self.server.start(recovered.as_ref());
        if !state.membership.contains(id) {
            log::warn!(
                "{me}: not a member of the configuration it holds (index {}): it waits to be \
                 added (client add-server {me} --learner)",
                state.membership_index,
                me = self.addr
            );
        }
        rt.forward(self, effects, &state, o);
        state
    }

    fn on_msg(
        &self,
        id: Id,
        state: &mut Cow<ServerState>,
        src: Id,
        datagram: Datagram,
        o: &mut Out<Self>,
    ) {
        let mut rt = self.rt.borrow_mut();
        if src == rt.wake {
            rt.release(self, o);
            self.maybe_compact(&mut rt, id, state, o);
            return self.report_synced(&mut rt, id, state, o);
        }
        let from = SocketAddrV4::from(src);
        let incoming = self.accept(state, from, &datagram.0);
        let msg = match incoming {
            Ok(Incoming::Msg(msg)) => msg,
            Ok(Incoming::Chunk(chunk)) => match rt.reassembly.accept(chunk) {
                Outcome::Complete(msg) => {
                    if let Msg::InstallSnapshot { snapshot, .. } = &msg {
                        log::info!(
                            "{}: received a snapshot through index {} from {from}",
                            self.addr,
                            snapshot.last.index
                        );
                    }
                    msg
                }
                Outcome::Pending | Outcome::Stale => {
                    rt.release(self, o);
                    return self.report_synced(&mut rt, id, state, o);
                }
                Outcome::Bad(why) => {
                    log::debug!("{}: dropped a snapshot chunk from {from}: {why}", self.addr);
                    rt.dropped(self, state, from, Rejected::Junk, datagram.0.len());
                    rt.release(self, o);
                    return self.report_synced(&mut rt, id, state, o);
                }
            },
            Ok(Incoming::LostLog { acknowledged }) => {
                self.told_lost_log(&mut rt, state, from, acknowledged);
                rt.release(self, o);
                return self.report_synced(&mut rt, id, state, o);
            }
            Ok(Incoming::SnapshotRequest) => {
                let applied = state.commit_index;
                if applied > state.log().snapshot_index() {
                    self.compact(&mut rt, id, state, o, applied);
                }
                // The answer is the status, which shows the snapshot.
                Msg::StatusRequest
            }
            Err(why) => {
                rt.dropped(self, state, from, why, datagram.0.len());
                rt.release(self, o);
                return self.report_synced(&mut rt, id, state, o);
            }
        };
        if rt.lost.own.is_some() && msg.term().is_some() {
            // A node that lost its log takes no part: no vote, no acknowledgement.
            log::debug!("{}: lost its log; ignored a message from {from}", self.addr);
            rt.release(self, o);
            return self.report_synced(&mut rt, id, state, o);
        }
        if let Msg::AppendEntriesResponse { success: true, .. } = msg {
            rt.lost.answered(src);
        }
        let before = Standing::of(id, state);
        let effects = self.server.step(id, state, Input::Msg(src, msg));
        rt.forward(self, effects, state, o);
        self.maybe_compact(&mut rt, id, state, o);
        self.report_synced(&mut rt, id, state, o);
        self.log_transition(id, before, state);
    }

    fn on_timeout(&self, id: Id, state: &mut Cow<ServerState>, timer: &Timer, o: &mut Out<Self>) {
        let mut rt = self.rt.borrow_mut();
        if rt.lost.own.is_some() {
            return; // no campaign from a node that lost its log
        }
        let before = Standing::of(id, state);
        let effects = self.server.step(id, state, Input::Timeout(*timer));
        rt.forward(self, effects, state, o);
        self.maybe_compact(&mut rt, id, state, o);
        self.report_synced(&mut rt, id, state, o);
        self.log_transition(id, before, state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_drops_takes_a_few_lines_a_minute() {
        let at = |port| SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        let (me, peer, stranger) = (at(1), at(2), at(3));
        let mut log = DropLog::new();
        let start = Instant::now();
        let mut lines = 0;
        for i in 0..10_000u64 {
            let now = start + Duration::from_millis(i); // 10 s of drops
            let bad = Rejected::BadMac(MacError::Wrong);
            lines += log.note(me, peer, true, bad, 100, now) as u32;
            lines += log.note(me, stranger, false, bad, 100, now) as u32;
            lines += log.note(me, stranger, false, Rejected::Junk, 100, now) as u32;
        }
        assert_eq!(lines, 2, "one warning about the peer, one summary");
        let later = start + Duration::from_secs(71);
        let bad = Rejected::BadMac(MacError::Wrong);
        assert!(log.note(me, peer, true, bad, 100, later));
        assert!(log.note(me, stranger, false, Rejected::Junk, 100, later));
        assert!(!log.note(me, stranger, false, Rejected::Junk, 100, later));
    }
}
