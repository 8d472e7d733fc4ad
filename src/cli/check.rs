//! `raftright check`: check models and print the report of each, property by property, with
//! counterexamples told as stories. The checking itself is `raftright::model::check`.

use super::{CliError, ModelArgs, memory};
use raftright::model::check::{self, Options, Outcome, Report, Strategy};
use raftright::model::file::{DEFAULT_SUITE, NamedModel};
use raftright::model::mutants;
use raftright::model::story;
use raftright::raft::Mutant;
use stateright::Expectation;
use std::time::{Duration, Instant};

/// Exit statuses: every property as expected; an always-property violated or a
/// sometimes-property never reached; a bad argument or file; an exhaustive count that differs
/// from the one the model file records (the state space changed: not a caught bug).
pub const EXIT_OK: i32 = 0;
pub const EXIT_PROPERTY_FAILED: i32 = 1;
pub const EXIT_COUNT_CHANGED: i32 = 3;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Exit status: 0 every property as expected; 1 a property failed (a mutant was caught); \
2 a bad argument or model file; 3 an exhaustive count differs from the one the model file \
records (the state space changed, which is not a caught bug).")]
pub struct CheckArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Print the mutants, one per line (name, the property it breaks, where it is caught,
    /// what it breaks), and exit.
    #[arg(long)]
    pub list_mutants: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// dfs: depth-first with server symmetry, the fastest and smallest in memory
    /// (counterexamples are shortened before they are printed); bfs: breadth-first without
    /// symmetry, shortest counterexamples; simulation: seeded random walks, far deeper than
    /// exhaustive search reaches (not exhaustive).
    #[arg(long, value_enum, default_value_t = StrategyArg::Dfs)]
    pub strategy: StrategyArg,
    /// Simulation: the seed of the random walks (a run is reproduced from its seed).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Simulation: the length of each random walk.
    #[arg(long, default_value_t = 1000)]
    pub depth: usize,
    /// Stop after this many seconds (the result is then not exhaustive).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Also print a machine-readable summary, one JSON object per model, as the last line.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrategyArg {
    Bfs,
    Dfs,
    Simulation,
}

impl From<StrategyArg> for Strategy {
    fn from(s: StrategyArg) -> Self {
        match s {
            StrategyArg::Bfs => Strategy::Bfs,
            StrategyArg::Dfs => Strategy::Dfs,
            StrategyArg::Simulation => Strategy::Simulation,
        }
    }
}

pub fn run(args: CheckArgs) -> Result<i32, CliError> {
    if args.list_mutants {
        for m in Mutant::ALL {
            let (property, place) = match mutants::catch(m) {
                Some(c) => (c.property, c.model),
                None => ("-", "-"),
            };
            println!("{}\t{property}\t{place}\t{}", m.name(), m.describe());
        }
        return Ok(EXIT_OK);
    }
    if args.model.file.is_some() || args.model.has_overrides() {
        let loaded = args.model.load()?;
        return Ok(check_one(&args, &args.model, loaded, options(&args)));
    }
    if let Some(mutant) = args.model.mutant {
        return check_mutant(&args, mutant);
    }
    let start = Instant::now();
    let mut failed = Vec::new();
    let mut codes = Vec::new();
    for (i, name) in DEFAULT_SUITE.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let options_for = ModelArgs {
            file: Some((*name).into()),
            ..Default::default()
        };
        let loaded = options_for.load_shipped(name)?;
        let code = check_one(&args, &options_for, loaded, options(&args));
        if code != EXIT_OK {
            failed.push(*name);
        }
        codes.push(code);
    }
    println!();
    let secs = start.elapsed().as_secs_f64();
    if failed.is_empty() {
        println!("all {} models passed in {secs:.1}s", DEFAULT_SUITE.len());
    } else {
        println!("FAILED: {} ({secs:.1}s)", failed.join(", "));
    }
    // A failed property outranks a changed count.
    Ok([EXIT_PROPERTY_FAILED, EXIT_COUNT_CHANGED]
        .into_iter()
        .find(|c| codes.contains(c))
        .unwrap_or(EXIT_OK))
}

/// `check --mutant NAME` alone: straight to the model that catches it.
fn check_mutant(args: &CheckArgs, mutant: Mutant) -> Result<i32, CliError> {
    let catch = mutants::catch(mutant).ok_or_else(|| {
        format!("{mutant} has no catching model yet; give a model file to check it on")
    })?;
    println!(
        "mutant {} is caught by \"{}\" in {}: checking that model only, until the first \
         violation",
        mutant.name(),
        catch.property,
        catch.model
    );
    let model_args = ModelArgs {
        file: Some(catch.model.into()),
        mutant: Some(mutant),
        ..Default::default()
    };
    let loaded = model_args.load_shipped(catch.model)?;
    Ok(check_one(args, &model_args, loaded, options(args)))
}

