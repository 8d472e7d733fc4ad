//! `raftright bench`: committed puts per second and latency on a real loopback cluster.
//!
//! Starts `--servers` node processes of this same binary (fsync on, as always) on free ports
//! of 127.0.0.1, waits for a leader, then for each concurrency C drives C clients, each with
//! one put in flight (8-byte keys, 16-byte values by default, like etcd's baseline script),
//! and prints `raftright C=<c> puts/s=<x> p50_ms=<y> p99_ms=<z>` per run. With `--reads F` a
//! fraction F of the operations are gets, reported beside the puts; `--compare-log-reads`
//! starts a second cluster whose gets go through the log, and alternates runs between the two.
//!
//! The started cluster authenticates with a fresh key in its data directory (`--insecure`: none);
//! against `--peers`, the key is chosen as `raftright client` chooses it.

use super::{DEFAULT_DATA_DIR, KEY_FILE, KeyArgs};
use raftright::runtime::auth::{Auth, ClusterKey};
use raftright::runtime::loadgen::{self, LoadConfig, LoadReport};
use raftright::runtime::wire;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Concurrencies to run, comma-separated.
    #[arg(long, default_value = "1,16,64")]
    pub clients: String,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Unmeasured seconds of load before each run.
    #[arg(long, default_value_t = 1.0)]
    pub warmup_seconds: f64,
    /// Runs per concurrency; with more than one, the median run (by puts/s) is also printed.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Servers to start.
    #[arg(long, default_value_t = 3)]
    pub servers: usize,
    /// Measure an already running cluster instead of starting one.
    #[arg(long)]
    pub peers: Option<String>,
    /// Data directory of the started cluster (default: a temporary one, removed afterwards).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Bytes per key (decimal digits of a counter, so puts spread over many keys).
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 16)]
    pub value_size: usize,
    /// The fraction of operations that are gets of a key written before (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub reads: f64,
    /// The started cluster's gets go through the log (`node --log-reads`) instead of ReadIndex.
    #[arg(long, conflicts_with = "peers")]
    pub log_reads: bool,
    /// Start two clusters, one reading by ReadIndex and one through the log, and alternate
    /// runs between them (medians of each, and the ratio of gets/s).
    #[arg(long, conflicts_with_all = ["peers", "log_reads"])]
    pub compare_log_reads: bool,
    /// Keys are drawn from this many (a bounded key space, as a long run needs); default:
    /// every key new, up to 10^--key-size.
    #[arg(long, value_name = "N")]
    pub keys: Option<u64>,
    /// The started nodes' `--snapshot-entries` (default: the node's).
    #[arg(long, value_name = "N", conflicts_with = "peers")]
    pub snapshot_entries: Option<u64>,
    /// Soak: one run of this many seconds at the first of --clients over --keys (10,000 by
    /// default), sampling each node's RSS and data-directory size; writes
    /// --soak-out/soak.csv and soak.svg, then times a follower's restart.
    #[arg(long, value_name = "SECONDS", conflicts_with_all = ["peers", "compare_log_reads"])]
    pub soak: Option<f64>,
    /// Stop one follower for the whole soak and start it again at the end, when the entries it
    /// missed are long compacted: it has to catch up through InstallSnapshot.
    #[arg(long, requires = "soak")]
    pub soak_stop_follower: bool,
    /// Where the soak writes soak.csv and soak.svg.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub soak_out: PathBuf,
    /// Seconds between the soak's samples.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub sample_seconds: f64,
    /// With --peers: the cluster's key (default raftright-data/cluster.key). Without: the
    /// started cluster's key (default: a new one in its data directory).
    #[command(flatten)]
    pub key: KeyArgs,
}

/// The started node processes, killed when dropped, and the temporary directory, removed.
pub(super) struct Cluster {
    pub(super) children: Vec<Child>,
    temp: Option<PathBuf>,
    exe: PathBuf,
    /// Each node's command line, to start it again.
    node_args: Vec<Vec<std::ffi::OsString>>,
    /// Each node's data directory.
    pub(super) dirs: Vec<PathBuf>,
}

