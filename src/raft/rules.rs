//! Figure 2's decisions, each a small named function. The handlers ask these and decide
//! nothing of their own where a rule is involved, so each rule can be read, tested and broken
//! in one place: a deliberately broken variant ([`Mutant`]) sits beside the rule it breaks,
//! and no handler mentions one.

use super::config::Config;
use super::log::Log;
use super::message::Msg;
use super::mutant::Mutant;
use super::progress::{Progress, Tracker, quorum_index};
use super::state::HardState;
use super::types::{Entry, Index, LogId, Op, Term};
use stateright::actor::Id;

fn is(cfg: &Config, mutant: Mutant) -> bool {
    cfg.mutant == Some(mutant)
}

// ---- persistent state -------------------------------------------------------------------

/// Figure 2, persistent state: `currentTerm` and `votedFor` survive a restart, so no server
/// votes twice in a term.
pub fn restored(cfg: &Config, mut saved: HardState) -> HardState {
    if is(cfg, Mutant::ForgetTermOnRestart) {
        saved.current_term = 0;
        saved.voted_for = None;
    }
    if is(cfg, Mutant::ForgetVoteOnRestart) {
        saved.voted_for = None;
    }
    saved
}

// ---- RequestVote receiver ----------------------------------------------------------------

/// RequestVote receiver, step 1: a request of an earlier term is refused, in the current term.
/// Returns the answer's (term, voteGranted).
pub fn answer_to_earlier_request_vote(cfg: &Config, current: Term, request: Term) -> (Term, bool) {
    if is(cfg, Mutant::VoteInEarlierTerm) {
        return (request, true);
    }
    (current, false)
}

/// RequestVote receiver, step 2: one vote per term, for the first candidate to ask (or the
/// same one again).
pub fn may_vote_for(cfg: &Config, voted_for: Option<Id>, candidate: Id) -> bool {
    is(cfg, Mutant::VoteTwice) || voted_for.is_none() || voted_for == Some(candidate)
}

/// RequestVote receiver, step 2 (§5.4.1, the election restriction): grant only to a candidate
/// whose log is at least as up-to-date as this server's: a later last term, or the same last
/// term and at least as long.
pub fn candidate_up_to_date(cfg: &Config, mine: LogId, candidate: LogId) -> bool {
    match cfg.mutant {
        Some(Mutant::VoteWithoutLogCheck) => true,
        Some(Mutant::VoteIgnoresLastTerm) => candidate.index >= mine.index,
        Some(Mutant::VoteIgnoresLogLength) => candidate.term >= mine.term,
        _ => (candidate.term, candidate.index) >= (mine.term, mine.index),
    }
}

// ---- AppendEntries receiver --------------------------------------------------------------

/// AppendEntries receiver, step 2: the log must hold an entry at `prevLogIndex` whose term is
/// `prevLogTerm` (§5.3, the consistency check). Inside the snapshot every entry is committed,
/// so it is the one the leader of the current term holds (Leader Completeness).
pub fn append_consistent(cfg: &Config, log: &Log, prev: LogId) -> bool {
    if is(cfg, Mutant::SkipPrevLogTermCheck) {
        return prev.index <= log.last_index();
    }
    prev.index < log.snapshot_index() || log.matches(prev.index, prev.term)
}

