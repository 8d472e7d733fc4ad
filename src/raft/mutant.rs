//! Deliberately broken variants of the protocol, for checking the checker: a check that cannot
//! fail proves nothing. Each is consulted at exactly one decision, in `rules.rs`, beside the
//! rule it breaks; the model (`model::mutants`) says which property must catch it, and where.

use serde::Serialize;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Mutant {
    /// Commit the highest index replicated on a majority even if it is from an earlier term
    /// (the Figure 8 mistake).
    CommitOldTerm,
    /// Restart with `votedFor` forgotten, so a server can vote twice in one term.
    ForgetVoteOnRestart,
    /// Grant votes without the election restriction (§5.4.1).
    VoteWithoutLogCheck,
    /// On a matching AppendEntries, replace everything after `prevLogIndex` with its entries,
    /// so a stale or reordered request truncates entries the follower already holds.
    TruncateOnStaleAppend,
    /// Count a granted vote whatever term it was granted in.
    CountStaleVotes,
    /// Follower sets commitIndex = leaderCommit without the min with its last new entry.
    LeaderCommitWithoutMin,
    /// Leader answers a Get from its local state without confirming it is still leader.
    StaleRead,
    /// Skip the prevLogTerm check: accept entries after any prevLogIndex the follower has.
    SkipPrevLogTermCheck,
    /// Leader truncates its own log to a follower's conflict hint.
    LeaderTruncatesOnReject,
    /// Follower sets commitIndex = min(leaderCommit, last new entry) even when that is lower.
    CommitIndexRegresses,
}

impl Mutant {
    pub const ALL: [Mutant; 10] = [
        Mutant::CommitOldTerm,
        Mutant::ForgetVoteOnRestart,
        Mutant::VoteWithoutLogCheck,
        Mutant::TruncateOnStaleAppend,
        Mutant::CountStaleVotes,
        Mutant::LeaderCommitWithoutMin,
        Mutant::StaleRead,
        Mutant::SkipPrevLogTermCheck,
        Mutant::LeaderTruncatesOnReject,
        Mutant::CommitIndexRegresses,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Mutant::CommitOldTerm => "commit-old-term",
            Mutant::ForgetVoteOnRestart => "forget-vote-on-restart",
            Mutant::VoteWithoutLogCheck => "vote-without-log-check",
            Mutant::TruncateOnStaleAppend => "truncate-on-stale-append",
            Mutant::CountStaleVotes => "count-stale-votes",
            Mutant::LeaderCommitWithoutMin => "leader-commit-without-min",
            Mutant::StaleRead => "stale-read",
            Mutant::SkipPrevLogTermCheck => "skip-prev-log-term-check",
            Mutant::LeaderTruncatesOnReject => "leader-truncates-on-reject",
            Mutant::CommitIndexRegresses => "commit-index-regresses",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Mutant::CommitOldTerm => "commit an earlier-term entry by counting replicas (Figure 8)",
            Mutant::ForgetVoteOnRestart => "forget votedFor on restart",
            Mutant::VoteWithoutLogCheck => "grant a vote without the up-to-date check",
            Mutant::TruncateOnStaleAppend => "truncate the log on a stale AppendEntries",
            Mutant::CountStaleVotes => "count a vote granted in an earlier term",
            Mutant::LeaderCommitWithoutMin => "take leaderCommit without the min",
            Mutant::StaleRead => "answer a Get from local state without confirming leadership",
            Mutant::SkipPrevLogTermCheck => "accept AppendEntries without checking prevLogTerm",
            Mutant::LeaderTruncatesOnReject => "leader truncates its own log on a rejection",
            Mutant::CommitIndexRegresses => "let a stale AppendEntries lower commitIndex",
        }
    }

    pub fn parse(name: &str) -> Option<Mutant> {
        Mutant::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for Mutant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
