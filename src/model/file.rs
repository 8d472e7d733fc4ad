//! Model files (`models/*.toml`): a description, the configuration under `[model]`, and the
//! unique-state counts an exhaustive check must find under `[expected]`. The shipped files are
//! compiled in, so `check` runs its default suite from anywhere.

use super::config::ModelCfg;
use serde::Deserialize;

/// The models `check` exhausts when given no model file and no options.
pub const DEFAULT_SUITE: [&str; 10] = [
    "models/clients.toml",
    "models/elections.toml",
    "models/figure8.toml",
    "models/replication.toml",
    "models/full-faults.toml",
    "models/durability.toml",
    "models/deaf-leader.toml",
    "models/reads.toml",
    "models/compaction.toml",
    "models/install-conflict.toml",
];

/// Every model file shipped in `models/`, by path, with its text.
pub const SHIPPED: [(&str, &str); 18] = [
    (
        "models/membership.toml",
        include_str!("../../models/membership.toml"),
    ),
    (
        "models/reconfig-bug.toml",
        include_str!("../../models/reconfig-bug.toml"),
    ),
    ("models/tiny.toml", include_str!("../../models/tiny.toml")),
    (
        "models/clients.toml",
        include_str!("../../models/clients.toml"),
    ),
    ("models/votes.toml", include_str!("../../models/votes.toml")),
    (
        "models/replication.toml",
        include_str!("../../models/replication.toml"),
    ),
    (
        "models/elections.toml",
        include_str!("../../models/elections.toml"),
    ),
    (
        "models/figure8.toml",
        include_str!("../../models/figure8.toml"),
    ),
    (
        "models/full-faults.toml",
        include_str!("../../models/full-faults.toml"),
    ),
    (
        "models/published-bound.toml",
        include_str!("../../models/published-bound.toml"),
    ),
    (
        "models/five-servers.toml",
        include_str!("../../models/five-servers.toml"),
    ),
    ("models/deep.toml", include_str!("../../models/deep.toml")),
    (
        "models/durability.toml",
        include_str!("../../models/durability.toml"),
    ),
    (
        "models/deaf-leader.toml",
        include_str!("../../models/deaf-leader.toml"),
    ),
    ("models/reads.toml", include_str!("../../models/reads.toml")),
    (
        "models/compaction.toml",
        include_str!("../../models/compaction.toml"),
    ),
    (
        "models/install-conflict.toml",
        include_str!("../../models/install-conflict.toml"),
    ),
    (
        "models/transfer.toml",
        include_str!("../../models/transfer.toml"),
    ),
];

/// Unique states an exhaustive check finds, per strategy; a change means the state space
/// changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// Depth-first with server symmetry (the default strategy).
    pub dfs: Option<u64>,
    /// Breadth-first, without symmetry.
    pub bfs: Option<u64>,
}

/// A model file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    #[serde(default)]
    description: String,
    #[serde(default)]
    expected: Expected,
    /// Seconds each strategy took when the counts were recorded (informational).
    #[serde(default, rename = "measured")]
    _measured: Option<toml::Table>,
    model: ModelCfg,
}

/// A loaded model: its name (the file's path), description, configuration and counts.
#[derive(Clone, Debug)]
pub struct NamedModel {
    pub name: String,
    pub description: String,
    pub cfg: ModelCfg,
    pub expected: Expected,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("{0} is not a shipped model")]
    NotShipped(String),
}

/// Parses a model file's text; `name` names it in errors and reports.
pub fn parse(name: &str, text: &str) -> Result<NamedModel, ModelFileError> {
    let file: ModelFile = toml::from_str(text).map_err(|e| ModelFileError::Parse {
        path: name.to_string(),
        source: Box::new(e),
    })?;
    Ok(NamedModel {
        name: name.to_string(),
        description: file.description,
        cfg: file.model,
        expected: file.expected,
    })
}

/// Reads and parses a model file from disk.
pub fn load(path: &std::path::Path) -> Result<NamedModel, ModelFileError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ModelFileError::Read {
        path: name.clone(),
        source,
    })?;
    parse(&name, &text)
}

/// A shipped model by its path (`models/NAME.toml`).
pub fn shipped(name: &str) -> Result<NamedModel, ModelFileError> {
    let (_, text) = SHIPPED
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| ModelFileError::NotShipped(name.to_string()))?;
    parse(name, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_model_parses_and_the_suite_is_shipped() {
        for (name, text) in SHIPPED {
            parse(name, text).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(name)
                    .exists()
            );
        }
        for name in DEFAULT_SUITE {
            assert!(shipped(name).is_ok(), "{name}");
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        for file in std::fs::read_dir(dir).unwrap() {
            let name = format!("models/{}", file.unwrap().file_name().to_string_lossy());
            assert!(
                SHIPPED.iter().any(|(n, _)| *n == name),
                "{name} is not shipped"
            );
        }
    }
}
