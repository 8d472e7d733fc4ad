//! Where each deliberately broken variant of the protocol is caught: the property that must
//! fail, and the model whose exhaustive check shows it. `check --mutant NAME` goes straight
//! there, and the tests assert every row.

use super::properties as p;
use crate::raft::Mutant;

/// Where a mutant is caught.
#[derive(Clone, Copy, Debug)]
pub struct Catch {
    pub mutant: Mutant,
    /// The always-property its counterexample violates.
    pub property: &'static str,
    /// The shipped model file whose exhaustive check catches it.
    pub model: &'static str,
}

const fn exhaustive(mutant: Mutant, property: &'static str, model: &'static str) -> Catch {
    Catch {
        mutant,
        property,
        model,
    }
}

/// Every mutant, with where it is caught, exhaustively: each in a model of the default suite but
/// the configuration-change ones, in models of their own.
pub const CATCHES: [Catch; 43] = [
    exhaustive(
        Mutant::RequestVoteBeforeFsync,
        p::ELECTION_SAFETY,
        "models/durability.toml",
    ),
    exhaustive(
        Mutant::VoteBeforeFsync,
        p::ELECTION_SAFETY,
        "models/durability.toml",
    ),
    exhaustive(
        Mutant::AckBeforeFsync,
        p::COMMITTED_IS_DURABLE,
        "models/durability.toml",
    ),
    exhaustive(
        Mutant::AnswerBeforeDurable,
        p::ACKNOWLEDGED_WRITES_SURVIVE,
        "models/durability.toml",
    ),
    exhaustive(
        Mutant::ForgetVoteOnRestart,
        p::ELECTION_SAFETY,
        "models/elections.toml",
    ),
    exhaustive(
        Mutant::ForgetTermOnRestart,
        p::ELECTION_SAFETY,
        "models/elections.toml",
    ),
    exhaustive(
        Mutant::VoteInEarlierTerm,
        p::ELECTION_SAFETY,
        "models/figure8.toml",
    ),
    exhaustive(
        Mutant::VoteTwice,
        p::ELECTION_SAFETY,
        "models/elections.toml",
    ),
    exhaustive(
        Mutant::VoteWithoutLogCheck,
        p::LEADER_COMPLETENESS,
        "models/elections.toml",
    ),
    exhaustive(
        Mutant::VoteIgnoresLastTerm,
        p::LEADER_COMPLETENESS,
        "models/figure8.toml",
    ),
    exhaustive(
        Mutant::VoteIgnoresLogLength,
        p::LEADER_COMPLETENESS,
        "models/full-faults.toml",
    ),
    exhaustive(
        Mutant::AcceptStaleAppend,
        p::COMMITTED_IS_DURABLE,
        "models/elections.toml",
    ),
    exhaustive(
        Mutant::SkipPrevLogTermCheck,
        p::LOG_MATCHING,
        "models/figure8.toml",
    ),
    exhaustive(
        Mutant::KeepConflictingSuffix,
        p::CATCH_UP,
        "models/replication.toml",
    ),
    exhaustive(
        Mutant::TruncateOnStaleAppend,
        p::STATE_MACHINE_SAFETY,
        "models/elections.toml",
    ),
    exhaustive(
        Mutant::AckUnappendedEntries,
        p::COMMITTED_IS_DURABLE,
        "models/replication.toml",
    ),
    exhaustive(
        Mutant::LeaderCommitWithoutMin,
        p::STATE_MACHINE_SAFETY,
        "models/elections.toml",
    ),
    exhaustive(
        Mutant::CommitIndexRegresses,
        p::COMMIT_INDEX_MONOTONIC,
        "models/clients.toml",
    ),
    exhaustive(
        Mutant::ApplyBeforeCommit,
        p::STATE_MACHINE_SAFETY,
        "models/clients.toml",
    ),
    exhaustive(
        Mutant::KeepRoleOnLaterTerm,
        p::ELECTION_SAFETY,
        "models/clients.toml",
    ),
    exhaustive(Mutant::NeverCampaign, p::CATCH_UP, "models/elections.toml"),
    exhaustive(
        Mutant::CandidateKeepsTerm,
        p::ELECTION_SAFETY,
        "models/elections.toml",
    ),
    exhaustive(
        Mutant::CandidateForgetsOwnVote,
        p::ELECTION_SAFETY,
        "models/elections.toml",
    ),
    exhaustive(
        Mutant::CandidateNeverRetries,
        p::CATCH_UP,
        "models/figure8.toml",
    ),
    exhaustive(
        Mutant::CandidateIgnoresLeader,
        p::CATCH_UP,
        "models/figure8.toml",
    ),
    exhaustive(
        Mutant::CountStaleVotes,
        p::ELECTION_SAFETY,
        "models/figure8.toml",
    ),
    exhaustive(
        Mutant::WinWithoutMajority,
        p::ELECTION_SAFETY,
        "models/figure8.toml",
    ),
    exhaustive(
        Mutant::MatchIndexNotReset,
        p::CATCH_UP,
        "models/figure8.toml",
    ),
    exhaustive(Mutant::NoHeartbeat, p::CATCH_UP, "models/elections.toml"),
    exhaustive(
        Mutant::MatchIndexTrustsLeader,
        p::COMMITTED_IS_DURABLE,
        "models/elections.toml",
    ),
    exhaustive(
        Mutant::LeaderTruncatesOnReject,
        p::LEADER_APPEND_ONLY,
        "models/elections.toml",
    ),
    exhaustive(
        Mutant::CommitWithoutMajority,
        p::COMMITTED_IS_DURABLE,
        "models/clients.toml",
    ),
    exhaustive(
        Mutant::CommitOldTerm,
        p::LEADER_COMPLETENESS,
        "models/figure8.toml",
    ),
    exhaustive(
        Mutant::AnswerBeforeCommit,
        p::ACKNOWLEDGED_WRITES_SURVIVE,
        "models/clients.toml",
    ),
    exhaustive(Mutant::StaleRead, p::LINEARIZABLE, "models/clients.toml"),
    exhaustive(
        Mutant::PreVoteRaisesTerm,
        p::TERMS_FROM_ELECTIONS,
        "models/deaf-leader.toml",
    ),
    exhaustive(
        Mutant::NoCheckQuorum,
        p::CATCH_UP,
        "models/deaf-leader.toml",
    ),
    exhaustive(Mutant::StaleReadIndex, p::LINEARIZABLE, "models/reads.toml"),
    exhaustive(
        Mutant::InstallOlderSnapshot,
        p::REPLAYS_COMMITS,
        "models/compaction.toml",
    ),
    exhaustive(
        Mutant::AppendBelowSnapshot,
        p::LOG_MATCHING,
        "models/compaction.toml",
    ),
    exhaustive(
        Mutant::KeepConflictingAfterInstall,
        p::LOG_TERMS_NEVER_DECREASE,
        "models/install-conflict.toml",
    ),
    exhaustive(
        Mutant::ReconfigBeforeOwnTermCommit,
        p::LEADER_COMPLETENESS,
        "models/reconfig-bug.toml",
    ),
    exhaustive(
        Mutant::RemovedServerDisrupts,
        p::TERMS_FROM_VOTERS,
        "models/membership.toml",
    ),
];

/// Where `mutant` is caught (every mutant has a row; a test makes sure).
pub fn catch(mutant: Mutant) -> Option<Catch> {
    CATCHES.iter().find(|c| c.mutant == mutant).copied()
}

/// The property `mutant` is expected to break.
pub fn breaks(mutant: Mutant) -> &'static str {
    catch(mutant).map_or("(not catalogued)", |c| c.property)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mutant_has_exactly_one_catch_in_a_shipped_model() {
        for m in Mutant::ALL {
            let rows = CATCHES.iter().filter(|c| c.mutant == m).count();
            assert_eq!(rows, 1, "{m}");
            assert!(super::super::file::shipped(catch(m).unwrap().model).is_ok());
        }
    }
}