/// AppendEntries receiver, steps 3 and 4: the log after appending `entries` after `prev_index`
/// (already found consistent), or `None` when it would not change. An entry that agrees is
/// kept; only a real conflict truncates, and then everything from it on goes, so a stale or
/// duplicated request never removes entries that follow the ones it carries.
pub fn appended_log(cfg: &Config, log: &Log, prev_index: Index, entries: &[Entry]) -> Option<Log> {
    let mut next = log.clone();
    match cfg.mutant {
        Some(Mutant::AppendBelowSnapshot) if prev_index < log.snapshot_index() => {
            next.append_after(log.snapshot_index(), entries);
        }
        Some(Mutant::TruncateOnStaleAppend) => {
            next.truncate_after(prev_index);
            next.append_after(prev_index, entries);
        }
        Some(Mutant::AckUnappendedEntries) => {
            next.append_after(prev_index, &entries[..entries.len().min(1)]);
        }
        Some(Mutant::KeepConflictingSuffix) => {
            for (k, entry) in entries.iter().enumerate() {
                let index = prev_index + 1 + k as Index;
                if next.term_at(index).is_some_and(|t| t != entry.term) {
                    let after = next.entries_from(index + 1, usize::MAX);
                    next.truncate_after(index - 1);
                    next.push(entry.clone());
                    for e in after {
                        next.push(e);
                    }
                } else {
                    next.append_after(index - 1, std::slice::from_ref(entry));
                }
            }
        }
        _ => {
            if !log.would_change(prev_index, entries) {
                return None;
            }
            next.append_after(prev_index, entries);
        }
    }
    (next != *log).then_some(next)
}

/// AppendEntries receiver, step 5: commitIndex becomes min(leaderCommit, index of the last
/// new entry), and never goes down. `None` when it does not change.
pub fn follower_commit(
    cfg: &Config,
    commit: Index,
    leader_commit: Index,
    last_new: Index,
) -> Option<Index> {
    let target = if is(cfg, Mutant::LeaderCommitWithoutMin) {
        leader_commit
    } else {
        leader_commit.min(last_new)
    };
    let moves = target > commit || (target < commit && is(cfg, Mutant::CommitIndexRegresses));
    moves.then_some(target)
}

// ---- InstallSnapshot receiver (§7, Figure 13) ---------------------------------------------

/// A snapshot that covers no more than this server has applied is stale (reordered,
/// duplicated, or from a leader that compacted less) and changes nothing.
pub fn installs_snapshot(cfg: &Config, commit: Index, last: LogId) -> bool {
    is(cfg, Mutant::InstallOlderSnapshot) || last.index > commit
}

/// Figure 13, step 6: if the log holds the snapshot's last entry (same index and term), the
/// entries after it stay; otherwise the whole log goes (step 7).
pub fn keeps_entries_after_snapshot(log: &Log, last: LogId) -> bool {
    log.matches(last.index, last.term)
}

// ---- rules for all servers ---------------------------------------------------------------

/// Rules for all servers, 1: apply entries up to commitIndex, and no further. Returns the last
/// index to apply.
pub fn apply_through(cfg: &Config, commit: Index, last_index: Index) -> Index {
    if is(cfg, Mutant::ApplyBeforeCommit) {
        return last_index;
    }
    commit.min(last_index)
}

/// Rules for all servers, 2: a later term in any RPC makes a server a follower of that term.
/// Returns whether it also changes role (not only its term).
pub fn follows_later_term(cfg: &Config) -> bool {
    !is(cfg, Mutant::KeepRoleOnLaterTerm)
}

/// Rules for all servers (§5.1): a message of an earlier term is answered (requests) or
/// ignored (replies); it is never acted on.
pub fn acts_on_earlier_term(cfg: &Config, msg: &Msg) -> bool {
    match msg {
        Msg::RequestVoteResponse { .. } => is(cfg, Mutant::CountStaleVotes),
        Msg::AppendEntries { .. } => is(cfg, Mutant::AcceptStaleAppend),
        _ => false,
    }
}

// ---- followers and candidates ------------------------------------------------------------

/// Followers (§5.2): an election timeout starts an election. Candidates, 4: so does the
/// timeout of an election that was not won.
pub fn campaigns(cfg: &Config, is_candidate: bool) -> bool {
    let broken = match cfg.mutant {
        Some(Mutant::NeverCampaign) => true,
        Some(Mutant::CandidateNeverRetries) => is_candidate,
        _ => false,
    };
    !broken
}

/// Candidates, 3: AppendEntries from the leader of this term makes a candidate its follower.
pub fn candidate_follows_leader(cfg: &Config) -> bool {
    !is(cfg, Mutant::CandidateIgnoresLeader)
}

