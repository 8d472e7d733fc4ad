//! The model checker as a library call, like stateright's own tests of its examples:
//! [`check`] runs one model with a strategy and returns a [`Report`] of counts and of every
//! property's outcome with its path. The command line only prints reports; tests assert on
//! them.

use super::{Action, ModelCfg, RaftModel, State, shorten, symmetry, walk};
use stateright::{Checker, Expectation, HasDiscoveries, Model, Path};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How the state space is searched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Breadth-first, without symmetry: shortest counterexamples, the most memory.
    Bfs,
    /// Depth-first with server symmetry: the fastest and smallest; counterexamples are
    /// shortened.
    Dfs,
    /// Seeded random walks: far deeper than exhaustive search, not exhaustive.
    Simulation,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Bfs => "bfs",
            Strategy::Dfs => "dfs",
            Strategy::Simulation => "simulation",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub strategy: Strategy,
    pub threads: usize,
    /// Stop after this long (the result is then not exhaustive). Simulation runs this long
    /// (60 s when unset) unless a property fails first.
    pub timeout: Option<Duration>,
    /// Simulation: walk k uses seed `seed + k`.
    pub seed: u64,
    /// Simulation: steps per walk.
    pub depth: usize,
    /// Stop at the first violated always-property (the default for a mutant).
    pub stop_at_violation: bool,
    /// With `stop_at_violation`: stop only once this property is violated (a mutant's
    /// catalogued property), so that which property a run names does not depend on timing.
    pub expected_violation: Option<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            strategy: Strategy::Dfs,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            timeout: None,
            seed: 0,
            depth: 1000,
            stop_at_violation: false,
            expected_violation: None,
        }
    }
}

/// Checker progress, reported while a search runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    pub states: usize,
    pub unique_states: usize,
    pub max_depth: usize,
    pub elapsed: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An always-property held in every state visited.
    Holds,
    /// An always-property failed; the report carries the path.
    Violated,
    /// A sometimes-property was reached; the report carries the path.
    Reached,
    NotReached,
}

impl Outcome {
    pub fn ok(self) -> bool {
        matches!(self, Outcome::Holds | Outcome::Reached)
    }

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Holds => "holds",
            Outcome::Violated => "violated",
            Outcome::Reached => "reached",
            Outcome::NotReached => "not reached",
        }
    }
}

pub struct PropertyReport {
    pub name: &'static str,
    pub expectation: Expectation,
    pub outcome: Outcome,
    /// The counterexample or the witness.
    pub path: Option<Path<State, Action>>,
    /// A counterexample's length as found, before it was shortened.
    pub found_steps: Option<usize>,
}

/// What random walks covered.
#[derive(Clone, Copy, Debug, Default)]
pub struct Walks {
    pub walks: u64,
    pub steps: usize,
    pub highest_term: u64,
    pub longest_log: usize,
    /// The seed of the walk that violated a property, which reproduces it.
    pub failing_seed: Option<u64>,
}

pub struct Report {
    pub model: RaftModel,
    pub strategy: Strategy,
    pub threads: usize,
    pub seconds: f64,
    pub states: usize,
    pub unique_states: usize,
    pub max_depth: usize,
    /// Every reachable state within the bounds was visited (no timeout, no early stop).
    pub exhaustive: bool,
    /// Simulation only.
    pub walks: Option<Walks>,
    pub properties: Vec<PropertyReport>,
}

impl Report {
    pub fn property(&self, name: &str) -> Option<&PropertyReport> {
        self.properties.iter().find(|p| p.name == name)
    }

    pub fn outcome(&self, name: &str) -> Option<Outcome> {
        self.property(name).map(|p| p.outcome)
    }

    /// The always-properties that failed.
    pub fn violated(&self) -> Vec<&'static str> {
        self.properties
            .iter()
            .filter(|p| p.outcome == Outcome::Violated)
            .map(|p| p.name)
            .collect()
    }

    /// Every always-property holds and every sometimes-property was reached.
    pub fn passed(&self) -> bool {
        self.properties.iter().all(|p| p.outcome.ok())
    }
}

/// Checks `cfg` with `options`; `progress` is called about ten times a second during an
/// exhaustive search.
pub fn check(cfg: ModelCfg, options: &Options, progress: &mut dyn FnMut(Progress)) -> Report {
    match options.strategy {
        Strategy::Simulation => simulate(cfg, options),
        _ => search(cfg, options, progress),
    }
}

