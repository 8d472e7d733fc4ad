//! `raftright node`: run one server of a cluster over UDP.

use raftright::raft::Mutant;
use raftright::runtime::commit::PowerLoss;
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
    pub liveness: super::LivenessArgs,
    #[command(flatten)]
    pub key: super::KeyArgs,
    /// Testing only: hold each batch of writes in memory for this long before it reaches the
    /// file, its fsync complete; a kill then loses what a power loss would.
    #[arg(long, hide = true, value_name = "MS")]
    pub test_power_loss_fsync_ms: Option<u64>,
    /// Testing only: run a deliberately broken variant of the protocol (see `check --list-mutants`).
    #[arg(long, hide = true, value_name = "NAME", value_parser = parse_mutant)]
    pub test_mutant: Option<Mutant>,
}

fn parse_mutant(name: &str) -> Result<Mutant, String> {
    Mutant::parse(name).ok_or_else(|| format!("no mutant named {name:?}"))
}

pub fn run(args: NodeArgs) -> Result<i32, super::CliError> {
    let key = args.key.choose(None, "accept unauthenticated datagrams")?;
    let cfg = NodeConfig {
        peers: wire::parse_peers(&args.peers)?,
        index: args.id,
        data_dir: args.data_dir,
        election_timeout: Duration::from_millis(args.election_timeout_ms),
        heartbeat: Duration::from_millis(args.heartbeat_ms),
        pre_vote: !args.liveness.no_pre_vote,
        check_quorum: !args.liveness.no_check_quorum,
        auth: key.auth.clone(),
        power_loss: args.test_power_loss_fsync_ms.map(|ms| PowerLoss {
            fsync: Duration::from_millis(ms),
        }),
        mutant: args.test_mutant,
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
