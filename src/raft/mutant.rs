//! Deliberately broken variants of the protocol, for checking the checker: a check that cannot
//! fail proves nothing. Each breaks one rule of Figure 2 and is consulted only in `rules.rs`,
//! beside the rule it breaks; the model (`model::mutants`) says which property must catch it,
//! and where.

use serde::Serialize;
use std::fmt;

macro_rules! mutants {
    ($($(#[doc = $doc:expr])* $variant:ident = $name:literal, $describe:literal;)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub enum Mutant {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Mutant {
            pub const ALL: [Mutant; [$(stringify!($variant)),*].len()] = [$(Mutant::$variant),*];

            /// The command-line name.
            pub fn name(self) -> &'static str {
                match self {
                    $(Mutant::$variant => $name,)*
                }
            }

            /// What it breaks, in a few words.
            pub fn describe(self) -> &'static str {
                match self {
                    $(Mutant::$variant => $describe,)*
                }
            }
        }
    };
}

mutants! {
    // ---- persistent state (Figure 2, §5.1) ----
    /// Restart with `votedFor` forgotten, so a server can vote twice in one term.
    ForgetVoteOnRestart = "forget-vote-on-restart", "forget votedFor on restart";
    /// Restart in term 0 with no vote, as if `currentTerm` were not persisted.
    ForgetTermOnRestart = "forget-term-on-restart", "forget currentTerm (and the vote) on restart";

    // ---- durability (§5.1: persist before you speak) ----
    /// Ask for votes before the new term and the vote for itself are durable.
    RequestVoteBeforeFsync = "request-vote-before-fsync", "ask for votes before the new term is durable";
    /// Grant a vote before the term and the vote are durable.
    VoteBeforeFsync = "vote-before-fsync", "grant a vote before it is durable";
    /// Acknowledge entries before they are durable.
    AckBeforeFsync = "ack-before-fsync", "acknowledge entries before they are durable";
    /// A leader counts its own entries toward commit before they are durable, so it commits,
    /// and answers a client, before a majority holds the entry durably.
    AnswerBeforeDurable = "answer-before-durable", "count the leader's own copy before it is durable, and answer";

    // ---- RequestVote receiver ----
    /// Step 1 broken: grant a RequestVote of an earlier term, answering in the candidate's term.
    VoteInEarlierTerm = "vote-in-earlier-term", "grant a vote to a candidate of an earlier term";
    /// Step 2 broken: ignore `votedFor`, so a server votes for every candidate of a term.
    VoteTwice = "vote-twice", "grant a vote whatever votedFor says";
    /// Step 2 broken: grant votes without the election restriction (§5.4.1).
    VoteWithoutLogCheck = "vote-without-log-check", "grant a vote without the up-to-date check";
    /// Step 2, half of the up-to-date check: compare log lengths only.
    VoteIgnoresLastTerm = "vote-ignores-last-term", "up-to-date by log length alone";
    /// Step 2, the other half: compare last terms only.
    VoteIgnoresLogLength = "vote-ignores-log-length", "up-to-date by last term alone";

    // ---- AppendEntries receiver ----
    /// Step 1 broken: act on an AppendEntries of an earlier term (a deposed leader's).
    AcceptStaleAppend = "accept-stale-append", "accept AppendEntries from an earlier term";
    /// Step 2 broken: accept entries after any prevLogIndex the follower has.
    SkipPrevLogTermCheck = "skip-prev-log-term-check", "accept AppendEntries without checking prevLogTerm";
    /// Step 3 broken: overwrite a conflicting entry in place and keep the entries after it.
    KeepConflictingSuffix = "keep-conflicting-suffix", "replace a conflicting entry but keep what follows it";
    /// Step 3 broken the other way: replace everything after `prevLogIndex`, so a stale or
    /// reordered request truncates entries the follower already holds.
    TruncateOnStaleAppend = "truncate-on-stale-append", "truncate the log on a stale AppendEntries";
    /// Step 4 broken: append only the first new entry, but acknowledge them all.
    AckUnappendedEntries = "ack-unappended-entries", "acknowledge entries it did not append";
    /// Step 5 broken: commitIndex = leaderCommit, without the min with the last new entry.
    LeaderCommitWithoutMin = "leader-commit-without-min", "take leaderCommit without the min";
    /// Step 5 broken: set commitIndex = min(leaderCommit, last new entry) even when lower.
    CommitIndexRegresses = "commit-index-regresses", "let a stale AppendEntries lower commitIndex";

    // ---- snapshots (§7, Figure 13) ----
    /// Install a snapshot that covers less than the server has applied (a stale, duplicated or
    /// reordered InstallSnapshot), reverting its state machine.
    InstallOlderSnapshot = "install-older-snapshot", "install a snapshot older than what is applied";
    /// An AppendEntries whose prevLogIndex is inside the snapshot: append its entries after the
    /// snapshot instead of skipping the ones the snapshot covers.
    AppendBelowSnapshot = "append-below-snapshot", "append entries a snapshot covers after the snapshot";
    /// Figure 13, step 7 broken: keep the entries after an installed snapshot even when the log
    /// does not hold the snapshot's last entry.
    KeepConflictingAfterInstall = "keep-conflicting-after-install", "keep a conflicting log after an installed snapshot";

    // ---- rules for all servers ----
    /// Apply log entries past commitIndex whenever commitIndex moves.
    ApplyBeforeCommit = "apply-before-commit", "apply entries that are not committed";
    /// Adopt a later term seen in an RPC but keep the role (a leader stays leader).
    KeepRoleOnLaterTerm = "keep-role-on-later-term", "adopt a later term without becoming follower";

    // ---- followers and candidates ----
    /// Never start an election: a follower waits for a leader forever.
    NeverCampaign = "never-campaign", "never start an election";
    /// Campaign without incrementing the term.
    CandidateKeepsTerm = "candidate-keeps-term", "campaign in the current term";
    /// Campaign without recording the vote for itself.
    CandidateForgetsOwnVote = "candidate-forgets-own-vote", "campaign without voting for itself";
    /// A candidate whose election times out waits instead of starting another.
    CandidateNeverRetries = "candidate-never-retries", "a candidate never starts a new election";
    /// A candidate refuses AppendEntries from the leader of its own term, and stays candidate.
    CandidateIgnoresLeader = "candidate-ignores-leader", "a candidate ignores the new leader";
    /// Count a granted vote whatever term it was granted in.
    CountStaleVotes = "count-stale-votes", "count a vote granted in an earlier term";
    /// Win with one vote fewer than a majority.
    WinWithoutMajority = "win-without-majority", "become leader one vote short of a majority";

    // ---- leaders ----
    /// Initialise matchIndex to the leader's last index instead of 0.
    MatchIndexNotReset = "match-index-not-reset", "start matchIndex at the leader's last index, not 0";
    /// The heartbeat timer fires and the leader sends nothing.
    NoHeartbeat = "no-heartbeat", "a leader sends no heartbeats";
    /// On success, take matchIndex to be the leader's last index, not what the follower acked.
    MatchIndexTrustsLeader = "match-index-trusts-leader", "set matchIndex to the leader's last index";
    /// Truncate the leader's own log to a follower's conflict hint.
    LeaderTruncatesOnReject = "leader-truncates-on-reject", "leader truncates its own log on a rejection";
    /// Commit what one server fewer than a majority holds.
    CommitWithoutMajority = "commit-without-majority", "commit what a minority holds";
    /// Commit the highest index replicated on a majority even if it is from an earlier term
    /// (the Figure 8 mistake).
    CommitOldTerm = "commit-old-term", "commit an earlier-term entry by counting replicas (Figure 8)";
    /// Answer a client when its entry is appended, before it commits.
    AnswerBeforeCommit = "answer-before-commit", "answer a client before its entry commits";

    /// Answer a Get from local state without confirming leadership.
    StaleRead = "stale-read", "answer a Get from local state without confirming leadership";

    // ---- PreVote and CheckQuorum ----
    /// A pre-vote request of a later term moves its receiver to that term, as a vote request
    /// would: a server that cannot win still inflates terms.
    PreVoteRaisesTerm = "prevote-raises-term", "a pre-vote request moves its receiver's term";
    /// CheckQuorum counts, but a leader heard from by no majority keeps leading.
    NoCheckQuorum = "no-check-quorum", "a leader that hears no majority keeps leading";

    // ---- configuration changes ----
    /// A leader appends a configuration change before it has committed an entry of its own
    /// term (the 2015 single-server change bug).
    ReconfigBeforeOwnTermCommit = "reconfig-before-own-term-commit", "change the configuration before committing an entry of the leader's term";
    /// A server that is no voter of its configuration (removed, or a learner) campaigns anyway.
    RemovedServerDisrupts = "removed-server-disrupts", "a server that is not a voter campaigns";

    // ---- ReadIndex ----
    /// Answer a ReadIndex read without the round of heartbeats that confirms leadership.
    StaleReadIndex = "stale-read-index", "answer a ReadIndex read without confirming leadership";
}

impl Mutant {
    pub fn parse(name: &str) -> Option<Mutant> {
        Mutant::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for Mutant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
