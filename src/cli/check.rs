//! `raftright check`: exhaust a model and report every property by name.

use super::{ModelArgs, memory};
use raftright::model::properties::ALWAYS;
use raftright::model::{Action, RaftModel, State, shorten, story, symmetry, walk};
use raftright::raft::Mutant;
use stateright::Path;
use stateright::{Checker, Expectation, HasDiscoveries, Model};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Print the mutants, one per line (name, then the property it breaks), and exit.
    #[arg(long)]
    pub list_mutants: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// dfs: depth-first with server symmetry, the fastest and smallest in memory
    /// (counterexamples are shortened before they are printed); bfs: breadth-first without
    /// symmetry, shortest counterexamples; simulation: seeded random walks, far deeper than
    /// exhaustive search reaches (not exhaustive).
    #[arg(long, value_enum, default_value_t = Strategy::Dfs)]
    pub strategy: Strategy,
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
pub enum Strategy {
    Bfs,
    Dfs,
    Simulation,
}

/// The models `check` runs when given no model file and no overrides: each is exhausted.
pub const DEFAULT_SUITE: [(&str, &str); 4] = [
    (
        "models/faults.toml",
        include_str!("../../models/faults.toml"),
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
];

pub fn run(args: CheckArgs) -> Result<i32, String> {
    if args.list_mutants {
        for m in Mutant::ALL {
            println!("{}\t{}\t{}", m.name(), m.breaks(), m.describe());
        }
        return Ok(0);
    }
    if args.model.file.is_some() || args.model.has_overrides() {
        let loaded = args.model.load()?;
        return check_one(&args, &args.model, loaded);
    }
    let start = Instant::now();
    let mut failed = Vec::new();
    for (i, (name, text)) in DEFAULT_SUITE.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let options = ModelArgs {
            file: Some((*name).into()),
            mutant: args.model.mutant,
            ..Default::default()
        };
        let loaded = options.load_text(name, text)?;
        let code = check_one(&args, &options, loaded)?;
        if code != 0 {
            failed.push(*name);
            if args.model.mutant.is_some() {
                break; // caught: one counterexample is the point
            }
        }
    }
    println!();
    if failed.is_empty() {
        println!(
            "all {} models passed in {:.1}s",
            DEFAULT_SUITE.len(),
            start.elapsed().as_secs_f64()
        );
        Ok(0)
    } else {
        println!(
            "FAILED: {} ({:.1}s)",
            failed.join(", "),
            start.elapsed().as_secs_f64()
        );
        Ok(1)
    }
}

fn check_one(
    args: &CheckArgs,
    options: &ModelArgs,
    loaded: super::LoadedModel,
) -> Result<i32, String> {
    if args.strategy == Strategy::Simulation {
        return simulate(args, options, loaded);
    }
    let cfg = loaded.cfg.clone();
    println!("model: {}", loaded.name);
    if !loaded.description.is_empty() {
        println!("  {}", loaded.description);
    }
    println!("config: {cfg}");
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let model = RaftModel::new(cfg.clone());
    let mut builder = model.checker().threads(threads);
    if let Some(secs) = args.timeout {
        builder = builder.timeout(Duration::from_secs(secs));
    }
    if let Some(m) = cfg.mutant {
        // A mutant run stops at its first counterexample.
        builder = builder.finish_when(HasDiscoveries::AnyFailures);
        println!(
            "mutant: {} ({}), expected to break \"{}\"",
            m.name(),
            m.describe(),
            m.breaks()
        );
    }
    memory::reset_peak();
    let rss_before = memory::rss_bytes();
    let start = Instant::now();
    let mut checker: Box<dyn Checker<RaftModel> + Send + Sync> = match args.strategy {
        Strategy::Bfs => {
            println!("strategy: bfs, {threads} threads");
            Box::new(builder.spawn_bfs())
        }
        Strategy::Dfs => {
            println!("strategy: dfs with server symmetry, {threads} threads");
            Box::new(builder.symmetry_fn(symmetry::representative).spawn_dfs())
        }
        Strategy::Simulation => unreachable!("handled by simulate"),
    };
    let mut progress = super::progress::Progress::start();
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(100));
        progress.update(
            checker.state_count(),
            checker.unique_state_count(),
            checker.max_depth(),
        );
    }
    progress.finish();
    for h in checker.handles() {
        h.join()
            .map_err(|_| "a checker thread panicked".to_string())?;
    }
    let secs = start.elapsed().as_secs_f64();
    let unique = checker.unique_state_count();
    println!(
        "done: states={} unique={} depth={} seconds={:.1} ({:.0} unique states/s)",
        checker.state_count(),
        unique,
        checker.max_depth(),
        secs,
        unique as f64 / secs.max(1e-3)
    );
    let peak = memory::peak_rss_bytes();
    let bytes_per_state = peak
        .zip(rss_before)
        .map(|(peak, before)| peak.saturating_sub(before) as f64 / unique.max(1) as f64);
    if let (Some(peak), Some(per_state)) = (peak, bytes_per_state) {
        println!(
            "memory: peak RSS {:.0} MB, {per_state:.0} bytes per unique state (growth during this check)",
            peak as f64 / 1e6
        );
    }
    let discoveries = checker.discoveries();
    let discoveries = if args.strategy == Strategy::Bfs {
        discoveries // already shortest
    } else {
        shortened(checker.model(), discoveries)
    };
    let exhausted = cfg.mutant.is_none() || discoveries.keys().all(|d| !ALWAYS.contains(d));
    let ok = report_properties(checker.model(), &discoveries, options);
    let mut code = if ok { 0 } else { 1 };
    let expected = match args.strategy {
        Strategy::Dfs => loaded.expected.dfs,
        _ => loaded.expected.bfs,
    };
    let timed_out = args.timeout.is_some_and(|t| secs >= t as f64);
    if cfg.mutant.is_none() && !timed_out {
        if let Some(expected) = expected {
            if expected == unique as u64 {
                println!("unique states match the expected {expected}");
            } else {
                println!(
                    "unique states {unique} differ from the expected {expected} in {}",
                    loaded.name
                );
                code = 1;
            }
        }
        if let (Strategy::Dfs, Some(without)) = (args.strategy, loaded.expected.bfs) {
            println!(
                "server symmetry: {unique} unique states where breadth-first search without \
                 symmetry finds {without} ({:.1}x fewer)",
                without as f64 / unique.max(1) as f64
            );
        }
    } else if cfg.mutant.is_some() && exhausted {
        println!("the mutant was NOT caught: the state space was exhausted without a violation");
    }
    if args.json {
        let counts = serde_json::json!({
            "states": checker.state_count(),
            "unique_states": unique,
            "max_depth": checker.max_depth(),
            "expected_unique_states": expected,
            "peak_rss_bytes": peak,
            "bytes_per_state": bytes_per_state,
        });
        print_json(
            checker.model(),
            &loaded.name,
            args,
            counts,
            secs,
            &discoveries,
            code,
        );
    }
    Ok(code)
}

