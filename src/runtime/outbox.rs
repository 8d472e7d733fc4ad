//! The outbox: messages wait here until the records produced before them are durable
//! ("persist before you speak", §5.1 and thesis §3.8), then leave in order.
//!
//! Four rules keep it fast without changing what the protocol means:
//! - **Early AppendEntries** (thesis §10.2.1). A leader's AppendEntries may leave before the
//!   leader's own fsync: followers acknowledge only what *they* made durable, and whatever rests
//!   on the leader's own copy (a commit index, an answer to a client) still waits for it.
//!   Allowed when the message's term is durable and its `leader_commit` does not exceed the
//!   leader's durable log prefix (so a commit index never travels before a majority holds the
//!   entries), and at most once per follower per fsync: further AppendEntries to that follower
//!   wait for the batch.
//! - **Early answers.** A leader's answer to a client may leave while newer entries are still
//!   being written, once the term and every committed entry are in its durable log prefix.
//! - **Merged AppendEntries.** When a batch leaves, AppendEntries to one follower that continue
//!   one another (the second's `prev_log_index`/`prev_log_term` is the first's last entry) are
//!   sent as one, up to [`wire::MAX_APPEND_ENTRIES`] entries. The follower ends in exactly the
//!   state the two in a row would leave; only the first answer is missing, as if lost.
//! - **Coalesced acknowledgements.** Of the successful AppendEntriesResponses to one leader in
//!   one term in a batch, only the highest `match_index` leaves: a leader takes the maximum, so
//!   the others change nothing (dropping them is what a lossy network may do anyway).

use super::commit::Committer;
use super::wire;
use crate::raft::Msg;
use stateright::actor::Id;
use std::collections::VecDeque;

#[derive(Default)]
pub struct Outbox {
    /// (sequence number that must be durable, destination, message), in production order.
    held: VecDeque<(u64, Id, Msg)>,
    /// Per follower: the last record queued when it got an early AppendEntries.
    early: Vec<(Id, u64)>,
}

impl Outbox {
    /// Sends `msg` now if nothing it depends on is still in flight to disk, else holds it.
    /// `server` is the server's state after the handler that produced `msg`.
    pub fn send(
        &mut self,
        committer: &Committer,
        server: Snapshot,
        to: Id,
        msg: Msg,
        out: &mut Vec<(Id, Msg)>,
    ) {
        let needs = committer.last_seq();
        if committer.all_durable() || answer_may_go_early(committer, server, &msg) {
            out.push((to, msg));
        } else if self.append_may_go_early(committer, to, &msg) {
            match self.early.iter_mut().find(|(f, _)| *f == to) {
                Some(e) => e.1 = needs,
                None => self.early.push((to, needs)),
            }
            out.push((to, msg));
        } else {
            self.held.push_back((needs, to, msg));
        }
    }

    fn append_may_go_early(&self, committer: &Committer, to: Id, msg: &Msg) -> bool {
        let Msg::AppendEntries {
            term,
            leader_commit,
            ..
        } = msg
        else {
            return false;
        };
        let synced = committer.synced_seq();
        *term == committer.durable_term()
            && *leader_commit <= committer.durable_prefix()
            && !self
                .early
                .iter()
                .any(|&(f, needs)| f == to && needs > synced)
            && !self.held.iter().any(|(_, dst, _)| *dst == to)
    }

    /// The held messages whose records are durable once `synced` is, merged and coalesced.
    pub fn release(&mut self, synced: u64) -> Vec<(Id, Msg)> {
        let ready = self
            .held
            .iter()
            .take_while(|(needs, ..)| *needs <= synced)
            .count();
        if ready == 0 {
            return Vec::new();
        }
        let burst = self.held.drain(..ready).map(|(_, to, msg)| (to, msg));
        coalesce_acks(merge_appends(burst))
    }
}

/// What the outbox needs to know of the server's state after a handler.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot {
    pub current_term: u64,
    pub commit_index: u64,
}

/// A leader's answer to a client reports committed entries only. Once every committed entry is
/// in the leader's durable log prefix (and the followers that counted acknowledged only what
/// they had made durable), the answer depends on nothing still in flight to disk, even while
/// newer entries are.
fn answer_may_go_early(committer: &Committer, server: Snapshot, msg: &Msg) -> bool {
    matches!(msg, Msg::ClientResponse { .. })
        && server.current_term == committer.durable_term()
        && server.commit_index <= committer.durable_prefix()
}

/// Folds each AppendEntries into the previous message to the same destination when that one
/// is an AppendEntries it continues.
fn merge_appends(burst: impl Iterator<Item = (Id, Msg)>) -> Vec<(Id, Msg)> {
    let mut kept: Vec<(Id, Msg)> = Vec::new();
    for (to, msg) in burst {
        let last = kept.iter_mut().rev().find(|(dst, _)| *dst == to);
        if let Some((_, prev)) = last
            && try_merge(prev, &msg)
        {
            continue;
        }
        kept.push((to, msg));
    }
    kept
}

