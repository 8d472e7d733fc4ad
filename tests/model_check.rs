//! The model checker end to end, through its library API: the shipped models keep their state
//! counts, and every deliberately broken variant (mutant) is caught where the catalogue
//! (`model::mutants`) says, with a counterexample for the property it names. A few tests run
//! the binary for what only the command line does: exit statuses, JSON, the mutant list.

use raftright::model::check::{self, Options, Outcome, Report, Strategy};
use raftright::model::file::{self, DEFAULT_SUITE};
use raftright::model::mutants::CATCHES;
use raftright::model::properties::ALWAYS;
use raftright::raft::Mutant;
use std::process::Command;
use std::time::Duration;

fn run(name: &str, strategy: Strategy, mutant: Option<Mutant>) -> Report {
    let mut model = file::shipped(name).unwrap();
    model.cfg.mutant = mutant;
    let options = Options {
        strategy,
        stop_at_violation: mutant.is_some(),
        ..Options::default()
    };
    check::check(model.cfg, &options, &mut |_| {})
}

/// A model re-checked exhaustively must pass and find exactly the unique-state count its file
/// records, so that an accidental change to the state space is noticed.
fn assert_model_unchanged(name: &str, strategy: Strategy) {
    let report = run(name, strategy, None);
    for p in &report.properties {
        assert!(p.outcome.ok(), "{name}: {} {:?}", p.name, p.outcome);
    }
    for property in ALWAYS {
        assert_eq!(report.outcome(property), Some(Outcome::Holds), "{name}");
    }
    assert!(report.exhaustive, "{name}");
    let expected = file::shipped(name).unwrap().expected;
    let expected = match strategy {
        Strategy::Bfs => expected.bfs,
        _ => expected.dfs,
    };
    assert_eq!(
        Some(report.unique_states as u64),
        expected,
        "{name} ({strategy:?}): the state space changed"
    );
}

#[test]
fn small_models_keep_their_state_counts_under_both_strategies() {
    for name in ["models/tiny.toml", "models/votes.toml"] {
        assert_model_unchanged(name, Strategy::Dfs);
        assert_model_unchanged(name, Strategy::Bfs);
    }
}

#[test]
fn default_suite_models_keep_their_state_counts() {
    for name in DEFAULT_SUITE {
        assert_model_unchanged(name, Strategy::Dfs);
    }
}

/// With symmetry, a count must not depend on which member of a class was seen first.
#[test]
fn symmetric_counts_do_not_depend_on_threads() {
    let counts: Vec<usize> = [1, 2]
        .into_iter()
        .map(|threads| {
            let options = Options {
                threads,
                ..Options::default()
            };
            let cfg = file::shipped("models/tiny.toml").unwrap().cfg;
            check::check(cfg, &options, &mut |_| {}).unique_states
        })
        .collect();
    assert_eq!(counts[0], counts[1]);
}

/// Every row of the mutant catalogue: the mutant's counterexample violates the named property
/// in the named model.
#[test]
fn every_mutant_is_caught_where_the_catalogue_says() {
    for catch in CATCHES {
        let mut model = file::shipped(catch.model).unwrap();
        model.cfg.mutant = Some(catch.mutant);
        let options = Options {
            stop_at_violation: true,
            expected_violation: Some(catch.property),
            ..Options::default()
        };
        let report = check::check(model.cfg, &options, &mut |_| {});
        assert_eq!(
            report.outcome(catch.property),
            Some(Outcome::Violated),
            "{} in {}: violated {:?}",
            catch.mutant,
            catch.model,
            report.violated()
        );
        let path = report.property(catch.property).unwrap().path.as_ref();
        assert!(path.is_some(), "{}: no counterexample", catch.mutant);
    }
}

/// Every always-property is broken by at least one mutant: each can fail.
#[test]
fn every_property_is_broken_by_some_mutant() {
    for property in ALWAYS {
        assert!(
            CATCHES.iter().any(|c| c.property == property),
            "no mutant breaks {property}"
        );
    }
}

