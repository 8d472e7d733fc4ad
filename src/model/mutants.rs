//! Where each deliberately broken variant of the protocol is caught: the property that must
//! fail, and the model (and strategy) that shows it. `check --mutant NAME` goes straight
//! there, and the tests assert every row.

use super::properties as p;
use crate::raft::Mutant;

/// How a mutant's counterexample is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Search {
    /// An exhaustive depth-first search of the model.
    Exhaustive,
    /// Seeded random walks of the model, starting at this seed.
    Simulation { seed: u64 },
}

/// Where a mutant is caught.
#[derive(Clone, Copy, Debug)]
pub struct Catch {
    pub mutant: Mutant,
    /// The always-property its counterexample violates.
    pub property: &'static str,
    /// The shipped model file that catches it.
    pub model: &'static str,
    pub search: Search,
}

const fn exhaustive(mutant: Mutant, property: &'static str, model: &'static str) -> Catch {
    Catch {
        mutant,
        property,
        model,
        search: Search::Exhaustive,
    }
}

/// Every mutant, with the first place it is caught.
pub const CATCHES: [Catch; 10] = [
    exhaustive(
        Mutant::ForgetVoteOnRestart,
        p::ELECTION_SAFETY,
        "models/elections.toml",
    ),
    exhaustive(
        Mutant::VoteWithoutLogCheck,
        p::LEADER_COMPLETENESS,
        "models/elections.toml",
    ),
    exhaustive(
        Mutant::TruncateOnStaleAppend,
        p::STATE_MACHINE_SAFETY,
        "models/elections.toml",
    ),
    exhaustive(
        Mutant::LeaderCommitWithoutMin,
        p::STATE_MACHINE_SAFETY,
        "models/elections.toml",
    ),
    exhaustive(
        Mutant::LeaderTruncatesOnReject,
        p::LEADER_APPEND_ONLY,
        "models/elections.toml",
    ),
    exhaustive(
        Mutant::CommitIndexRegresses,
        p::COMMIT_INDEX_MONOTONIC,
        "models/faults.toml",
    ),
    exhaustive(
        Mutant::CommitOldTerm,
        p::LEADER_COMPLETENESS,
        "models/figure8.toml",
    ),
    exhaustive(
        Mutant::CountStaleVotes,
        p::ELECTION_SAFETY,
        "models/figure8.toml",
    ),
    exhaustive(
        Mutant::SkipPrevLogTermCheck,
        p::LOG_MATCHING,
        "models/figure8.toml",
    ),
    Catch {
        mutant: Mutant::StaleRead,
        property: p::LINEARIZABLE,
        model: "models/deep.toml",
        search: Search::Simulation { seed: 1 },
    },
];

/// Where `mutant` is caught.
pub fn catch(mutant: Mutant) -> Catch {
    *CATCHES
        .iter()
        .find(|c| c.mutant == mutant)
        .expect("every mutant has a catch")
}

/// The always-property `mutant` is expected to break.
pub fn breaks(mutant: Mutant) -> &'static str {
    catch(mutant).property
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mutant_has_exactly_one_catch_in_a_shipped_model() {
        for m in Mutant::ALL {
            let rows = CATCHES.iter().filter(|c| c.mutant == m).count();
            assert_eq!(rows, 1, "{m}");
            assert!(super::super::file::shipped(catch(m).model).is_ok());
        }
    }
}
