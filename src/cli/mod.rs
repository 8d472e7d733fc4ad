//! The command line: one subcommand per job.

pub mod bench;
pub mod bench_check;
pub mod check;
pub mod client;
pub mod explore;
pub mod keygen;
pub mod memory;
pub mod node;
pub mod progress;
pub mod spawn;
pub mod traces;

use raftright::model::ModelCfg;
use raftright::model::config::NetworkKind;
use raftright::model::file::{self, Expected, ModelFileError, NamedModel};
use raftright::raft::Mutant;
use raftright::runtime::auth::{Auth, ClusterKey, KeyError};
use raftright::runtime::client::ClientError;
use raftright::runtime::node::NodeError;
use std::path::{Path, PathBuf};

/// Where `raftright spawn` keeps its data (and its cluster key) unless told otherwise.
pub const DEFAULT_DATA_DIR: &str = "raftright-data";
/// The cluster key's file name in a data directory.
pub const KEY_FILE: &str = "cluster.key";

/// How a process authenticates its datagrams: `--cluster-key-file FILE` or `--insecure`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct KeyArgs {
    /// The cluster key (a file of 64 hex digits; `raftright keygen FILE` makes one). Every
    /// datagram carries a MAC under it; anything else is dropped unread.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure", global = true)]
    pub cluster_key_file: Option<PathBuf>,
    /// No cluster key: datagrams carry no MAC, and anyone who can send one (from any source
    /// address it likes) is believed.
    #[arg(long, global = true)]
    pub insecure: bool,
}

/// The key that was chosen, and where it came from (for messages).
pub struct Chosen {
    pub auth: Auth,
    /// The key file, `None` when insecure.
    pub file: Option<PathBuf>,
}

impl KeyArgs {
    /// The key from `--cluster-key-file`; else no key with `--insecure`; else the key in
    /// `fallback` if that file exists; else an error that says how to make a key.
    /// `insecure` completes the error's "or --insecure to ...".
    pub fn choose(
        &self,
        fallback: Option<&Path>,
        insecure: &'static str,
    ) -> Result<Chosen, KeyError> {
        if self.insecure {
            return Ok(Chosen {
                auth: Auth::Insecure,
                file: None,
            });
        }
        let file = match (&self.cluster_key_file, fallback) {
            (Some(file), _) => file.clone(),
            (None, Some(f)) if f.exists() => f.to_path_buf(),
            (None, _) => return Err(KeyError::Missing { insecure }),
        };
        Ok(Chosen {
            auth: Auth::Key(ClusterKey::load(&file)?),
            file: Some(file),
        })
    }
}

impl Chosen {
    /// How a line of output names this choice.
    pub fn describe(&self) -> String {
        match &self.file {
            Some(f) => format!("cluster key {}", f.display()),
            None => "--insecure (no cluster key)".into(),
        }
    }

    /// Why a server might stay silent: it drops what it cannot authenticate, unanswered.
    pub fn silence_hint(&self) -> String {
        let drops = match self.auth {
            Auth::Key(_) => "a server drops requests under another key",
            Auth::Insecure => "a server with a cluster key drops requests without one",
        };
        format!("this client used {}; {drops}", self.describe())
    }
}

/// Model options shared by `check` and `explore`: a `models/NAME.toml` file, then overrides.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ModelArgs {
    /// A model file (e.g. models/default.toml); flags below override its values.
    pub file: Option<PathBuf>,
    #[arg(long)]
    pub servers: Option<usize>,
    #[arg(long)]
    pub clients: Option<usize>,
    /// Operations per client (Put and Get alternate).
    #[arg(long)]
    pub ops: Option<usize>,
    /// Re-sends per operation before a client gives up.
    #[arg(long)]
    pub retries: Option<u8>,
    /// ordered | unordered_nonduplicating | unordered_duplicating
    #[arg(long, value_parser = parse_network)]
    pub network: Option<NetworkKind>,
    /// Whether messages may be lost (true/false).
    #[arg(long)]
    pub lossy: Option<bool>,
    /// Servers that may be crashed at once.
    #[arg(long)]
    pub crashes: Option<usize>,
    /// Crashes in one run at most.
    #[arg(long)]
    pub crash_events: Option<u8>,
    /// Compactions in one run at most (any server, through any applied index).
    #[arg(long)]
    pub compactions: Option<u8>,
    /// Whether the leader's periodic heartbeat fires (true/false).
    #[arg(long)]
    pub heartbeats: Option<bool>,
    #[arg(long)]
    pub max_term: Option<u64>,
    #[arg(long)]
    pub max_log: Option<usize>,
    /// Entries per AppendEntries.
    #[arg(long)]
    pub max_append: Option<usize>,
    /// Messages in flight at once (0: unbounded).
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// Messages in flight per link at once (0: unbounded).
    #[arg(long)]
    pub max_per_link: Option<usize>,
    /// Every message may be delivered twice (non-duplicating network only).
    #[arg(long)]
    pub duplicate_once: Option<bool>,
    /// Run a deliberately broken variant (see --list-mutants).
    #[arg(long, value_parser = parse_mutant)]
    pub mutant: Option<Mutant>,
}

