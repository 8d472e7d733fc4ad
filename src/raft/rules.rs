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
use super::step::Durable;
use super::types::{ChangeRefused, Entry, Index, LogId, Membership, Op, Term};
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

// ---- durability: what must be on disk before a message leaves (§5.1) ----------------------

/// A candidate asks for votes only once its new term and its vote for itself are durable: a
/// candidate that won on a vote it then forgot in a crash could vote again in that term.
pub fn request_vote_needs(cfg: &Config) -> Durable {
    if is(cfg, Mutant::RequestVoteBeforeFsync) {
        return Durable::NOTHING;
    }
    Durable::TERM_VOTE
}

/// A granted vote leaves only once the term and the vote are durable, so that a crash cannot
/// make this server vote again in the same term.
pub fn vote_needs(cfg: &Config) -> Durable {
    if is(cfg, Mutant::VoteBeforeFsync) {
        return Durable::NOTHING;
    }
    Durable::TERM_VOTE
}

/// A successful AppendEntries answer leaves only once the log through `match_index` is
/// durable: the leader counts it toward a majority that must survive crashes.
pub fn ack_needs(cfg: &Config, match_index: Index) -> Durable {
    if is(cfg, Mutant::AckBeforeFsync) {
        return Durable::NOTHING;
    }
    Durable::log_through(match_index)
}

/// What a leader counts as its own copy toward commit: its log through what is durable, not
/// its whole log. Its AppendEntries leave before its own fsync (thesis §10.2.1), so a majority
/// may hold an entry before the leader's copy is on disk; the leader then commits on the
/// followers' durable copies alone, or waits for its own. Everything that rests on a commit
/// (a client's answer, `leaderCommit` to followers) then needs nothing more on disk.
pub fn own_match(cfg: &Config, log_synced: Index, last_index: Index) -> Index {
    if is(cfg, Mutant::AnswerBeforeDurable) {
        return last_index;
    }
    log_synced
}

