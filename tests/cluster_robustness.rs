//! Bad input and the operating system's edges: junk datagrams, outsiders, the documented wire
//! format, a port in use, signals, a corrupt store, the `spawn` demo.

mod common;

use common::{BIN, Cluster, eventually, free_ports, peers_arg, stderr, stdout, wait_with_deadline};
use raftright::raft::Msg;
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn junk_datagrams_and_outsiders_do_not_hurt() {
    let mut cluster = Cluster::start(3);
    let (leader, term) = cluster.wait_for_leader(&cluster.all());
    let junk: Vec<Vec<u8>> = vec![
        vec![],
        b"\x00\xff\xfe garbage".to_vec(),
        b"{".to_vec(),
        b"null".to_vec(),
        br#"{"type":"NoSuchMessage"}"#.to_vec(),
        br#"{"type":"AppendEntries","term":1,"leader_id":1"#.to_vec(),
        br#"{"type":"RequestVote","term":-5}"#.to_vec(),
        vec![b'x'; 60_000],
        format!(
            r#"{{"type":"ClientRequest","client_id":1,"seq":1,"op":{{"op":"put","key":"k","value":"{}"}}}}"#,
            "v".repeat(10_000)
        )
        .into_bytes(),
        // Peer RPCs from an address outside --peers, with a term that would depose the leader.
        br#"{"type":"RequestVote","term":999,"candidate_id":1,"last_log_index":999,"last_log_term":999}"#.to_vec(),
        br#"{"type":"AppendEntries","term":999,"leader_id":1,"prev_log_index":0,"prev_log_term":0,"entries":[],"leader_commit":99}"#.to_vec(),
        br#"{"type":"AppendEntriesResponse","term":999,"success":true,"match_index":99,"conflict":null}"#.to_vec(),
    ];
    let outsider = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..20 {
        for peer in &cluster.peers {
            for datagram in &junk {
                let _ = outsider.send_to(datagram, peer);
            }
        }
    }
    let out = cluster.client(&["put", "still", "fine"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for i in cluster.all() {
        assert!(cluster.is_running(i), "node {i} died");
    }
    let (leader_after, term_after) = cluster.wait_for_leader(&cluster.all());
    assert_eq!(
        (leader_after, term_after),
        (leader, term),
        "an outsider moved the term"
    );
    let out = cluster.client(&["get", "still"]);
    assert_eq!(stdout(&out).trim(), "fine");
}

#[test]
fn the_documented_wire_format_works_with_a_plain_socket() {
    let cluster = Cluster::start(3);
    let (leader, _) = cluster.wait_for_leader(&cluster.all());
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = br#"{"type":"ClientRequest","client_id":42,"seq":1,"op":{"op":"put","key":"nc","value":"hi"}}"#;
    socket.send_to(request, cluster.peers[leader]).unwrap();
    let mut buf = [0u8; 65_536];
    let (n, _) = socket.recv_from(&mut buf).unwrap();
    let reply = std::str::from_utf8(&buf[..n]).unwrap();
    assert_eq!(
        reply,
        r#"{"type":"ClientResponse","seq":1,"reply":{"status":"ok","result":{"result":"done"}}}"#
    );
    socket
        .send_to(br#"{"type":"StatusRequest"}"#, cluster.peers[leader])
        .unwrap();
    let (n, _) = socket.recv_from(&mut buf).unwrap();
    let status: Msg = serde_json::from_slice(&buf[..n]).unwrap();
    assert!(matches!(status, Msg::StatusResponse(s) if s.role == "Leader"));
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let peers = free_ports(3);
    let _taken = UdpSocket::bind(peers[0]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = peers_arg(&peers);
    let child = Command::new(BIN)
        .args(["node", "--id", "0", "--peers", &list, "--data-dir"])
        .arg(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_with_deadline(child);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("in use"), "{}", stderr(&out));
}

#[test]
fn sigterm_stops_a_node_cleanly_and_it_restarts_with_its_state() {
    let mut cluster = Cluster::start(3);
    cluster.wait_for_leader(&cluster.all());
    let out = cluster.client(&["put", "k", "v"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for i in cluster.all() {
        let child = cluster.take_child(i);
        common::signal(&child, libc::SIGTERM);
        let out = wait_with_deadline(child);
        assert!(
            out.status.success(),
            "node {i} exited with {:?}",
            out.status
        );
    }
    for i in cluster.all() {
        cluster.start_node(i);
    }
    let out = cluster.client(&["--timeout-ms", "20000", "get", "k"]);
    assert_eq!(stdout(&out).trim(), "v", "{}", stderr(&out));
}

#[test]
fn a_corrupt_store_stops_the_node_with_a_clear_error() {
    let mut cluster = Cluster::start(3);
    cluster.wait_for_leader(&cluster.all());
    for k in 0..5 {
        let out = cluster.client(&["put", &format!("k{k}"), "v"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    cluster.kill(2);
    let wal = cluster.data_dir(2).join("raft.wal");
    let mut bytes = std::fs::read(&wal).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(&wal, &bytes).unwrap();
    let out = cluster.run_node_to_exit(2);
    assert!(!out.status.success(), "started on a corrupt store");
    assert!(stderr(&out).contains("corrupt"), "{}", stderr(&out));
}

#[test]
fn status_marks_a_node_that_does_not_answer() {
    let mut cluster = Cluster::start(3);
    let (leader, _) = cluster.wait_for_leader(&cluster.all());
    let down = (leader + 1) % 3;
    cluster.kill(down);
    let out = cluster.client(&["status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[down]["answered"], false);
    assert!(lines[down]["role"].is_null());
    assert_eq!(lines[leader]["answered"], true);
    assert_eq!(lines[leader]["role"], "Leader");
}

#[test]
fn spawn_runs_a_whole_cluster_in_one_process() {
    let peers = eventually("three consecutive free ports", || {
        let first = free_ports(1)[0];
        let run: Vec<_> = (0..3)
            .map(|i| std::net::SocketAddrV4::new(*first.ip(), first.port() + i))
            .collect();
        run.iter()
            .all(|a| UdpSocket::bind(a).is_ok())
            .then_some(run)
    });
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "spawn",
            "--servers",
            "3",
            "--port",
            &peers[0].port().to_string(),
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = common::client(&peers, &["--timeout-ms", "20000", "put", "demo", "works"]);
    let got = common::client(&peers, &["get", "demo"]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&got).trim(), "works");
    assert!(dir.path().join("node-0").join("raft.wal").exists());
}
