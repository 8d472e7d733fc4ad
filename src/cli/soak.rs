//! `raftright bench --soak SECONDS`: a long run over a bounded key space that samples each
//! node's resident memory and data-directory size, to show that compaction keeps both bounded.
//! Writes `soak.csv` (one row per node and sample) and `soak.svg` (both over time), prints how
//! each node's memory at the end compares with 30 s in and its disk with its snapshot, and
//! then times a follower's restart on the data the soak left.

use super::bench::{BenchArgs, start_cluster};
use super::memory;
use raftright::raft::Status;
use raftright::runtime::auth::Auth;
use raftright::runtime::client::Client;
use raftright::runtime::loadgen::{self, LoadConfig};
use raftright::runtime::wal::{self, SNAPSHOT_FILE};
use std::fmt::Write as _;
use std::net::SocketAddrV4;
use std::path::Path;
use std::time::{Duration, Instant};

/// One node's figures at one moment.
#[derive(Clone, Copy, Debug)]
struct Sample {
    seconds: f64,
    node: usize,
    rss: u64,
    disk: u64,
    snapshot: u64,
    wal: u64,
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Bytes of the regular files in `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum()
    })
}

pub fn run(args: &BenchArgs, clients: usize, seconds: f64) -> Result<i32, super::CliError> {
    let keys = args.keys.unwrap_or(10_000);
    let (peers, auth, mut cluster) = start_cluster(args, false)?;
    eprintln!(
        "# soak: {} servers, {clients} clients, {keys} keys, {seconds} s, a sample every {} s",
        peers.len(),
        args.sample_seconds
    );
    let cfg = LoadConfig {
        peers: peers.clone(),
        auth: auth.clone(),
        clients,
        warmup: Duration::ZERO,
        duration: Duration::from_secs_f64(seconds),
        key_size: args.key_size,
        value_size: args.value_size,
        request_timeout: Duration::from_millis(500),
        reads: 0.0,
        keys: Some(keys),
    };
    let stopped = if args.soak_stop_follower {
        let leader = loadgen::find_leader(&peers, &auth)
            .map_err(|e| format!("status: {e}"))?
            .ok_or("no leader")?;
        let i = (leader + 1) % peers.len();
        cluster.stop(i);
        eprintln!("# node {i} ({}) stopped for the whole soak", peers[i]);
        Some(i)
    } else {
        None
    };
    let load = std::thread::spawn(move || loadgen::run(&cfg));
    let start = Instant::now();
    let every = Duration::from_secs_f64(args.sample_seconds.max(0.1));
    let mut samples = Vec::new();
    let take = |samples: &mut Vec<Sample>| {
        let t = start.elapsed().as_secs_f64();
        for (node, (child, dir)) in cluster.children.iter().zip(&cluster.dirs).enumerate() {
            if Some(node) == stopped {
                continue;
            }
            samples.push(Sample {
                seconds: t,
                node,
                rss: memory::rss_bytes_of(child.id()).unwrap_or(0),
                disk: dir_bytes(dir),
                snapshot: file_len(&dir.join(SNAPSHOT_FILE)),
                wal: wal::log_files(dir).map_or(0, |files| files.iter().map(|f| file_len(f)).sum()),
            });
        }
    };
    let mut next = start;
    while !load.is_finished() {
        if Instant::now() >= next {
            take(&mut samples);
            next += every;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    take(&mut samples);
    let report = load
        .join()
        .map_err(|_| "the load generator panicked".to_string())?
        .map_err(|e| format!("load generator: {e}"))?;
    println!(
        "soak: {} puts in {:.0} s: {:.0} puts/s, p50 {:.3} ms, p99 {:.3} ms (resent {})",
        report.puts,
        report.elapsed.as_secs_f64(),
        report.puts_per_sec(),
        report.percentile(0.50).as_secs_f64() * 1e3,
        report.percentile(0.99).as_secs_f64() * 1e3,
        report.resent
    );

    std::fs::create_dir_all(&args.soak_out)
        .map_err(|e| format!("cannot create {}: {e}", args.soak_out.display()))?;
    let csv_path = args.soak_out.join("soak.csv");
    let svg_path = args.soak_out.join("soak.svg");
    std::fs::write(&csv_path, csv(&samples))
        .map_err(|e| format!("cannot write {}: {e}", csv_path.display()))?;
    let title = format!(
        "{} nodes, {clients} clients, {keys} keys, {:.0} puts/s",
        peers.len(),
        report.puts_per_sec()
    );
    std::fs::write(&svg_path, svg(&samples, peers.len(), &title))
        .map_err(|e| format!("cannot write {}: {e}", svg_path.display()))?;
    println!("wrote {} and {}", csv_path.display(), svg_path.display());
    for line in summary(&samples, peers.len()) {
        println!("{line}");
    }

    // Restart: a follower that ran the soak, killed and started again on what it left; then
    // the follower stopped throughout, if any, which needs the leader's snapshot.
    let answers = Client::new(peers.clone(), auth.clone(), Duration::from_secs(1))
        .and_then(|mut c| c.status(Duration::from_millis(500)))
        .map_err(|e| format!("status: {e}"))?;
    let follower = answers
        .iter()
        .enumerate()
        .position(|(i, a)| {
            Some(i) != stopped && a.as_ref().is_some_and(|s| s.status.role == "Follower")
        })
        .ok_or("no follower answered")?;
    let leader_commit = answers
        .iter()
        .flatten()
        .map(|s| s.status.commit_index)
        .max()
        .unwrap_or(0);
    let leader_snapshot = answers
        .iter()
        .flatten()
        .find(|s| s.status.role == "Leader")
        .map_or(0, |s| s.status.snapshot_index);
    for (i, what) in std::iter::once((follower, "follower"))
        .chain(stopped.map(|i| (i, "the follower stopped throughout")))
    {
        let restarted = Instant::now();
        cluster.restart(i)?;
        let t = time_restart(peers[i], &auth, leader_snapshot, leader_commit)?;
        let ms = |at: Instant| (at - restarted).as_millis();
        println!(
            "restart of {what}, node {i} ({}): answers after {} ms, holds the leader's snapshot \
             (index {leader_snapshot}) after {} ms, reaches the commit index {leader_commit} \
             after {} ms; then its snapshot index {}, first kept index {}",
            peers[i],
            ms(t.answered),
            ms(t.has_snapshot),
            ms(t.caught_up),
            t.status.snapshot_index,
            t.status.first_index
        );
    }
    Ok(0)
}

/// When a restarted node first answered, first held a snapshot through the leader's, and
/// reached the leader's commit index; and its status then.
struct Restart {
    answered: Instant,
    has_snapshot: Instant,
    caught_up: Instant,
    status: Status,
}

/// Polls the restarted node at `addr` until its commit index reaches `commit`.
fn time_restart(
    addr: SocketAddrV4,
    auth: &Auth,
    snapshot: u64,
    commit: u64,
) -> Result<Restart, String> {
    let started = Instant::now();
    let mut one = Client::new(vec![addr], auth.clone(), Duration::from_secs(1))
        .map_err(|e| format!("status: {e}"))?;
    let (mut answered, mut has_snapshot) = (None, None);
    loop {
        let s = one
            .status(Duration::from_millis(20))
            .map_err(|e| format!("status: {e}"))?
            .remove(0);
        if let Some(s) = s {
            let now = Instant::now();
            let answered = *answered.get_or_insert(now);
            if s.status.snapshot_index >= snapshot || s.status.commit_index >= commit {
                has_snapshot.get_or_insert(now);
            }
            if s.status.commit_index >= commit {
                return Ok(Restart {
                    answered,
                    has_snapshot: has_snapshot.unwrap_or(now),
                    caught_up: now,
                    status: s.status,
                });
            }
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!("{addr} did not catch up within 600 s"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn csv(samples: &[Sample]) -> String {
    let mut out = String::from("seconds,node,rss_bytes,disk_bytes,snapshot_bytes,wal_bytes\n");
    for s in samples {
        let _ = writeln!(
            out,
            "{:.1},{},{},{},{},{}",
            s.seconds, s.node, s.rss, s.disk, s.snapshot, s.wal
        );
    }
    out
}

const MB: f64 = 1e6;

/// Per node: RSS at 30 s (or the first sample after) against the end, and the largest disk
/// use against the snapshot at the end.
fn summary(samples: &[Sample], nodes: usize) -> Vec<String> {
    (0..nodes)
        .filter_map(|n| {
            let mine: Vec<&Sample> = samples.iter().filter(|s| s.node == n).collect();
            let last = *mine.last()?;
            let at_30 = mine
                .iter()
                .find(|s| s.seconds >= 30.0)
                .copied()
                .unwrap_or(last);
            let max_disk = mine.iter().map(|s| s.disk).max().unwrap_or(0);
            let max_rss = mine.iter().map(|s| s.rss).max().unwrap_or(0);
            Some(format!(
                "node {n}: RSS {:.1} MB at {:.0} s, {:.1} MB at the end ({:.2}x), peak {:.1} MB; \
                 disk at most {:.1} MB, {:.1} MB at the end, of which snapshot {:.1} MB and log \
                 {:.1} MB (largest disk / final snapshot: {:.1}x)",
                at_30.rss as f64 / MB,
                at_30.seconds,
                last.rss as f64 / MB,
                last.rss as f64 / at_30.rss.max(1) as f64,
                max_rss as f64 / MB,
                max_disk as f64 / MB,
                last.disk as f64 / MB,
                last.snapshot as f64 / MB,
                last.wal as f64 / MB,
                max_disk as f64 / last.snapshot.max(1) as f64
            ))
        })
        .collect()
}

/// Which figure of a sample a panel plots.
type Figure = fn(&Sample) -> u64;

/// Two panels over time, one line per node: RSS, and data-directory size.
fn svg(samples: &[Sample], nodes: usize, title: &str) -> String {
    const W: f64 = 760.0;
    const PANEL: f64 = 220.0;
    const LEFT: f64 = 70.0;
    const TOP: f64 = 40.0;
    const GAP: f64 = 60.0;
    const COLORS: [&str; 5] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];
    let t_max = samples.iter().map(|s| s.seconds).fold(1.0, f64::max);
    let mut out = String::new();
    let height = TOP + 2.0 * PANEL + GAP + 50.0;
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif" font-size="12">"#,
        W + LEFT + 20.0
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{LEFT}" y="20" font-size="14">raftright bench --soak: {title}</text>"#
    );
    let panels: [(&str, Figure); 2] = [
        ("RSS per node (MB)", |s| s.rss),
        ("data directory per node (MB)", |s| s.disk),
    ];
    for (p, (label, value)) in panels.iter().enumerate() {
        let y0 = TOP + p as f64 * (PANEL + GAP);
        let v_max = samples.iter().map(value).max().unwrap_or(1).max(1) as f64 / MB;
        let v_top = nice_ceiling(v_max);
        let _ = writeln!(
            out,
            r##"<text x="{LEFT}" y="{}">{label}</text><rect x="{LEFT}" y="{y0}" width="{W}" height="{PANEL}" fill="none" stroke="#888"/>"##,
            y0 - 6.0
        );
        for k in 0..=4 {
            let v = v_top * k as f64 / 4.0;
            let y = y0 + PANEL - PANEL * k as f64 / 4.0;
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" x2="{}" y1="{y}" y2="{y}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{v:.0}</text>"##,
                LEFT + W,
                LEFT - 6.0,
                y + 4.0
            );
        }
        for k in 0..=5 {
            let t = t_max * k as f64 / 5.0;
            let x = LEFT + W * k as f64 / 5.0;
            let _ = writeln!(
                out,
                r#"<text x="{x}" y="{}" text-anchor="middle">{t:.0} s</text>"#,
                y0 + PANEL + 16.0
            );
        }
        for n in 0..nodes {
            let points: Vec<String> = samples
                .iter()
                .filter(|s| s.node == n)
                .map(|s| {
                    let x = LEFT + W * s.seconds / t_max;
                    let y = y0 + PANEL - PANEL * (value(s) as f64 / MB) / v_top;
                    format!("{x:.1},{y:.1}")
                })
                .collect();
            let color = COLORS[n % COLORS.len()];
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
                points.join(" ")
            );
        }
    }
    for n in 0..nodes {
        let x = LEFT + 90.0 * n as f64;
        let y = height - 14.0;
        let color = COLORS[n % COLORS.len()];
        let _ = writeln!(
            out,
            r#"<rect x="{x}" y="{}" width="14" height="4" fill="{color}"/><text x="{}" y="{y}">node {n}</text>"#,
            y - 6.0,
            x + 18.0
        );
    }
    out.push_str("</svg>\n");
    out
}

/// The smallest of 1, 2, 5 times a power of ten at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    let mut step = 1.0;
    while step * 10.0 < v {
        step *= 10.0;
    }
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * step)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plot_and_table_hold_every_sample() {
        let samples: Vec<Sample> = (0..40)
            .flat_map(|t| {
                (0..3).map(move |node| Sample {
                    seconds: t as f64,
                    node,
                    rss: 50_000_000 + node as u64,
                    disk: 3_000_000,
                    snapshot: 1_000_000,
                    wal: 2_000_000,
                })
            })
            .collect();
        assert_eq!(csv(&samples).lines().count(), 1 + 120);
        let plot = svg(&samples, 3, "t");
        assert_eq!(plot.matches("<polyline").count(), 6);
        assert!(plot.matches(',').count() >= 240);
        let lines = summary(&samples, 3);
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].contains("(1.00x)") && lines[0].contains("final snapshot: 3.0x"),
            "{}",
            lines[0]
        );
        assert_eq!(nice_ceiling(37.0), 50.0);
        assert_eq!(nice_ceiling(100.0), 100.0);
    }
}
