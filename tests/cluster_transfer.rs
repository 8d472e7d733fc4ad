//! Leadership transfer (thesis §3.10) on real processes over loopback UDP: `client
//! transfer-leader` hands leadership to each follower in turn while a client keeps writing, and
//! no acknowledged write is lost.

mod common;

use common::{Cluster, stderr, stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn leadership_goes_to_each_follower_in_turn_and_no_acknowledged_write_is_lost() {
    let cluster = Cluster::start(3);
    let (first, _) = cluster.wait_for_leader(&cluster.all());

    // A light write load: one client, one put at a time, each key written once.
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let mut client = cluster.lib_client(Duration::from_secs(3));
        let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let key = format!("k{n}");
                if client.put(&key, &format!("v{n}")).is_ok() {
                    acknowledged.lock().unwrap().push(n);
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let mut leader = first;
    for round in 0..3 {
        let target = (leader + 1) % 3;
        let before = acknowledged.lock().unwrap().len();
        let addr = cluster.peers[target].to_string();
        let out = cluster.client(&["transfer-leader", &addr]);
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
        assert_eq!(stdout(&out).trim(), "OK");
        let (now, _) = cluster.wait_for_leader(&cluster.all());
        assert_eq!(now, target, "round {round}: leadership went elsewhere");
        leader = target;
        common::eventually("writes acknowledged under the new leader", || {
            (acknowledged.lock().unwrap().len() >= before + 5).then_some(())
        });
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("the writer");

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 15, "{acknowledged:?}");
    let mut client = cluster.lib_client(Duration::from_secs(5));
    for n in acknowledged {
        let value = client.get(&format!("k{n}")).expect("a read");
        assert_eq!(
            value.as_deref(),
            Some(format!("v{n}").as_str()),
            "acknowledged write k{n} lost"
        );
    }
}

#[test]
fn a_transfer_to_a_non_member_is_a_clear_error() {
    let cluster = Cluster::start(3);
    cluster.wait_for_leader(&cluster.all());
    let out = cluster.client(&["transfer-leader", "127.0.0.1:9"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("127.0.0.1:9 is not a member of the cluster"),
        "{}",
        stderr(&out)
    );
}