fn options(args: &CheckArgs) -> Options {
    let defaults = Options::default();
    Options {
        strategy: args.strategy.into(),
        threads: args.threads.unwrap_or(defaults.threads),
        timeout: args.timeout.map(Duration::from_secs),
        seed: args.seed,
        depth: args.depth,
        stop_at_violation: args.model.mutant.is_some(),
        expected_violation: args
            .model
            .mutant
            .and_then(mutants::catch)
            .map(|c| c.property),
    }
}

/// Checks one model and prints its report; returns the exit status.
fn check_one(args: &CheckArgs, model_args: &ModelArgs, loaded: NamedModel, opts: Options) -> i32 {
    let cfg = loaded.cfg.clone();
    println!("model: {}", loaded.name);
    if !loaded.description.is_empty() {
        println!("  {}", loaded.description);
    }
    println!("config: {cfg}");
    if let Some(m) = cfg.mutant {
        println!(
            "mutant: {} ({}), expected to break \"{}\"",
            m.name(),
            m.describe(),
            mutants::breaks(m)
        );
    }
    match opts.strategy {
        Strategy::Bfs => println!("strategy: bfs, {} threads", opts.threads),
        Strategy::Dfs => println!(
            "strategy: dfs with server symmetry, {} threads",
            opts.threads
        ),
        Strategy::Simulation => println!(
            "strategy: simulation, walks of up to {} steps from seed {}, for {}s",
            opts.depth,
            opts.seed,
            opts.timeout.map_or(60, |t| t.as_secs())
        ),
    }
    memory::reset_peak();
    let rss_before = memory::rss_bytes();
    let mut progress = super::progress::Progress::start();
    let report = check::check(cfg, &opts, &mut |p| {
        progress.update(p.states, p.unique_states, p.max_depth)
    });
    progress.finish();
    let memory = print_counts(&report, rss_before);
    for p in &report.properties {
        if let (Some(found), Some(path)) = (p.found_steps, &p.path) {
            let steps = path.clone().into_actions().len();
            if steps < found {
                println!(
                    "counterexample for \"{}\" shortened from {found} to {steps} steps",
                    p.name
                );
            }
        }
    }
    if let Some(seed) = report.walks.and_then(|w| w.failing_seed) {
        println!(
            "reproduce: the walk with seed {seed} (--strategy simulation --seed {seed} --depth {})",
            opts.depth
        );
    }
    print_properties(&report, model_args);
    if let Some(m) = report.model.cfg.mutant
        && !report.exhaustive
        && !report.violated().is_empty()
    {
        let violated = report.violated();
        let fail = if violated.len() == 1 { "fails" } else { "fail" };
        println!(
            "the mutant {m} is caught: \"{}\" {fail}; the search stopped at the first \
             violation (exit status {EXIT_PROPERTY_FAILED})",
            violated.join("\", \"")
        );
    }
    let mut code = if report.passed() {
        EXIT_OK
    } else {
        EXIT_PROPERTY_FAILED
    };
    let expected = match report.strategy {
        Strategy::Dfs => loaded.expected.dfs,
        Strategy::Bfs => loaded.expected.bfs,
        Strategy::Simulation => None,
    };
    let mutant = report.model.cfg.mutant;
    if mutant.is_none() && report.exhaustive {
        if let Some(expected) = expected {
            if expected == report.unique_states as u64 {
                println!("unique states match the expected {expected}");
            } else {
                println!(
                    "unique states {} differ from the expected {expected} in {}: the state \
                     space changed (exit status {EXIT_COUNT_CHANGED}; not a property failure)",
                    report.unique_states, loaded.name
                );
                if code == EXIT_OK {
                    code = EXIT_COUNT_CHANGED;
                }
            }
        }
        if let (Strategy::Dfs, Some(without)) = (report.strategy, loaded.expected.bfs) {
            println!(
                "server symmetry: {} unique states where breadth-first search without \
                 symmetry finds {without} ({:.1}x fewer)",
                report.unique_states,
                without as f64 / report.unique_states.max(1) as f64
            );
        }
    } else if let Some(m) = mutant
        && report.violated().is_empty()
    {
        let searched = if report.exhaustive {
            "the state space was exhausted"
        } else {
            "the search ended"
        };
        println!("the mutant {m} was NOT caught: {searched} without a violation");
    }
    if args.json {
        print_json(&loaded.name, &report, expected, memory, code);
    }
    code
}

