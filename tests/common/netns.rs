//! A cluster of real `raftright node` processes, each in its own network namespace, and a
//! nemesis that cuts links between them with nftables.
//!
//! Topology: node i runs in namespace `rr<pid>-<k>-n<i>` (k numbers the clusters of this test
//! process) with address 10.A.B.(i+1)/24 on a veth whose other end is a port of the bridge
//! `rb<pid>k<k>`; the bridge has 10.A.B.254, so the test process reaches every node from the
//! root namespace. The /24 is chosen under a file lock so that no two clusters on the machine
//! share one.
//!
//! Faults: each namespace has a table `inet raftright_nemesis` whose input chain jumps to a
//! `faults` chain. A fault is a set of dropped directed links (from, to) plus a loss
//! percentage; every change rewrites each namespace's `faults` chain in one `nft -f` run.
//! Every drop happens at the receiver's input hook, matched on the sender's address:
//! - a sender never sees an error, as on a real network (an output drop would make `sendto`
//!   fail with EPERM);
//! - only peer addresses are matched, so clients (from the bridge address) always reach every
//!   node, also an isolated one: a request to an isolated leader goes unanswered and the
//!   client moves on after its attempt timeout, which is how clients find the majority side;
//!   to confine a client to one side, give it only that side's addresses.
//! - ARP is not IP, so it is never dropped, and a healed link works at once.
//!
//! Everything is removed on drop, also after a panic: node processes (which also die with the
//! test thread, by PR_SET_PDEATHSIG), namespaces (their tables go with them), veths, bridge.
//! After a test process was killed outright, `ip netns list | grep ^rr` and
//! `ip link | grep ' r[bv]'` show what is left; `ip netns del NAME` / `ip link del NAME`.

#![allow(dead_code)]

use crate::common::{BIN, eventually};
use raftright::raft::Status;
use raftright::runtime::auth::{Auth, ClusterKey};
use raftright::runtime::client::Client;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const TABLE: &str = "raftright_nemesis";
const NODE_PORT: u16 = 7000;

static NEXT_CLUSTER: AtomicUsize = AtomicUsize::new(0);

