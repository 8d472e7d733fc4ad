//! The outbox carries out what the protocol says each message needs on disk (a
//! [`Durable`] condition, set by the rules in `raft/rules.rs`) and decides nothing of its own:
//! a message whose condition the durable records already meet leaves at once; any other waits
//! until the records queued up to the step that produced it are durable (they hold the state
//! the condition names), then leaves in order.
//!
//! Two things it does to a batch released together, each what the model's network may do too:
//! - **Merged AppendEntries.** AppendEntries to one follower that continue one another (the
//!   second's `prev_log_index`/`prev_log_term` is the first's last entry) are sent as one, up
//!   to [`wire::MAX_APPEND_ENTRIES`] entries. The follower ends in exactly the state the two
//!   delivered back to back would leave; only the first answer is missing, as if lost.
//! - **Coalesced acknowledgements.** Of the successful AppendEntriesResponses to one leader in
//!   one term, only the highest `match_index` leaves: a leader takes the maximum, so the others
//!   change nothing (dropping them is what a lossy network may do anyway).

use super::commit::Committer;
use super::wire;
use crate::raft::{Durable, Msg, Term};
use stateright::actor::Id;
use std::collections::VecDeque;

#[derive(Default)]
pub struct Outbox {
    /// Messages waiting for the disk, in production order.
    held: VecDeque<Held>,
}

struct Held {
    /// The last record queued by the step that produced the message: once it is durable, so
    /// is everything the condition names, as of that step.
    seq: u64,
    needs: Durable,
    term_vote: (Term, Option<Id>),
    to: Id,
    msg: Msg,
}

impl Outbox {
    /// Sends `msg` now if what `needs` names is durable, else holds it. `term_vote` is the
    /// server's term and vote after the step that produced `msg`.
    pub fn send(
        &mut self,
        committer: &Committer,
        term_vote: (Term, Option<Id>),
        to: Id,
        msg: Msg,
        needs: Durable,
        out: &mut Vec<(Id, Msg)>,
    ) {
        if committer.is_durable(needs, term_vote) {
            out.push((to, msg));
        } else {
            let seq = committer.last_seq();
            self.held.push_back(Held {
                seq,
                needs,
                term_vote,
                to,
                msg,
            });
        }
    }

    /// The held messages whose conditions are now durable (`committer` just refreshed), in
    /// the order they were produced.
    pub fn release(&mut self, committer: &Committer) -> Vec<(Id, Msg)> {
        let synced = committer.synced_seq();
        let ready = |h: &Held| h.seq <= synced || committer.is_durable(h.needs, h.term_vote);
        if !self.held.iter().any(ready) {
            return Vec::new();
        }
        let (go, wait): (VecDeque<Held>, VecDeque<Held>) =
            std::mem::take(&mut self.held).into_iter().partition(ready);
        self.held = wait;
        coalesce_acks(merge_appends(go.into_iter().map(|h| (h.to, h.msg))))
    }

    /// Messages waiting for the disk.
    pub fn held(&self) -> usize {
        self.held.len()
    }
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
    use crate::raft::{Command, Entry, HardState, Log};
    use crate::runtime::commit::Shared;
    use std::sync::Arc;

    const ME: (Term, Option<Id>) = (2, None);