impl Cluster {
    fn spawn(&self, i: usize) -> Result<Child, String> {
        Command::new(&self.exe)
            .args(&self.node_args[i])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start a node: {e}"))
    }

    /// Kills node `i` (SIGKILL).
    pub(super) fn stop(&mut self, i: usize) {
        let _ = self.children[i].kill();
        let _ = self.children[i].wait();
    }

    /// Kills node `i` (SIGKILL) if it runs, and starts it again on its data directory.
    pub(super) fn restart(&mut self, i: usize) -> Result<(), String> {
        self.stop(i);
        self.children[i] = self.spawn(i)?;
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = &self.temp {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn free_ports(n: usize) -> Result<Vec<SocketAddrV4>, String> {
    let sockets = (0..n)
        .map(|_| UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot find free ports: {e}"))?;
    sockets
        .iter()
        .map(|s| match s.local_addr() {
            Ok(std::net::SocketAddr::V4(a)) => Ok(a),
            other => Err(format!("unexpected local address {other:?}")),
        })
        .collect()
}

pub(super) fn start_cluster(
    args: &BenchArgs,
    log_reads: bool,
) -> Result<(Vec<SocketAddrV4>, Auth, Cluster), super::CliError> {
    let (dir, temp) = match &args.data_dir {
        Some(d) => (d.clone(), None),
        None => {
            let name = format!(
                "raftright-bench-{}-{}",
                std::process::id(),
                rand::random::<u32>()
            );
            let t = std::env::temp_dir().join(name);
            (t.clone(), Some(t))
        }
    };
    // Two clusters compared side by side keep their data apart.
    let dir = match (args.compare_log_reads, log_reads) {
        (false, _) => dir,
        (true, false) => dir.join("read-index"),
        (true, true) => dir.join("log-reads"),
    };
    let peers = free_ports(args.servers)?;
    let list = peers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let mut cluster = Cluster {
        children: Vec::new(),
        temp,
        exe,
        node_args: Vec::new(),
        dirs: Vec::new(),
    };
    // Each node gets the same flag: --insecure, the given key, or one made in DIR.
    let (auth, key_args): (Auth, Vec<std::ffi::OsString>) = if args.key.insecure {
        (Auth::Insecure, vec!["--insecure".into()])
    } else {
        let path = match &args.key.cluster_key_file {
            Some(file) => file.clone(),
            None => dir.join(KEY_FILE),
        };
        let (key, _) = ClusterKey::load_or_create(&path)?;
        let flag = vec!["--cluster-key-file".into(), path.into_os_string()];
        (Auth::Key(key), flag)
    };
    for i in 0..args.servers {
        let data_dir = dir.join(format!("node-{i}"));
        let mut node_args: Vec<std::ffi::OsString> = ["node", "--id", &i.to_string(), "--peers"]
            .iter()
            .map(Into::into)
            .collect();
        node_args.extend([
            list.as_str().into(),
            "--data-dir".into(),
            data_dir.clone().into(),
        ]);
        node_args.extend(key_args.iter().cloned());
        node_args.extend(log_reads.then(|| "--log-reads".into()));
        if let Some(n) = args.snapshot_entries {
            node_args.extend(["--snapshot-entries".into(), n.to_string().into()]);
        }
        cluster.node_args.push(node_args);
        cluster.dirs.push(data_dir);
        let child = cluster.spawn(i)?;
        cluster.children.push(child);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if loadgen::find_leader(&peers, &auth)
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Ok((peers, auth, cluster));
        }
        if Instant::now() > deadline {
            return Err("no leader was elected within 15 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn line(c: usize, reads: &str, r: &LoadReport) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let gets = if reads.is_empty() {
        String::new()
    } else {
        format!(
            " reads={reads} gets/s={:.0} get_p50_ms={:.3} get_p99_ms={:.3}",
            r.gets_per_sec(),
            ms(r.get_percentile(0.50)),
            ms(r.get_percentile(0.99)),
        )
    };
    format!(
        "raftright C={c}{gets} puts/s={:.0} p50_ms={:.3} p99_ms={:.3} (puts={} gets={} resent={})",
        r.puts_per_sec(),
        ms(r.percentile(0.50)),
        ms(r.percentile(0.99)),
        r.puts,
        r.gets,
        r.resent
    )
}

/// How a target's gets are served, for its lines: nothing without gets; "?" for a cluster
/// given by `--peers`, whose setting is not known here.
fn reads_label(reads: f64, name: &str) -> &str {
    match (reads > 0.0, name.is_empty()) {
        (false, _) => "",
        (true, true) => "?",
        (true, false) => name,
    }
}

/// The median of `reports` by operations per second.
fn median(reports: &mut [LoadReport]) -> &LoadReport {
    let ops = |r: &LoadReport| r.puts_per_sec() + r.gets_per_sec();
    reports.sort_by(|a, b| ops(a).total_cmp(&ops(b)));
    &reports[reports.len() / 2]
}

pub fn run(args: BenchArgs) -> Result<i32, super::CliError> {
    let concurrencies = args
        .clients
        .split(',')
        .map(|c| {
            c.trim()
                .parse::<usize>()
                .map_err(|e| format!("--clients: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !(0.0..=1.0).contains(&args.reads) {
        return Err("--reads must be between 0 and 1".into());
    }
    if let Some(seconds) = args.soak {
        return super::soak::run(&args, concurrencies[0], seconds);
    }
    // Each target: how its gets are served, its peers, key, and started processes.
    let mut targets: Vec<(&str, Vec<SocketAddrV4>, Auth, Option<Cluster>)> = Vec::new();
    match &args.peers {
        Some(p) => {
            let fallback = PathBuf::from(DEFAULT_DATA_DIR).join(KEY_FILE);
            let key = args
                .key
                .choose(Some(&fallback), "talk to a cluster that runs without one")?;
            targets.push(("", wire::parse_peers(p)?, key.auth, None));
        }
        None => {
            let modes: &[bool] = if args.compare_log_reads {
                &[false, true]
            } else {
                std::slice::from_ref(&args.log_reads)
            };
            for &log_reads in modes {
                let (peers, auth, cluster) = start_cluster(&args, log_reads)?;
                let name = if log_reads { "log" } else { "index" };
                targets.push((name, peers, auth, Some(cluster)));
            }
        }
    }
    let (peers, auth) = (&targets[0].1, &targets[0].2);
    eprintln!(
        "# {} servers on {}; fsync on (group commit); {}; {} s per run after {} s warm-up",
        peers.len(),
        peers[0],
        if auth.is_insecure() {
            "--insecure"
        } else {
            "authenticated"
        },
        args.seconds,
        args.warmup_seconds
    );
    for &c in &concurrencies {
        let mut reports: Vec<Vec<LoadReport>> = vec![Vec::new(); targets.len()];
        for _ in 0..args.runs.max(1) {
            // Alternate between the targets run by run, so that a change in the machine's load
            // falls on both.
            for (t, (name, peers, auth, _)) in targets.iter().enumerate() {
                let report = loadgen::run(&LoadConfig {
                    peers: peers.clone(),
                    auth: auth.clone(),
                    clients: c,
                    warmup: Duration::from_secs_f64(args.warmup_seconds),
                    duration: Duration::from_secs_f64(args.seconds),
                    key_size: args.key_size,
                    value_size: args.value_size,
                    request_timeout: Duration::from_millis(500),
                    reads: args.reads,
                    keys: args.keys,
                })
                .map_err(|e| format!("load generator: {e}"))?;
                println!("{}", line(c, reads_label(args.reads, name), &report));
                reports[t].push(report);
            }
        }
        let mut medians = Vec::new();
        for (t, runs) in reports.iter_mut().enumerate() {
            let m = median(runs).clone();
            if runs.len() > 1 {
                let reads = reads_label(args.reads, targets[t].0);
                println!("median {}", line(c, reads, &m));
            }
            medians.push(m);
        }
        if medians.len() == 2 && medians[1].gets > 0 {
            println!(
                "C={c} gets/s ReadIndex / log: {:.2}x (medians)",
                medians[0].gets_per_sec() / medians[1].gets_per_sec()
            );
        }
    }
    Ok(0)
}
