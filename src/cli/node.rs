//! `raftright node`: run one server of a cluster over UDP.
//!
//! Once it serves, a node writes its process id to `DATA_DIR/raftright.pid`, so that a script
//! can find the process of the server that `client status` names (the store's lock keeps a
//! second process off the directory, so the file names the one that holds it).

use raftright::raft::Mutant;
use raftright::runtime::commit::PowerLoss;
use raftright::runtime::node::{self, NodeConfig};
use raftright::runtime::wire;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct NodeArgs {
    /// This server's position in --peers (0-based).
    #[arg(long, required_unless_present = "join", conflicts_with = "join")]
    pub id: Option<usize>,
    /// The initial configuration: every server's IPv4 host:port, comma-separated, in the same
    /// order on every server. Only seeds it: once a configuration change is in this server's
    /// log or snapshot, that configuration holds, whatever --peers says on a restart.
    #[arg(long, required_unless_present = "join", conflicts_with = "join")]
    pub peers: Option<String>,
    /// Start a server that is not yet a member: JOIN lists the cluster's current members
    /// (host:port, comma-separated; `client members` prints them; this server's own --addr
    /// among them is ignored). It never campaigns, and waits
    /// to be added (`client add-server ADDR --learner`), then catches up from the leader.
    #[arg(long, requires = "addr")]
    pub join: Option<String>,
    /// With --join: this server's own IPv4 host:port, the ADDR the leader is asked to add.
    #[arg(long, requires = "join")]
    pub addr: Option<String>,
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
    let (peers, index, joining) = match (&args.join, &args.addr, &args.peers, args.id) {
        (Some(join), Some(addr), _, _) => {
            let mut peers = wire::parse_peers(join).map_err(|e| e.replace("--peers", "--join"))?;
            let addr = wire::parse_addr(addr)?;
            // The same list as the others' --peers will do (a server replaced at its address
            // is in it): it joins the rest.
            peers.retain(|&p| p != addr);
            if peers.is_empty() {
                return Err(
                    format!("--join names no server but this one's own --addr {addr}").into(),
                );
            }
            peers.push(addr);
            let index = peers.len() - 1;
            (peers, index, true)
        }
        (_, _, Some(peers), Some(id)) => (wire::parse_peers(peers)?, id, false),
        _ => return Err("node needs --id and --peers, or --join and --addr".into()),
    };
    let cfg = NodeConfig {
        peers,
        index,
        joining,
        data_dir: args.data_dir,
        election_timeout: Duration::from_millis(args.election_timeout_ms),
        heartbeat: Duration::from_millis(args.heartbeat_ms),
        pre_vote: !args.protocol.no_pre_vote,
        check_quorum: !args.protocol.no_check_quorum,
        read_index: !args.protocol.log_reads,
        snapshot_entries: args.protocol.snapshot_entries,
        auth: key.auth.clone(),
        power_loss: args.test_power_loss_fsync_ms.map(|ms| PowerLoss {
            fsync: Duration::from_millis(ms),
        }),
        mutant: args.test_mutant,
    };
    cfg.validate()?;
    let who = if cfg.joining {
        format!(
            "{} joining {} (a member once added)",
            cfg.addr(),
            wire::peers_text(&cfg.peers[..cfg.index])
        )
    } else {
        format!(
            "node {}: {} of {} servers",
            cfg.index,
            cfg.addr(),
            cfg.peers.len()
        )
    };
    let banner = format!(
        "raftright {who}, data in {}, {}, pid {}",
        cfg.data_dir.display(),
        key.describe(),
        std::process::id()
    );
    let data_dir = cfg.data_dir.clone();
    node::run(&[cfg], || {
        write_pid_file(&data_dir);
        eprintln!("{banner}");
    })?;
    Ok(0)
}

/// The file in a data directory that names the process serving it.
pub const PID_FILE: &str = "raftright.pid";

/// Writes this process's id to `DIR/raftright.pid`; failing to is worth a warning, not a stop.
pub fn write_pid_file(data_dir: &Path) {
    let path = data_dir.join(PID_FILE);
    if let Err(e) = std::fs::write(&path, format!("{}\n", std::process::id())) {
        eprintln!("warning: cannot write {}: {e}", path.display());
    }
}