    /// A committer whose disk holds a log of five entries of term 1, term 2 and no vote.
    fn committer() -> (Committer, Arc<Shared>) {
        let shared = Shared::unstarted();
        (
            Committer::new(
                shared.clone(),
                &stored(5, None),
                std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 1),
            ),
            shared,
        )
    }

    fn stored(len: usize, vote: Option<Id>) -> HardState {
        HardState {
            current_term: 2,
            voted_for: vote,
            log: Log::from_entries((0..len).map(|_| Entry {
                term: 1,
                command: Command::Noop,
            })),
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

    fn granted() -> Msg {
        Msg::RequestVoteResponse {
            term: 2,
            vote_granted: true,
        }
    }

    #[test]
    fn an_acknowledgement_waits_for_its_entries_to_be_durable() {
        let (mut c, shared) = committer();
        let mut outbox = Outbox::default();
        let leader = Id::from(0);
        c.save(&stored(6, None));
        let mut now = Vec::new();
        outbox.send(&c, ME, leader, ack(6), Durable::log_through(6), &mut now);
        assert!(now.is_empty(), "sent before the fsync");
        assert!(released(&mut c, &mut outbox).is_empty());
        shared.mark_synced(1);
        assert_eq!(released(&mut c, &mut outbox), vec![(leader, ack(6))]);
    }

    #[test]
    fn what_is_already_durable_or_needs_nothing_leaves_at_once() {
        let (mut c, _shared) = committer();
        let mut outbox = Outbox::default();
        let leader = Id::from(0);
        c.save(&stored(6, None));
        let mut now = Vec::new();
        // Entries 1..=5 were durable before entry 6 was queued.
        outbox.send(&c, ME, leader, ack(5), Durable::log_through(5), &mut now);
        outbox.send(&c, ME, leader, ack(0), Durable::NOTHING, &mut now);
        assert_eq!(now, vec![(leader, ack(5)), (leader, ack(0))]);
        assert_eq!(outbox.held(), 0);
    }

    #[test]
    fn a_vote_waits_for_the_vote_to_be_durable_and_nothing_else_does() {
        let (mut c, shared) = committer();
        let mut outbox = Outbox::default();
        let candidate = Id::from(1);
        let voted = (2, Some(candidate));
        c.save(&stored(5, Some(candidate)));
        let mut now = Vec::new();
        outbox.send(
            &c,
            voted,
            candidate,
            granted(),
            Durable::TERM_VOTE,
            &mut now,
        );
        // The log through 5 is durable already: this one does not wait for the vote.
        outbox.send(
            &c,
            voted,
            Id::from(0),
            ack(5),
            Durable::log_through(5),
            &mut now,
        );
        assert_eq!(now, vec![(Id::from(0), ack(5))]);
        assert!(released(&mut c, &mut outbox).is_empty());
        shared.mark_synced(1);
        assert_eq!(released(&mut c, &mut outbox), vec![(candidate, granted())]);
    }

    #[test]
    fn a_truncation_in_flight_holds_what_rests_on_the_replaced_entries() {
        let (mut c, shared) = committer();
        let mut outbox = Outbox::default();
        let leader = Id::from(0);
        // Entries 4 and 5 replaced by one of term 2: only 1..=3 stay durable meanwhile.
        let mut replaced = stored(3, None);
        replaced.log.push(Entry {
            term: 2,
            command: Command::Noop,
        });
        c.save(&replaced);
        let mut now = Vec::new();
        outbox.send(&c, ME, leader, ack(3), Durable::log_through(3), &mut now);
        outbox.send(&c, ME, leader, ack(4), Durable::log_through(4), &mut now);
        assert_eq!(now, vec![(leader, ack(3))]);
        shared.mark_synced(1);
        assert_eq!(released(&mut c, &mut outbox), vec![(leader, ack(4))]);
    }

    /// What the outbox releases once the committer has caught up with the syncer.
    fn released(c: &mut Committer, outbox: &mut Outbox) -> Vec<(Id, Msg)> {
        c.refresh();
        outbox.release(c)
    }

    #[test]
    fn appends_wait_for_the_leaders_log_through_prev_and_leave_merged() {
        let (mut c, shared) = committer();
        let mut outbox = Outbox::default();
        let f = Id::from(1);
        let mut now = Vec::new();
        let mut append = |c: &mut Committer, len, msg, prev, now: &mut Vec<_>| {
            c.save(&stored(len, None));
            outbox.send(c, ME, f, msg, Durable::log_through(prev), now);
        };
        append(&mut c, 6, ae(5, 1, &[2], 5), 5, &mut now);
        assert_eq!(
            now,
            vec![(f, ae(5, 1, &[2], 5))],
            "entries 1..=5 are durable"
        );
        append(&mut c, 7, ae(6, 2, &[2], 5), 6, &mut now);
        append(&mut c, 8, ae(7, 2, &[2], 5), 7, &mut now);
        assert_eq!(now.len(), 1, "the others wait for the leader's fsync");
        assert!(released(&mut c, &mut outbox).is_empty());
        shared.mark_synced(3);
        assert_eq!(
            released(&mut c, &mut outbox),
            vec![(f, ae(6, 2, &[2, 2], 5))],
            "released together, merged"
        );
    }

    #[test]
    fn a_held_message_leaves_as_soon_as_its_own_condition_holds() {
        let (mut c, shared) = committer();
        let mut outbox = Outbox::default();
        let leader = Id::from(0);
        let mut now = Vec::new();
        c.save(&stored(6, None));
        outbox.send(&c, ME, leader, ack(6), Durable::log_through(6), &mut now);
        c.save(&stored(7, None));
        outbox.send(&c, ME, leader, ack(7), Durable::log_through(7), &mut now);
        assert!(now.is_empty());
        shared.mark_synced(1);
        assert_eq!(released(&mut c, &mut outbox), vec![(leader, ack(6))]);
        shared.mark_synced(2);
        assert_eq!(released(&mut c, &mut outbox), vec![(leader, ack(7))]);
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