/// Why these tests cannot run here, if they cannot.
pub fn unavailable() -> Option<String> {
    if std::env::var("RAFTRIGHT_SKIP_NEMESIS").is_ok_and(|v| !v.is_empty() && v != "0") {
        return Some("RAFTRIGHT_SKIP_NEMESIS is set".into());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root".into());
    }
    for (tool, arg) in [("ip", "-V"), ("nft", "--version")] {
        let works = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !works {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    // Root in a container may still lack the right to make namespaces: try one.
    static PROBES: AtomicUsize = AtomicUsize::new(0);
    let n = PROBES.fetch_add(1, Ordering::Relaxed);
    let probe = format!("raftright-probe-{}-{n}", std::process::id());
    let made = Command::new("ip")
        .args(["netns", "add", &probe])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        return Some("`ip netns add` is not permitted here".into());
    }
    let _ = Command::new("ip")
        .args(["netns", "delete", &probe])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    None
}

/// Prints a SKIPPED line and returns true when the nemesis cannot run here.
pub fn skip(test: &str) -> bool {
    match unavailable() {
        Some(reason) => {
            say(&format!(
                "SKIPPED: nemesis {test}: {reason}; it needs root, iproute2 and nftables"
            ));
            true
        }
        None => false,
    }
}

/// Writes to the real stderr, past the test harness's capture: skips and measured figures
/// are for whoever runs the tests, also when the test passes.
pub fn say(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(format!("{text}\n").as_bytes());
}

/// Runs a setup or teardown command; `Err` with its stderr when it fails.
fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot feed {program}: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(program: &str, args: &[&str]) {
    run(program, args, None).unwrap_or_else(|e| panic!("{e}"));
}

pub struct Options {
    pub nodes: usize,
    pub election_timeout_ms: u64,
    pub heartbeat_ms: u64,
    /// Added to every node's command line (for flags a node comes to require).
    pub node_args: Vec<String>,
}

impl Options {
    /// `nodes` nodes with the command line's default timings, and the node flags in
    /// `RAFTRIGHT_NEMESIS_NODE_ARGS` (space-separated; e.g. `--no-pre-vote --no-check-quorum`
    /// to see what the liveness checks catch without them).
    pub fn new(nodes: usize) -> Self {
        let node_args = std::env::var("RAFTRIGHT_NEMESIS_NODE_ARGS")
            .map(|v| v.split_whitespace().map(String::from).collect())
            .unwrap_or_default();
        Self {
            nodes,
            election_timeout_ms: 300,
            heartbeat_ms: 100,
            node_args,
        }
    }
}

/// The faults in force: directed links whose datagrams are dropped, and random loss on every
/// peer link. Faults add up until [`NetCluster::heal`].
#[derive(Default)]
struct Faults {
    dropped: BTreeSet<(usize, usize)>,
    loss_percent: u8,
}

pub struct NetCluster {
    pub peers: Vec<SocketAddrV4>,
    pub options: Options,
    pub dir: tempfile::TempDir,
    /// The cluster key (`DIR/cluster.key`), which every node and client uses.
    pub auth: Auth,
    /// What exists so far, so that a half-built cluster is torn down too.
    namespaces: Vec<String>,
    veths: Vec<String>,
    bridge: Option<String>,
    nodes: Vec<Option<Child>>,
    faults: Faults,
}

impl NetCluster {
    pub fn start(options: Options) -> Self {
        let n = options.nodes;
        assert!((1..=250).contains(&n));
        let pid = std::process::id();
        let k = NEXT_CLUSTER.fetch_add(1, Ordering::SeqCst);
        let dir = tempfile::tempdir().expect("temp dir");
        let key = ClusterKey::generate().expect("a random key");
        key.write_new(&dir.path().join("cluster.key"), false)
            .expect("write the cluster key");
        let mut cluster = Self {
            peers: Vec::new(),
            options,
            dir,
            auth: Auth::Key(key),
            namespaces: Vec::new(),
            veths: Vec::new(),
            bridge: None,
            nodes: (0..n).map(|_| None).collect(),
            faults: Faults::default(),
        };
        let bridge = format!("rb{pid}k{k}");
        assert!(bridge.len() <= 15, "interface name too long: {bridge}");
        let subnet = {
            let _lock = SetupLock::take();
            let subnet = free_subnet(pid as usize * 7 + k);
            must("ip", &["link", "add", &bridge, "type", "bridge"]);
            cluster.bridge = Some(bridge.clone());
            let bridge_addr = format!("{}.254/24", subnet_prefix(subnet));
            must("ip", &["addr", "add", &bridge_addr, "dev", &bridge]);
            subnet
        };
        must("ip", &["link", "set", &bridge, "up"]);
        for i in 0..n {
            let ns = format!("rr{pid}-{k}-n{i}");
            must("ip", &["netns", "add", &ns]);
            cluster.namespaces.push(ns.clone());
            let veth = format!("rv{pid}k{k}n{i}");
            assert!(veth.len() <= 15, "interface name too long: {veth}");
            must(
                "ip",
                &[
                    "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ],
            );
            cluster.veths.push(veth.clone());
            must("ip", &["link", "set", &veth, "master", &bridge, "up"]);
            let addr = Ipv4Addr::new(subnet[0], subnet[1], subnet[2], i as u8 + 1);
            must(
                "ip",
                &[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("{addr}/24"),
                    "dev",
                    "eth0",
                ],
            );
            must("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
            must("ip", &["-n", &ns, "link", "set", "lo", "up"]);
            cluster.nft(
                i,
                &format!(
                    "add table inet {TABLE}\n\
                     add chain inet {TABLE} input {{ type filter hook input priority filter; policy accept; }}\n\
                     add chain inet {TABLE} faults\n\
                     add rule inet {TABLE} input iif \"lo\" accept\n\
                     add rule inet {TABLE} input jump faults\n"
                ),
            );
            cluster.peers.push(SocketAddrV4::new(addr, NODE_PORT));
        }
        for i in 0..n {
            cluster.start_node(i);
        }
        cluster
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn all(&self) -> Vec<usize> {
        (0..self.len()).collect()
    }

    /// Every node but `i`.
    pub fn others(&self, i: usize) -> Vec<usize> {
        self.all().into_iter().filter(|&j| j != i).collect()
    }

    pub fn addrs(&self, nodes: &[usize]) -> Vec<SocketAddrV4> {
        nodes.iter().map(|&i| self.peers[i]).collect()
    }

    pub fn namespace(&self, i: usize) -> &str {
        &self.namespaces[i]
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node-{i}"))
    }

    pub fn log_file(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node-{i}.log"))
    }

    /// Node `i`'s command line: the one place where it is built.
    fn node_command(&self, i: usize) -> Command {
        let peers = self
            .peers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_file(i))
            .expect("node log file");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.namespace(i), BIN, "node"])
            .args(["--id", &i.to_string(), "--peers", &peers])
            .arg("--data-dir")
            .arg(self.data_dir(i))
            .args([
                "--election-timeout-ms",
                &self.options.election_timeout_ms.to_string(),
                "--heartbeat-ms",
                &self.options.heartbeat_ms.to_string(),
            ])
            .arg("--cluster-key-file")
            .arg(self.dir.path().join("cluster.key"))
            .args(&self.options.node_args)
            .env("RUST_LOG", "raftright=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe. `ip netns exec` execs the node in place, so
        // the node itself dies with the thread that started it, even if Drop never runs.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        cmd
    }

    pub fn start_node(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node {i} is running");
        self.nodes[i] = Some(self.node_command(i).spawn().expect("start a node"));
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether node `i` is still running.
    pub fn is_running(&mut self, i: usize) -> bool {
        match &mut self.nodes[i] {
            Some(child) => child.try_wait().expect("try_wait").is_none(),
            None => false,
        }
    }

    /// The last `lines` lines of node `i`'s stderr.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_file(i)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    // ---- observation, from the root namespace (client traffic is never dropped)

    /// Every node's status, `None` for one that did not answer.
    pub fn status(&self) -> Vec<Option<Status>> {
        let mut client = Client::new(
            self.peers.clone(),
            self.auth.clone(),
            Duration::from_secs(1),
        )
        .expect("socket");
        let answers = client.status(Duration::from_millis(500)).expect("status");
        answers
            .into_iter()
            .map(|a| a.map(|node| node.status))
            .collect()
    }

    /// The leader that every node in `among` answers to, in one term: (leader, term).
    pub fn leader_among(&self, among: &[usize]) -> Option<(usize, u64)> {
        let status = self.status();
        let &leader = among
            .iter()
            .filter(|&&i| status[i].as_ref().is_some_and(|s| s.role == "Leader"))
            .max_by_key(|&&i| status[i].as_ref().map(|s| s.term))?;
        let term = status[leader].as_ref()?.term;
        let addr = self.peers[leader];
        among
            .iter()
            .all(|&i| {
                status[i].as_ref().is_some_and(|s| {
                    s.term == term
                        && s.leader.map(SocketAddrV4::from) == Some(addr)
                        && (i == leader || s.role == "Follower")
                })
            })
            .then_some((leader, term))
    }

    /// Waits for a leader that all nodes follow.
    pub fn wait_for_leader(&self) -> (usize, u64) {
        eventually("a leader that every node follows", || {
            self.leader_among(&self.all())
        })
    }

    // ---- faults

    /// Node `i` exchanges nothing with any other node (clients still reach it).
    pub fn isolate(&mut self, i: usize) {
        for j in self.others(i) {
            self.faults.dropped.insert((i, j));
            self.faults.dropped.insert((j, i));
        }
        self.apply_faults();
    }

    /// Nodes talk only within their group; a node in no group talks to nobody.
    pub fn partition(&mut self, groups: &[&[usize]]) {
        let group_of = |i: usize| groups.iter().position(|g| g.contains(&i));
        for a in self.all() {
            for b in self.others(a) {
                if group_of(a).is_none() || group_of(a) != group_of(b) {
                    self.faults.dropped.insert((a, b));
                }
            }
        }
        self.apply_faults();
    }

    /// Node `i` receives nothing from its peers but still sends to them.
    pub fn one_way_deaf(&mut self, i: usize) {
        for j in self.others(i) {
            self.faults.dropped.insert((j, i));
        }
        self.apply_faults();
    }

    /// Node `i`'s messages to its peers are dropped; it still receives theirs.
    pub fn one_way_mute(&mut self, i: usize) {
        for j in self.others(i) {
            self.faults.dropped.insert((i, j));
        }
        self.apply_faults();
    }

    /// Drops what `from` sends to `to` (one direction).
    pub fn drop_link(&mut self, from: usize, to: usize) {
        assert_ne!(from, to);
        self.faults.dropped.insert((from, to));
        self.apply_faults();
    }

    /// Cuts the link between `a` and `b`, both ways.
    pub fn cut(&mut self, a: usize, b: usize) {
        assert_ne!(a, b);
        self.faults.dropped.insert((a, b));
        self.faults.dropped.insert((b, a));
        self.apply_faults();
    }

    /// A partial partition: node `i` exchanges messages with `reachable` only.
    pub fn reach_only(&mut self, i: usize, reachable: &[usize]) {
        for j in self.others(i) {
            if !reachable.contains(&j) {
                self.faults.dropped.insert((i, j));
                self.faults.dropped.insert((j, i));
            }
        }
        self.apply_faults();
    }

    /// A ring: node k exchanges messages only with k-1 and k+1 (mod n).
    pub fn ring(&mut self) {
        let n = self.len();
        for a in 0..n {
            for b in self.others(a) {
                if (b + 1) % n != a && (a + 1) % n != b {
                    self.faults.dropped.insert((a, b));
                }
            }
        }
        self.apply_faults();
    }

    /// Drops `percent`% of datagrams, at random, on every peer link (replaces earlier loss).
    pub fn loss(&mut self, percent: u8) {
        assert!(percent <= 100);
        self.faults.loss_percent = percent;
        self.apply_faults();
    }

    /// Removes every fault.
    pub fn heal(&mut self) {
        self.faults = Faults::default();
        self.apply_faults();
    }

    /// Whether `from`'s datagrams reach `to` (ignoring random loss).
    pub fn link_up(&self, from: usize, to: usize) -> bool {
        !self.faults.dropped.contains(&(from, to))
    }

    /// `answered[i][j]`: whether a status request sent from node i's namespace (so from its
    /// address, like its peer traffic) to node j is answered, which needs both directions.
    /// All probes run at once.
    pub fn round_trips(&self) -> Vec<Vec<bool>> {
        let n = self.len();
        let probes: Vec<(usize, usize, Child)> = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| {
                let child = Command::new("ip")
                    .args(["netns", "exec", self.namespace(i), BIN, "client"])
                    .args(["--peers", &self.peers[j].to_string()])
                    .arg("--cluster-key-file")
                    .arg(self.dir.path().join("cluster.key"))
                    .args(["--timeout-ms", "500", "status"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start a probe");
                (i, j, child)
            })
            .collect();
        let mut answered = vec![vec![true; n]; n];
        for (i, j, mut child) in probes {
            // `status` exits non-zero when no server answered.
            answered[i][j] = child.wait().expect("wait for a probe").success();
        }
        answered
    }

    fn apply_faults(&self) {
        for to in self.all() {
            let mut script = format!("flush chain inet {TABLE} faults\n");
            let blocked: Vec<String> = self
                .faults
                .dropped
                .iter()
                .filter(|&&(_, t)| t == to)
                .map(|&(from, _)| self.peers[from].ip().to_string())
                .collect();
            if !blocked.is_empty() {
                script += &format!(
                    "add rule inet {TABLE} faults ip saddr {{ {} }} drop\n",
                    blocked.join(", ")
                );
            }
            let loss = self.faults.loss_percent;
            if loss > 0 {
                let peers: Vec<String> = self
                    .others(to)
                    .iter()
                    .map(|&from| self.peers[from].ip().to_string())
                    .collect();
                // nft compares `mod 100` only with 0-99.
                let chance = if loss < 100 {
                    format!("numgen random mod 100 < {loss} ")
                } else {
                    String::new()
                };
                script += &format!(
                    "add rule inet {TABLE} faults ip saddr {{ {} }} {chance}drop\n",
                    peers.join(", ")
                );
            }
            self.nft(to, &script);
        }
    }

    /// Runs an nft script in node `i`'s namespace.
    fn nft(&self, i: usize, script: &str) {
        run(
            "ip",
            &["netns", "exec", self.namespace(i), "nft", "-f", "-"],
            Some(script),
        )
        .unwrap_or_else(|e| panic!("{e}\nscript:\n{script}"));
    }
}

impl Drop for NetCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.keep_logs();
        }
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        let mut problems = Vec::new();
        for ns in &self.namespaces {
            if let Err(e) = run("ip", &["netns", "del", ns], None) {
                problems.push(e);
            }
        }
        // A veth goes with its namespace; deleting one already gone is not a problem.
        for veth in &self.veths {
            let _ = run("ip", &["link", "del", veth], None);
        }
        if let Some(bridge) = &self.bridge
            && let Err(e) = run("ip", &["link", "del", bridge], None)
        {
            problems.push(e);
        }
        if !problems.is_empty() {
            say(&format!(
                "nemesis teardown left something behind:\n{}",
                problems.join("\n")
            ));
        }
    }
}

impl NetCluster {
    /// Copies the nodes' logs (role changes, with times) where they outlive a failed test:
    /// `target/tmp/nemesis-logs/<test>/`, replaced by the test's next failure.
    fn keep_logs(&self) {
        let test = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .replace("::", "-");
        let kept = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join("nemesis-logs")
            .join(test);
        let _ = std::fs::remove_dir_all(&kept);
        let _ = std::fs::create_dir_all(&kept);
        eprintln!("node logs kept in {}", kept.display());
        for i in 0..self.nodes.len() {
            let _ = std::fs::copy(self.log_file(i), kept.join(format!("node-{i}.log")));
            eprintln!(
                "---- node {i} ({}), last lines of its log:\n{}",
                self.peers.get(i).map(|a| a.to_string()).unwrap_or_default(),
                self.log_tail(i, 8)
            );
        }
    }
}

/// An exclusive lock across processes, held while a subnet is chosen and claimed.
struct SetupLock(File);

impl SetupLock {
    fn take() -> Self {
        let path = std::env::temp_dir().join("raftright-nemesis.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .expect("lock file");
        // SAFETY: flock on a descriptor this File owns; released when the File closes.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}", path.display());
        Self(file)
    }
}

fn subnet_prefix(subnet: [u8; 3]) -> String {
    format!("{}.{}.{}", subnet[0], subnet[1], subnet[2])
}

/// A 10.A.B.0/24 that no address or route of the root namespace uses, starting the search at
/// a place given by `seed`.
fn free_subnet(seed: usize) -> [u8; 3] {
    let taken = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().expect("run ip");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let in_use = taken(&["-4", "-o", "addr", "show"]) + &taken(&["-4", "route", "show"]);
    const CHOICES: usize = 64 * 256;
    (0..CHOICES)
        .map(|step| {
            let c = (seed + step) % CHOICES;
            [10, 64 + (c / 256) as u8, (c % 256) as u8]
        })
        .find(|&s| {
            let prefix = format!("{}.", subnet_prefix(s));
            !in_use
                .split_whitespace()
                .any(|word| word.starts_with(&prefix))
        })
        .expect("a free 10.x.y.0/24")
}