fn search(cfg: ModelCfg, options: &Options, progress: &mut dyn FnMut(Progress)) -> Report {
    let model = RaftModel::new(cfg);
    let mut builder = model.checker().threads(options.threads.max(1));
    if let Some(timeout) = options.timeout {
        builder = builder.timeout(timeout);
    }
    if options.stop_at_violation {
        builder = builder.finish_when(match options.expected_violation {
            Some(name) => HasDiscoveries::AnyOf([name].into()),
            None => HasDiscoveries::AnyFailures,
        });
    }
    let start = Instant::now();
    let mut checker: Box<dyn Checker<RaftModel> + Send + Sync> = match options.strategy {
        Strategy::Bfs => Box::new(builder.spawn_bfs()),
        _ => Box::new(builder.symmetry_fn(symmetry::representative).spawn_dfs()),
    };
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(100));
        progress(Progress {
            states: checker.state_count(),
            unique_states: checker.unique_state_count(),
            max_depth: checker.max_depth(),
            elapsed: start.elapsed(),
        });
    }
    for handle in checker.handles() {
        if let Err(panic) = handle.join() {
            std::panic::resume_unwind(panic);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let timed_out = options.timeout.is_some_and(|t| start.elapsed() >= t);
    let discoveries = checker.discoveries();
    let any_violation = discoveries.keys().any(|name| {
        checker
            .model()
            .properties()
            .iter()
            .any(|p| p.name == *name && p.expectation == Expectation::Always)
    });
    let stopped_early = options.stop_at_violation && any_violation;
    let (states, unique_states, max_depth) = (
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth(),
    );
    let model = RaftModel::new(checker.model().cfg.clone());
    let shorten = options.strategy != Strategy::Bfs; // BFS paths are already shortest
    let properties = property_reports(&model, discoveries, shorten);
    Report {
        model,
        strategy: options.strategy,
        threads: options.threads,
        seconds,
        states,
        unique_states,
        max_depth,
        exhaustive: !timed_out && !stopped_early,
        walks: None,
        properties,
    }
}

/// Seeded random walks: walk k uses seed + k, until a property fails or the time is up.
fn simulate(cfg: ModelCfg, options: &Options) -> Report {
    let model = RaftModel::new(cfg);
    let properties = model.properties();
    let start = Instant::now();
    let deadline = start + options.timeout.unwrap_or(Duration::from_secs(60));
    let mut discoveries: HashMap<&'static str, Path<State, Action>> = HashMap::new();
    let mut walks = Walks::default();
    'walks: while Instant::now() < deadline {
        let seed = options.seed.wrapping_add(walks.walks);
        let walk = walk::random_walk(&model, seed, options.depth);
        walks.walks += 1;
        walks.steps += walk.len() - 1;
        for (i, (_, state)) in walk.iter().enumerate() {
            for server in state.actor_states.iter().filter_map(|a| a.as_server()) {
                walks.highest_term = walks.highest_term.max(server.current_term());
                walks.longest_log = walks.longest_log.max(server.log().len());
            }
            for p in &properties {
                let holds = (p.condition)(&model, state);
                match p.expectation {
                    Expectation::Always if !holds => {
                        discoveries.insert(p.name, to_path(&model, &walk[..=i]));
                        walks.failing_seed = Some(seed);
                        break 'walks;
                    }
                    Expectation::Sometimes if holds && !discoveries.contains_key(p.name) => {
                        discoveries.insert(p.name, to_path(&model, &walk[..=i]));
                    }
                    _ => {}
                }
            }
        }
    }
    let properties = property_reports(&model, discoveries, true);
    Report {
        model,
        strategy: Strategy::Simulation,
        threads: 1,
        seconds: start.elapsed().as_secs_f64(),
        states: walks.steps,
        unique_states: 0,
        max_depth: options.depth,
        exhaustive: false,
        walks: Some(walks),
        properties,
    }
}

/// Every property's outcome, with counterexamples shortened when `shorten` is set.
fn property_reports(
    model: &RaftModel,
    mut discoveries: HashMap<&'static str, Path<State, Action>>,
    shorten: bool,
) -> Vec<PropertyReport> {
    model
        .properties()
        .into_iter()
        .map(|p| {
            let mut path = discoveries.remove(p.name);
            let mut found_steps = None;
            if let (Some(found), Expectation::Always) = (&mut path, &p.expectation) {
                found_steps = Some(found.clone().into_actions().len());
                if shorten {
                    *found = shorten::shorten(model, found, |s| !(p.condition)(model, s));
                }
            }
            let outcome = match (&p.expectation, path.is_some()) {
                (Expectation::Sometimes, true) => Outcome::Reached,
                (Expectation::Sometimes, false) => Outcome::NotReached,
                (_, true) => Outcome::Violated,
                (_, false) => Outcome::Holds,
            };
            PropertyReport {
                name: p.name,
                expectation: p.expectation,
                outcome,
                path,
                found_steps,
            }
        })
        .collect()
}

fn to_path(model: &RaftModel, walk: &[walk::Step]) -> Path<State, Action> {
    let actions: Vec<Action> = walk.iter().filter_map(|(a, _)| a.clone()).collect();
    Path::from_actions(model, walk[0].1.clone(), &actions).expect("a walk replays")
}