/// The `--json` summary: configuration, counts, seconds, and each property's outcome and path.
fn print_json(
    model: &RaftModel,
    name: &str,
    args: &CheckArgs,
    counts: serde_json::Value,
    seconds: f64,
    discoveries: &HashMap<&'static str, Path<State, Action>>,
    exit_code: i32,
) {
    let properties: Vec<serde_json::Value> = model
        .properties()
        .iter()
        .map(|p| {
            let path = discoveries.get(p.name).map(|path| {
                let actions: Vec<String> = path
                    .clone()
                    .into_actions()
                    .iter()
                    .map(|a| story::action(&model.cfg, a))
                    .collect();
                serde_json::json!({ "actions": actions, "encoded": path.encode(model) })
            });
            let outcome = match (&p.expectation, path.is_some()) {
                (Expectation::Sometimes, true) => "reached",
                (Expectation::Sometimes, false) => "not reached",
                (_, true) => "violated",
                (_, false) => "holds",
            };
            serde_json::json!({
                "name": p.name,
                "expectation": format!("{:?}", p.expectation).to_lowercase(),
                "outcome": outcome,
                "path": path,
            })
        })
        .collect();
    let summary = serde_json::json!({
        "model": name,
        "config": model.cfg,
        "mutant": model.cfg.mutant.map(|m| m.name()),
        "strategy": format!("{:?}", args.strategy).to_lowercase(),
        "counts": counts,
        "seconds": seconds,
        "properties": properties,
        "exit_code": exit_code,
    });
    println!("{summary}");
}

