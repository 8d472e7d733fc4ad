//! Power loss on real processes. Killing a process loses nothing it wrote, because the page
//! cache keeps it; so these nodes run with a test-only disk (`--test-power-loss-fsync-ms`) on
//! which a write reaches the file only when its fsync completes. Killing such a node loses
//! exactly what no completed fsync covered, as a power loss would. Clients write throughout, so
//! every kill finds fsyncs under way and messages waiting for them.

mod common;

use common::Cluster;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Each fsync takes this long, so that every kill finds one in progress.
const FSYNC_MS: &str = "20";
const WRITERS: u64 = 4;

/// Writes unique keys from [`WRITERS`] clients until `acked` has grown by `more`, then cuts the
/// power of `victims` at once, with writes still in flight; returns once the writers stopped.
fn write_then_cut_power(
    cluster: &mut Cluster,
    acked: &Arc<Mutex<BTreeMap<String, String>>>,
    next_key: &Arc<AtomicU64>,
    more: usize,
    victims: &[usize],
) {
    let start = acked.lock().unwrap().len();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (acked, stop, next_key) = (acked.clone(), stop.clone(), next_key.clone());
            let mut client = cluster.lib_client(Duration::from_secs(2));
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let k = next_key.fetch_add(1, Ordering::SeqCst);
                    let (key, value) = (format!("key{k}"), format!("value{k}"));
                    if client.put(&key, &value).is_ok() && !stop.load(Ordering::SeqCst) {
                        acked.lock().unwrap().insert(key, value);
                    }
                }
            })
        })
        .collect();
    common::eventually("acknowledged writes", || {
        (acked.lock().unwrap().len() >= start + more).then_some(())
    });
    for &i in victims {
        cluster.kill(i);
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
}

/// The acknowledged writes that a restarted cluster no longer holds.
fn lost_after_restart(
    cluster: &mut Cluster,
    victims: &[usize],
    acked: &BTreeMap<String, String>,
) -> Vec<String> {
    for &i in victims {
        cluster.start_node(i);
    }
    cluster.wait_for_leader(&cluster.all());
    let mut client = cluster.lib_client(Duration::from_secs(20));
    acked
        .iter()
        .filter(|(key, value)| client.get(key).unwrap().as_deref() != Some(value.as_str()))
        .map(|(key, _)| key.clone())
        .collect()
}

fn power_loss_cluster(extra: &[&str]) -> Cluster {
    let mut args = vec!["--test-power-loss-fsync-ms", FSYNC_MS];
    args.extend_from_slice(extra);
    let cluster = Cluster::start_with(3, &args);
    cluster.wait_for_leader(&cluster.all());
    cluster
}

/// Cuts the power three times (the whole cluster, then the leader with one follower, then the
/// whole cluster again) while `more` writes each time are acknowledged, and checks after each
/// restart that every acknowledged write is there; returns the cluster, running.
fn cut_power_three_times(extra: &[&str], more: usize) -> Cluster {
    let mut cluster = power_loss_cluster(extra);
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let next_key = Arc::new(AtomicU64::new(0));
    for round in 0..3 {
        let victims = if round == 1 {
            let (leader, _) = cluster.wait_for_leader(&cluster.all());
            vec![leader, (leader + 1) % 3]
        } else {
            cluster.all()
        };
        write_then_cut_power(&mut cluster, &acked, &next_key, more, &victims);
        let acked = acked.lock().unwrap().clone();
        let lost = lost_after_restart(&mut cluster, &victims, &acked);
        assert!(
            lost.is_empty(),
            "round {round}: {} of {} acknowledged writes lost, among them {:?}",
            lost.len(),
            acked.len(),
            &lost[..lost.len().min(10)]
        );
    }
    cluster
}

#[test]
fn power_loss_under_load_loses_no_acknowledged_write() {
    cut_power_three_times(&[], 25);
}

/// Compacting every 11 entries, each cut finds snapshots being written beside the log and new
/// log segments begun or about to be.
#[test]
fn power_loss_during_compactions_loses_no_acknowledged_write() {
    let cluster = cut_power_three_times(&["--snapshot-entries", "10"], 60);
    for (i, status) in cluster.status().iter().enumerate() {
        let status = status.as_ref().expect("every node answers");
        assert!(
            status.snapshot_index > 100,
            "node {i} compacted: {status:?}"
        );
    }
}

/// The same power loss with followers that acknowledge entries before they are durable (the
/// `ack-before-fsync` mutant, which `check` catches in models/durability.toml): acknowledged
/// writes are lost, so the test above can fail.
#[test]
fn acknowledging_before_fsync_loses_acknowledged_writes_on_power_loss() {
    let mut seen = Vec::new();
    for _trial in 0..5 {
        let mut cluster = power_loss_cluster(&["--test-mutant", "ack-before-fsync"]);
        let acked = Arc::new(Mutex::new(BTreeMap::new()));
        let next_key = Arc::new(AtomicU64::new(0));
        let all = cluster.all();
        write_then_cut_power(&mut cluster, &acked, &next_key, 25, &all);
        let acked = acked.lock().unwrap().clone();
        let lost = lost_after_restart(&mut cluster, &all, &acked);
        seen.push((lost.len(), acked.len()));
        if !lost.is_empty() {
            eprintln!(
                "ack-before-fsync: lost {} of {} acknowledged writes",
                lost.len(),
                acked.len()
            );
            return;
        }
    }
    panic!("no acknowledged write lost in {seen:?} (lost, acknowledged) per trial");
}