/// Candidates, 1: the term of a new candidacy is one more than the current term; `None` when
/// the term cannot grow.
pub fn campaign_term(cfg: &Config, current: Term) -> Option<Term> {
    if is(cfg, Mutant::CandidateKeepsTerm) {
        return Some(current);
    }
    current.checked_add(1)
}

/// Candidates, 1: a candidate votes for itself, and records it (so it votes for nobody else).
pub fn candidate_vote(cfg: &Config, me: Id) -> Option<Id> {
    if is(cfg, Mutant::CandidateForgetsOwnVote) {
        return None;
    }
    Some(me)
}

/// Candidates, 2: votes from a majority of the servers win.
pub fn wins(cfg: &Config, votes: usize) -> bool {
    let needed = if is(cfg, Mutant::WinWithoutMajority) {
        cfg.majority() - 1
    } else {
        cfg.majority()
    };
    votes >= needed
}

// ---- leaders ------------------------------------------------------------------------------

/// Leaders (Figure 2, reinitialised after election): nextIndex is the leader's last index + 1
/// and matchIndex 0 for every follower; nothing is assumed of what they hold.
pub fn progress_of_new_reign(
    cfg: &Config,
    peers: impl Iterator<Item = Id>,
    last: Index,
) -> Tracker {
    let mut tracker = Tracker::new(peers, last);
    if is(cfg, Mutant::MatchIndexNotReset) {
        let peers: Vec<Id> = tracker.iter().map(|(id, _)| id).collect();
        for peer in peers {
            let assumed = Progress {
                next_index: last + 1,
                match_index: last,
            };
            tracker.set(peer, assumed);
        }
    }
    tracker
}

/// Leaders, 3: a successful AppendEntries shows the follower holds what that request covered:
/// its `match_index`.
pub fn acknowledged(cfg: &Config, match_index: Index, last_index: Index) -> Index {
    if is(cfg, Mutant::MatchIndexTrustsLeader) {
        return last_index;
    }
    match_index
}

/// Leaders, 1: the heartbeat re-sends AppendEntries to every follower during idle periods.
pub fn heartbeats(cfg: &Config) -> bool {
    !is(cfg, Mutant::NoHeartbeat)
}

/// Leader Append-Only (§5.3): a rejection moves the follower's nextIndex back, never the
/// leader's own log. Returns where a broken leader would cut its log.
pub fn leader_cut_on_reject(cfg: &Config, hint: Index, last_index: Index) -> Option<Index> {
    let cuts = is(cfg, Mutant::LeaderTruncatesOnReject) && hint <= last_index;
    cuts.then(|| hint.saturating_sub(1))
}

/// Leaders, 4: commit the highest index N held by a majority (its own last index counted), but
/// only if log[N] is of the current term (§5.4.2, Figure 8: earlier terms commit only
/// indirectly). `None` when commitIndex does not move.
pub fn leader_commit(
    cfg: &Config,
    log: &Log,
    current_term: Term,
    progress: &Tracker,
    commit: Index,
) -> Option<Index> {
    let mut matches: Vec<Index> = progress.iter().map(|(_, p)| p.match_index).collect();
    matches.push(log.last_index());
    let needed = if is(cfg, Mutant::CommitWithoutMajority) {
        cfg.majority() - 1
    } else {
        cfg.majority()
    };
    let n = quorum_index(matches, needed);
    let current_term_entry = log.term_at(n) == Some(current_term);
    let allowed = current_term_entry || is(cfg, Mutant::CommitOldTerm);
    (n > commit && allowed).then_some(n)
}

/// Leaders, 2: a client is answered once its entry is applied, not when it is appended.
pub fn answers_on_append(cfg: &Config) -> bool {
    is(cfg, Mutant::AnswerBeforeCommit)
}

/// Reads go through the log (§8): a Get is answered when its entry is committed and applied,
/// so a deposed leader cannot answer one from stale state.
pub fn reads_locally(cfg: &Config, op: &Op) -> bool {
    matches!(op, Op::Get { .. }) && is(cfg, Mutant::StaleRead)
}
