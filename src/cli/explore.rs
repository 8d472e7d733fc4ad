//! `raftright explore`: serve stateright's Explorer for a model, showing Raft rather than Rust
//! `Debug` dumps.
//!
//! The pictures come from the model (`RaftModel::as_svg`, `format_action`, `format_step`); the
//! page around them is ours, in `ui/`. stateright's server reads its page from `./ui/` of the
//! working directory when that folder exists, and falls back to its own otherwise. So that the
//! Raft page is served from wherever the command runs, the files are compiled in, written to a
//! directory named after their checksum under the temp dir, and the process moves there once
//! the model is loaded (nothing reads relative paths after that).

use super::ModelArgs;
use raftright::model::{Action, RaftModel, State};
use stateright::{Model, Path};
use std::path::PathBuf;

/// Where `explore` listens unless told otherwise, and what counterexample links assume.
pub const DEFAULT_ADDR: &str = "127.0.0.1:3000";

#[derive(clap::Args, Debug)]
pub struct ExploreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Address to serve the Explorer on.
    #[arg(long, default_value = DEFAULT_ADDR)]
    pub addr: String,
    /// Worker threads for "Run the checker to completion" (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// The page: our index, script and style. The knockout library stateright's own page needs
/// is not used; stateright keeps serving its copy. The index's `CHECK_COMMAND` becomes the
/// `raftright check` command for the model being explored.
const UI: [(&str, &str); 3] = [
    ("index.htm", include_str!("../../ui/index.htm")),
    ("app.js", include_str!("../../ui/app.js")),
    ("app.css", include_str!("../../ui/app.css")),
];

pub fn run(args: ExploreArgs) -> Result<i32, super::CliError> {
    let loaded = args.model.load()?;
    let cfg = loaded.cfg.clone();
    println!("model: {}", loaded.name);
    println!("config: {cfg}");
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // stateright panics if it cannot listen; say why instead.
    drop(
        std::net::TcpListener::bind(&args.addr)
            .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?,
    );
    let check = check_command(&args.model);
    let page = UI.map(|(name, text)| (name, text.replace("CHECK_COMMAND", &html_escape(&check))));
    match install_ui(&page) {
        Ok(dir) => std::env::set_current_dir(&dir)
            .map_err(|e| format!("cannot enter {}: {e}", dir.display()))?,
        Err(e) => eprintln!("warning: {e}; serving stateright's plain Explorer page instead"),
    }
    println!("explore: {} (Ctrl-C to stop)", base_url(&args.addr));
    println!(
        "  pick actions under \"Next actions\": e.g. \"S0 election timeout\", then deliver its \
         RequestVote and the Vote back. \"Run the checker to completion\" runs stateright's \
         breadth-first checker without server symmetry (several times the states, far slower); \
         check's strategy on the same model: {check}"
    );
    let model = RaftModel::new(cfg);
    // Blocks for as long as the server runs.
    let _checker = model.checker().threads(threads).serve(args.addr.as_str());
    Ok(0)
}

/// The Explorer's address as a browser link (a wildcard host becomes the loopback address).
pub fn base_url(addr: &str) -> String {
    let addr = addr
        .strip_prefix("0.0.0.0:")
        .map(|port| format!("127.0.0.1:{port}"))
        .unwrap_or_else(|| addr.to_string());
    format!("http://{addr}/")
}

/// The Explorer's link to the last state of `path`: stateright names a state by the index of
/// its initial state and of each action taken (`Path::encode`), under `#/steps/`.
pub fn path_url(addr: &str, model: &RaftModel, path: &Path<State, Action>) -> String {
    format!("{}#/steps/{}", base_url(addr), path.encode(model))
}

/// For `check`: the Explorer link of a counterexample, and how to start the Explorer on the
/// same model so that the link leads to the same states.
pub fn print_counterexample_link(
    model: &RaftModel,
    path: &Path<State, Action>,
    options: &ModelArgs,
) {
    println!("  explore: {}", path_url(DEFAULT_ADDR, model, path));
    println!(
        "           (start the Explorer first: raftright explore {})",
        command_line(options)
    );
}