/// Seeded random walks (`--strategy simulation`): walk k uses seed + k, until a property
/// fails or the time (`--timeout`, default 60 s) is up. Not exhaustive, but reaches far
/// deeper than exhaustive search; a counterexample is reproduced from its seed.
fn simulate(
    args: &CheckArgs,
    options: &ModelArgs,
    loaded: super::LoadedModel,
) -> Result<i32, String> {
    let cfg = loaded.cfg.clone();
    println!("model: {}", loaded.name);
    println!("config: {cfg}");
    let seconds = args.timeout.unwrap_or(60);
    println!(
        "strategy: simulation, walks of up to {} steps from seed {}, for {seconds}s",
        args.depth, args.seed
    );
    let model = RaftModel::new(cfg);
    let properties = model.properties();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut reached: HashMap<&'static str, Path<State, Action>> = HashMap::new();
    let (mut walks, mut steps) = (0u64, 0usize);
    let mut deepest = (0u64, 0usize); // highest term, longest log
    let mut failure: Option<(&'static str, u64, walk::Walk)> = None;
    'walks: while Instant::now() < deadline {
        let seed = args.seed.wrapping_add(walks);
        let walk = walk::random_walk(&model, seed, args.depth);
        walks += 1;
        steps += walk.len() - 1;
        for (i, (_, state)) in walk.iter().enumerate() {
            for server in state.actor_states.iter().filter_map(|a| a.as_server()) {
                deepest.0 = deepest.0.max(server.current_term);
                deepest.1 = deepest.1.max(server.log.len());
            }
            for p in &properties {
                let holds = (p.condition)(&model, state);
                match p.expectation {
                    Expectation::Always if !holds => {
                        failure = Some((p.name, seed, walk[..=i].to_vec()));
                        break 'walks;
                    }
                    Expectation::Sometimes if holds && !reached.contains_key(p.name) => {
                        reached.insert(p.name, to_path(&model, &walk[..=i]));
                    }
                    _ => {}
                }
            }
        }
    }
    println!(
        "done: walks={walks} steps={steps} seconds={:.1}, reaching term {} and logs of {} entries",
        start.elapsed().as_secs_f64(),
        deepest.0,
        deepest.1
    );
    let mut discoveries = reached;
    if let Some((name, seed, walk)) = &failure {
        discoveries.insert(name, to_path(&model, walk));
        discoveries = shortened(&model, discoveries);
        println!(
            "reproduce: the walk with seed {seed} (--strategy simulation --seed {seed} --depth {})",
            args.depth
        );
    }
    let ok = report_properties(&model, &discoveries, options);
    let code = if ok { 0 } else { 1 };
    if args.json {
        let counts = serde_json::json!({ "walks": walks, "steps": steps });
        let secs = start.elapsed().as_secs_f64();
        print_json(&model, &loaded.name, args, counts, secs, &discoveries, code);
    }
    Ok(code)
}

/// Shortens the counterexample of every violated always-property (see [`shorten`]).
fn shortened(
    model: &RaftModel,
    mut discoveries: HashMap<&'static str, Path<State, Action>>,
) -> HashMap<&'static str, Path<State, Action>> {
    for p in model.properties() {
        if p.expectation != Expectation::Always {
            continue;
        }
        if let Some(path) = discoveries.get_mut(p.name) {
            let found = path.clone().into_actions().len();
            *path = shorten::shorten(model, path, |s| !(p.condition)(model, s));
            let steps = path.clone().into_actions().len();
            if steps < found {
                println!(
                    "counterexample for \"{}\" shortened from {found} to {steps} steps",
                    p.name
                );
            }
        }
    }
    discoveries
}

fn to_path(model: &RaftModel, walk: &[walk::Step]) -> Path<State, Action> {
    let actions: Vec<Action> = walk.iter().filter_map(|(a, _)| a.clone()).collect();
    Path::from_actions(model, walk[0].1.clone(), &actions).expect("a walk replays")
}

/// Prints each property with its outcome and each counterexample as a story. Returns whether
/// every always-property holds and every sometimes-property was reached.
fn report_properties(
    model: &RaftModel,
    discoveries: &HashMap<
        &'static str,
        stateright::Path<raftright::model::State, raftright::model::Action>,
    >,
    options: &super::ModelArgs,
) -> bool {
    let mut ok = true;
    println!("properties:");
    for p in model.properties() {
        let found = discoveries.contains_key(p.name);
        let (mark, outcome) = match (&p.expectation, found) {
            (Expectation::Always, false) => ("ok  ", "holds"),
            (Expectation::Always, true) => ("FAIL", "violated (counterexample below)"),
            (Expectation::Sometimes, true) => ("ok  ", "reached"),
            (Expectation::Sometimes, false) => ("FAIL", "never reached"),
            (Expectation::Eventually, false) => ("ok  ", "holds"),
            (Expectation::Eventually, true) => ("FAIL", "violated"),
        };
        if mark == "FAIL" {
            ok = false;
        }
        let kind = format!("{:?}", p.expectation).to_lowercase();
        println!("  {mark} {kind:9} {:32} {outcome}", p.name);
    }
    for p in model.properties() {
        if p.expectation == Expectation::Sometimes {
            continue;
        }
        if let Some(path) = discoveries.get(p.name) {
            println!();
            println!(
                "counterexample for \"{}\" ({} steps):",
                p.name,
                path.clone().into_actions().len()
            );
            print_story(model, path, options);
        }
    }
    ok
}

fn print_story(
    model: &RaftModel,
    path: &stateright::Path<raftright::model::State, raftright::model::Action>,
    options: &super::ModelArgs,
) {
    let steps = path.clone().into_vec();
    for (n, pair) in steps.windows(2).enumerate() {
        let (before, Some(action)) = (&pair[0].0, &pair[0].1) else {
            continue;
        };
        let after = &pair[1].0;
        println!(
            "  {:3}. {}",
            n + 1,
            story::step(&model.cfg, before, action, after)
        );
    }
    println!("  final state:");
    for line in story::state(&model.cfg, path.last_state()).lines() {
        println!("       {line}");
    }
    println!("  action index path: {}", path.encode(model));
    super::explore::print_counterexample_link(model, path, options);
}
