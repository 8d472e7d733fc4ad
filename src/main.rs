use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod cli;

/// Raft as a stateright actor: model-checked exhaustively, explored in a browser, run over UDP.
#[derive(Parser, Debug)]
#[command(name = "raftright", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Model-check the protocol and report every property; without a model file, on the
    /// default suite of models (exhaustively, unless --strategy simulation or --timeout).
    Check(cli::check::CheckArgs),
    /// Serve stateright's Explorer: step through the model in a browser, with a Raft view.
    Explore(cli::explore::ExploreArgs),
    /// Run one server of a cluster over UDP, with its durable state in --data-dir.
    Node(cli::node::NodeArgs),
    /// Run a whole cluster in one process on 127.0.0.1 (the quick demo).
    Spawn(cli::spawn::SpawnArgs),
    /// Put, get, delete, show the status of a running cluster, or change its membership.
    Client(cli::client::ClientArgs),
    /// Write a fresh random cluster key to FILE (mode 0600), for --cluster-key-file.
    Keygen(cli::keygen::KeygenArgs),
    /// Measure committed puts/s and latency on a real loopback cluster.
    Bench(cli::bench::BenchArgs),
    /// Measure the model checker: unique states/s and bytes/state per model (medians).
    BenchCheck(cli::bench_check::BenchCheckArgs),
    /// Write seeded random walks of the model as JSON traces (for specs/check).
    Traces(cli::traces::TracesArgs),
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Cmd::Check(args) => cli::check::run(args),
        Cmd::Explore(args) => cli::explore::run(args),
        Cmd::Node(args) => cli::node::run(args),
        Cmd::Spawn(args) => cli::spawn::run(args),
        Cmd::Client(args) => cli::client::run(args),
        Cmd::Keygen(args) => cli::keygen::run(args),
        Cmd::Bench(args) => cli::bench::run(args),
        Cmd::BenchCheck(args) => cli::bench_check::run(args),
        Cmd::Traces(args) => cli::traces::run(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}

/// The command line, with `check --help` describing the model file format.
fn command() -> clap::Command {
    Cli::command().mut_subcommand("check", |check| {
        let exit = check.get_after_help().map(ToString::to_string);
        check.after_long_help(format!(
            "{}\n{}",
            cli::model_file_help(),
            exit.unwrap_or_default()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument of every subcommand, and every subcommand, says what it is for.
    #[test]
    fn every_flag_and_subcommand_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let builtin = ["help", "version"].contains(&arg.get_id().as_str());
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(path.clone());
                }
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        let cmd = command();
        cmd.clone().debug_assert();
        walk(&cmd, "raftright", &mut missing);
        assert!(missing.is_empty(), "without help: {missing:?}");
    }

    #[test]
    fn check_help_documents_every_model_file_key_and_the_default_suite() {
        let help = command()
            .find_subcommand_mut("check")
            .unwrap()
            .render_long_help()
            .to_string();
        for (key, flag, _) in cli::MODEL_KEYS {
            assert!(help.contains(key), "{key} missing from check --help");
            if let Some(flag) = flag {
                assert!(help.contains(flag), "{flag} missing from check --help");
            }
        }
        assert!(help.contains("default suite"), "{help}");
        assert!(
            help.contains("[expected]") && help.contains("[model]"),
            "{help}"
        );
    }

    /// The global flags of `client` work on either side of its subcommand.
    #[test]
    fn client_flags_go_before_or_after_the_subcommand() {
        let peers = "127.0.0.1:3000";
        for args in [
            vec![
                "client",
                "--peers",
                peers,
                "--timeout-ms",
                "7",
                "put",
                "a",
                "b",
            ],
            vec![
                "client",
                "put",
                "a",
                "b",
                "--peers",
                peers,
                "--timeout-ms",
                "7",
            ],
            vec![
                "client",
                "--timeout-ms",
                "7",
                "status",
                "--peers",
                peers,
                "-w",
                "json",
            ],
        ] {
            let cli = Cli::try_parse_from(std::iter::once("raftright").chain(args.clone()))
                .unwrap_or_else(|e| panic!("{args:?}: {e}"));
            let Cmd::Client(client) = cli.command else {
                panic!("{args:?} is not a client command")
            };
            assert_eq!(client.peers.as_deref(), Some(peers), "{args:?}");
            assert_eq!(client.timeout_ms, Some(7), "{args:?}");
        }
    }
}
