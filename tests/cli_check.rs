//! `raftright check --mutant NAME` on its own: straight to the model that catches the mutant
//! (src/model/mutants.rs), no other, and it stops at the first violation, saying so.

use raftright::model::mutants;
use raftright::raft::Mutant;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_raftright");

#[test]
fn check_mutant_goes_straight_to_its_catching_model_and_stops_at_the_catch() {
    // One mutant per model of the default suite, each caught within seconds.
    for name in [
        "commit-without-majority",
        "vote-twice",
        "win-without-majority",
        "ack-unappended-entries",
        "vote-ignores-log-length",
    ] {
        let mutant = Mutant::parse(name).expect("a mutant");
        let catch = mutants::catch(mutant).expect("a catching model");
        let out = Command::new(BIN)
            .args(["check", "--mutant", name, "--threads", "1"])
            .output()
            .expect("run raftright check");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{name} is caught:\n{stdout}");
        let models: Vec<&str> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("model: "))
            .collect();
        assert_eq!(models, [catch.model], "{name}:\n{stdout}");
        assert!(
            stdout.starts_with(&format!(
                "mutant {name} is caught by \"{}\" in {}",
                catch.property, catch.model
            )),
            "{stdout}"
        );
        let caught = stdout
            .lines()
            .find(|l| l.starts_with(&format!("the mutant {name} is caught: ")))
            .unwrap_or_else(|| panic!("no line says {name} is caught:\n{stdout}"));
        assert!(
            caught.contains(&format!("\"{}\"", catch.property))
                && caught.contains("the search stopped at the first violation"),
            "{caught}"
        );
        assert!(!stdout.contains("NOT caught"), "{stdout}");
    }
}