#[test]
fn the_correct_protocol_survives_deep_random_walks() {
    let cfg = file::shipped("models/deep.toml").unwrap().cfg;
    let options = Options {
        strategy: Strategy::Simulation,
        seed: 1,
        timeout: Some(Duration::from_secs(15)),
        ..Options::default()
    };
    let report = check::check(cfg, &options, &mut |_| {});
    assert!(report.violated().is_empty(), "{:?}", report.violated());
    assert!(report.walks.is_some_and(|w| w.walks > 0));
}

// ---- the command line ------------------------------------------------------------------

fn cli(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_raftright"))
        .arg("check")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run raftright check");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), stdout)
}

/// A violated property exits 1 and names the property; a changed count exits 3 and says the
/// state space changed; a bad argument exits 2.
#[test]
fn exit_statuses_tell_a_violation_from_a_changed_count() {
    let (code, out) = cli(&[
        "models/elections.toml",
        "--mutant",
        "forget-vote-on-restart",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("counterexample for \"Election Safety\""),
        "{out}"
    );
    assert!(out.contains("explore: http://"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let tiny = std::fs::read_to_string("models/tiny.toml").unwrap();
    let wrong = tiny.replace("dfs = 3776", "dfs = 3000");
    assert_ne!(wrong, tiny, "tiny.toml records dfs = 3776");
    let path = dir.path().join("tiny-wrong-count.toml");
    std::fs::write(&path, wrong).unwrap();
    let (code, out) = cli(&[path.to_str().unwrap()]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("the state space changed"), "{out}");

    assert_eq!(cli(&["--mutant", "no-such-mutant"]).0, 2);
    assert_eq!(cli(&["models/does-not-exist.toml"]).0, 2);
}

/// `check --mutant NAME` alone goes straight to the model that catches it.
#[test]
fn a_mutant_alone_goes_to_its_catching_model() {
    let (code, out) = cli(&["--mutant", "commit-index-regresses"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("model: models/clients.toml"), "{out}");
    assert!(!out.contains("NOT caught"), "{out}");
}

#[test]
fn the_mutant_list_names_a_property_and_a_model_for_each() {
    let (code, out) = cli(&["--list-mutants"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), Mutant::ALL.len(), "{out}");
    for line in lines {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            fields.len(),
            4,
            "name, property, model, description: {line}"
        );
        assert!(Mutant::parse(fields[0]).is_some(), "{line}");
        assert!(ALWAYS.contains(&fields[1]), "{line}");
        assert!(fields[2].starts_with("models/"), "{line}");
    }
}

#[test]
fn json_summary_reports_counts_and_every_property() {
    let (code, out) = cli(&["models/tiny.toml", "--json"]);
    assert_eq!(code, 0, "{out}");
    let last = out.lines().last().expect("output");
    let summary: serde_json::Value = serde_json::from_str(last).expect("the last line is JSON");
    assert_eq!(
        summary["counts"]["unique_states"],
        summary["counts"]["expected_unique_states"]
    );
    let properties = summary["properties"].as_array().expect("properties");
    assert!(
        properties
            .iter()
            .any(|p| p["name"] == "Election Safety" && p["outcome"] == "holds")
    );
    assert!(
        properties
            .iter()
            .all(|p| p["outcome"] == "holds" || p["outcome"] == "reached")
    );
}

#[test]
fn bench_check_reports_rate_and_memory_per_model() {
    let out = Command::new(env!("CARGO_BIN_EXE_raftright"))
        .args(["bench-check", "models/tiny.toml", "--runs", "2"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run raftright bench-check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("| `models/tiny.toml`"))
        .unwrap_or_else(|| panic!("no row for tiny.toml:\n{stdout}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(cells[2], "3776", "{row}");
    let rate: f64 = cells[4].parse().expect("unique states/s");
    assert!(rate > 0.0, "{row}");
}
