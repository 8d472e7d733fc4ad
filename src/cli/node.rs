//! `raftright node`: run one server of a cluster over UDP.

use raftright::runtime::node::{self, NodeConfig};
use raftright::runtime::wire;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct NodeArgs {
    /// This server's position in --peers (0-based).
    #[arg(long)]
    pub id: usize,
    /// Every server's IPv4 host:port, comma-separated, in the same order on every server.
    #[arg(long)]
    pub peers: String,
    /// Where this server keeps its durable state (created if missing).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Election timeouts are drawn at random between this and twice this.
    #[arg(long, default_value_t = 300)]
    pub election_timeout_ms: u64,
    /// How often a leader sends AppendEntries when idle.
    #[arg(long, default_value_t = 100)]
    pub heartbeat_ms: u64,
    #[command(flatten)]
    pub protocol: super::ProtocolArgs,
    #[command(flatten)]
    pub key: super::KeyArgs,
}

pub fn run(args: NodeArgs) -> Result<i32, super::CliError> {
    let key = args.key.choose(None, "accept unauthenticated datagrams")?;
    let cfg = NodeConfig {
        peers: wire::parse_peers(&args.peers)?,
        index: args.id,
        data_dir: args.data_dir,
        election_timeout: Duration::from_millis(args.election_timeout_ms),
        heartbeat: Duration::from_millis(args.heartbeat_ms),
        pre_vote: !args.protocol.no_pre_vote,
        check_quorum: !args.protocol.no_check_quorum,
        read_index: !args.protocol.log_reads,
        auth: key.auth.clone(),
    };
    cfg.validate()?;
    eprintln!(
        "raftright node {}: {} of {} servers, data in {}, {}",
        cfg.index,
        cfg.addr(),
        cfg.peers.len(),
        cfg.data_dir.display(),
        key.describe()
    );
    node::run(&[cfg])?;
    Ok(0)
}
