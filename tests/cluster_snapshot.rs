//! Snapshots on real processes over loopback UDP: a follower that missed more than the leader
//! keeps catches up through InstallSnapshot (in chunks: the snapshot is many datagrams long),
//! restarts from its snapshot file, and loses no acknowledged write; a damaged snapshot file
//! stops a node before it serves.

mod common;

use common::{Cluster, NodeKey, stderr, stdout};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WRITERS: usize = 8;

/// Writes unique keys (with 200-byte values) from [`WRITERS`] clients until `done` says so.
fn write_until(
    cluster: &Cluster,
    acked: &Arc<Mutex<BTreeMap<String, String>>>,
    next_key: &Arc<AtomicU64>,
    mut done: impl FnMut(usize) -> bool,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (acked, stop, next_key) = (acked.clone(), stop.clone(), next_key.clone());
            let mut client = cluster.lib_client(Duration::from_secs(3));
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let k = next_key.fetch_add(1, Ordering::SeqCst);
                    let (key, value) = (format!("key{k}"), format!("{k:0>200}"));
                    if client.put(&key, &value).is_ok() {
                        acked.lock().unwrap().insert(key, value);
                    }
                }
            })
        })
        .collect();
    common::eventually("enough acknowledged writes", || {
        done(acked.lock().unwrap().len()).then_some(())
    });
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
}

#[test]
fn a_follower_behind_the_leaders_snapshot_catches_up_through_install_snapshot() {
    let mut cluster = Cluster::prepare(3, &["--snapshot-entries", "300"], |_| NodeKey::Cluster);
    for i in cluster.all() {
        cluster.start_node_logged(i, "info");
    }
    let (leader, _) = cluster.wait_for_leader(&cluster.all());
    let follower = (leader + 1) % 3;
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let next_key = Arc::new(AtomicU64::new(0));

    write_until(&cluster, &acked, &next_key, |n| n >= 50);
    cluster.kill(follower);
    let stopped_at = acked.lock().unwrap().len();
    // Far past what the follower holds: the leader's log no longer has the entries it needs.
    write_until(&cluster, &acked, &next_key, |n| n >= stopped_at + 1_500);
    let leader_status = cluster.status()[leader]
        .clone()
        .expect("the leader answers");
    assert!(
        leader_status.snapshot_index > stopped_at as u64 + 100,
        "the leader compacted past the follower: {leader_status:?}"
    );

    cluster.start_node_logged(follower, "info");
    let caught_up = common::eventually("the follower catches up", || {
        let s = cluster.status()[follower].clone()?;
        (s.commit_index >= leader_status.commit_index).then_some(s)
    });
    assert!(caught_up.snapshot_index > 0, "{caught_up:?}");
    let log = cluster.log(follower);
    assert!(
        log.contains("received a snapshot through index"),
        "the follower's log: {}",
        &log[log.len().saturating_sub(3000)..]
    );

    // Its snapshot file restarts it, and it serves every acknowledged write as the leader.
    cluster.kill(follower);
    cluster.start_node_logged(follower, "info");
    cluster.wait_for_leader(&cluster.all());
    let addr = cluster.peers[follower].to_string();
    let out = cluster.client(&["transfer-leader", &addr]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut client = cluster.lib_client(Duration::from_secs(10));
    let acked = acked.lock().unwrap().clone();
    let lost: Vec<_> = acked
        .iter()
        .filter(|(k, v)| client.get(k).unwrap().as_deref() != Some(v.as_str()))
        .map(|(k, _)| k.clone())
        .collect();
    let (now, _) = cluster.wait_for_leader(&cluster.all());
    assert_eq!(now, follower, "the reads went to the caught-up node");
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(10)]
    );
}

#[test]
fn a_damaged_snapshot_file_stops_the_node_with_a_clear_error() {
    let mut cluster = Cluster::start_with(3, &["--snapshot-entries", "0"]);
    cluster.wait_for_leader(&cluster.all());
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    write_until(&cluster, &acked, &Arc::new(AtomicU64::new(0)), |n| n >= 20);
    // The manual trigger, on a node that never compacts by itself.
    let addr = cluster.peers[0].to_string();
    let out = cluster.client(&["snapshot", &addr]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("snapshot through index "),
        "{}",
        stdout(&out)
    );
    let snap = cluster.data_dir(0).join("raft.snap");
    common::eventually("the snapshot file", || snap.exists().then_some(()));
    std::thread::sleep(Duration::from_millis(200));
    cluster.kill(0);
    let clean = std::fs::read(&snap).unwrap();
    for (what, bytes) in [
        ("truncated", clean[..clean.len() / 2].to_vec()),
        ("flipped", {
            let mut b = clean.clone();
            let at = b.len() / 2;
            b[at] ^= 1;
            b
        }),
    ] {
        std::fs::write(&snap, &bytes).unwrap();
        let out = cluster.run_node_to_exit(0);
        assert!(!out.status.success(), "{what}: the node started");
        let err = stderr(&out);
        assert!(
            err.contains("raft.snap is corrupt") && err.contains("refusing to start"),
            "{what}: {err}"
        );
    }
    std::fs::write(&snap, &clean).unwrap();
    cluster.start_node(0);
    cluster.wait_for_leader(&cluster.all());
    let s = cluster.status()[0].clone().expect("node 0 answers");
    assert!(s.snapshot_index >= 20, "{s:?}");
}
