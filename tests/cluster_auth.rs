//! Authentication on real processes: forged datagrams, a node with the wrong key, nodes and
//! clients with and without a key, key files.
//!
//! The three forgeries are the attacks that worked when a peer was recognised by its source
//! address alone: a RequestVote of term 2^64-1, an acknowledgement of entries a follower does
//! not hold, an AppendEntries carrying an entry of a later term. Each is sent without the key
//! in three ways (plain JSON, a made-up tag, a tag under another key), from an outsider's
//! socket and from the very address of a real peer, bound while that peer is down. Each must be
//! dropped and counted as `bad_mac`, and leave terms, leader and acknowledged writes as they
//! were.

mod common;

use common::{BIN, Cluster, NodeKey, eventually, make_key, stderr, stdout, wait_with_deadline};
use raftright::raft::{Command as LogCommand, Entry, Msg};
use raftright::runtime::auth::{Auth, ClusterKey, FORMAT, TAG_LEN};
use raftright::runtime::client::Client;
use raftright::runtime::wire;
use stateright::actor::Id;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A cluster of `n` nodes with long election timeouts (nothing may move the term but a
/// forgery), each logging warnings to its log file.
fn start_logged(n: usize, key: impl Fn(usize) -> NodeKey) -> Cluster {
    start_logged_with(n, &[], key)
}

fn start_logged_with(n: usize, args: &[&str], key: impl Fn(usize) -> NodeKey) -> Cluster {
    let args: Vec<&str> = ["--election-timeout-ms", "1000"]
        .iter()
        .chain(args)
        .copied()
        .collect();
    let mut cluster = Cluster::prepare(n, &args, key);
    for i in 0..n {
        cluster.start_node_logged(i, "warn");
    }
    cluster
}

fn local(socket: &UdpSocket) -> SocketAddrV4 {
    match socket.local_addr().unwrap() {
        SocketAddr::V4(a) => a,
        other => panic!("not IPv4: {other}"),
    }
}

/// `msg` from `from` to `to` as someone without the key can send it: plain JSON, with a
/// made-up tag, and authenticated under another key.
fn forgeries(msg: &Msg, from: SocketAddrV4, to: SocketAddrV4) -> Vec<Vec<u8>> {
    let json = wire::encode(msg).unwrap();
    let mut made_up = vec![FORMAT];
    made_up.extend_from_slice(&json);
    made_up.extend_from_slice(&rand::random::<[u8; TAG_LEN]>());
    let other_key = Auth::Key(ClusterKey::generate().unwrap());
    vec![
        json,
        made_up,
        other_key.seal(from, to, &wire::encode(msg).unwrap()),
    ]
}

/// Sends every forgery of `msg` to each of `to`, 20 times over.
fn forge(socket: &UdpSocket, msg: &Msg, to: &[SocketAddrV4]) {
    let from = local(socket);
    for _ in 0..20 {
        for &dst in to {
            for datagram in forgeries(msg, from, dst) {
                socket.send_to(&datagram, dst).unwrap();
            }
        }
    }
}

/// Stops node `i` and takes its address: what it sends from there has the peer's source
/// address, as a forger with raw sockets could give it.
fn impersonate(cluster: &mut Cluster, i: usize) -> UdpSocket {
    cluster.kill(i);
    let addr = cluster.peers[i];
    eventually("the stopped node's port", || UdpSocket::bind(addr).ok())
}

/// Each node's `bad_mac` counter (`None`: no answer).
fn bad_macs(cluster: &Cluster) -> Vec<Option<u64>> {
    cluster
        .node_status()
        .iter()
        .map(|s| s.as_ref().map(|s| s.drops.bad_mac))
        .collect()
}

/// Waits until each node in `nodes` has counted at least `at_least` more bad MACs than `before`.
fn wait_counted(cluster: &Cluster, nodes: &[usize], before: &[Option<u64>], at_least: u64) {
    eventually("the forgeries counted as bad_mac", || {
        let now = bad_macs(cluster);
        nodes
            .iter()
            .all(|&i| now[i] >= Some(before[i].unwrap_or(0) + at_least))
            .then_some(())
    });
}

fn put_all(client: &mut Client, prefix: &str, n: usize) {
    for k in 0..n {
        client
            .put(&format!("{prefix}{k}"), &format!("value{k}"))
            .unwrap();
    }
}

fn assert_all_there(client: &mut Client, prefix: &str, n: usize) {
    for k in 0..n {
        let key = format!("{prefix}{k}");
        let want = format!("value{k}");
        assert_eq!(
            client.get(&key).unwrap().as_deref(),
            Some(want.as_str()),
            "acknowledged write {key} lost"
        );
    }
}

fn others(cluster: &Cluster, but: &[usize]) -> Vec<usize> {
    cluster
        .all()
        .into_iter()
        .filter(|i| !but.contains(i))
        .collect()
}

fn request_vote_of_the_largest_term(candidate: SocketAddrV4) -> Msg {
    Msg::RequestVote {
        term: u64::MAX,
        candidate_id: Id::from(candidate),
        last_log_index: u64::MAX,
        last_log_term: u64::MAX - 1,
        transfer: false,
    }
}

#[test]
fn a_forged_request_vote_of_the_largest_term_moves_no_term() {
    let mut cluster = start_logged(3, |_| NodeKey::Cluster);
    let (leader, term) = cluster.wait_for_leader(&cluster.all());
    let mut client = cluster.lib_client(Duration::from_secs(20));
    put_all(&mut client, "before", 5);
    let before = bad_macs(&cluster);

    let f = (leader + 1) % 3;
    let outsider = UdpSocket::bind("127.0.0.1:0").unwrap();
    let vote = request_vote_of_the_largest_term(cluster.peers[f]);
    forge(&outsider, &vote, &cluster.peers);
    let rest = others(&cluster, &[f]);
    let socket = impersonate(&mut cluster, f);
    let targets: Vec<_> = rest.iter().map(|&i| cluster.peers[i]).collect();
    forge(&socket, &vote, &targets);
    // 60 from the outsider and 60 from the peer's address at each of the others (UDP may
    // lose a few on a busy machine).
    wait_counted(&cluster, &rest, &before, 90);
    drop(socket);
    cluster.start_node_logged(f, "warn");

    put_all(&mut client, "after", 5);
    assert_eq!(
        cluster.wait_for_leader(&cluster.all()),
        (leader, term),
        "a forgery moved the term or the leader"
    );
    for (i, s) in cluster.status().iter().enumerate() {
        assert_eq!(s.as_ref().map(|s| s.term), Some(term), "node {i}");
    }
    assert_all_there(&mut client, "before", 5);
    assert_all_there(&mut client, "after", 5);
    let warning = format!(
        "datagrams from peer {} fail authentication",
        cluster.peers[f]
    );
    for i in rest {
        let log = cluster.log(i);
        assert!(log.contains(&warning), "node {i} logged:\n{log}");
    }
}

/// The control: without a key the same datagrams, from the same peer address, take every
/// node to the last term, where no election can happen again. Only the MAC keeps them out.
/// (CheckQuorum's lease would make servers that hear their leader ignore this one request for
/// a vote; it is off here, because the lease ends with the leader and other forgeries work
/// with it on.)
#[test]
fn without_a_key_the_same_forgery_takes_every_term_to_the_last() {
    let mut cluster = start_logged_with(3, &["--no-check-quorum"], |_| NodeKey::Insecure);
    cluster.auth = Auth::Insecure;
    let (leader, _) = cluster.wait_for_leader(&cluster.all());
    let f = (leader + 1) % 3;
    let vote = request_vote_of_the_largest_term(cluster.peers[f]);
    let rest = others(&cluster, &[f]);
    let socket = impersonate(&mut cluster, f);
    for &i in &rest {
        socket
            .send_to(&wire::encode(&vote).unwrap(), cluster.peers[i])
            .unwrap();
    }
    eventually("the others at the last term", || {
        let status = cluster.status();
        rest.iter()
            .all(|&i| status[i].as_ref().is_some_and(|s| s.term == u64::MAX))
            .then_some(())
    });
}

#[test]
fn a_forged_acknowledgement_of_entries_a_follower_lacks_commits_nothing() {
    let mut cluster = start_logged(3, |_| NodeKey::Cluster);
    let (leader, term) = cluster.wait_for_leader(&cluster.all());
    let mut client = cluster.lib_client(Duration::from_secs(20));
    put_all(&mut client, "before", 5);
    let before = bad_macs(&cluster);
    let (a, b) = ((leader + 1) % 3, (leader + 2) % 3);
    let ack = Msg::AppendEntriesResponse {
        term,
        success: true,
        match_index: 1000,
        conflict: None,
        read_round: 0,
    };
    // B is down and "acknowledges" everything up to index 1000 from its own address; A is
    // paused. Had the leader believed B, it would commit writes that only it holds.
    let outsider = UdpSocket::bind("127.0.0.1:0").unwrap();
    forge(&outsider, &ack, &[cluster.peers[leader]]);
    let socket = impersonate(&mut cluster, b);
    forge(&socket, &ack, &[cluster.peers[leader]]);
    wait_counted(&cluster, &[leader], &before, 90);
    cluster.pause(a);
    let mut to_leader = Client::new(
        vec![cluster.peers[leader]],
        cluster.auth.clone(),
        Duration::from_millis(1500),
    )
    .unwrap();
    let mut acknowledged = Vec::new();
    for k in 0..5 {
        forge(&socket, &ack, &[cluster.peers[leader]]);
        let key = format!("during{k}");
        if to_leader.put(&key, "value").is_ok() {
            acknowledged.push(key);
        }
    }
    assert_eq!(
        acknowledged,
        Vec::<String>::new(),
        "writes committed without a majority"
    );

    // The leader goes; A and B must hold everything acknowledged.
    cluster.kill(leader);
    cluster.resume(a);
    drop(socket);
    cluster.start_node_logged(b, "warn");
    cluster.wait_for_leader(&[a, b]);
    let mut client = Client::new(
        vec![cluster.peers[a], cluster.peers[b]],
        cluster.auth.clone(),
        Duration::from_secs(20),
    )
    .unwrap();
    assert_all_there(&mut client, "before", 5);
}

#[test]
fn a_forged_append_entries_of_a_later_term_loses_no_write() {
    let mut cluster = start_logged(3, |_| NodeKey::Cluster);
    let (leader, term) = cluster.wait_for_leader(&cluster.all());
    let mut client = cluster.lib_client(Duration::from_secs(20));
    put_all(&mut client, "before", 5);
    let last = eventually("every log complete and committed", || {
        let status = cluster.status();
        let l = status[leader].clone()?;
        status
            .iter()
            .all(|s| {
                s.as_ref().is_some_and(|s| {
                    s.last_log_index == l.last_log_index && s.commit_index == l.last_log_index
                })
            })
            .then_some(l.last_log_index)
    });
    let before = bad_macs(&cluster);
    // From the leader's own address: replace the five writes with one entry of term 1000,
    // which would make a follower's log beat every other in the next election.
    let prev = last - 5;
    let append = Msg::AppendEntries {
        term,
        leader_id: Id::from(cluster.peers[leader]),
        prev_log_index: prev,
        prev_log_term: term,
        entries: vec![Entry {
            term: 1000,
            command: LogCommand::Noop,
        }],
        leader_commit: prev,
        read_round: 0,
    };
    let rest = others(&cluster, &[leader]);
    let targets: Vec<_> = rest.iter().map(|&i| cluster.peers[i]).collect();
    let outsider = UdpSocket::bind("127.0.0.1:0").unwrap();
    forge(&outsider, &append, &targets);
    let socket = impersonate(&mut cluster, leader);
    forge(&socket, &append, &targets);
    wait_counted(&cluster, &rest, &before, 90);
    drop(socket);

    let (new, _) = cluster.wait_for_leader(&rest);
    assert_ne!(new, leader);
    for (i, s) in cluster.status().iter().enumerate() {
        if let Some(s) = s {
            assert!(
                s.last_log_term < 1000,
                "node {i} took the forged entry: {s:?}"
            );
        }
    }
    let mut client = Client::new(targets, cluster.auth.clone(), Duration::from_secs(20)).unwrap();
    assert_all_there(&mut client, "before", 5);
    put_all(&mut client, "after", 5);
    cluster.start_node_logged(leader, "warn");
    let mut client = cluster.lib_client(Duration::from_secs(20));
    assert_all_there(&mut client, "before", 5);
    assert_all_there(&mut client, "after", 5);
}

#[test]
fn a_node_with_the_wrong_key_cannot_join() {
    let other_dir = tempfile::tempdir().unwrap();
    let other_file = other_dir.path().join("other.key");
    let other = make_key(&other_file);
    let file = other_file.clone();
    let mut cluster = start_logged(3, move |i| {
        if i == 2 {
            NodeKey::File(file.clone())
        } else {
            NodeKey::Cluster
        }
    });
    cluster.wait_for_leader(&[0, 1]);
    let out = cluster.client(&["put", "k", "v"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cluster.client(&["get", "k"]);
    assert_eq!(stdout(&out).trim(), "v", "{}", stderr(&out));

    // A client with the odd node's key gets nothing done either.
    let out = common::client(
        &cluster.peers,
        &other_file,
        &["--timeout-ms", "1000", "put", "x", "y"],
    );
    assert!(!out.status.success());

    // For a while: node 2 (asked with its own key) runs and never leads; the others keep
    // counting its datagrams as bad MACs.
    let first = bad_macs(&cluster);
    let until = Instant::now() + Duration::from_secs(4);
    let mut seen_answer = false;
    while Instant::now() < until {
        if let Some(s) = &common::status_with(&cluster.peers, &other)[2] {
            assert_ne!(s.status.role, "Leader", "{s:?}");
            assert_eq!(s.status.commit_index, 0, "{s:?}");
            seen_answer = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(seen_answer, "node 2 never answered under its own key");
    let later = bad_macs(&cluster);
    for i in [0, 1] {
        assert!(later[i] > first[i], "node {i}: {first:?} -> {later:?}");
    }
    assert!(cluster.is_running(2));
    let log = cluster.log(2);
    assert!(log.contains("wrong cluster key?"), "node 2 logged:\n{log}");
    for i in [0, 1] {
        let log = cluster.log(i);
        let want = format!(
            "datagrams from peer {} fail authentication",
            cluster.peers[2]
        );
        assert!(log.contains(&want), "node {i} logged:\n{log}");
        assert!(
            log.contains("wrong cluster key?"),
            "node {i} logged:\n{log}"
        );
    }
}

#[test]
fn an_insecure_node_and_keyed_nodes_do_not_talk() {
    let cluster = start_logged(3, |i| {
        if i == 2 {
            NodeKey::Insecure
        } else {
            NodeKey::Cluster
        }
    });
    let (leader, _) = cluster.wait_for_leader(&[0, 1]);
    let out = cluster.client(&["put", "k", "v"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let addr = |i: usize| cluster.peers[i].to_string();
    // Node 2 campaigns (it hears no valid heartbeat) to both; the leader sends it heartbeats.
    eventually("each side saying why the other fails", || {
        let (keyed, insecure) = (cluster.log(leader), cluster.log(2));
        (keyed.contains(&format!("from peer {}", addr(2)))
            && keyed.contains("carries no MAC")
            && insecure.contains("runs --insecure")
            && insecure.contains(&format!("from peer {}", addr(leader))))
        .then_some(())
    });
    let insecure = cluster.log(2);
    assert!(
        insecure.contains("running --insecure"),
        "no warning at start:\n{insecure}"
    );
    let status = common::status_with(&cluster.peers, &Auth::Insecure);
    let s = status[2]
        .as_ref()
        .expect("the insecure node answers plain JSON");
    assert_ne!(s.status.role, "Leader");
    assert!(status[0].is_none() && status[1].is_none());
}

#[test]
fn a_node_without_a_key_refuses_to_start_and_says_how_to_make_one() {
    let cluster = Cluster::prepare(3, &[], |_| NodeKey::Nothing);
    let out = cluster.run_node_to_exit(0);
    assert!(!out.status.success());
    let said = stderr(&out);
    assert!(said.contains("no cluster key"), "{said}");
    assert!(said.contains("raftright keygen"), "{said}");
    assert!(said.contains("--insecure"), "{said}");
}

#[test]
fn a_bad_key_file_is_a_clear_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        ("short.key", b"abcdef\n", "64 hex digits"),
        ("nothex.key", &[b'z'; 64], "not hex"),
        ("absent.key", b"", "cannot read"),
    ];
    for (name, content, want) in cases {
        let path = dir.path().join(name);
        if name != "absent.key" {
            std::fs::write(&path, content).unwrap();
        }
        let cluster = Cluster::prepare(3, &[], |_| NodeKey::File(path.clone()));
        let out = cluster.run_node_to_exit(0);
        assert!(!out.status.success(), "{name}");
        let said = stderr(&out);
        assert!(said.contains(name) && said.contains(want), "{name}: {said}");
        // The client says the same.
        let out = common::client(&cluster.peers, &path, &["get", "k"]);
        assert!(!out.status.success(), "{name}");
        assert!(stderr(&out).contains(name), "{name}: {}", stderr(&out));
    }
}

#[test]
fn keygen_writes_a_private_key_and_overwrites_only_when_forced() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.key");
    let keygen = |extra: &[&str]| {
        let child = Command::new(BIN)
            .arg("keygen")
            .arg(&path)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_with_deadline(child)
    };
    let out = keygen(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.len(), 65, "{text:?}");
    assert!(text.trim().chars().all(|c| c.is_ascii_hexdigit()));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let first = ClusterKey::load(&path).unwrap();

    let out = keygen(&[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(ClusterKey::load(&path).unwrap(), first, "overwritten");

    let out = keygen(&["--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(ClusterKey::load(&path).unwrap(), first);
}