/// Pacing, not safety: a leader's AppendEntries leaves once the leader's own log through its
/// `prevLogIndex` is durable. The entries appended while one fsync runs then leave together
/// after it (the runtime merges them into full AppendEntries), and no follower gets more than
/// one fsync ahead of the leader's disk. Safety rests on the followers' own acknowledgements,
/// so no property can miss this rule and it has no mutant.
pub fn append_needs(prev_log_index: Index) -> Durable {
    Durable::log_through(prev_log_index)
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
pub fn keeps_entries_after_snapshot(cfg: &Config, log: &Log, last: LogId) -> bool {
    is(cfg, Mutant::KeepConflictingAfterInstall) || log.matches(last.index, last.term)
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

// ---- PreVote and CheckQuorum (thesis §9.6, §6.2) -------------------------------------------

/// PreVote: an election timeout first asks whether this server could win, without raising any
/// term; only a majority of "yes" starts the real election.
pub fn pre_votes(cfg: &Config) -> bool {
    cfg.pre_vote
}

/// PreVote: a pre-vote request of a later term moves no term at the receiver (it is a
/// question, not a candidacy). Returns whether the receiver adopts the request's term anyway.
pub fn pre_vote_moves_term(cfg: &Config) -> bool {
    is(cfg, Mutant::PreVoteRaisesTerm)
}

/// PreVote, the receiver: would it vote for `candidate` in `request` (a later term, or this
/// one)? As for a vote (its log at least as up to date), and in this term only if it has
/// voted for nobody else and follows no leader. Nothing is recorded: no vote, no timer.
pub fn would_vote(
    current: Term,
    request: Term,
    voted_for: Option<Id>,
    knows_leader: bool,
    candidate: Id,
    up_to_date: bool,
) -> bool {
    let free =
        request > current || voted_for == Some(candidate) || (voted_for.is_none() && !knows_leader);
    free && up_to_date
}

/// CheckQuorum, the lease: a leader, or a follower that heard from its leader within the
/// minimum election timeout, ignores a request for a (pre-)vote of a later term: it neither
/// moves its term nor answers, so a server that cannot hear the leader cannot depose it. A
/// transfer's RequestVote is answered: the leader itself asked for that election (etcd's
/// `campaignTransfer`).
pub fn ignores_vote_request(cfg: &Config, leader: bool, lease: bool, transfer: bool) -> bool {
    cfg.check_quorum && (leader || lease) && !transfer
}

/// CheckQuorum: a leader that has heard from fewer than a majority of the voters (itself
/// counted while it is one) since its last count steps down, so that a leader that can send but
/// not receive stops suppressing elections with its heartbeats.
pub fn keeps_leading(cfg: &Config, members: &Membership, me: Id, heard_from: &[Id]) -> bool {
    let heard = members.count_voters(heard_from) + usize::from(members.is_voter(me));
    !cfg.check_quorum || is(cfg, Mutant::NoCheckQuorum) || heard >= members.majority()
}

// ---- followers and candidates ------------------------------------------------------------

/// Followers (§5.2): an election timeout starts an election. Candidates, 4: so does the
/// timeout of an election that was not won. Only a voter of the configuration it uses
/// campaigns: a learner, a server not yet added, and one that knows it was removed would only
/// raise the members' terms (thesis §4.2.3).
pub fn campaigns(cfg: &Config, is_candidate: bool, is_voter: bool) -> bool {
    let broken = match cfg.mutant {
        Some(Mutant::NeverCampaign) => true,
        Some(Mutant::CandidateNeverRetries) => is_candidate,
        Some(Mutant::RemovedServerDisrupts) => false,
        _ => !is_voter,
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

/// Candidates, 2: votes from a majority of the voters of the candidate's configuration win;
/// a vote from anyone else does not count.
pub fn wins<'a>(
    cfg: &Config,
    members: &Membership,
    votes: impl IntoIterator<Item = &'a Id>,
) -> bool {
    let needed = if is(cfg, Mutant::WinWithoutMajority) {
        members.majority() - 1
    } else {
        members.majority()
    };
    members.count_voters(votes) >= needed
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
                recent_active: false,
                read_ack: 0,
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

/// Leaders, 4: commit the highest index N held durably by a majority of the voters (its own
/// copy counted as far as [`own_match`] allows, and only while it is a voter), but only if
/// log[N] is of the current term (§5.4.2, Figure 8: earlier terms commit only indirectly).
/// `None` when commitIndex does not move.
#[allow(clippy::too_many_arguments)]
pub fn leader_commit(
    cfg: &Config,
    me: Id,
    members: &Membership,
    log: &Log,
    log_synced: Index,
    current_term: Term,
    progress: &Tracker,
    commit: Index,
) -> Option<Index> {
    let mut matches: Vec<Index> = progress
        .iter()
        .filter(|(id, _)| members.is_voter(*id))
        .map(|(_, p)| p.match_index)
        .collect();
    if members.is_voter(me) {
        matches.push(own_match(cfg, log_synced, log.last_index()));
    }
    if matches.is_empty() {
        return None;
    }
    let needed = if is(cfg, Mutant::CommitWithoutMajority) {
        members.majority() - 1
    } else {
        members.majority()
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

/// ReadIndex (thesis §6.4): a leader answers a Get without a log entry once it has committed an
/// entry of its own term (before that, it cannot know the commit index is current; until then
/// the Get goes through the log).
pub fn reads_by_index(cfg: &Config, op: &Op, log: &Log, current_term: Term, commit: Index) -> bool {
    cfg.read_index && matches!(op, Op::Get { .. }) && log.term_at(commit) == Some(current_term)
}

/// ReadIndex: a read of `round` may be answered once a majority (the leader counted) has echoed
/// a round at least as late, `confirmed`: the leader was still leading after the read came.
pub fn read_confirmed(cfg: &Config, round: u64, confirmed: u64) -> bool {
    is(cfg, Mutant::StaleReadIndex) || round <= confirmed
}

/// Reads go through the log (§8): a Get is answered when its entry is committed and applied,
/// so a deposed leader cannot answer one from stale state.
pub fn reads_locally(cfg: &Config, op: &Op) -> bool {
    matches!(op, Op::Get { .. }) && is(cfg, Mutant::StaleRead)
}

// ---- leadership transfer (thesis §3.10) ---------------------------------------------------

/// The leader may hand its leadership to `target`: a voter other than itself.
pub fn may_transfer_to(members: &Membership, me: Id, target: Id) -> bool {
    target != me && members.is_voter(target)
}

// ---- configuration changes (thesis §4.1) ---------------------------------------------------

/// A leader appends a configuration entry only once it has committed an entry of its own term
/// (Ongaro, raft-dev 2015: otherwise two leaders of successive terms can each append a change
/// to the same configuration, and the two results share no majority), and only when the
/// configuration it uses is committed (one change at a time).
pub fn may_change_membership(
    cfg: &Config,
    log: &Log,
    commit: Index,
    current_term: Term,
    membership_index: Index,
) -> Result<(), ChangeRefused> {
    if membership_index > commit {
        return Err(ChangeRefused::InProgress);
    }
    if log.term_at(commit) != Some(current_term) && !is(cfg, Mutant::ReconfigBeforeOwnTermCommit) {
        return Err(ChangeRefused::LeaderNotReady);
    }
    Ok(())
}

/// A leader that is not a voter of its configuration (it removed itself) keeps leading until
/// that configuration commits, then steps down (thesis §4.2.2).
pub fn steps_down_removed(
    members: &Membership,
    me: Id,
    membership_index: Index,
    commit: Index,
) -> bool {
    !members.is_voter(me) && membership_index <= commit
}

/// A leader transferring its leadership takes no new client writes: they would have to be
/// replicated to the target before TimeoutNow, and the transfer might never catch up. They are
/// answered "not leader" with no hint; the client tries again.
pub fn takes_writes(transferring: bool) -> bool {
    !transferring
}

/// The target's log is the leader's own: TimeoutNow may go, and the target, with the most
/// up-to-date log, can win the election it starts.
pub fn transfer_target_ready(target_match: Index, last_index: Index) -> bool {
    target_match == last_index
}

/// TimeoutNow: the receiver campaigns at once, without PreVote (the leader itself stands down
/// for it), when it came from the leader it follows; anyone else's is ignored.
pub fn campaigns_on_timeout_now(from_leader: bool) -> bool {
    from_leader
}
