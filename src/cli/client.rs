//! `raftright client`: put, get, delete and status against a running cluster.
//!
//! The cluster key: `--cluster-key-file FILE`, or `--insecure`, or else `raftright-data/
//! cluster.key` if it exists (where `raftright spawn` makes one when run from this directory).

use super::{DEFAULT_DATA_DIR, KEY_FILE, KeyArgs};
use raftright::raft::{Change, Index, Status};
use raftright::runtime::client::{Client, ClientError};
use raftright::runtime::wire::{self, NodeStatus};
use serde_json::json;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::time::Duration;

/// How long `put`, `get` and `delete` wait for a commit, and `status` for answers, unless
/// `--timeout-ms` says otherwise.
const OP_TIMEOUT_MS: u64 = 5000;
const STATUS_TIMEOUT_MS: u64 = 1000;

#[derive(clap::Args, Debug)]
pub struct ClientArgs {
    /// Every server's IPv4 host:port, comma-separated (required; before or after the
    /// subcommand). Members added since are found through the ones named here.
    #[arg(long, global = true)]
    pub peers: Option<String>,
    /// Give up (non-zero exit) when the operation has not committed within this time, or, for
    /// status, stop waiting for servers that have not answered [default: 5000; status: 1000]
    #[arg(long, global = true)]
    pub timeout_ms: Option<u64>,
    /// Without --cluster-key-file or --insecure, the key is raftright-data/cluster.key.
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(subcommand)]
    pub op: ClientOp,
}