fn parse_network(s: &str) -> Result<NetworkKind, String> {
    NetworkKind::parse(s).ok_or_else(|| {
        format!("unknown network '{s}': ordered, unordered_nonduplicating or unordered_duplicating")
    })
}

fn parse_mutant(s: &str) -> Result<Mutant, String> {
    Mutant::parse(s).ok_or_else(|| {
        let names: Vec<_> = Mutant::ALL.iter().map(|m| m.name()).collect();
        format!("unknown mutant '{s}'; one of: {}", names.join(", "))
    })
}

/// Why a command failed (exit status 2). The runtime's and the model files' own errors pass
/// through unchanged, so a corrupt store, another node's store, a locked store and a port in
/// use stay distinct.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    ModelFile(#[from] ModelFileError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Anything else, already worded for the user (a bad argument, a failed benchmark step).
    #[error("{0}")]
    Other(String),
}

impl From<String> for CliError {
    fn from(text: String) -> Self {
        CliError::Other(text)
    }
}

impl From<&str> for CliError {
    fn from(text: &str) -> Self {
        CliError::Other(text.to_string())
    }
}

impl ModelArgs {
    /// Whether any model option is given on the command line (besides a file and a mutant).
    pub fn has_overrides(&self) -> bool {
        self.overrides().iter().any(|&o| o)
    }

    fn overrides(&self) -> Vec<bool> {
        vec![
            self.servers.is_some(),
            self.clients.is_some(),
            self.ops.is_some(),
            self.retries.is_some(),
            self.network.is_some(),
            self.lossy.is_some(),
            self.crashes.is_some(),
            self.crash_events.is_some(),
            self.compactions.is_some(),
            self.heartbeats.is_some(),
            self.max_term.is_some(),
            self.max_log.is_some(),
            self.max_append.is_some(),
            self.max_in_flight.is_some(),
            self.max_per_link.is_some(),
            self.duplicate_once.is_some(),
        ]
    }

    /// The model file (or the built-in defaults), with the command-line overrides applied.
    pub fn load(&self) -> Result<NamedModel, CliError> {
        let loaded = match &self.file {
            Some(path) => file::load(path)?,
            None => NamedModel {
                name: "built-in defaults".to_string(),
                description: String::new(),
                cfg: ModelCfg::default(),
                expected: Expected::default(),
            },
        };
        self.apply(loaded)
    }

    /// A shipped model (`models/NAME.toml`), with the overrides applied.
    pub fn load_shipped(&self, name: &str) -> Result<NamedModel, CliError> {
        self.apply(file::shipped(name)?)
    }

    fn apply(&self, mut loaded: NamedModel) -> Result<NamedModel, CliError> {
        if self.has_overrides() {
            loaded.expected = Expected::default(); // the file's counts are for its configuration
        }
        let cfg = &mut loaded.cfg;
        cfg.servers = self.servers.unwrap_or(cfg.servers);
        cfg.clients = self.clients.unwrap_or(cfg.clients);
        cfg.ops_per_client = self.ops.unwrap_or(cfg.ops_per_client);
        cfg.client_retries = self.retries.unwrap_or(cfg.client_retries);
        cfg.network = self.network.unwrap_or(cfg.network);
        cfg.lossy = self.lossy.unwrap_or(cfg.lossy);
        cfg.max_crashes = self.crashes.unwrap_or(cfg.max_crashes);
        cfg.max_crash_events = self.crash_events.unwrap_or(cfg.max_crash_events);
        cfg.max_compactions = self.compactions.unwrap_or(cfg.max_compactions);
        cfg.heartbeats = self.heartbeats.unwrap_or(cfg.heartbeats);
        cfg.max_term = self.max_term.unwrap_or(cfg.max_term);
        cfg.max_log_len = self.max_log.unwrap_or(cfg.max_log_len);
        cfg.max_append_entries = self.max_append.unwrap_or(cfg.max_append_entries);
        cfg.max_in_flight = self.max_in_flight.unwrap_or(cfg.max_in_flight);
        cfg.max_per_link = self.max_per_link.unwrap_or(cfg.max_per_link);
        cfg.duplicate_once = self.duplicate_once.unwrap_or(cfg.duplicate_once);
        cfg.mutant = self.mutant;
        if cfg.servers == 0 {
            return Err("--servers must be at least 1".into());
        }
        if cfg.max_append_entries == 0 {
            return Err("--max-append must be at least 1".into());
        }
        if cfg.servers + cfg.clients > 26 {
            return Err("at most 26 actors".into());
        }
        Ok(loaded)
    }
}
