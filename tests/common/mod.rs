//! A harness for cluster tests: real `raftright node` processes on free loopback ports, with
//! their data in a temporary directory; every process is killed when the harness is dropped.
//! Every node authenticates with the cluster key in `DIR/cluster.key` unless a test says
//! otherwise ([`NodeKey`]); the client helpers use that key too.
//! Tests poll for outcomes with generous deadlines and never assert how long anything took.

#![allow(dead_code)]

use raftright::raft::Status;
use raftright::runtime::auth::{Auth, ClusterKey};
use raftright::runtime::client::Client;
use raftright::runtime::wire::NodeStatus;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_raftright");

/// How long a test waits for an outcome before it fails: generous, because the machine may
/// be busy; a healthy cluster gets there far sooner.
pub const PATIENCE: Duration = Duration::from_secs(30);

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// `n` ports that are free now, below the ephemeral range (so that no client socket of this
/// machine takes one meanwhile), spread by process id across test processes.
pub fn free_ports(n: usize) -> Vec<SocketAddrV4> {
    let _ = NEXT_PORT.compare_exchange(
        0,
        20_000 + (std::process::id() % 600) as u16 * 20,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    let mut ports = Vec::new();
    while ports.len() < n {
        let mut port = NEXT_PORT.fetch_add(1, Ordering::SeqCst);
        if port >= 32_000 {
            NEXT_PORT.store(20_000, Ordering::SeqCst);
            port = 20_000;
        }
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        if UdpSocket::bind(addr).is_ok() {
            ports.push(addr);
        }
    }
    ports
}

/// Polls `f` until it returns `Some`, or panics with `what` after [`PATIENCE`].
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the id of a child this process started and has not reaped.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({}, {sig}) failed", child.id());
}

/// How a node authenticates.
#[derive(Clone, Debug)]
pub enum NodeKey {
    /// The cluster's key, `DIR/cluster.key`.
    Cluster,
    /// Another key file.
    File(PathBuf),
    /// `--insecure`.
    Insecure,
    /// Neither flag.
    Nothing,
}

/// Writes a fresh key to `path` and returns it.
pub fn make_key(path: &Path) -> Auth {
    let key = ClusterKey::generate().expect("a random key");
    key.write_new(path, false).expect("write the key");
    Auth::Key(key)
}

pub struct Cluster {
    pub peers: Vec<SocketAddrV4>,
    pub dir: tempfile::TempDir,
    nodes: Vec<Option<Child>>,
    node_args: Vec<String>,
    keys: Vec<NodeKey>,
    /// How many of `peers`, first, form the initial configuration (`--peers`).
    initial: usize,
    /// Per node: the members it is told to join (`--join`), for one started outside the
    /// initial configuration.
    joins: Vec<Option<Vec<SocketAddrV4>>>,
    /// The cluster's key, as in `DIR/cluster.key`: what the harness's own status requests and
    /// library clients use.
    pub auth: Auth,
}

impl Cluster {
    /// Starts `n` nodes with default timeouts.
    pub fn start(n: usize) -> Self {
        Self::start_with(n, &[])
    }

    /// Starts `n` nodes, each with `args` added to its command line.
    pub fn start_with(n: usize, args: &[&str]) -> Self {
        Self::start_keyed(n, args, |_| NodeKey::Cluster)
    }

    /// Starts `n` nodes, each with `args` added to its command line, node `i` authenticating
    /// as `key(i)` says.
    pub fn start_keyed(n: usize, args: &[&str], key: impl Fn(usize) -> NodeKey) -> Self {
        let mut cluster = Self::prepare(n, args, key);
        for i in 0..n {
            cluster.start_node(i);
        }
        cluster
    }

