//! Log replication and durability on real processes (Raft §5.3, §5.4): no quorum, a minority
//! partition whose uncommitted entries must go, a whole-cluster crash, concurrent clients.

mod common;

use common::{Cluster, eventually, stderr, stdout};
use raftright::raft::{Msg, Op};
use raftright::runtime::auth::Auth;
use raftright::runtime::wire::{self, Drops};
use std::collections::BTreeMap;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn without_a_quorum_a_put_times_out_and_succeeds_once_the_quorum_returns() {
    let mut cluster = Cluster::start(3);
    let (leader, _) = cluster.wait_for_leader(&cluster.all());
    let out = cluster.client(&["put", "a", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let followers: Vec<usize> = cluster.all().into_iter().filter(|&i| i != leader).collect();
    for &f in &followers {
        cluster.kill(f);
    }
    let out = cluster.client(&["--timeout-ms", "1500", "put", "b", "2"]);
    assert!(!out.status.success(), "a put committed without a quorum");
    assert!(stderr(&out).contains("no quorum"), "{}", stderr(&out));

    cluster.start_node(followers[0]);
    let out = cluster.client(&["--timeout-ms", "20000", "put", "c", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for (k, v) in [("a", "1"), ("c", "3")] {
        let out = cluster.client(&["--timeout-ms", "20000", "get", k]);
        assert_eq!(stdout(&out).trim(), v, "{}", stderr(&out));
    }
}

/// Sends a client request straight to `to` as one authenticated datagram, without waiting.
fn fire_put(auth: &Auth, to: SocketAddrV4, client_id: u64, key: &str, value: &str) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let SocketAddr::V4(me) = socket.local_addr().unwrap() else {
        unreachable!("bound to IPv4")
    };
    let msg = Msg::ClientRequest {
        client_id,
        seq: 1,
        op: Op::Put {
            key: key.into(),
            value: value.into(),
        },
    };
    socket
        .send_to(&wire::seal(auth, me, to, &msg).unwrap(), to)
        .unwrap();
}

#[test]
fn a_minority_leaders_uncommitted_entries_are_discarded_and_the_majoritys_survive() {
    // Figure 7's situation: a leader cut off with one follower takes many entries that cannot
    // commit; the other three elect a leader and commit their own; once everyone is back, the
    // leader's back-off walks over all the conflicting entries. The cut is made with SIGKILL
    // (datagrams to a dead port are dropped; a SIGSTOPped process would queue them and read
    // them on waking), the old side is frozen with SIGSTOP before the other side returns.
    // CheckQuorum would make the cut-off leader step down before it takes the entries.
    let mut cluster = Cluster::start_with(5, &["--no-check-quorum"]);
    let (old, _) = cluster.wait_for_leader(&cluster.all());
    let out = cluster.client(&["put", "base", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mate = (old + 1) % 5;
    let majority: Vec<usize> = cluster
        .all()
        .into_iter()
        .filter(|&i| i != old && i != mate)
        .collect();
    for &i in &majority {
        cluster.kill(i);
    }
    let base = cluster.status()[old].clone().unwrap();
    for k in 0..40 {
        fire_put(
            &cluster.auth,
            cluster.peers[old],
            1_000 + k,
            &format!("minority{k}"),
            "lost",
        );
    }
    eventually("the minority holding 40 uncommitted entries", || {
        let status = cluster.status();
        let (l, m) = (status[old].clone()?, status[mate].clone()?);
        (l.last_log_index >= base.last_log_index + 40 && m.last_log_index == l.last_log_index)
            .then_some(())
    });
    assert_eq!(
        cluster.status()[old].clone().unwrap().commit_index,
        base.commit_index,
        "nothing commits without a majority"
    );

    cluster.pause(old);
    cluster.pause(mate);
    for &i in &majority {
        cluster.start_node(i);
    }
    let (_, new_term) = cluster.wait_for_leader(&majority);
    let mut client = raftright::runtime::client::Client::new(
        majority.iter().map(|&i| cluster.peers[i]).collect(),
        cluster.auth.clone(),
        Duration::from_secs(20),
    )
    .unwrap();
    for k in 0..40 {
        client.put(&format!("majority{k}"), "kept").unwrap();
    }

    cluster.resume(old);
    cluster.resume(mate);
    let (leader, term) = eventually("all five converged on one log", || {
        let (leader, term) = cluster.leader_among(&cluster.all())?;
        let status = cluster.status();
        let want = status[leader].clone()?.last_log_index;
        status
            .iter()
            .all(|s| {
                s.as_ref()
                    .is_some_and(|s| s.last_log_index == want && s.commit_index == want)
            })
            .then_some((leader, term))
    });
    assert!(term >= new_term);
    assert!(
        majority.contains(&leader),
        "a stale log cannot win (§5.4.1)"
    );
    let mut client = cluster.lib_client(Duration::from_secs(20));
    for k in [0, 17, 39] {
        assert_eq!(
            client.get(&format!("majority{k}")).unwrap().as_deref(),
            Some("kept")
        );
        assert_eq!(client.get(&format!("minority{k}")).unwrap(), None);
    }
    assert_eq!(client.get("base").unwrap().as_deref(), Some("0"));
}

#[test]
fn killing_every_node_and_restarting_loses_no_acknowledged_write() {
    let mut cluster = Cluster::start(3);
    cluster.wait_for_leader(&cluster.all());
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop) = (acked.clone(), stop.clone());
        let mut client = cluster.lib_client(Duration::from_secs(2));
        std::thread::spawn(move || {
            let mut k = 0;
            while !stop.load(Ordering::SeqCst) {
                let (key, value) = (format!("key{k}"), format!("value{k}"));
                if client.put(&key, &value).is_ok() {
                    acked.lock().unwrap().insert(key, value);
                }
                k += 1;
            }
        })
    };
    eventually("30 acknowledged writes", || {
        (acked.lock().unwrap().len() >= 30).then_some(())
    });
    // Crash everything while writes are in flight.
    for i in cluster.all() {
        cluster.kill(i);
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let acked = acked.lock().unwrap().clone();

    for i in cluster.all() {
        cluster.start_node(i);
    }
    cluster.wait_for_leader(&cluster.all());
    let mut client = cluster.lib_client(Duration::from_secs(20));
    for (key, value) in &acked {
        assert_eq!(
            client.get(key).unwrap().as_deref(),
            Some(value.as_str()),
            "acknowledged write {key} lost"
        );
    }
}

#[test]
fn concurrent_clients_all_succeed() {
    let cluster = Cluster::start(3);
    cluster.wait_for_leader(&cluster.all());
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|c| {
                let cluster = &cluster;
                s.spawn(move || {
                    (0..3)
                        .map(|k| {
                            let key = format!("c{c}k{k}");
                            cluster.client(&["--timeout-ms", "20000", "put", &key, &key])
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    for out in &results {
        assert!(out.status.success(), "{}", stderr(out));
    }
    let mut client = cluster.lib_client(Duration::from_secs(20));
    for c in 0..12 {
        for k in 0..3 {
            let key = format!("c{c}k{k}");
            assert_eq!(client.get(&key).unwrap().as_deref(), Some(key.as_str()));
        }
    }
    let out = cluster.client(&["delete", "c0k0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(client.get("c0k0").unwrap(), None);
    // Among servers and clients that share the key nothing is dropped: not the syncers'
    // wake-ups (one per fsync), not an answer, not a heartbeat.
    for (i, s) in cluster.node_status().iter().enumerate() {
        let drops = s.as_ref().expect("every node answers").drops;
        assert_eq!(drops, Drops::default(), "node {i}");
    }
}
