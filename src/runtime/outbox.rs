//! The outbox carries out what the protocol says each message needs on disk (a
//! [`Durable`] condition, set by the rules in `raft/rules.rs`) and decides nothing of its own:
//! a message whose condition the durable records already meet leaves at once; any other waits
//! until the records queued up to the step that produced it are durable (they hold the state
//! the condition names), then leaves in order.
//!
//! One thing it does that the model's network does too: of the successful
//! AppendEntriesResponses to one leader in one term released together, only the highest
//! `match_index` leaves. A leader takes the maximum, so the others change nothing; dropping
//! them is what a lossy network may do anyway.

use super::commit::Committer;
use crate::raft::{Durable, Msg, Term};
use stateright::actor::Id;
use std::collections::VecDeque;

#[derive(Default)]
pub struct Outbox {
    /// (sequence number that must be durable, destination, message), in production order.
    held: VecDeque<(u64, Id, Msg)>,
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
            self.held.push_back((committer.last_seq(), to, msg));
        }
    }

    /// The held messages whose records are durable once `synced` is.
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
        coalesce_acks(burst.collect())
    }

    /// Messages waiting for the disk.
    pub fn held(&self) -> usize {
        self.held.len()
    }
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
    burst
        .into_iter()
        .enumerate()
        .filter(|(i, (_, msg))| success_ack(msg).is_none() || chosen.iter().any(|c| c.1 == *i))
        .map(|(_, m)| m)
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
        (Committer::new(shared.clone(), &stored(5, None)), shared)
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
        assert!(outbox.release(c.refresh()).is_empty());
        shared.mark_synced(1);
        assert_eq!(outbox.release(c.refresh()), vec![(leader, ack(6))]);
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
        assert!(outbox.release(c.refresh()).is_empty());
        shared.mark_synced(1);
        assert_eq!(outbox.release(c.refresh()), vec![(candidate, granted())]);
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
        assert_eq!(outbox.release(c.refresh()), vec![(leader, ack(4))]);
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
