//! The command line: one subcommand per job.

pub mod check;

use raftright::model::ModelCfg;
use raftright::model::config::NetworkKind;
use raftright::raft::Mutant;
use serde::Deserialize;
use std::path::PathBuf;

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

/// A model file: a name, a description, the configuration and what checking it should find.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    #[serde(default)]
    pub description: String,
    /// Unique states an exhaustive check finds; a change means the state space changed.
    pub expected_unique_states: Option<u64>,
    /// Seconds it took when the count was recorded (informational).
    #[serde(default)]
    pub recorded_seconds: Option<f64>,
    pub model: ModelCfg,
}

pub struct LoadedModel {
    pub name: String,
    pub cfg: ModelCfg,
    pub expected_unique_states: Option<u64>,
}

impl ModelArgs {
    pub fn load(&self) -> Result<LoadedModel, String> {
        let (name, mut cfg, mut expected) = match &self.file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let file: ModelFile =
                    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
                (
                    path.display().to_string(),
                    file.model,
                    file.expected_unique_states,
                )
            }
            None => ("default (built in)".to_string(), ModelCfg::default(), None),
        };
        let overrides = [
            self.servers.is_some(),
            self.clients.is_some(),
            self.ops.is_some(),
            self.retries.is_some(),
            self.network.is_some(),
            self.lossy.is_some(),
            self.crashes.is_some(),
            self.max_term.is_some(),
            self.max_log.is_some(),
            self.max_append.is_some(),
            self.max_in_flight.is_some(),
        ];
        if overrides.iter().any(|&o| o) {
            expected = None; // the file's count is for the file's configuration
        }
        cfg.servers = self.servers.unwrap_or(cfg.servers);
        cfg.clients = self.clients.unwrap_or(cfg.clients);
        cfg.ops_per_client = self.ops.unwrap_or(cfg.ops_per_client);
        cfg.client_retries = self.retries.unwrap_or(cfg.client_retries);
        cfg.network = self.network.unwrap_or(cfg.network);
        cfg.lossy = self.lossy.unwrap_or(cfg.lossy);
        cfg.max_crashes = self.crashes.unwrap_or(cfg.max_crashes);
        cfg.max_term = self.max_term.unwrap_or(cfg.max_term);
        cfg.max_log_len = self.max_log.unwrap_or(cfg.max_log_len);
        cfg.max_append_entries = self.max_append.unwrap_or(cfg.max_append_entries);
        cfg.max_in_flight = self.max_in_flight.unwrap_or(cfg.max_in_flight);
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
        Ok(LoadedModel {
            name,
            cfg,
            expected_unique_states: expected,
        })
    }
}
