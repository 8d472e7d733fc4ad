//! What a leader knows of each follower (Figure 2: nextIndex[], matchIndex[]) and the quorum
//! arithmetic that turns it into a commit index.

use super::types::Index;
use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use std::collections::BTreeMap;

/// Replication progress of one follower.
///
/// Invariant: `match_index < next_index` and `next_index >= 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Progress {
    /// The next index to send. Advanced optimistically when entries are sent (pipelining).
    pub next_index: Index,
    /// The highest index known to be replicated on the follower.
    pub match_index: Index,
    /// CheckQuorum: heard from since the leader last counted (always false without it).
    pub recent_active: bool,
    /// ReadIndex: the highest round of heartbeats the follower has echoed.
    pub read_ack: u64,
}

impl Progress {
    /// A fresh leader's view (Figure 2: nextIndex = last log index + 1, matchIndex = 0).
    pub fn new(last_index: Index) -> Self {
        Self {
            next_index: last_index + 1,
            match_index: 0,
            recent_active: false,
            read_ack: 0,
        }
    }

    /// Entries up to `last_sent` are in flight; the next send starts after them.
    pub fn on_sent(&mut self, last_sent: Index) {
        self.next_index = self.next_index.max(last_sent + 1);
    }

    /// A heartbeat re-sent the entries after matchIndex through `last_sent`: what was sent
    /// past them is presumed lost, so the next send continues from there.
    pub fn on_resent(&mut self, last_sent: Index) {
        self.next_index = last_sent + 1;
    }

    /// The follower holds the leader's entries up to `match_index`. Stale or duplicated
    /// acknowledgements never move either index backwards. Returns whether `match_index` grew.
    pub fn on_ack(&mut self, match_index: Index) -> bool {
        let grew = match_index > self.match_index;
        self.match_index = self.match_index.max(match_index);
        self.next_index = self.next_index.max(self.match_index + 1);
        grew
    }

    /// The follower rejected; retry from `hint`, never below what it is known to hold.
    pub fn on_reject(&mut self, hint: Index) {
        self.next_index = hint.max(self.match_index + 1).max(1);
    }
}

/// A leader's progress for every other server. Empty while the server does not lead: it is
/// created by `become_leader` (Figure 2: reinitialised after each election) and dropped on
/// stepping down.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Tracker {
    progress: BTreeMap<Id, Progress>,
}

impl Tracker {
    /// A new leader's tracker: every peer at `Progress::new(last_index)`.
    pub fn new(peers: impl IntoIterator<Item = Id>, last_index: Index) -> Self {
        Self {
            progress: peers
                .into_iter()
                .map(|p| (p, Progress::new(last_index)))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.progress.is_empty()
    }

    pub fn get(&self, peer: Id) -> Option<Progress> {
        self.progress.get(&peer).copied()
    }

    /// Adds (or replaces) `peer`'s progress.
    pub fn insert(&mut self, peer: Id, progress: Progress) {
        self.progress.insert(peer, progress);
    }

    /// Replaces `peer`'s progress; a peer the tracker does not know is ignored.
    pub fn set(&mut self, peer: Id, progress: Progress) {
        if let Some(p) = self.progress.get_mut(&peer) {
            *p = progress;
        }
    }

    /// CheckQuorum: `peer` was heard from. Returns whether that is news since the last count.
    pub fn mark_active(&mut self, peer: Id) -> bool {
        match self.progress.get_mut(&peer) {
            Some(p) if !p.recent_active => {
                p.recent_active = true;
                true
            }
            _ => false,
        }
    }

    /// CheckQuorum: the peers heard from since the last count.
    pub fn active(&self) -> usize {
        self.progress.values().filter(|p| p.recent_active).count()
    }

    /// CheckQuorum: who was heard from since the last count.
    pub fn active_ids(&self) -> impl Iterator<Item = Id> + '_ {
        self.progress
            .iter()
            .filter(|(_, p)| p.recent_active)
            .map(|(&id, _)| id)
    }

    /// Drops `peer`'s progress (it left the configuration).
    pub fn remove(&mut self, peer: Id) {
        self.progress.remove(&peer);
    }

    /// CheckQuorum: a new count starts.
    pub fn reset_active(&mut self) {
        self.progress
            .values_mut()
            .for_each(|p| p.recent_active = false);
    }

    pub fn iter(&self) -> impl Iterator<Item = (Id, Progress)> + '_ {
        self.progress.iter().map(|(&id, &p)| (id, p))
    }
}

/// The highest index held by `needed` servers, given every server's match index (the leader
/// counts its own last index). Figure 2, "Rules for Servers, Leaders": with `needed` a
/// majority, the N with a majority of `matchIndex[i] >= N`.
pub fn quorum_index(mut match_indexes: Vec<Index>, needed: usize) -> Index {
    match_indexes.sort_unstable_by(|a, b| b.cmp(a));
    match_indexes[needed.clamp(1, match_indexes.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_index_is_the_majority_floor() {
        assert_eq!(quorum_index(vec![5], 1), 5);
        assert_eq!(quorum_index(vec![5, 3, 1], 2), 3);
        assert_eq!(quorum_index(vec![1, 5, 3, 0, 4], 3), 3);
        assert_eq!(quorum_index(vec![2, 2, 0, 0], 3), 0);
    }

    #[test]
    fn acks_and_rejects_keep_the_invariant() {
        let mut p = Progress::new(4);
        p.on_sent(6);
        assert_eq!(p.next_index, 7);
        assert!(p.on_ack(3));
        assert!(!p.on_ack(2), "a stale ack must not lower match_index");
        assert_eq!(
            p,
            Progress {
                next_index: 7,
                match_index: 3,
                recent_active: false,
                read_ack: 0,
            }
        );
        p.on_reject(1);
        assert_eq!(p.next_index, 4, "a reject never goes below match_index + 1");
        assert!(p.match_index < p.next_index);
    }
}
