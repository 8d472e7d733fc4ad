//! `raftright spawn`: a whole cluster in one process on 127.0.0.1, the quick demo.

use raftright::runtime::node::{self, NodeConfig};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct SpawnArgs {
    /// Servers in the cluster.
    #[arg(long, default_value_t = 3)]
    pub servers: usize,
    /// The first server's port; the others follow it.
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
    /// Data directory; server I keeps its state in DIR/node-I.
    #[arg(long, default_value = "raftright-data")]
    pub data_dir: PathBuf,
    #[arg(long, default_value_t = 300)]
    pub election_timeout_ms: u64,
    #[arg(long, default_value_t = 100)]
    pub heartbeat_ms: u64,
}

pub fn run(args: SpawnArgs) -> Result<i32, super::CliError> {
    if args.servers == 0 {
        return Err("--servers must be at least 1".into());
    }
    let peers = (0..args.servers)
        .map(|i| {
            u16::try_from(i)
                .ok()
                .and_then(|i| args.port.checked_add(i))
                .map(|port| SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
                .ok_or_else(|| "ports run past 65535".to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cfgs: Vec<NodeConfig> = (0..args.servers)
        .map(|index| NodeConfig {
            peers: peers.clone(),
            index,
            data_dir: args.data_dir.join(format!("node-{index}")),
            election_timeout: Duration::from_millis(args.election_timeout_ms),
            heartbeat: Duration::from_millis(args.heartbeat_ms),
        })
        .collect();
    let list = peers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    eprintln!(
        "raftright: {} servers on {list}, data in {}; Ctrl-C stops them.\n\
         try: raftright client --peers {list} put greeting hello\n     \
         raftright client --peers {list} get greeting\n     \
         raftright client --peers {list} status",
        args.servers,
        args.data_dir.display()
    );
    node::run(&cfgs)?;
    Ok(0)
}
