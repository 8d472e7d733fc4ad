use clap::{Parser, Subcommand};

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
    /// Exhaustively model-check a cluster and report every property.
    Check(cli::check::CheckArgs),
    /// Serve stateright's Explorer: step through the model in a browser, with a Raft view.
    Explore(cli::explore::ExploreArgs),
    /// Run one server of a cluster over UDP, with its durable state in --data-dir.
    Node(cli::node::NodeArgs),
    /// Run a whole cluster in one process on 127.0.0.1 (the quick demo).
    Spawn(cli::spawn::SpawnArgs),
    /// Put, get, delete or show the status of a running cluster.
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
    let cli = Cli::parse();
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
