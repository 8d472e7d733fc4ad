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
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Check(args) => cli::check::run(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
