//! Bad input and the operating system's edges: junk datagrams, outsiders, the documented wire
//! format, a port in use, signals, a corrupt store, the `spawn` demo.

mod common;

use common::{
    BIN, Cluster, NodeKey, eventually, free_ports, peers_arg, stderr, stdout, wait_with_deadline,
};
use raftright::raft::Msg;
use raftright::runtime::auth::{Auth, ClusterKey};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

fn local(socket: &UdpSocket) -> SocketAddrV4 {
    match socket.local_addr().unwrap() {
        SocketAddr::V4(a) => a,
        other => panic!("not IPv4: {other}"),
    }
}

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
    let me = local(&outsider);
    for _ in 0..20 {
        for peer in &cluster.peers {
            for datagram in &junk {
                let _ = outsider.send_to(datagram, peer);
                // The same, authenticated: a holder of the key sending nonsense.
                let _ = outsider.send_to(&cluster.auth.seal(me, *peer, datagram), peer);
            }
        }
        // A node's receive buffer holds only so much; let it drain.
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every node counted them under their reasons: unauthenticated ones as bad MACs, the
    // authenticated ones as junk, oversized or from an unknown sender.
    eventually("every node counting every kind of junk", || {
        cluster
            .node_status()
            .iter()
            .all(|s| {
                s.as_ref().is_some_and(|s| {
                    let d = s.drops;
                    d.bad_mac >= 20 && d.junk >= 20 && d.oversized > 0 && d.unknown_sender > 0
                })
            })
            .then_some(())
    });
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

/// A datagram in the documented format, made by hand with BLAKE3 from the README's recipe:
/// `[0xB3] payload tag`, tag = the first 16 bytes of keyed_hash(key, from || to || 0xB3 ||
/// payload), addresses as 4 octets and a big-endian port.
fn by_hand(key: &[u8; 32], from: SocketAddrV4, to: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    let addr =
        |a: SocketAddrV4| [a.ip().octets().to_vec(), a.port().to_be_bytes().to_vec()].concat();
    let mut body = vec![0xB3];
    body.extend_from_slice(payload);
    let input = [addr(from), addr(to), body.clone()].concat();
    let tag = blake3::keyed_hash(key, &input);
    [body, tag.as_bytes()[..16].to_vec()].concat()
}

#[test]
fn the_documented_wire_format_works_with_a_plain_socket() {
    let cluster = Cluster::start(3);
    let (leader, _) = cluster.wait_for_leader(&cluster.all());
    let to = cluster.peers[leader];
    let text = std::fs::read_to_string(cluster.key_file()).unwrap();
    let key: [u8; 32] = (0..32)
        .map(|i| u8::from_str_radix(&text.trim()[2 * i..2 * i + 2], 16).unwrap())
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let me = local(&socket);
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = br#"{"type":"ClientRequest","client_id":42,"seq":1,"op":{"op":"put","key":"nc","value":"hi"}}"#;
    socket.send_to(&by_hand(&key, me, to, request), to).unwrap();
    let mut buf = [0u8; 65_536];
    let (n, _) = socket.recv_from(&mut buf).unwrap();
    let want =
        br#"{"type":"ClientResponse","seq":1,"reply":{"status":"ok","result":{"result":"done"}}}"#;
    assert_eq!(
        &buf[..n],
        &by_hand(&key, to, me, want)[..],
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    // The plain JSON of the same request is dropped unanswered, and counted.
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let before = cluster.node_status()[leader].clone().unwrap().drops.bad_mac;
    socket.send_to(request, to).unwrap();
    assert!(
        socket.recv_from(&mut buf).is_err(),
        "a plain datagram was answered"
    );
    eventually("the plain datagram counted as bad_mac", || {
        let now = cluster.node_status()[leader].clone()?.drops.bad_mac;
        (now > before).then_some(())
    });
}

#[test]
fn an_insecure_cluster_speaks_plain_json() {
    let mut cluster = Cluster::start_keyed(3, &[], |_| NodeKey::Insecure);
    cluster.auth = Auth::Insecure; // how the harness asks for status
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
    // A client with a key gets nothing from an insecure node, and says why it might be.
    let out = common::client(
        &cluster.peers,
        &cluster.key_file(),
        &["--timeout-ms", "1000", "put", "k", "v"],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("another key"), "{}", stderr(&out));
    let out = Command::new(BIN)
        .args([
            "client",
            "--peers",
            &cluster.peers_arg(),
            "--insecure",
            "get",
            "nc",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim(), "hi", "{}", stderr(&out));
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let peers = free_ports(3);
    let _taken = UdpSocket::bind(peers[0]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = peers_arg(&peers);
    let child = Command::new(BIN)
        .args([
            "node",
            "--id",
            "0",
            "--peers",
            &list,
            "--insecure",
            "--data-dir",
        ])
        .arg(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_with_deadline(child);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("in use"), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("raftright node 0:"),
        "a banner before the error: {}",
        stderr(&out)
    );
    // spawn too: the error, and no banner or usage hints before it.
    let child = Command::new(BIN)
        .args(["spawn", "--insecure", "--port"])
        .arg(peers[0].port().to_string())
        .arg("--data-dir")
        .arg(dir.path().join("spawned"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_with_deadline(child);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("in use"), "{err}");
    assert!(
        !err.contains("Ctrl-C") && !err.contains("try:"),
        "a banner before the error: {err}"
    );
}

#[test]
fn another_nodes_directory_is_refused_by_name_not_as_corrupt() {
    let mut cluster = Cluster::start(3);
    cluster.wait_for_leader(&cluster.all());
    // Node 0's directory, free of its lock, and node 1's port, free.
    cluster.kill(0);
    cluster.kill(1);
    let list = peers_arg(&cluster.peers);
    let child = Command::new(BIN)
        .args(["node", "--id", "1", "--peers", &list, "--cluster-key-file"])
        .arg(cluster.key_file())
        .arg("--data-dir")
        .arg(cluster.data_dir(0))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_with_deadline(child);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(!err.contains("corrupt"), "{err}");
    assert!(
        err.contains(&format!("belongs to node {}", cluster.peers[0])),
        "{err}"
    );
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
    let out = cluster.client(&["status", "-w", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[down]["answered"], false);
    assert!(lines[down]["role"].is_null());
    assert_eq!(lines[leader]["answered"], true);
    assert_eq!(lines[leader]["role"], "Leader");
    // The default is a table: a header, then one row per server, addresses as ip:port.
    let out = cluster.client(&["status", "--timeout-ms", "300"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 4, "{table}");
    assert!(rows[0].starts_with("ID  ADDRESS"), "{table}");
    let leader_row: Vec<&str> = rows[1 + leader].split_whitespace().collect();
    assert_eq!(leader_row[1], cluster.peers[leader].to_string(), "{table}");
    assert_eq!(leader_row[2], "Leader", "{table}");
    assert_eq!(leader_row[7], cluster.peers[leader].to_string(), "{table}");
    assert!(
        rows[1 + down].ends_with("(no answer within 300 ms)"),
        "--timeout-ms is what status waits: {table}"
    );
    // A write says so, as etcdctl does.
    let out = cluster.client(&["put", "k", "v"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "OK");
}

/// The README's quick start: `raftright spawn`, then `raftright client ... put` from the same
/// directory, which finds the key spawn made in `raftright-data/cluster.key`.
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
    let log = std::fs::File::create(dir.path().join("spawn.log")).unwrap();
    let mut child = Command::new(BIN)
        .args([
            "spawn",
            "--servers",
            "3",
            "--port",
            &peers[0].port().to_string(),
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let client = |args: &[&str]| {
        let child = Command::new(BIN)
            .args(["client", "--peers", &peers_arg(&peers)])
            .args(args)
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_with_deadline(child)
    };
    let data = dir.path().join("raftright-data");
    eventually("spawn making its key", || {
        ClusterKey::load(&data.join("cluster.key")).ok()
    });
    let out = client(&["--timeout-ms", "20000", "put", "demo", "works"]);
    let got = client(&["get", "demo"]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&got).trim(), "works");
    assert!(data.join("node-0").join("raft.wal").exists());
    assert!(ClusterKey::load(&data.join("cluster.key")).is_ok());
    let said = std::fs::read_to_string(dir.path().join("spawn.log")).unwrap();
    assert!(
        said.contains("--cluster-key-file raftright-data/cluster.key"),
        "{said}"
    );
}

#[test]
fn spawn_keeps_its_key_across_runs_and_names_it_for_another_data_dir() {
    let peers = free_ports(1);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("elsewhere");
    let run = || {
        let mut child = Command::new(BIN)
            .args([
                "spawn",
                "--servers",
                "1",
                "--port",
                &peers[0].port().to_string(),
            ])
            .arg("--data-dir")
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let key = data.join("cluster.key");
        eventually("spawn making its key", || ClusterKey::load(&key).ok());
        let out = common::client(&peers, &key, &["--timeout-ms", "20000", "put", "k", "v"]);
        assert!(out.status.success(), "{}", stderr(&out));
        common::signal(&child, libc::SIGTERM);
        let _ = child.wait();
        let mut said = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut said).unwrap();
        (ClusterKey::load(&key).unwrap(), said)
    };
    let (first, said) = run();
    assert!(said.contains("(new)"), "{said}");
    assert!(
        said.contains(&format!(
            "--cluster-key-file {}",
            data.join("cluster.key").display()
        )),
        "{said}"
    );
    let (second, said) = run();
    assert_eq!(first, second, "a second run made a new key");
    assert!(!said.contains("(new)"), "{said}");
}
