//! Membership changes on a real cluster: servers started with `node --join` are added as
//! learners, catch up (through a snapshot when the leader has compacted) and are promoted; members
//! are removed, the leader among them. Concurrent clients write throughout; at the end the
//! history, a final read of every key included, must be linearizable per key, and every
//! acknowledged write of a key of its own must read back. Refused changes exit non-zero with
//! their reason.

mod common;
#[path = "common/linearizable.rs"]
mod linearizable;
#[path = "common/workload.rs"]
mod workload;

use common::{Cluster, eventually, stderr, stdout};
use linearizable::check_per_key;
use raftright::raft::Status;
use std::net::SocketAddrV4;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use workload::{ClientSpec, Recorder, Workload};

const KEYS: &[&str] = &["k0", "k1", "k2"];
const CLIENTS: usize = 3;

/// Clients at work on a cluster: a [`Workload`] on a few shared keys, and a writer of keys of
/// its own that keeps the ones acknowledged.
struct Traffic {
    recorder: Arc<Recorder>,
    workload: Workload,
    stop: Arc<AtomicBool>,
    writer: JoinHandle<()>,
    acknowledged: Arc<Mutex<Vec<(String, String)>>>,
    peers: Vec<SocketAddrV4>,
    auth: raftright::runtime::auth::Auth,
}

impl Traffic {
    /// Starts the clients; they know `peers` (and learn the members added later from the
    /// leaders' hints).
    fn start(cluster: &Cluster, peers: Vec<SocketAddrV4>) -> Self {
        let recorder = Recorder::new();
        let clients = (0..CLIENTS)
            .map(|c| ClientSpec {
                name: format!("c{c}"),
                peers: peers.clone(),
                auth: cluster.auth.clone(),
            })
            .collect();
        let workload = Workload::start(&recorder, clients, KEYS);
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let (stop, acknowledged) = (stop.clone(), acknowledged.clone());
            let mut client = workload::client(&peers, &cluster.auth, workload::OP_TIMEOUT);
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let (key, value) = (format!("own-{n}"), format!("v{n}"));
                    if client.put(&key, &value).is_ok() {
                        acknowledged.lock().unwrap().push((key, value));
                    }
                    n += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Self {
            recorder,
            workload,
            stop,
            writer,
            acknowledged,
            peers,
            auth: cluster.auth.clone(),
        }
    }

    /// Acknowledged writes so far (of both kinds).
    fn acknowledged_writes(&self) -> usize {
        let shared = self
            .recorder
            .history()
            .iter()
            .filter(|r| matches!(r.op.op, linearizable::RegisterOp::Write(_)))
            .filter(|r| r.op.returned.is_some())
            .count();
        shared + self.acknowledged.lock().unwrap().len()
    }

    /// Waits until `more` writes more than now have been acknowledged: the cluster serves.
    fn wait_for_writes(&self, more: usize) {
        let target = self.acknowledged_writes() + more;
        eventually("clients' writes acknowledged", || {
            (self.acknowledged_writes() >= target).then_some(())
        });
    }

    /// Stops the clients, reads every key, and checks the history and the acknowledged
    /// writes through `readers` (the members at the end).
    fn stop_and_check(self, readers: &[SocketAddrV4]) {
        self.workload.stop();
        self.stop.store(true, Ordering::SeqCst);
        self.writer.join().expect("the writer");
        let mut reader = workload::client(readers, &self.auth, Duration::from_secs(5));
        let history = self.recorder.final_history(&mut reader, KEYS);
        let acked = history
            .iter()
            .filter(|(_, o)| matches!(o.op, linearizable::RegisterOp::Write(_)))
            .filter(|(_, o)| o.returned.is_some())
            .count();
        assert!(acked > 0, "no shared-key write was acknowledged");
        if let Err(violation) = check_per_key(&history) {
            panic!("the history is not linearizable: {violation}");
        }
        let own = self.acknowledged.lock().unwrap().clone();
        assert!(!own.is_empty(), "no write of the writer was acknowledged");
        for (key, value) in &own {
            let read = eventually("a read of an acknowledged write", || reader.get(key).ok());
            assert_eq!(read.as_deref(), Some(value.as_str()), "{key} lost");
        }
        eprintln!(
            "membership history: {} operations on {} shared keys ({acked} acknowledged writes), \
             {} acknowledged writes of own keys read back, clients of {:?}",
            history.len(),
            KEYS.len(),
            own.len(),
            self.peers
        );
    }
}