/// Prints the counts and memory; returns (peak RSS, bytes per unique state).
fn print_counts(report: &Report, rss_before: Option<u64>) -> (Option<u64>, Option<f64>) {
    if let Some(w) = report.walks {
        println!(
            "done: walks={} steps={} seconds={:.1}, reaching term {} and logs of {} entries",
            w.walks, w.steps, report.seconds, w.highest_term, w.longest_log
        );
        return (None, None);
    }
    println!(
        "done: states={} unique={} depth={} seconds={:.1} ({:.0} unique states/s)",
        report.states,
        report.unique_states,
        report.max_depth,
        report.seconds,
        report.unique_states as f64 / report.seconds.max(1e-3)
    );
    let peak = memory::peak_rss_bytes();
    let per_state = peak.zip(rss_before).map(|(peak, before)| {
        peak.saturating_sub(before) as f64 / report.unique_states.max(1) as f64
    });
    if let (Some(peak), Some(per_state)) = (peak, per_state) {
        println!(
            "memory: peak RSS {:.0} MB, {per_state:.0} bytes per unique state (growth during \
             this check)",
            peak as f64 / 1e6
        );
    }
    (peak, per_state)
}

/// The `--json` summary: configuration, counts, seconds, and each property's outcome and path.
fn print_json(
    name: &str,
    report: &Report,
    expected: Option<u64>,
    (peak, per_state): (Option<u64>, Option<f64>),
    exit_code: i32,
) {
    let model = &report.model;
    let properties: Vec<serde_json::Value> = report
        .properties
        .iter()
        .map(|p| {
            let path = p.path.as_ref().map(|path| {
                let actions: Vec<String> = path
                    .clone()
                    .into_actions()
                    .iter()
                    .map(|a| story::action(&model.cfg, a))
                    .collect();
                serde_json::json!({ "actions": actions, "encoded": path.encode(model) })
            });
            serde_json::json!({
                "name": p.name,
                "expectation": format!("{:?}", p.expectation).to_lowercase(),
                "outcome": p.outcome.name(),
                "path": path,
            })
        })
        .collect();
    let counts = match report.walks {
        Some(w) => serde_json::json!({ "walks": w.walks, "steps": w.steps }),
        None => serde_json::json!({
            "states": report.states,
            "unique_states": report.unique_states,
            "max_depth": report.max_depth,
            "expected_unique_states": expected,
            "peak_rss_bytes": peak,
            "bytes_per_state": per_state,
        }),
    };
    let summary = serde_json::json!({
        "model": name,
        "config": model.cfg,
        "mutant": model.cfg.mutant.map(|m| m.name()),
        "strategy": report.strategy.name(),
        "exhaustive": report.exhaustive,
        "counts": counts,
        "seconds": report.seconds,
        "properties": properties,
        "exit_code": exit_code,
    });
    println!("{summary}");
}

/// Prints each property with its outcome, and each counterexample as a story.
fn print_properties(report: &Report, model_args: &ModelArgs) {
    println!("properties:");
    // A search that stopped early (at a violation, or on --timeout) proves no "holds".
    let (holds, never) = if report.exhaustive {
        ("holds", "never reached")
    } else {
        (
            "no violation found before the search stopped",
            "not reached before the search stopped",
        )
    };
    for p in &report.properties {
        let (mark, outcome) = match p.outcome {
            Outcome::Holds => ("ok  ", holds),
            Outcome::Violated => ("FAIL", "violated (counterexample below)"),
            Outcome::Reached => ("ok  ", "reached"),
            Outcome::NotReached => ("FAIL", never),
        };
        let kind = format!("{:?}", p.expectation).to_lowercase();
        println!("  {mark} {kind:9} {:32} {outcome}", p.name);
    }
    for p in &report.properties {
        let (Expectation::Always, Some(path)) = (&p.expectation, &p.path) else {
            continue;
        };
        println!();
        println!(
            "counterexample for \"{}\" ({} steps):",
            p.name,
            path.clone().into_actions().len()
        );
        let steps = path.clone().into_vec();
        let cfg = &report.model.cfg;
        for (n, pair) in steps.windows(2).enumerate() {
            let (before, Some(action)) = (&pair[0].0, &pair[0].1) else {
                continue;
            };
            println!(
                "  {:3}. {}",
                n + 1,
                story::step(cfg, before, action, &pair[1].0)
            );
        }
        println!("  final state:");
        for line in story::state(cfg, path.last_state()).lines() {
            println!("       {line}");
        }
        println!("  action index path: {}", path.encode(&report.model));
        super::explore::print_counterexample_link(&report.model, path, model_args);
    }
}