/// The `raftright check` command for the model that `options` load (without a file, that is
/// models/clients.toml's settings).
pub fn check_command(options: &ModelArgs) -> String {
    let mut options = options.clone();
    options
        .file
        .get_or_insert_with(|| "models/clients.toml".into());
    format!("raftright check {}", command_line(&options))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `options` as command-line arguments that load the same model.
pub fn command_line(options: &ModelArgs) -> String {
    // Destructured so that a new option does not go unnoticed here.
    let ModelArgs {
        file,
        servers,
        clients,
        ops,
        retries,
        network,
        lossy,
        crashes,
        max_term,
        max_log,
        max_append,
        max_in_flight,
        max_per_link,
        duplicate_once,
        crash_events,
        compactions,
        heartbeats,
        mutant,
    } = options;
    let mut out: Vec<String> = file
        .iter()
        .map(|f| quote(&f.display().to_string()))
        .collect();
    let mut flag = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            out.push(format!("--{name} {v}"));
        }
    };
    flag("servers", servers.map(|v| v.to_string()));
    flag("clients", clients.map(|v| v.to_string()));
    flag("ops", ops.map(|v| v.to_string()));
    flag("retries", retries.map(|v| v.to_string()));
    flag("network", network.map(|v| v.name().to_string()));
    flag("lossy", lossy.map(|v| v.to_string()));
    flag("crashes", crashes.map(|v| v.to_string()));
    flag("max-term", max_term.map(|v| v.to_string()));
    flag("max-log", max_log.map(|v| v.to_string()));
    flag("max-append", max_append.map(|v| v.to_string()));
    flag("max-in-flight", max_in_flight.map(|v| v.to_string()));
    flag("max-per-link", max_per_link.map(|v| v.to_string()));
    flag("duplicate-once", duplicate_once.map(|v| v.to_string()));
    flag("crash-events", crash_events.map(|v| v.to_string()));
    flag("compactions", compactions.map(|v| v.to_string()));
    flag("heartbeats", heartbeats.map(|v| v.to_string()));
    flag("mutant", mutant.map(|m| m.name().to_string()));
    out.join(" ")
}

/// Quotes a word for a POSIX shell when it needs it.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=+,@".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Writes the page to `<temp>/raftright-explorer-<checksum>/ui/` and returns the directory
/// above `ui/`. Files are written under a temporary name and renamed, so that two Explorers
/// starting at once never serve a half-written file.
fn install_ui(files: &[(&str, String)]) -> Result<PathBuf, String> {
    let mut crc = crc32fast::Hasher::new();
    for (name, text) in files {
        crc.update(name.as_bytes());
        crc.update(text.as_bytes());
    }
    let dir = std::env::temp_dir().join(format!("raftright-explorer-{:08x}", crc.finalize()));
    let ui = dir.join("ui");
    let fail =
        |e: std::io::Error| format!("cannot write the Explorer page to {}: {e}", ui.display());
    std::fs::create_dir_all(&ui).map_err(fail)?;
    for (name, text) in files {
        let target = ui.join(name);
        if std::fs::read_to_string(&target).is_ok_and(|t| t == *text) {
            continue;
        }
        let partial = ui.join(format!(".{name}.{}", std::process::id()));
        std::fs::write(&partial, text).map_err(fail)?;
        std::fs::rename(&partial, &target).map_err(fail)?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftright::model::ModelCfg;
    use raftright::raft::Mutant;

    #[test]
    fn command_line_repeats_the_given_options() {
        let args = ModelArgs {
            file: Some("models/my model.toml".into()),
            clients: Some(0),
            max_term: Some(1),
            mutant: Some(Mutant::ForgetVoteOnRestart),
            ..ModelArgs::default()
        };
        assert_eq!(
            command_line(&args),
            "'models/my model.toml' --clients 0 --max-term 1 --mutant forget-vote-on-restart"
        );
    }

    #[test]
    fn the_check_command_names_the_explored_model() {
        assert_eq!(
            check_command(&ModelArgs::default()),
            "raftright check models/clients.toml"
        );
        let args = ModelArgs {
            file: Some("models/figure8.toml".into()),
            mutant: Some(Mutant::CommitOldTerm),
            ..ModelArgs::default()
        };
        assert_eq!(
            check_command(&args),
            "raftright check models/figure8.toml --mutant commit-old-term"
        );
    }

    #[test]
    fn a_path_links_to_its_action_indices() {
        let model = RaftModel::new(ModelCfg {
            clients: 0,
            ..ModelCfg::default()
        });
        let init = model.init_states().remove(0);
        let mut actions = Vec::new();
        model.actions(&init, &mut actions);
        let path = Path::from_actions(&model, init, &actions[..1]).unwrap();
        assert_eq!(
            path_url("0.0.0.0:3000", &model, &path),
            "http://127.0.0.1:3000/#/steps/0/0"
        );
    }
}
