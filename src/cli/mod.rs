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
pub mod soak;
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

/// Features of the protocol beyond Figure 2, on by default.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct ProtocolArgs {
    /// Run without PreVote (thesis §9.6): a server that cannot win an election raises terms
    /// anyway, and deposes the leader when it comes back.
    #[arg(long)]
    pub no_pre_vote: bool,
    /// Run without CheckQuorum (thesis §6.2): a leader that hears from no majority keeps
    /// leading, and its heartbeats keep the others from electing another.
    #[arg(long)]
    pub no_check_quorum: bool,
    /// Gets go through the log, as Puts do, instead of ReadIndex (thesis §6.4: a round of
    /// heartbeats, no log entry).
    #[arg(long)]
    pub log_reads: bool,
    /// Compact the log into a snapshot (§7) once this many applied entries follow the last
    /// one; 0 never compacts. Disk and restart time then stay bounded by about this many
    /// entries and the key-value map.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub snapshot_entries: u64,
}

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
/// Each flag sets one key of the file's `[model]` table ([`MODEL_KEYS`]).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ModelArgs {
    /// A model file such as models/elections.toml (its format: `raftright check --help`); the
    /// flags below override its values. Without one, `check` runs its default suite and the
    /// others use models/clients.toml's settings.
    pub file: Option<PathBuf>,
    /// Servers in the cluster.
    #[arg(long)]
    pub servers: Option<usize>,
    /// Clients, each running its operations one after another.
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
    /// Bound: no server's term goes past this.
    #[arg(long)]
    pub max_term: Option<u64>,
    /// Bound: no server's log grows past this many entries.
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

/// Every key of a model file's `[model]` table: the flag that overrides it (if any) and what
/// it means. `check --help` and the README's table are made from this, with the defaults, so
/// neither can drift from the file format (a test compares it with what `ModelCfg` parses).
pub const MODEL_KEYS: [(&str, Option<&str>, &str); 28] = [
    ("servers", Some("--servers"), "servers in the cluster"),
    (
        "clients",
        Some("--clients"),
        "clients, each running its operations one after another",
    ),
    (
        "ops_per_client",
        Some("--ops"),
        "operations per client: Put and Get alternate, starting with a Put",
    ),
    (
        "client_retries",
        Some("--retries"),
        "re-sends per operation (after a \"not leader\" hint, or after waiting, to any server)",
    ),
    (
        "network",
        Some("--network"),
        "\"ordered\", \"unordered_nonduplicating\" or \"unordered_duplicating\"",
    ),
    (
        "lossy",
        Some("--lossy"),
        "messages may be lost (explicit drops)",
    ),
    (
        "max_crashes",
        Some("--crashes"),
        "servers down at once at most (a crash, then a restart from saved state)",
    ),
    (
        "max_crash_events",
        Some("--crash-events"),
        "crashes in one run at most",
    ),
    (
        "heartbeats",
        Some("--heartbeats"),
        "the leader's periodic heartbeat fires",
    ),
    (
        "max_term",
        Some("--max-term"),
        "bound: no term goes past this",
    ),
    (
        "max_log_len",
        Some("--max-log"),
        "bound: no log grows past this many entries",
    ),
    (
        "max_append_entries",
        Some("--max-append"),
        "entries per AppendEntries",
    ),
    (
        "max_in_flight",
        Some("--max-in-flight"),
        "bound: messages between servers in flight at once (0: none)",
    ),
    (
        "max_per_link",
        Some("--max-per-link"),
        "bound: messages in flight on one link (0: none)",
    ),
    (
        "max_copies",
        None,
        "non-duplicating network: copies of one identical message it holds at most",
    ),
    (
        "duplicate_once",
        Some("--duplicate-once"),
        "non-duplicating network: every message may be delivered twice",
    ),
    (
        "fsync",
        None,
        "a save is durable only once a separate \"fsync completes\" step runs; a crash loses the rest",
    ),
    (
        "pre_vote",
        None,
        "servers run PreVote: a candidate first asks whether it could win, raising no term",
    ),
    (
        "check_quorum",
        None,
        "servers run CheckQuorum: a leader that hears no majority steps down; followers keep a lease",
    ),
    (
        "deaf_first_leader",
        None,
        "fault: from its election on, the first leader hears no other server (it still sends)",
    ),
    (
        "isolate_first_leader",
        None,
        "fault: once the first leader has committed an entry, it is cut off from the other servers (clients still reach it)",
    ),
    (
        "mute_first_leader",
        None,
        "fault: while the first leader leads, no server hears it (clients still do)",
    ),
    (
        "read_index",
        None,
        "Gets are ReadIndex reads (a round of heartbeats, no log entry) rather than log entries",
    ),
    (
        "max_compactions",
        Some("--compactions"),
        "bound: compactions in one run, each by any server through any applied index (0: none)",
    ),
    (
        "transfers",
        None,
        "a leader may hand its leadership to any other server at any step (TimeoutNow)",
    ),
    (
        "members",
        None,
        "the initial configuration's voters: the first this many servers (0: all); the others wait to be added",
    ),
    (
        "max_changes",
        None,
        "configuration changes: any leader may be asked for any single-server change while its log holds fewer configuration entries than this (0: none)",
    ),
    (
        "learners",
        None,
        "with max_changes: a server may also be added as a learner, and promoted",
    ),
];