/// Appends `next` to `prev` if both are AppendEntries of one leader and term, `next` starts
/// where `prev` ends, and the result stays within the batch bound.
fn try_merge(prev: &mut Msg, next: &Msg) -> bool {
    let (
        Msg::AppendEntries {
            term: t1,
            leader_id: l1,
            prev_log_index: p1,
            prev_log_term: pt1,
            entries: e1,
            leader_commit: c1,
            read_round: r1,
        },
        Msg::AppendEntries {
            term: t2,
            leader_id: l2,
            prev_log_index: p2,
            prev_log_term: pt2,
            entries: e2,
            leader_commit: c2,
            read_round: r2,
        },
    ) = (prev, next)
    else {
        return false;
    };
    let end_index = *p1 + e1.len() as u64;
    let end_term = e1.last().map_or(*pt1, |e| e.term);
    let fits = e1.len() + e2.len() <= wire::MAX_APPEND_ENTRIES;
    if t1 != t2 || l1 != l2 || *p2 != end_index || *pt2 != end_term || !fits {
        return false;
    }
    e1.extend_from_slice(e2);
    *c1 = (*c1).max(*c2);
    *r1 = (*r1).max(*r2);
    true
}

/// Keeps, of the successful AppendEntriesResponses to one leader in one term, only the one
/// with the highest `match_index` (the last of equals); everything else passes unchanged.
fn coalesce_acks(burst: Vec<(Id, Msg)>) -> Vec<(Id, Msg)> {
    // (leader, term) -> position of the acknowledgement that stays.
    let mut chosen: Vec<((Id, u64), usize, u64)> = Vec::new();
    for (i, (to, msg)) in burst.iter().enumerate() {
        if let Some((term, m)) = success_ack(msg) {
            match chosen.iter_mut().find(|(key, ..)| *key == (*to, term)) {
                Some(c) if m >= c.2 => (c.1, c.2) = (i, m),
                Some(_) => {}
                None => chosen.push(((*to, term), i, m)),
            }
        }
    }
    // The acknowledgement that stays carries the latest read round of those it replaces.
    let mut rounds: Vec<u64> = vec![0; chosen.len()];
    for (to, msg) in &burst {
        if let (Some((term, _)), Msg::AppendEntriesResponse { read_round, .. }) =
            (success_ack(msg), msg)
            && let Some(k) = chosen.iter().position(|(key, ..)| *key == (*to, term))
        {
            rounds[k] = rounds[k].max(*read_round);
        }
    }
    burst
        .into_iter()
        .enumerate()
        .filter(|(i, (_, msg))| success_ack(msg).is_none() || chosen.iter().any(|c| c.1 == *i))
        .map(|(i, (to, mut msg))| {
            if let Some(k) = chosen.iter().position(|c| c.1 == i)
                && let Msg::AppendEntriesResponse { read_round, .. } = &mut msg
            {
                *read_round = rounds[k];
            }
            (to, msg)
        })
        .collect()
}

