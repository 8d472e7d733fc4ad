//! `raftright client`: put, get, delete and status against a running cluster.
//!
//! The cluster key: `--cluster-key-file FILE`, or `--insecure`, or else `raftright-data/
//! cluster.key` if it exists (where `raftright spawn` makes one when run from this directory).

use super::{DEFAULT_DATA_DIR, KEY_FILE, KeyArgs};
use raftright::runtime::client::{Client, ClientError};
use raftright::runtime::wire::{self, NodeStatus};
use serde_json::json;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct ClientArgs {
    /// Every server's IPv4 host:port, comma-separated.
    #[arg(long)]
    pub peers: String,
    /// Give up (non-zero exit) when the operation has not committed within this time.
    #[arg(long, default_value_t = 5000, global = true)]
    pub timeout_ms: u64,
    /// Without --cluster-key-file or --insecure, the key is raftright-data/cluster.key.
    #[command(flatten)]
    pub key: KeyArgs,
    #[command(subcommand)]
    pub op: ClientOp,
}

#[derive(clap::Subcommand, Debug)]
pub enum ClientOp {
    /// Write KEY = VALUE; exits 0 once the write is committed.
    Put {
        key: String,
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Print the value of KEY (a linearizable read); nothing is printed for a missing key.
    Get { key: String },
    /// Remove KEY; exits 0 once the removal is committed.
    Delete { key: String },
    /// Print one JSON object per server and line: its role, term, indexes and leader.
    Status,
}

pub fn run(args: ClientArgs) -> Result<i32, super::CliError> {
    let peers = wire::parse_peers(&args.peers)?;
    let timeout = Duration::from_millis(args.timeout_ms);
    let fallback = PathBuf::from(DEFAULT_DATA_DIR).join(KEY_FILE);
    let key = args
        .key
        .choose(Some(&fallback), "talk to a cluster that runs without one")?;
    let mut client = Client::new(peers.clone(), key.auth.clone(), timeout)
        .map_err(|e| format!("cannot open a socket: {e}"))?;
    let done = match args.op {
        ClientOp::Put { key, value } => client.put(&key, &value),
        ClientOp::Delete { key } => client.delete(&key),
        ClientOp::Get { key } => client.get(&key).map(|value| match value {
            Some(value) => println!("{value}"),
            None => eprintln!("(no value for {key})"),
        }),
        ClientOp::Status => return status(&mut client, &peers, timeout, &key),
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
    peers: &[SocketAddrV4],
    timeout: Duration,
    key: &super::Chosen,
) -> Result<i32, super::CliError> {
    let wait = timeout.min(Duration::from_secs(1));
    let answers = client
        .status(wait)
        .map_err(|e| format!("network error: {e}"))?;
    for (id, (addr, answer)) in peers.iter().zip(&answers).enumerate() {
        println!("{}", status_line(id, *addr, answer.as_ref(), wait));
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

/// One server's line; a server that did not answer has `"answered": false` and nulls.
fn status_line(
    id: usize,
    addr: SocketAddrV4,
    status: Option<&NodeStatus>,
    wait: Duration,
) -> String {
    let line = match status {
        Some(NodeStatus { status: s, drops }) => json!({
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
            "drops": drops,
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
            "drops": null,
        }),
    };
    line.to_string()
}
