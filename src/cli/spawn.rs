//! `raftright spawn`: a whole cluster in one process on 127.0.0.1, the quick demo.
//!
//! Its cluster key is `DATA_DIR/cluster.key`, made on the first run; `raftright client` finds
//! it there by itself when run from the same directory with the default data directory.

use super::{DEFAULT_DATA_DIR, KEY_FILE, KeyArgs};
use raftright::runtime::auth::{Auth, ClusterKey};
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
    /// Data directory; server I keeps its state in DIR/node-I, the cluster key is
    /// DIR/cluster.key (made if missing, unless --cluster-key-file or --insecure is given).
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
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
    pub key: KeyArgs,
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
    // The key, a line on how clients get it, and the flag the suggested commands need.
    let (auth, key_note, key_flag) = if args.key.insecure || args.key.cluster_key_file.is_some() {
        let chosen = args.key.choose(None, "accept unauthenticated datagrams")?;
        let flag = match &chosen.file {
            Some(f) => format!(" --cluster-key-file {}", f.display()),
            None => " --insecure".to_string(),
        };
        (chosen.auth.clone(), chosen.describe(), flag)
    } else {
        let path = args.data_dir.join(KEY_FILE);
        let (key, made) = ClusterKey::load_or_create(&path)?;
        let made = if made { " (new)" } else { "" };
        let (flag, default) = if args.data_dir == std::path::Path::new(DEFAULT_DATA_DIR) {
            // The client looks there by itself.
            (String::new(), ", the default when run from this directory")
        } else {
            (format!(" --cluster-key-file {}", path.display()), "")
        };
        let note = format!(
            "cluster key {p}{made}\nclients authenticate with it: --cluster-key-file {p}{default}",
            p = path.display()
        );
        (Auth::Key(key), note, flag)
    };
    let cfgs: Vec<NodeConfig> = (0..args.servers)
        .map(|index| NodeConfig {
            joining: false,
            peers: peers.clone(),
            index,
            data_dir: args.data_dir.join(format!("node-{index}")),
            election_timeout: Duration::from_millis(args.election_timeout_ms),
            heartbeat: Duration::from_millis(args.heartbeat_ms),
            pre_vote: !args.protocol.no_pre_vote,
            check_quorum: !args.protocol.no_check_quorum,
            read_index: !args.protocol.log_reads,
            snapshot_entries: args.protocol.snapshot_entries,
            auth: auth.clone(),
            power_loss: None,
            mutant: None,
        })
        .collect();
    let list = peers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let banner = format!(
        "raftright: {} servers on {list}, data in {}, pid {}; Ctrl-C stops them.\n{key_note}\n\
         try: raftright client --peers {list}{key_flag} put greeting hello\n     \
         raftright client --peers {list}{key_flag} get greeting\n     \
         raftright client --peers {list}{key_flag} status",
        args.servers,
        args.data_dir.display(),
        std::process::id()
    );
    node::run(&cfgs, || {
        for cfg in &cfgs {
            super::node::write_pid_file(&cfg.data_dir);
        }
        eprintln!("{banner}");
    })?;
    Ok(0)
}
