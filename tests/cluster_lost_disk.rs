//! A follower whose disk is wiped restarts empty. The leader finds it by its answers (every
//! heartbeat rejected below the index it acknowledged), says so in its log and its status, and
//! tells it; the empty node says so too and takes no part, neither voting nor acknowledging,
//! across restarts, while the other two go on committing.

mod common;

use common::{Cluster, NodeKey};
use std::time::Duration;

#[test]
fn a_wiped_follower_is_found_reported_and_kept_out_until_replaced() {
    let mut cluster = Cluster::prepare(3, &[], |_| NodeKey::Cluster);
    for i in cluster.all() {
        cluster.start_node_logged(i, "info");
    }
    let (leader, term) = cluster.wait_for_leader(&cluster.all());
    let follower = (leader + 1) % 3;
    let mut client = cluster.lib_client(Duration::from_secs(3));
    for k in 0..20 {
        client.put(&format!("k{k}"), "v").expect("a put commits");
    }
    let leader_last = cluster.status()[leader].clone().unwrap().last_log_index;
    common::eventually("the follower holds the whole log", || {
        let s = cluster.status()[follower].clone()?;
        (s.last_log_index >= leader_last).then_some(())
    });

    cluster.kill(follower);
    std::fs::remove_dir_all(cluster.data_dir(follower)).unwrap();
    cluster.start_node_logged(follower, "info");

    let address = cluster.peers[follower];
    let seen = common::eventually("the leader reports the lost log", || {
        let s = cluster.node_status()[leader].clone()?;
        s.lost_followers.contains(&address).then_some(s)
    });
    assert_eq!(seen.status.term, term, "no election: {seen:?}");
    let told = common::eventually("the empty node knows it lost its log", || {
        cluster.node_status()[follower].clone()?.lost_log
    });
    assert!(told >= leader_last, "it acknowledged the whole log: {told}");
    assert!(cluster.log(leader).contains("LOST ITS LOG"));
    assert!(cluster.log(follower).contains("THIS NODE LOST ITS LOG"));

    // The other two commit on; the empty node takes nothing and starts no election.
    for k in 20..30 {
        client.put(&format!("k{k}"), "v").expect("a put commits");
    }
    std::thread::sleep(Duration::from_secs(1));
    let status = cluster.status();
    let empty = status[follower].clone().unwrap();
    assert_eq!(empty.last_log_index, 0, "{empty:?}");
    assert_eq!(status[leader].clone().unwrap().term, term);

    // The mark survives a restart.
    cluster.kill(follower);
    cluster.start_node_logged(follower, "info");
    common::eventually("the restarted node still knows", || {
        cluster.node_status()[follower].clone()?.lost_log
    });
    assert!(
        cluster
            .log(follower)
            .contains("lost the log it had acknowledged")
    );
    assert_eq!(client.get("k29").expect("a get"), Some("v".to_string()));
}