/// `raftright client` against `nodes` of `cluster`.
fn client_of(cluster: &Cluster, nodes: &[usize], args: &[&str]) -> Output {
    common::client(&cluster.addrs(nodes), &cluster.key_file(), args)
}

/// Runs a membership command that must succeed.
fn change(cluster: &Cluster, nodes: &[usize], args: &[&str]) {
    let out = client_of(cluster, nodes, args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(stdout(&out).trim(), "OK", "{args:?}");
}

/// Runs a membership command that must be refused; returns its one-line message.
fn refused(cluster: &Cluster, nodes: &[usize], args: &[&str]) -> String {
    let out = client_of(cluster, nodes, args);
    assert!(
        !out.status.success(),
        "{args:?} succeeded: {}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{args:?}: one line: {err}");
    err
}

/// The configuration that the leader among `nodes` reports: (voters, learners) as node numbers.
fn members(cluster: &Cluster, nodes: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let (leader, _) = cluster.wait_for_leader(nodes);
    let s = cluster.status()[leader]
        .clone()
        .expect("the leader answers");
    let index = |ids: &[stateright::actor::Id]| -> Vec<usize> {
        let mut v: Vec<usize> = ids
            .iter()
            .map(|&id| {
                let addr = SocketAddrV4::from(id);
                cluster
                    .peers
                    .iter()
                    .position(|&p| p == addr)
                    .expect("one of ours")
            })
            .collect();
        v.sort();
        v
    };
    (index(&s.voters), index(&s.learners))
}

/// Waits until node `i` holds the log through the leader's commit index.
fn caught_up(cluster: &Cluster, leader: usize, i: usize) -> Status {
    eventually("a new member catching up", || {
        let status = cluster.status();
        let commit = status[leader].as_ref()?.commit_index;
        let s = status[i].clone()?;
        (s.commit_index >= commit && commit > 0).then_some(s)
    })
}

#[test]
fn grow_from_three_to_five_then_shrink_back_to_three_with_clients_writing() {
    // Compaction every 100 entries: the servers that join catch up through a snapshot.
    let mut cluster = Cluster::prepare_growing(5, 3, &["--snapshot-entries", "100"]);
    for i in 0..3 {
        cluster.start_node_logged(i, "raftright=info");
    }
    cluster.wait_for_leader(&[0, 1, 2]);
    let traffic = Traffic::start(&cluster, cluster.addrs(&[0, 1, 2]));
    // Past the first compaction (100 entries and a tenth kept).
    traffic.wait_for_writes(150);

    for new in [3, 4] {
        cluster.join_with(new, &[0, 1, 2]);
        cluster.start_node_logged(new, "raftright=info");
        change(
            &cluster,
            &[0, 1, 2],
            &["add-server", &cluster.peers[new].to_string(), "--learner"],
        );
    }
    assert_eq!(members(&cluster, &[0, 1, 2]), (vec![0, 1, 2], vec![3, 4]));
    let (leader, _) = cluster.wait_for_leader(&[0, 1, 2]);
    for new in [3, 4] {
        let s = caught_up(&cluster, leader, new);
        assert!(s.snapshot_index > 0, "node {new} got no snapshot: {s:?}");
        assert!(
            cluster.log(new).contains("received a snapshot"),
            "{}",
            cluster.log(new)
        );
        assert!(cluster.log(new).contains("added to the configuration"));
        change(
            &cluster,
            &[0, 1, 2],
            &["promote", &cluster.peers[new].to_string()],
        );
    }
    assert_eq!(
        members(&cluster, &cluster.all()),
        (vec![0, 1, 2, 3, 4], vec![])
    );
    // `status` asked of the first three shows the two added servers too.
    let out = client_of(&cluster, &[0, 1, 2], &["status", "-w", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 5, "{}", stdout(&out));
    for l in &lines {
        assert_eq!(l["voters"].as_array().map(Vec::len), Some(5), "{l}");
    }
    traffic.wait_for_writes(50);

    // Shrink: remove two of the first three, but not the leader (another test removes it).
    let (leader, _) = cluster.wait_for_leader(&cluster.all());
    let gone: Vec<usize> = [0, 1, 2].into_iter().filter(|&i| i != leader).collect();
    for &i in &gone {
        change(
            &cluster,
            &cluster.all(),
            &["remove-server", &cluster.peers[i].to_string()],
        );
    }
    let rest: Vec<usize> = cluster
        .all()
        .into_iter()
        .filter(|i| !gone.contains(i))
        .collect();
    assert_eq!(members(&cluster, &rest), (rest.clone(), vec![]));
    // A removed follower may never hear of its removal (the leader stops sending to it at
    // once), and campaigns when it hears no leader: its pre-votes are refused, so the members
    // keep their leader and term through many of its election timeouts.
    let before = cluster.wait_for_leader(&rest);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        cluster.wait_for_leader(&rest),
        before,
        "a removed server disrupted"
    );
    for &i in &gone {
        cluster.kill(i);
    }
    traffic.wait_for_writes(50);
    traffic.stop_and_check(&cluster.addrs(&rest));
    // `members` names the voters and the leader.
    let out = client_of(&cluster, &rest, &["members"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for &i in &rest {
        assert!(text.contains(&cluster.peers[i].to_string()), "{text}");
    }
    assert_eq!(text.matches("voter").count(), 3, "{text}");
    assert_eq!(
        text.matches("leader").count(),
        2,
        "a member row and the summary: {text}"
    );
}

#[test]
fn removing_the_leader_elects_another_and_it_can_be_added_back() {
    let mut cluster = Cluster::prepare_growing(3, 3, &[]);
    for i in cluster.all() {
        cluster.start_node_logged(i, "raftright=info");
    }
    let (old, term) = cluster.wait_for_leader(&cluster.all());
    let traffic = Traffic::start(&cluster, cluster.peers.clone());
    traffic.wait_for_writes(50);

    change(
        &cluster,
        &cluster.all(),
        &["remove-server", &cluster.peers[old].to_string()],
    );
    let rest: Vec<usize> = cluster.all().into_iter().filter(|&i| i != old).collect();
    let (new, new_term) = cluster.wait_for_leader(&rest);
    assert_ne!(new, old);
    assert!(new_term > term);
    assert_eq!(members(&cluster, &rest), (rest.clone(), vec![]));
    eventually("the old leader logs that it stepped down", || {
        cluster.log(old).contains("stepped down").then_some(())
    });
    let s = cluster.status()[old]
        .clone()
        .expect("the old leader answers");
    assert_ne!(s.role, "Leader", "{s:?}");
    traffic.wait_for_writes(50);

    // The same address back, with its data: a learner, then a voter.
    let addr = cluster.peers[old].to_string();
    change(&cluster, &rest, &["add-server", &addr, "--learner"]);
    caught_up(&cluster, new, old);
    change(&cluster, &rest, &["promote", &addr]);
    assert_eq!(members(&cluster, &cluster.all()), (cluster.all(), vec![]));
    eventually("the server added back logs it", || {
        cluster
            .log(old)
            .contains("added to the configuration")
            .then_some(())
    });
    traffic.wait_for_writes(50);
    traffic.stop_and_check(&cluster.peers);
}

/// A follower whose disk is wiped restarts empty: the leader finds it (it acknowledged entries it
/// no longer holds) and keeps it out, and the procedure of the README replaces it: remove it,
/// wipe it, start it with `--join`, add it as a learner, promote it once it has caught up.
/// Clients write throughout; at the end three healthy voters hold every acknowledged write.
#[test]
fn a_wiped_follower_is_found_and_replaced_with_clients_writing() {
    let mut cluster = Cluster::prepare_growing(3, 3, &[]);
    for i in cluster.all() {
        cluster.start_node_logged(i, "raftright=info");
    }
    let (leader, _) = cluster.wait_for_leader(&cluster.all());
    let traffic = Traffic::start(&cluster, cluster.peers.clone());
    traffic.wait_for_writes(50);

    let wiped = (leader + 1) % 3;
    let rest: Vec<usize> = cluster.all().into_iter().filter(|&i| i != wiped).collect();
    let address = cluster.peers[wiped];
    cluster.kill(wiped);
    std::fs::remove_dir_all(cluster.data_dir(wiped)).unwrap();
    cluster.start_node_logged(wiped, "raftright=info");
    eventually("the leader reports the lost log", || {
        let (leader, _) = cluster.leader_among(&rest)?;
        let s = cluster.node_status()[leader].clone()?;
        s.lost_followers.contains(&address).then_some(())
    });
    eventually("the wiped node knows it lost its log", || {
        cluster.node_status()[wiped].clone()?.lost_log
    });
    traffic.wait_for_writes(20);

    let addr = address.to_string();
    change(&cluster, &rest, &["remove-server", &addr]);
    cluster.kill(wiped);
    std::fs::remove_dir_all(cluster.data_dir(wiped)).unwrap();
    cluster.join_with(wiped, &rest);
    cluster.start_node_logged(wiped, "raftright=info");
    change(&cluster, &rest, &["add-server", &addr, "--learner"]);
    let (leader, _) = cluster.wait_for_leader(&rest);
    caught_up(&cluster, leader, wiped);
    change(&cluster, &rest, &["promote", &addr]);
    assert_eq!(members(&cluster, &cluster.all()), (cluster.all(), vec![]));
    eventually("no lost log reported any more", || {
        let healthy = cluster
            .node_status()
            .into_iter()
            .all(|s| s.is_some_and(|s| s.lost_log.is_none() && s.lost_followers.is_empty()));
        healthy.then_some(())
    });
    traffic.wait_for_writes(50);
    traffic.stop_and_check(&cluster.peers);
}

#[test]
fn a_restarted_node_keeps_its_persisted_configuration_over_a_stale_peers_list() {
    let mut cluster = Cluster::prepare_growing(4, 3, &[]);
    for i in 0..3 {
        cluster.start_node(i);
    }
    cluster.wait_for_leader(&[0, 1, 2]);
    cluster.join_with(3, &[0, 1, 2]);
    cluster.start_node(3);
    let node3 = cluster.peers[3].to_string();
    change(&cluster, &[0, 1, 2], &["add-server", &node3, "--learner"]);
    change(&cluster, &[0, 1, 2], &["promote", &node3]);
    // Node 0 stays; node 1 goes, so the configuration is {0, 2, 3}.
    let (leader, _) = cluster.wait_for_leader(&[0, 1, 2, 3]);
    let goner = if leader == 1 { 2 } else { 1 };
    change(
        &cluster,
        &cluster.all(),
        &["remove-server", &cluster.peers[goner].to_string()],
    );
    cluster.kill(goner);
    let members3: Vec<usize> = cluster.all().into_iter().filter(|&i| i != goner).collect();
    let stays = *members3.iter().find(|&&i| i < 3).unwrap();
    let index = members3
        .iter()
        .filter_map(|&i| cluster.status()[i].clone())
        .map(|s| s.membership_index)
        .max()
        .unwrap();
    eventually("the node to restart holds the latest configuration", || {
        let s = cluster.status()[stays].clone()?;
        (s.membership_index == index && s.commit_index >= index).then_some(())
    });

    // Restarted with its original --peers (which still names the removed node and not node 3).
    cluster.kill(stays);
    cluster.start_node(stays);
    let s = eventually("the restarted node answers", || {
        cluster.status()[stays].clone()
    });
    let mut voters: Vec<SocketAddrV4> = s.voters.iter().map(|&v| v.into()).collect();
    voters.sort();
    let mut expected = cluster.addrs(&members3);
    expected.sort();
    assert_eq!(voters, expected, "the persisted configuration, not --peers");

    // With the third member stopped, it and node 3 (absent from its --peers) are a majority.
    let third = *members3.iter().find(|&&i| i != stays && i != 3).unwrap();
    cluster.kill(third);
    let two = [stays, 3];
    let out = client_of(&cluster, &two, &["put", "after", "restart"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let drops = cluster.node_status()[stays].clone().unwrap().drops;
    assert_eq!(
        drops.unknown_sender, 0,
        "node 3 is a known sender: {drops:?}"
    );
}

#[test]
fn refused_changes_exit_non_zero_with_their_reason() {
    // Without CheckQuorum, a leader keeps leading with a change that cannot commit.
    let mut cluster = Cluster::prepare_growing(3, 3, &["--no-check-quorum"]);
    for i in cluster.all() {
        cluster.start_node(i);
    }
    let (leader, _) = cluster.wait_for_leader(&cluster.all());
    let all = cluster.all();
    let member = cluster.peers[(leader + 1) % 3].to_string();
    let outsider = common::free_ports(2);
    let (x, y) = (outsider[0].to_string(), outsider[1].to_string());

    let err = refused(&cluster, &all, &["add-server", &member]);
    assert!(
        err.contains(&format!("refused: {member} is already a member")),
        "{err}"
    );
    let err = refused(&cluster, &all, &["remove-server", &x]);
    assert!(
        err.contains(&format!("refused: {x} is not a member")),
        "{err}"
    );
    let err = refused(&cluster, &all, &["promote", &x]);
    assert!(
        err.contains(&format!("refused: {x} is not a member")),
        "{err}"
    );
    let err = refused(&cluster, &all, &["promote", &member]);
    assert!(
        err.contains(&format!("refused: {member} is not a learner")),
        "{err}"
    );
    let err = refused(&cluster, &all, &["add-server", "nonsense"]);
    assert!(err.contains("nonsense"), "{err}");

    // One follower paused: adding a voter that never answers makes 4 voters, of which 2 answer.
    let paused = (leader + 2) % 3;
    cluster.pause(paused);
    let err = refused(&cluster, &all, &["--timeout-ms", "1500", "add-server", &x]);
    assert!(err.contains("did not commit within 1500 ms"), "{err}");
    let err = refused(&cluster, &all, &["add-server", &y]);
    assert!(
        err.contains("refused: a configuration change is already in progress"),
        "{err}"
    );
    cluster.resume(paused);
    // With the paused follower back, the change commits.
    eventually("the pending change committing", || {
        let s = cluster.status()[leader].clone()?;
        (s.voters.len() == 4 && s.commit_index >= s.membership_index).then_some(())
    });

    // No server to answer: no quorum, and no leader for `members`.
    let nobody = common::free_ports(3);
    let key = cluster.key_file();
    let args = ["--timeout-ms", "500", "add-server", &x];
    let out = common::client(&nobody, &key, &args);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no quorum"), "{}", stderr(&out));
    let out = common::client(&nobody, &key, &["--timeout-ms", "500", "members"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no leader answered"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_joining_node_needs_its_own_address_and_another_server_to_join() {
    let cluster = Cluster::prepare_growing(2, 1, &[]);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(common::BIN)
            .args(args)
            .arg("--data-dir")
            .arg(cluster.dir.path().join("j"))
            .arg("--cluster-key-file")
            .arg(cluster.key_file())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        stderr(&out)
    };
    let (a, b) = (cluster.peers[0].to_string(), cluster.peers[1].to_string());
    let err = run(&["node", "--join", &a]);
    assert!(err.contains("--addr"), "{err}");
    let err = run(&["node", "--join", &a, "--addr", &a]);
    assert!(err.contains("--join names no server but"), "{err}");
    let err = run(&["node", "--join", &a, "--addr", &b, "--id", "0"]);
    assert!(err.contains("cannot be used with"), "{err}");
}