/// Each `[model]` key's default (the value of `ModelCfg::default()`, which is
/// models/clients.toml's settings), as TOML would spell it.
fn model_key_defaults() -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(ModelCfg::default()) {
        Ok(serde_json::Value::Object(map)) => map,
        other => unreachable!("ModelCfg serialises to a map, not {other:?}"),
    }
}

/// The rows of the model-file table: key, flag, default, meaning.
fn model_key_rows() -> Vec<[String; 4]> {
    let defaults = model_key_defaults();
    MODEL_KEYS
        .iter()
        .map(|(key, flag, meaning)| {
            [
                key.to_string(),
                flag.unwrap_or("-").to_string(),
                defaults.get(*key).map_or("-".into(), ToString::to_string),
                meaning.to_string(),
            ]
        })
        .collect()
}

/// The model file format, for `check --help`.
pub fn model_file_help() -> String {
    let rows = model_key_rows();
    let width = |c: usize| rows.iter().map(|r| r[c].len()).max().unwrap_or(0);
    let (k, f, d) = (width(0), width(1), width(2));
    let mut out = format!(
        "Model files (TOML; models/*.toml are examples):\n  \
         description = \"...\"   printed with the report\n  \
         [expected]            dfs = N, bfs = N: the unique states an exhaustive check must \
         find (exit status 3 otherwise)\n  \
         [model]               the configuration; every key is optional, and a flag \
         overrides it:\n\n    {:k$}  {:f$}  {:d$}  meaning\n",
        "key", "flag", "default"
    );
    for [key, flag, default, meaning] in rows {
        out.push_str(&format!(
            "    {key:k$}  {flag:f$}  {default:d$}  {meaning}\n"
        ));
    }
    out
}

/// The model file format as the README's Markdown table (a test keeps the README in step, and
/// prints the table when it is not).
#[cfg(test)]
fn model_file_markdown() -> String {
    let mut out = "| `[model]` key | flag | default | meaning |\n|---|---|---|---|\n".to_string();
    for [key, flag, default, meaning] in model_key_rows() {
        let flag = if flag == "-" {
            flag
        } else {
            format!("`{flag}`")
        };
        out.push_str(&format!("| `{key}` | {flag} | `{default}` | {meaning} |\n"));
    }
    out
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
                name: "built-in defaults (models/clients.toml's settings)".to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::collections::BTreeSet;

    #[derive(Parser)]
    struct JustModelArgs {
        #[command(flatten)]
        model: ModelArgs,
    }

    #[test]
    fn the_documented_keys_are_exactly_those_a_model_file_parses() {
        let parsed: BTreeSet<String> = model_key_defaults().keys().cloned().collect();
        let documented: BTreeSet<String> = MODEL_KEYS.iter().map(|k| k.0.to_string()).collect();
        assert_eq!(documented, parsed);
        for (key, value) in model_key_defaults() {
            let text = format!("[model]\n{key} = {value}\n");
            file::parse("test", &text).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
    }

    #[test]
    fn each_flag_sets_the_key_it_is_documented_with() {
        let defaults = model_key_defaults();
        for (key, flag, _) in MODEL_KEYS {
            let Some(flag) = flag else { continue };
            let other = match &defaults[key] {
                serde_json::Value::Bool(b) => (!b).to_string(),
                serde_json::Value::Number(n) => (n.as_u64().unwrap() + 1).to_string(),
                serde_json::Value::String(s) if s == "ordered" => "unordered_duplicating".into(),
                serde_json::Value::String(_) => "ordered".into(),
                v => panic!("{key} = {v}"),
            };
            let args = JustModelArgs::try_parse_from(["test", flag, other.as_str()])
                .unwrap_or_else(|e| panic!("{flag}: {e}"))
                .model;
            let loaded = args
                .load()
                .unwrap_or_else(|e| panic!("{flag} {other}: {e}"));
            let set = serde_json::to_value(&loaded.cfg).unwrap();
            assert_eq!(
                set[key].to_string().trim_matches('"'),
                other,
                "{flag} {other} did not set {key}"
            );
        }
    }

    #[test]
    fn the_built_in_defaults_are_models_clients_toml() {
        assert_eq!(
            file::shipped("models/clients.toml").unwrap().cfg,
            ModelCfg::default()
        );
    }

    #[test]
    fn the_readme_shows_the_model_file_table() {
        let readme = include_str!("../../README.md");
        let table = model_file_markdown();
        assert!(
            readme.contains(&table),
            "README.md's model file table differs from the code; it should read:\n{table}"
        );
    }
}