fn success_ack(msg: &Msg) -> Option<(u64, u64)> {
    match msg {
        Msg::AppendEntriesResponse {
            term,
            success: true,
            match_index,
            ..
        } => Some((*term, *match_index)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::{Command, Entry, HardState, Log, Reply};
    use crate::runtime::commit::Shared;
    use std::sync::Arc;

    /// A committer whose disk holds a log of five entries of term 1 and current term 2.
    fn committer() -> (Committer, Arc<Shared>) {
        let shared = Shared::unstarted();
        (Committer::new(shared.clone(), &stored(5)), shared)
    }

    fn stored(len: usize) -> HardState {
        HardState {
            current_term: 2,
            voted_for: Some(Id::from(0)),
            log: Log::from_entries((0..len).map(|i| Entry {
                term: if i < 5 { 1 } else { 2 },
                command: Command::Noop,
            })),
        }
    }

    fn answer() -> Msg {
        Msg::ClientResponse {
            seq: 1,
            reply: Reply::Ok {
                result: crate::raft::OpResult::Done,
            },
        }
    }

    fn at(commit_index: u64) -> Snapshot {
        Snapshot {
            current_term: 2,
            commit_index,
        }
    }

    #[test]
    fn an_acknowledgement_waits_for_its_record_to_be_durable() {
        let (mut c, shared) = committer();
        let mut outbox = Outbox::default();
        let leader = Id::from(0);
        c.save(&stored(6));
        let mut now = Vec::new();
        outbox.send(&c, at(5), leader, ack(6), &mut now);
        assert!(now.is_empty(), "sent before the fsync");
        assert!(outbox.release(c.refresh()).is_empty());
        shared.mark_synced(1);
        assert_eq!(outbox.release(c.refresh()), vec![(leader, ack(6))]);
    }

    #[test]
    fn a_leaders_append_goes_early_once_per_fsync_and_the_rest_merge() {
        let (mut c, shared) = committer();
        let mut outbox = Outbox::default();
        let f = Id::from(1);
        let mut now = Vec::new();
        c.save(&stored(6));
        outbox.send(&c, at(5), f, ae(5, 1, &[2], 5), &mut now);
        assert_eq!(
            now,
            vec![(f, ae(5, 1, &[2], 5))],
            "the first goes before the fsync"
        );
        c.save(&stored(7));
        outbox.send(&c, at(5), f, ae(6, 2, &[2], 5), &mut now);
        c.save(&stored(8));
        outbox.send(&c, at(5), f, ae(7, 2, &[2], 5), &mut now);
        assert_eq!(
            now.len(),
            1,
            "one early AppendEntries per follower per fsync"
        );
        shared.mark_synced(3);
        assert_eq!(outbox.release(c.refresh()), vec![(f, ae(6, 2, &[2, 2], 5))]);
    }

    #[test]
    fn a_commit_index_never_travels_before_the_leaders_copy_is_durable() {
        let (mut c, _shared) = committer();
        let mut outbox = Outbox::default();
        let (f, client) = (Id::from(1), Id::from(9));
        let mut now = Vec::new();
        c.save(&stored(6));
        // Entry 6 counted by the leader but not yet on its disk: nothing that says so leaves.
        outbox.send(&c, at(6), f, ae(6, 2, &[], 6), &mut now);
        outbox.send(&c, at(6), client, answer(), &mut now);
        assert!(now.is_empty());
        // Answers about entries already durable leave while newer ones are written.
        outbox.send(&c, at(5), client, answer(), &mut now);
        assert_eq!(now, vec![(client, answer())]);
    }

    fn ae(prev: u64, prev_term: u64, terms: &[u64], commit: u64) -> Msg {
        Msg::AppendEntries {
            term: 2,
            leader_id: Id::from(0),
            prev_log_index: prev,
            prev_log_term: prev_term,
            entries: terms
                .iter()
                .map(|&term| Entry {
                    term,
                    command: Command::Noop,
                })
                .collect::<Vec<_>>(),
            leader_commit: commit,
            read_round: 0,
        }
    }

    fn ack(match_index: u64) -> Msg {
        Msg::AppendEntriesResponse {
            term: 2,
            success: true,
            match_index,
            conflict: None,
            read_round: 0,
        }
    }

    #[test]
    fn contiguous_appends_to_one_follower_merge() {
        let (a, b) = (Id::from(1), Id::from(2));
        let out = merge_appends(
            vec![
                (a, ae(4, 1, &[2], 3)),
                (b, ae(4, 1, &[2], 3)),
                (a, ae(5, 2, &[2, 2], 4)),
                (a, ae(7, 2, &[], 5)),
            ]
            .into_iter(),
        );
        assert_eq!(
            out,
            vec![(a, ae(4, 1, &[2, 2, 2], 5)), (b, ae(4, 1, &[2], 3))]
        );
    }

    #[test]
    fn a_gap_or_another_term_does_not_merge() {
        let a = Id::from(1);
        let burst = vec![(a, ae(4, 1, &[2], 3)), (a, ae(6, 2, &[2], 3))];
        assert_eq!(merge_appends(burst.clone().into_iter()), burst);
        let burst = vec![(a, ae(4, 1, &[2], 3)), (a, ae(5, 1, &[2], 3))];
        assert_eq!(merge_appends(burst.clone().into_iter()), burst);
    }

    #[test]
    fn merging_respects_the_batch_bound() {
        let a = Id::from(1);
        let full = vec![2; wire::MAX_APPEND_ENTRIES];
        let burst = vec![
            (a, ae(0, 0, &full, 0)),
            (a, ae(full.len() as u64, 2, &[2], 0)),
        ];
        assert_eq!(merge_appends(burst.clone().into_iter()).len(), 2);
    }

    #[test]
    fn only_the_highest_ack_per_leader_and_term_leaves() {
        let (l, c) = (Id::from(0), Id::from(9));
        let reply = Msg::ClientResponse {
            seq: 1,
            reply: crate::raft::Reply::NotLeader { leader_hint: None },
        };
        let out = coalesce_acks(vec![
            (l, ack(3)),
            (c, reply.clone()),
            (l, ack(5)),
            (l, ack(4)),
        ]);
        assert_eq!(out, vec![(c, reply), (l, ack(5))]);
    }
}
