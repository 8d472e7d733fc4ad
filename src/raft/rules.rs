//! Figure 2's decisions, each a small named function. The handlers ask these and decide
//! nothing of their own where a rule is involved, so each rule can be read, tested and broken
//! in one place: a deliberately broken variant ([`Mutant`]) sits beside the rule it breaks,
//! and no handler mentions one.

use super::config::Config;
use super::log::Log;
use super::message::Msg;
use super::mutant::Mutant;
use super::state::HardState;
use super::types::{Entry, Index, LogId, Op, Term};
use stateright::actor::Id;

fn is(cfg: &Config, mutant: Mutant) -> bool {
    cfg.mutant == Some(mutant)
}

/// Figure 2, persistent state: `votedFor` survives a restart, so no server votes twice in a
/// term.
pub fn restored_vote(cfg: &Config, saved: &HardState) -> Option<Id> {
    if is(cfg, Mutant::ForgetVoteOnRestart) {
        return None;
    }
    saved.voted_for
}

/// RequestVote receiver, step 2 (§5.4.1, the election restriction): grant only to a candidate
/// whose log is at least as up-to-date as this server's: a later last term, or the same last
/// term and at least as long.
pub fn candidate_up_to_date(cfg: &Config, mine: LogId, candidate: LogId) -> bool {
    if is(cfg, Mutant::VoteWithoutLogCheck) {
        return true;
    }
    (candidate.term, candidate.index) >= (mine.term, mine.index)
}

/// Rules for all servers: a reply from an earlier term answers a request this server made in
/// that term, and is ignored.
pub fn heeds_stale_reply(cfg: &Config, msg: &Msg) -> bool {
    matches!(msg, Msg::RequestVoteResponse { .. }) && is(cfg, Mutant::CountStaleVotes)
}

/// AppendEntries receiver, step 2: the log must hold an entry at `prevLogIndex` whose term is
/// `prevLogTerm` (§5.3, the consistency check).
pub fn append_consistent(cfg: &Config, log: &Log, prev: LogId) -> bool {
    if is(cfg, Mutant::SkipPrevLogTermCheck) {
        return prev.index <= log.last_index();
    }
    log.matches(prev.index, prev.term)
}

/// AppendEntries receiver, steps 3 and 4: the log after appending `entries` after `prev_index`
/// (already found consistent), or `None` when it would not change. An entry that agrees is
/// kept; only a real conflict truncates, so a stale or duplicated request never removes
/// entries that follow the ones it carries.
pub fn appended_log(cfg: &Config, log: &Log, prev_index: Index, entries: &[Entry]) -> Option<Log> {
    let mut next = log.clone();
    if is(cfg, Mutant::TruncateOnStaleAppend) {
        next.truncate_after(prev_index);
        next.append_after(prev_index, entries);
        return (next != *log).then_some(next);
    }
    if !log.would_change(prev_index, entries) {
        return None;
    }
    next.append_after(prev_index, entries);
    Some(next)
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

/// Rules for leaders, the last one: commit the highest index `quorum` held by a majority, but
/// only if its entry is of the current term (§5.4.2, Figure 8: earlier terms commit only
/// indirectly). `None` when commitIndex does not move.
pub fn leader_commit(
    cfg: &Config,
    log: &Log,
    current_term: Term,
    quorum: Index,
    commit: Index,
) -> Option<Index> {
    let current_term_entry = log.term_at(quorum) == Some(current_term);
    let allowed = current_term_entry || is(cfg, Mutant::CommitOldTerm);
    (quorum > commit && allowed).then_some(quorum)
}

/// Leader Append-Only (§5.3): a rejection moves the follower's nextIndex back, never the
/// leader's own log. Returns where a broken leader would cut its log.
pub fn leader_cut_on_reject(cfg: &Config, hint: Index, last_index: Index) -> Option<Index> {
    let cuts = is(cfg, Mutant::LeaderTruncatesOnReject) && hint <= last_index;
    cuts.then(|| hint.saturating_sub(1))
}

/// Reads go through the log (§8): a Get is answered when its entry is committed and applied,
/// so a deposed leader cannot answer one from stale state.
pub fn reads_locally(cfg: &Config, op: &Op) -> bool {
    matches!(op, Op::Get { .. }) && is(cfg, Mutant::StaleRead)
}