#[derive(clap::Subcommand, Debug)]
pub enum ClientOp {
    /// Write KEY = VALUE; prints OK and exits 0 once the write is committed.
    Put {
        /// The key to write.
        key: String,
        /// Its new value.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Print the value of KEY (a linearizable read); nothing is printed for a missing key.
    Get {
        /// The key to read.
        key: String,
    },
    /// Remove KEY; prints OK and exits 0 once the removal is committed.
    Delete {
        /// The key to remove.
        key: String,
    },
    /// Print every server's role, term, indexes and leader: a table, or one JSON object per
    /// server and line with `--output json`.
    Status {
        /// table: aligned columns for people; json: one object per server and line, for
        /// scripts.
        #[arg(short = 'w', long, value_enum, default_value_t = StatusFormat::Table)]
        output: StatusFormat,
    },
    /// Hand leadership to ADDR (ip:port, a voter): the leader stops taking writes,
    /// brings ADDR up to date and has it start an election at once; prints OK once ADDR leads.
    TransferLeader {
        /// The member to lead next, as ip:port.
        addr: String,
    },
    /// Add ADDR (ip:port, a server started with `node --join`) to the configuration, as a
    /// voter, or with --learner as a learner (it receives the log but does not vote until
    /// promoted); prints OK once the change has committed.
    AddServer {
        /// The server to add, as ip:port.
        addr: String,
        /// Add it without a vote: it catches up first, and `promote` makes it a voter.
        #[arg(long)]
        learner: bool,
    },
    /// Make the learner ADDR a voter; prints OK once the change has committed.
    Promote {
        /// The learner to promote, as ip:port.
        addr: String,
    },
    /// Remove the voter or learner ADDR from the configuration (the leader too: it steps down
    /// once the change commits); prints OK once the change has committed.
    RemoveServer {
        /// The member to remove, as ip:port.
        addr: String,
    },
    /// Print the configuration the leader uses: each voter and learner, and which one leads.
    Members,
    /// Have ADDR (ip:port, a member) compact its log into a snapshot through what it
    /// has applied, as --snapshot-entries does by itself; prints the snapshot's last index.
    Snapshot {
        /// The member to compact, as ip:port.
        addr: String,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFormat {
    Table,
    Json,
}

pub fn run(args: ClientArgs) -> Result<i32, super::CliError> {
    let peers = args
        .peers
        .as_deref()
        .ok_or("client needs --peers HOST:PORT,... (every server's address)")?;
    let peers = wire::parse_peers(peers)?;
    let default_ms = match args.op {
        ClientOp::Status { .. } => STATUS_TIMEOUT_MS,
        _ => OP_TIMEOUT_MS,
    };
    let timeout = Duration::from_millis(args.timeout_ms.unwrap_or(default_ms));
    let fallback = PathBuf::from(DEFAULT_DATA_DIR).join(KEY_FILE);
    let key = args
        .key
        .choose(Some(&fallback), "talk to a cluster that runs without one")?;
    let mut client = Client::new(peers.clone(), key.auth.clone(), timeout)
        .map_err(|e| format!("cannot open a socket: {e}"))?;
    let done = match args.op {
        // Like etcdctl: a word on success, so that silence never has to mean it worked.
        ClientOp::Put { key, value } => client.put(&key, &value).map(|()| println!("OK")),
        ClientOp::Delete { key } => client.delete(&key).map(|()| println!("OK")),
        ClientOp::Get { key } => client.get(&key).map(|value| match value {
            Some(value) => println!("{value}"),
            None => eprintln!("(no value for {key})"),
        }),
        ClientOp::Status { output } => {
            return status(&mut client, timeout, &key, output);
        }
        ClientOp::TransferLeader { addr } => {
            let target = wire::parse_addr(&addr)?;
            client.transfer_leader(target).map(|()| println!("OK"))
        }
        ClientOp::AddServer { addr, learner } => {
            let id = wire::parse_addr(&addr)?.into();
            let change = match learner {
                true => Change::AddLearner(id),
                false => Change::AddVoter(id),
            };
            client.change_membership(change).map(|_| println!("OK"))
        }
        ClientOp::Promote { addr } => {
            let id = wire::parse_addr(&addr)?.into();
            client
                .change_membership(Change::Promote(id))
                .map(|_| println!("OK"))
        }
        ClientOp::RemoveServer { addr } => {
            let id = wire::parse_addr(&addr)?.into();
            client
                .change_membership(Change::Remove(id))
                .map(|_| println!("OK"))
        }
        ClientOp::Members => {
            let members = client
                .members(timeout)
                .map_err(|e| format!("network error: {e}"))?;
            let Some((leader, status)) = members else {
                let why = format!(
                    "no leader answered within {} ms (no quorum, or none of --peers \
                     reachable; {})",
                    timeout.as_millis(),
                    key.silence_hint()
                );
                return Err(why.into());
            };
            print!("{}", members_table(leader, &status));
            Ok(())
        }
        ClientOp::Snapshot { addr } => {
            let target = wire::parse_addr(&addr)?;
            match client.snapshot(target, timeout)? {
                Some(NodeStatus { status: s, .. }) => {
                    println!(
                        "snapshot through index {}; entries {}..={} kept",
                        s.snapshot_index, s.first_index, s.last_log_index
                    );
                    Ok(())
                }
                None => {
                    return Err(format!(
                        "{target} did not answer within {} ms ({})",
                        timeout.as_millis(),
                        key.silence_hint()
                    )
                    .into());
                }
            }
        }
    };
    match done {
        Err(e @ ClientError::Timeout { .. }) => Err(format!("{e} ({})", key.silence_hint()).into()),
        other => {
            other?;
            Ok(0)
        }
    }
}

fn status(
    client: &mut Client,
    timeout: Duration,
    key: &super::Chosen,
    output: StatusFormat,
) -> Result<i32, super::CliError> {
    let wait = timeout;
    // --peers, then the members a configuration names that --peers does not.
    let (peers, answers) = client
        .status_of_members(wait)
        .map_err(|e| format!("network error: {e}"))?;
    let peers = &peers;
    match output {
        StatusFormat::Json => {
            for (id, (addr, answer)) in peers.iter().zip(&answers).enumerate() {
                println!("{}", status_line(id, *addr, answer.as_ref(), wait));
            }
        }
        StatusFormat::Table => print!("{}", status_table(peers, &answers, wait)),
    }
    if answers.iter().all(Option::is_none) {
        let why = match client.take_rejected() {
            Some((from, why)) => format!("; an answer from {from} {why}"),
            None => String::new(),
        };
        return Err(format!(
            "no server answered within {} ms ({}){why}",
            wait.as_millis(),
            key.silence_hint()
        )
        .into());
    }
    Ok(0)
}

/// The leader's configuration, one member a line: address, voter or learner, and which
/// one leads; then the index of the configuration's entry and whether it has committed.
fn members_table(leader: SocketAddrV4, s: &Status) -> String {
    let addr = |id: stateright::actor::Id| SocketAddrV4::from(id).to_string();
    let mut rows: Vec<(String, &str)> = s.voters.iter().map(|&v| (addr(v), "voter")).collect();
    rows.extend(s.learners.iter().map(|&l| (addr(l), "learner")));
    let width = rows.iter().map(|(a, _)| a.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (member, role) in rows {
        let leads = if member == leader.to_string() {
            "  leader"
        } else {
            ""
        };
        out.push_str(format!("{member:width$}  {role:7}{leads}").trim_end());
        out.push('\n');
    }
    let committed = if s.commit_index >= s.membership_index {
        "committed"
    } else {
        "not yet committed"
    };
    out.push_str(&format!(
        "configuration of index {} ({committed}); leader {leader} in term {}\n",
        s.membership_index, s.term
    ));
    out
}

/// One server's line; a server that did not answer has `"answered": false` and nulls.
fn status_line(
    id: usize,
    addr: SocketAddrV4,
    status: Option<&NodeStatus>,
    wait: Duration,
) -> String {
    let line = match status {
        Some(NodeStatus {
            status: s,
            drops,
            lost_log,
            lost_followers,
        }) => json!({
            "id": id,
            "addr": addr.to_string(),
            "answered": true,
            "role": s.role,
            "term": s.term,
            "voted_for": s.voted_for.map(|v| SocketAddrV4::from(v).to_string()),
            "commit_index": s.commit_index,
            "last_log_index": s.last_log_index,
            "last_log_term": s.last_log_term,
            "snapshot_index": s.snapshot_index,
            "first_index": s.first_index,
            "leader": s.leader.map(|l| SocketAddrV4::from(l).to_string()),
            "voters": s.voters.iter().map(|&v| SocketAddrV4::from(v).to_string()).collect::<Vec<_>>(),
            "learners": s.learners.iter().map(|&l| SocketAddrV4::from(l).to_string()).collect::<Vec<_>>(),
            "membership_index": s.membership_index,
            "drops": drops,
            "lost_log": lost_log,
            "lost_followers": lost_followers.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
        }),
        None => json!({
            "id": id,
            "addr": addr.to_string(),
            "answered": false,
            "error": format!("no answer within {} ms", wait.as_millis()),
            "role": null,
            "term": null,
            "voted_for": null,
            "commit_index": null,
            "last_log_index": null,
            "last_log_term": null,
            "snapshot_index": null,
            "first_index": null,
            "leader": null,
            "voters": null,
            "learners": null,
            "membership_index": null,
            "drops": null,
            "lost_log": null,
            "lost_followers": null,
        }),
    };
    line.to_string()
}

/// What the status table says of lost logs: this server's, or its followers' as their leader.
fn lost_alert(lost_log: Option<Index>, lost_followers: &[SocketAddrV4]) -> String {
    match (lost_log, lost_followers) {
        (Some(n), _) => format!("LOST ITS LOG (acknowledged through {n}): replace it"),
        (None, []) => "-".into(),
        (None, lost) => format!(
            "followers lost their log: {}",
            lost.iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// Every server's status as aligned columns, one row per server; a server that did not answer
/// says so in place of its fields.
fn status_table(peers: &[SocketAddrV4], answers: &[Option<NodeStatus>], wait: Duration) -> String {
    let addr = |id: Option<stateright::actor::Id>| {
        id.map_or("-".to_string(), |a| SocketAddrV4::from(a).to_string())
    };
    let mut rows = vec![
        [
            "ID",
            "ADDRESS",
            "ROLE",
            "TERM",
            "VOTED FOR",
            "COMMIT",
            "LAST LOG",
            "LEADER",
            "DROPS",
            "ALERT",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for (id, (peer, answer)) in peers.iter().zip(answers).enumerate() {
        let mut row = vec![id.to_string(), peer.to_string()];
        match answer {
            Some(NodeStatus {
                status: s,
                drops,
                lost_log,
                lost_followers,
            }) => row.extend([
                s.role.clone(),
                s.term.to_string(),
                addr(s.voted_for),
                s.commit_index.to_string(),
                format!("{}:{}", s.last_log_index, s.last_log_term),
                addr(s.leader),
                (drops.junk + drops.oversized + drops.unknown_sender + drops.bad_mac).to_string(),
                lost_alert(*lost_log, lost_followers),
            ]),
            None => row.push(format!("(no answer within {} ms)", wait.as_millis())),
        }
        rows.push(row);
    }
    // Only full rows set the widths: a silent server's note runs on past its columns.
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter(|r| r.len() == columns)
                .filter_map(|r| r.get(c))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell:w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftright::raft::Status;

    #[test]
    fn the_status_table_aligns_servers_and_names_addresses_as_ip_port() {
        let peers: Vec<SocketAddrV4> = ["127.0.0.1:3000", "127.0.0.1:3001"]
            .map(|a| a.parse().unwrap())
            .to_vec();
        let leader = Some(stateright::actor::Id::from(peers[0]));
        let answers = [
            Some(NodeStatus {
                status: Status {
                    role: "Leader".into(),
                    term: 3,
                    voted_for: leader,
                    commit_index: 7,
                    last_log_index: 8,
                    last_log_term: 3,
                    snapshot_index: 0,
                    first_index: 1,
                    leader,
                    voters: Vec::new(),
                    learners: Vec::new(),
                    membership_index: 0,
                },
                drops: Default::default(),
                lost_log: None,
                lost_followers: vec![peers[1]],
            }),
            None,
        ];
        let table = status_table(&peers, &answers, Duration::from_millis(1000));
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(
            rows,
            [
                "ID  ADDRESS         ROLE    TERM  VOTED FOR       COMMIT  LAST LOG  LEADER          DROPS  ALERT",
                "0   127.0.0.1:3000  Leader  3     127.0.0.1:3000  7       8:3       127.0.0.1:3000  0      followers lost their log: 127.0.0.1:3001",
                "1   127.0.0.1:3001  (no answer within 1000 ms)",
            ]
        );
    }

    #[test]
    fn members_lists_voters_then_learners_and_marks_the_leader() {
        let id = |a: &str| stateright::actor::Id::from(a.parse::<SocketAddrV4>().unwrap());
        let leader: SocketAddrV4 = "127.0.0.1:3001".parse().unwrap();
        let status = Status {
            role: "Leader".into(),
            term: 2,
            voted_for: None,
            commit_index: 6,
            last_log_index: 7,
            last_log_term: 2,
            snapshot_index: 0,
            first_index: 1,
            leader: Some(leader.into()),
            voters: vec![id("127.0.0.1:3000"), id("127.0.0.1:3001")],
            learners: vec![id("127.0.0.1:3010")],
            membership_index: 7,
        };
        let table = members_table(leader, &status);
        assert_eq!(
            table.lines().collect::<Vec<_>>(),
            [
                "127.0.0.1:3000  voter",
                "127.0.0.1:3001  voter    leader",
                "127.0.0.1:3010  learner",
                "configuration of index 7 (not yet committed); leader 127.0.0.1:3001 in term 2",
            ]
        );
    }
}
