//! Leader election on real processes over loopback UDP (Raft §5.2), shaped like the classic
//! lab tests: initial election, re-election after a crash, and a paused leader that comes back.

mod common;

use common::{Cluster, eventually, stderr, stdout};
use std::time::Duration;

#[test]
fn a_leader_is_elected_and_the_term_stays_put_while_nothing_fails() {
    // Longer election timeouts than the default: the assertion is that nothing fails, so a
    // busy test machine must not be able to fake a failure.
    let cluster = Cluster::start_with(3, &["--election-timeout-ms", "1000"]);
    let (leader, term) = cluster.wait_for_leader(&cluster.all());
    std::thread::sleep(Duration::from_secs(2));
    let status = cluster.status();
    for (i, s) in status.iter().enumerate() {
        let s = s.as_ref().expect("every node answers");
        assert_eq!(s.term, term, "node {i} moved on from term {term}: {s:?}");
        let expected = if i == leader { "Leader" } else { "Follower" };
        assert_eq!(s.role, expected, "node {i}: {s:?}");
    }
    // `status` prints one JSON object per node and line, with the promised fields.
    let out = cluster.client(&["status", "--output", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["id"], i);
        assert_eq!(l["addr"], cluster.peers[i].to_string());
        assert_eq!(l["term"], term);
        assert_eq!(l["leader"], cluster.peers[leader].to_string());
        for key in ["role", "commit_index", "last_log_index"] {
            assert!(!l[key].is_null(), "{key} missing in {l}");
        }
    }
}

#[test]
fn a_new_leader_is_elected_after_the_leader_is_killed() {
    let mut cluster = Cluster::start(3);
    let (old, old_term) = cluster.wait_for_leader(&cluster.all());
    let out = cluster.client(&["put", "before", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));

    cluster.kill(old);
    let rest: Vec<usize> = cluster.all().into_iter().filter(|&i| i != old).collect();
    let (new, new_term) = cluster.wait_for_leader(&rest);
    assert_ne!(new, old);
    assert!(new_term > old_term);
    let out = cluster.client(&["put", "after", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The old leader restarts from its data directory and rejoins as a follower.
    cluster.start_node(old);
    let (leader, _) = cluster.wait_for_leader(&cluster.all());
    assert_ne!(leader, old, "a restarted node's log is not more up to date");
    let out = cluster.client(&["get", "before"]);
    assert_eq!(stdout(&out).trim(), "1", "{}", stderr(&out));
}

#[test]
fn a_paused_leader_comes_back_as_a_follower_and_catches_up() {
    let cluster = Cluster::start(3);
    let (old, old_term) = cluster.wait_for_leader(&cluster.all());
    cluster.pause(old);
    let rest: Vec<usize> = cluster.all().into_iter().filter(|&i| i != old).collect();
    let (new, new_term) = cluster.wait_for_leader(&rest);
    assert!(new_term > old_term);
    for k in 0..5 {
        let out = cluster.client(&["put", &format!("k{k}"), &format!("v{k}")]);
        assert!(out.status.success(), "{}", stderr(&out));
    }

    cluster.resume(old);
    // Caught up: a follower in the current term whose log and commit index equal the leader's.
    eventually("the old leader following with the full log", || {
        let status = cluster.status();
        let leader = status.get(new)?.as_ref()?;
        let back = status.get(old)?.as_ref()?;
        (back.role == "Follower"
            && back.term == leader.term
            && back.last_log_index == leader.last_log_index
            && back.commit_index == leader.commit_index
            && leader.commit_index == leader.last_log_index)
            .then_some(())
    });
    let out = cluster.client(&["get", "k4"]);
    assert_eq!(stdout(&out).trim(), "v4", "{}", stderr(&out));
}