    /// A cluster of `n` nodes with a key, none of them started.
    pub fn prepare(n: usize, args: &[&str], key: impl Fn(usize) -> NodeKey) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let auth = make_key(&dir.path().join("cluster.key"));
        Self {
            peers: free_ports(n),
            dir,
            nodes: (0..n).map(|_| None).collect(),
            node_args: args.iter().map(|s| s.to_string()).collect(),
            keys: (0..n).map(key).collect(),
            initial: n,
            joins: vec![None; n],
            auth,
        }
    }

    /// A cluster of `n` addresses with a key, none of them started; only the first `initial`
    /// form the initial configuration (their `--peers`), the others start with `--join`
    /// ([`Cluster::join_with`]).
    pub fn prepare_growing(n: usize, initial: usize, args: &[&str]) -> Self {
        let mut cluster = Self::prepare(n, args, |_| NodeKey::Cluster);
        cluster.initial = initial;
        cluster
    }

    /// From now on node `i` starts with `--join` naming `members` (and `--addr`, its own).
    pub fn join_with(&mut self, i: usize, members: &[usize]) {
        self.joins[i] = Some(self.addrs(members));
    }

    /// The addresses of `nodes`.
    pub fn addrs(&self, nodes: &[usize]) -> Vec<SocketAddrV4> {
        nodes.iter().map(|&i| self.peers[i]).collect()
    }

    /// The cluster's key file.
    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("cluster.key")
    }

    pub fn peers_arg(&self) -> String {
        peers_arg(&self.peers)
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node-{i}"))
    }

    fn node_command(&self, i: usize) -> Command {
        let mut cmd = Command::new(BIN);
        match &self.joins[i] {
            Some(members) => cmd
                .args(["node", "--join", &peers_arg(members), "--addr"])
                .arg(self.peers[i].to_string()),
            None => cmd
                .args(["node", "--id", &i.to_string(), "--peers"])
                .arg(peers_arg(&self.peers[..self.initial])),
        };
        cmd.arg("--data-dir")
            .arg(self.data_dir(i))
            .args(&self.node_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match &self.keys[i] {
            NodeKey::Cluster => cmd.arg("--cluster-key-file").arg(self.key_file()),
            NodeKey::File(file) => cmd.arg("--cluster-key-file").arg(file),
            NodeKey::Insecure => cmd.arg("--insecure"),
            NodeKey::Nothing => &mut cmd,
        };
        cmd
    }

    /// Starts (or restarts) node `i` with its data directory as it is.
    pub fn start_node(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node {i} is running");
        let child = self.node_command(i).spawn().expect("start a node");
        self.nodes[i] = Some(child);
    }

    /// Node `i`'s log file, for nodes started with [`Cluster::start_node_logged`].
    pub fn log_file(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node-{i}.log"))
    }

    /// What node `i` has logged so far.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_file(i)).unwrap_or_default()
    }

    /// Starts (or restarts) node `i` with its stderr appended to [`Cluster::log_file`].
    pub fn start_node_logged(&mut self, i: usize, rust_log: &str) -> PathBuf {
        assert!(self.nodes[i].is_none(), "node {i} is running");
        let path = self.log_file(i);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("a log file");
        let child = self
            .node_command(i)
            .env("RUST_LOG", rust_log)
            .stderr(log)
            .spawn()
            .expect("start a node");
        self.nodes[i] = Some(child);
        path
    }

    /// Runs node `i` in the foreground, for a node expected to exit on its own.
    pub fn run_node_to_exit(&self, i: usize) -> Output {
        let mut cmd = self.node_command(i);
        cmd.stderr(Stdio::piped());
        let child = cmd.spawn().expect("start a node");
        wait_with_deadline(child)
    }

    pub fn child(&self, i: usize) -> &Child {
        self.nodes[i].as_ref().expect("node is running")
    }

    /// SIGKILL: the process dies at once, whatever it was doing.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn pause(&self, i: usize) {
        signal(self.child(i), libc::SIGSTOP);
    }

    pub fn resume(&self, i: usize) {
        signal(self.child(i), libc::SIGCONT);
    }

    /// Whether node `i`'s process is still running.
    pub fn is_running(&mut self, i: usize) -> bool {
        match &mut self.nodes[i] {
            Some(child) => child.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    pub fn take_child(&mut self, i: usize) -> Child {
        self.nodes[i].take().expect("node is running")
    }

    /// Every node's status, `None` for one that did not answer.
    pub fn status(&self) -> Vec<Option<Status>> {
        self.node_status()
            .into_iter()
            .map(|s| s.map(|s| s.status))
            .collect()
    }

    /// Every node's status with its drop counters, asked with the cluster's key.
    pub fn node_status(&self) -> Vec<Option<NodeStatus>> {
        status_with(&self.peers, &self.auth)
    }

    /// The single leader among `among` with the highest term, once the others that answer
    /// follow it in that term; returns (leader, term).
    pub fn leader_among(&self, among: &[usize]) -> Option<(usize, u64)> {
        let status = self.status();
        let leader = among
            .iter()
            .filter(|&&i| status[i].as_ref().is_some_and(|s| s.role == "Leader"))
            .max_by_key(|&&i| status[i].as_ref().map(|s| s.term))?;
        let term = status[*leader].as_ref()?.term;
        let addr = self.peers[*leader];
        let agreed = among.iter().all(|&i| match &status[i] {
            Some(s) => {
                s.term == term
                    && s.leader.map(SocketAddrV4::from) == Some(addr)
                    && (i == *leader || s.role == "Follower")
            }
            None => false,
        });
        agreed.then_some((*leader, term))
    }

    /// Waits until the nodes `among` agree on one leader; returns (leader, term).
    pub fn wait_for_leader(&self, among: &[usize]) -> (usize, u64) {
        eventually("a leader that the others follow", || {
            self.leader_among(among)
        })
    }

    pub fn all(&self) -> Vec<usize> {
        (0..self.peers.len()).collect()
    }

    /// `raftright client --peers ALL --cluster-key-file DIR/cluster.key <args>`.
    pub fn client(&self, args: &[&str]) -> Output {
        client(&self.peers, &self.key_file(), args)
    }

    /// A library client of the whole cluster, with the cluster's key.
    pub fn lib_client(&self, timeout: Duration) -> Client {
        Client::new(self.peers.clone(), self.auth.clone(), timeout).expect("client socket")
    }
}

/// Every node's status with its drop counters, asked with `auth`.
pub fn status_with(peers: &[SocketAddrV4], auth: &Auth) -> Vec<Option<NodeStatus>> {
    let mut client =
        Client::new(peers.to_vec(), auth.clone(), Duration::from_secs(1)).expect("client socket");
    client.status(Duration::from_millis(500)).expect("status")
}

/// The `--peers` argument: addresses joined by commas.
pub fn peers_arg(peers: &[SocketAddrV4]) -> String {
    peers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `raftright client --peers PEERS --cluster-key-file KEY <args>`.
pub fn client(peers: &[SocketAddrV4], key: &Path, args: &[&str]) -> Output {
    let list = peers_arg(peers);
    let child = Command::new(BIN)
        .args(["client", "--peers", &list, "--cluster-key-file"])
        .arg(key)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the client");
    wait_with_deadline(child)
}

/// Waits for a process that should exit by itself; kills it after [`PATIENCE`].
pub fn wait_with_deadline(mut child: Child) -> Output {
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a process did not exit within {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
