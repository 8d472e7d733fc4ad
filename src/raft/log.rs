//! The replicated log (§5.3) and its compacted prefix (§7). It owns 1-based indexing so that
//! no `± 1` appears elsewhere, and every index or term lookup goes through it: the logical
//! log is the snapshot (entries `1..=snapshot.last.index`, kept only as the state machine
//! they produce) followed by the kept entries.

use super::types::{Command, Entry, Index, LogId, Membership, Term};
use crate::kv::KvStore;
use im::Vector;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The state machine as of one log position: what compaction keeps of the entries it drops
/// (§7, Figure 13's lastIncludedIndex, lastIncludedTerm and data).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Snapshot {
    /// The last entry the snapshot covers; index 0 for the empty snapshot.
    pub last: LogId,
    /// The key-value map and client sessions after applying entries `1..=last.index`.
    pub state: KvStore,
    /// The latest configuration among the entries it covers (`None`: the initial one), so
    /// that compaction keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership: Option<Membership>,
}

/// The snapshot and the entries after it; index `i` is `entries[i - snapshot.last.index - 1]`.
/// The snapshot is shared: it changes rarely, and every model state clones the log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Log {
    #[serde(default, skip_serializing_if = "Snapshot::is_empty_arc")]
    snapshot: Arc<Snapshot>,
    entries: Vector<Entry>,
}

impl Snapshot {
    pub fn is_empty(&self) -> bool {
        self.last.index == 0
    }

    fn is_empty_arc(snapshot: &Arc<Snapshot>) -> bool {
        snapshot.is_empty()
    }
}

impl Log {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_entries(entries: impl IntoIterator<Item = Entry>) -> Self {
        Self {
            snapshot: Arc::default(),
            entries: entries.into_iter().collect(),
        }
    }

    /// The compacted prefix.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The compacted prefix, shared (to send it).
    pub fn snapshot_shared(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot)
    }

    /// The last index the snapshot covers (0 without one).
    pub fn snapshot_index(&self) -> Index {
        self.snapshot.last.index
    }

    /// The first index whose entry is kept.
    pub fn first_index(&self) -> Index {
        self.snapshot_index() + 1
    }

    pub fn last_index(&self) -> Index {
        self.snapshot_index() + self.entries.len() as Index
    }

    pub fn last_term(&self) -> Term {
        self.entries
            .last()
            .map_or(self.snapshot.last.term, |e| e.term)
    }

    pub fn last_id(&self) -> LogId {
        LogId {
            term: self.last_term(),
            index: self.last_index(),
        }
    }

    /// Position of `index` among the kept entries, if it is one of them.
    fn offset(&self, index: Index) -> Option<usize> {
        index
            .checked_sub(self.first_index())
            .map(|k| k as usize)
            .filter(|&k| k < self.entries.len())
    }

    /// The term of the entry at `index`: the snapshot's term at its last index (0 at index 0);
    /// `None` past the end and inside the snapshot, where only the state is kept.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.snapshot_index() {
            Some(self.snapshot.last.term)
        } else {
            self.get(index).map(|e| e.term)
        }
    }

    /// The kept entry at `index`; `None` past the end and inside the snapshot.
    pub fn get(&self, index: Index) -> Option<&Entry> {
        self.entries.get(self.offset(index)?)
    }

    /// Whether this log holds an entry at `index` written in `term` (the AppendEntries
    /// consistency check, §5.3).
    pub fn matches(&self, index: Index, term: Term) -> bool {
        self.term_at(index) == Some(term)
    }

    /// Up to `max` kept entries starting at `index` (1-based, inclusive); none inside the
    /// snapshot.
    pub fn entries_from(&self, index: Index, max: usize) -> Vec<Entry> {
        let start = index.max(self.first_index()) - self.first_index();
        let start = start as usize;
        if start >= self.entries.len() {
            return Vec::new();
        }
        let end = self.entries.len().min(start.saturating_add(max));
        // A slice of the persistent vector costs O(log n); iterating up to `start` would not.
        self.entries.clone().slice(start..end).into_iter().collect()
    }

    /// The kept entries, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// The number of kept entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no entry is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Election restriction (§5.4.1): a log ending in `last` is at least as up-to-date as this
    /// one if its last term is later, or equal with an index at least as long.
    pub fn is_up_to_date(&self, last: LogId) -> bool {
        (last.term, last.index) >= (self.last_term(), self.last_index())
    }

    /// The first index of the run of entries of `term` that contains `index` (the conflict
    /// hint); it does not reach into the snapshot.
    pub fn first_index_of_term_at(&self, index: Index) -> Index {
        let term = self.term_at(index);
        let mut first = index;
        while first > 1 && self.term_at(first - 1) == term {
            first -= 1;
        }
        first
    }

    /// The last index holding an entry of `term`, if any (the snapshot's last entry included).
    pub fn last_index_of_term(&self, term: Term) -> Option<Index> {
        (self.snapshot_index().max(1)..=self.last_index())
            .rev()
            .find(|&i| self.term_at(i) == Some(term))
    }

    /// Appends one entry at the end and returns its index.
    pub fn push(&mut self, entry: Entry) -> Index {
        self.entries.push_back(entry);
        self.last_index()
    }

    /// Appends `entries` after `prev_index`, which the caller has checked matches (§5.3, Figure 2
    /// "AppendEntries RPC" steps 3-4). An existing entry that agrees is kept; the log is truncated
    /// only at the first real conflict. A stale or duplicated request therefore never removes
    /// entries that follow the ones it carries. Returns whether the log changed.
    pub fn append_after(&mut self, prev_index: Index, entries: &[Entry]) -> bool {
        let mut changed = false;
        for (offset, entry) in entries.iter().enumerate() {
            let index = prev_index + 1 + offset as Index;
            if index <= self.snapshot_index() {
                continue; // committed, so the same entry the snapshot covers
            }
            match self.term_at(index) {
                Some(term) if term == entry.term => continue,
                Some(_) => {
                    self.truncate_after(index - 1);
                    self.entries.push_back(entry.clone());
                }
                None => self.entries.push_back(entry.clone()),
            }
            changed = true;
        }
        changed
    }

    /// Whether appending `entries` after `prev_index` would change the log: some entry is new
    /// or conflicts with the one at its index.
    pub fn would_change(&self, prev_index: Index, entries: &[Entry]) -> bool {
        entries
            .iter()
            .enumerate()
            .map(|(k, e)| (prev_index + 1 + k as Index, e))
            .any(|(i, e)| i > self.snapshot_index() && self.term_at(i) != Some(e.term))
    }

    /// The state machine after entries `1..=index` (at most the last index): the snapshot's
    /// state, then the kept entries replayed on it.
    pub fn replay_through(&self, index: Index) -> KvStore {
        let mut kv = self.snapshot.state.clone();
        let kept = index.saturating_sub(self.snapshot_index()) as usize;
        for entry in self.entries.iter().take(kept) {
            if let Command::Client {
                client_id, seq, op, ..
            } = &entry.command
            {
                kv.apply(*client_id, *seq, op);
            }
        }
        kv
    }

    /// Compaction (§7): entries `..=index` become part of the snapshot, whose state `state`
    /// is (the state machine after them). Only a kept index past the snapshot can be one.
    pub fn compact_through(&mut self, index: Index, state: KvStore) {
        let Some(term) = self
            .term_at(index)
            .filter(|_| index > self.snapshot_index())
        else {
            return;
        };
        let membership = self.membership_through(index).map(|(_, m)| m.clone());
        let dropped = (index - self.snapshot_index()) as usize;
        self.entries = self.entries.skip(dropped);
        self.snapshot = Arc::new(Snapshot {
            last: LogId { term, index },
            state,
            membership,
        });
    }

    /// Takes `initial` as the configuration before any entry, unless the snapshot holds one: a
    /// new server's log starts from its initial configuration, so that the log alone says
    /// which configuration holds anywhere in it.
    pub fn seed_membership(&mut self, initial: Membership) {
        if self.snapshot.membership.is_none() {
            self.snapshot = Arc::new(Snapshot {
                membership: Some(initial),
                ..(*self.snapshot).clone()
            });
        }
    }

    /// The configuration in force (thesis §4.1: the latest in the log, committed or not) and
    /// the index of its entry (the snapshot's last index when the snapshot holds it); `None`
    /// when the log holds none, and the initial configuration holds.
    pub fn membership(&self) -> Option<(Index, &Membership)> {
        self.membership_through(self.last_index())
    }

    /// Whether a kept entry after `index` is a configuration.
    pub fn has_membership_after(&self, index: Index) -> bool {
        (index.max(self.snapshot_index()) + 1..=self.last_index())
            .any(|i| matches!(self.get(i), Some(e) if matches!(e.command, Command::Membership(_))))
    }

    /// The latest configuration at or before `index`, as [`Log::membership`].
    pub fn membership_through(&self, index: Index) -> Option<(Index, &Membership)> {
        let kept = index.saturating_sub(self.snapshot_index()) as usize;
        let in_entries =
            self.entries
                .iter()
                .take(kept)
                .enumerate()
                .rev()
                .find_map(|(k, e)| match &e.command {
                    Command::Membership(m) => Some((self.first_index() + k as Index, m)),
                    _ => None,
                });
        in_entries.or_else(|| {
            let snapshot = &self.snapshot;
            snapshot
                .membership
                .as_ref()
                .map(|m| (snapshot.last.index, m))
        })
    }

    /// Figure 13, steps 6-7: a snapshot replaces the log it covers. With `keep_suffix`, the
    /// entries after its last index stay (the caller has checked they follow it); otherwise
    /// the whole log goes.
    pub fn install(&mut self, snapshot: Arc<Snapshot>, keep_suffix: bool) {
        let last = snapshot.last.index;
        self.entries = if keep_suffix && last >= self.snapshot_index() {
            let kept = (last - self.snapshot_index()) as usize;
            self.entries.skip(kept.min(self.entries.len()))
        } else {
            Vector::new()
        };
        self.snapshot = snapshot;
    }

    /// The same log with every configuration (in entries and the snapshot) passed through `f`;
    /// the log itself, shared, when it holds none. (The model renames servers with it.)
    pub fn map_memberships(&self, f: impl Fn(&Membership) -> Membership) -> Log {
        let in_entries = self
            .entries
            .iter()
            .any(|e| matches!(e.command, Command::Membership(_)));
        // A configuration that `f` leaves as it is keeps the snapshot shared.
        let snapshot = match &self.snapshot.membership {
            Some(m) => {
                let mapped = f(m);
                if mapped == *m {
                    Arc::clone(&self.snapshot)
                } else {
                    Arc::new(Snapshot {
                        membership: Some(mapped),
                        ..(*self.snapshot).clone()
                    })
                }
            }
            None => Arc::clone(&self.snapshot),
        };
        if !in_entries {
            return Log {
                snapshot,
                entries: self.entries.clone(),
            };
        }
        let entries = self
            .entries
            .iter()
            .map(|e| match &e.command {
                Command::Membership(m) => Entry {
                    term: e.term,
                    command: Command::Membership(f(m)),
                },
                _ => e.clone(),
            })
            .collect();
        Log { snapshot, entries }
    }

    /// Keeps entries up to `index` and drops the rest; the snapshot is never cut.
    pub fn truncate_after(&mut self, index: Index) {
        let keep = index.saturating_sub(self.snapshot_index());
        self.entries.truncate(keep as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::Command;

    fn log(terms: &[Term]) -> Log {
        Log::from_entries(terms.iter().map(|&term| Entry {
            term,
            command: Command::Noop,
        }))
    }
    fn entries(terms: &[Term]) -> Vec<Entry> {
        terms
            .iter()
            .map(|&term| Entry {
                term,
                command: Command::Noop,
            })
            .collect()
    }
    fn terms(log: &Log) -> Vec<Term> {
        log.iter().map(|e| e.term).collect()
    }

    #[test]
    fn indexing_is_one_based_with_zero_before_the_first_entry() {
        let l = log(&[1, 1, 2]);
        assert_eq!(l.term_at(0), Some(0));
        assert_eq!(l.term_at(3), Some(2));
        assert_eq!(l.term_at(4), None);
        assert_eq!(l.last_id(), LogId { term: 2, index: 3 });
        assert!(l.matches(0, 0));
        assert!(!l.matches(3, 1));
    }

    #[test]
    fn up_to_date_compares_last_term_then_length() {
        // Reference: §5.4.1.
        let l = log(&[1, 2]);
        assert!(l.is_up_to_date(LogId { term: 3, index: 1 }));
        assert!(l.is_up_to_date(LogId { term: 2, index: 2 }));
        assert!(!l.is_up_to_date(LogId { term: 2, index: 1 }));
        assert!(!l.is_up_to_date(LogId { term: 1, index: 9 }));
    }

    #[test]
    fn stale_append_never_truncates_matching_entries() {
        let mut l = log(&[1, 1, 1]);
        assert!(!l.append_after(0, &entries(&[1])));
        assert_eq!(terms(&l), vec![1, 1, 1]);
    }

    #[test]
    fn conflicting_append_truncates_from_the_first_conflict() {
        let mut l = log(&[1, 1, 2, 2]);
        assert!(l.append_after(1, &entries(&[1, 3])));
        assert_eq!(terms(&l), vec![1, 1, 3]);
    }

    #[test]
    fn append_extends_past_the_end() {
        let mut l = log(&[1]);
        assert!(l.append_after(1, &entries(&[2, 2])));
        assert_eq!(terms(&l), vec![1, 2, 2]);
    }

    #[test]
    fn conflict_hint_finds_first_index_of_the_term() {
        let l = log(&[1, 2, 2, 2, 3]);
        assert_eq!(l.first_index_of_term_at(4), 2);
        assert_eq!(l.first_index_of_term_at(1), 1);
        assert_eq!(l.last_index_of_term(2), Some(4));
        assert_eq!(l.last_index_of_term(5), None);
    }

    #[test]
    fn entries_from_is_bounded() {
        let l = log(&[1, 2, 3, 4]);
        assert_eq!(entries(&[2, 3]), l.entries_from(2, 2));
        assert!(l.entries_from(5, 9).is_empty());
    }

    fn put(term: Term, seq: u64) -> Entry {
        Entry {
            term,
            command: Command::Client {
                client_id: 1,
                seq,
                op: crate::kv::Op::Put {
                    key: "k".into(),
                    value: seq.to_string(),
                },
                reply_to: stateright::actor::Id::from(9),
            },
        }
    }

    #[test]
    fn compaction_keeps_indexes_and_terms_and_replays_to_the_same_state() {
        let mut l = Log::from_entries([put(1, 1), put(1, 2), put(2, 3)]);
        let whole = l.replay_through(3);
        l.compact_through(2, l.replay_through(2));
        assert_eq!(
            (l.snapshot_index(), l.first_index(), l.last_index()),
            (2, 3, 3)
        );
        assert_eq!(l.term_at(2), Some(1), "the snapshot's last term");
        assert_eq!(
            l.term_at(1),
            None,
            "inside the snapshot only the state is kept"
        );
        assert_eq!(l.get(3), Some(&put(2, 3)));
        assert_eq!(l.replay_through(3), whole);
        assert_eq!(l.last_id(), LogId { term: 2, index: 3 });
        l.compact_through(1, KvStore::default());
        assert_eq!(l.snapshot_index(), 2, "compaction never goes back");
    }

    #[test]
    fn an_append_below_the_snapshot_skips_what_it_covers() {
        let mut l = Log::from_entries([put(1, 1), put(1, 2)]);
        l.compact_through(2, l.replay_through(2));
        assert!(!l.would_change(0, &[put(1, 1), put(1, 2)]));
        assert!(l.append_after(0, &[put(1, 1), put(1, 2), put(1, 3)]));
        assert_eq!((l.snapshot_index(), l.last_index()), (2, 3));
        assert_eq!(l.get(3), Some(&put(1, 3)));
    }

    #[test]
    fn install_keeps_a_matching_suffix_and_drops_a_conflicting_log() {
        let leader = Log::from_entries([put(1, 1), put(1, 2)]);
        let mut snapshot_log = leader.clone();
        snapshot_log.compact_through(2, leader.replay_through(2));
        let snapshot = snapshot_log.snapshot_shared();

        let mut matching = Log::from_entries([put(1, 1), put(1, 2), put(1, 3)]);
        matching.install(Arc::clone(&snapshot), true);
        assert_eq!((matching.snapshot_index(), matching.last_index()), (2, 3));

        let mut conflicting = Log::from_entries([put(1, 1), put(3, 9), put(3, 10)]);
        conflicting.install(snapshot, false);
        assert_eq!(
            (conflicting.snapshot_index(), conflicting.last_index()),
            (2, 2)
        );
        assert!(conflicting.is_empty());
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        /// A leader's log: non-decreasing terms.
        fn leader_log() -> impl Strategy<Value = Vec<Term>> {
            proptest::collection::vec(1u64..4, 0..8).prop_map(|mut t| {
                t.sort_unstable();
                t
            })
        }

        proptest! {
            /// Any sequence of AppendEntries cut from one leader's log, delivered in any order
            /// and any number of times, never loses an entry the follower already matched:
            /// the follower's log stays a prefix of the leader's, and only grows.
            #[test]
            fn stale_and_duplicate_appends_never_lose_a_matching_prefix(
                leader in leader_log(),
                requests in proptest::collection::vec((0usize..8, 0usize..8), 0..20),
            ) {
                let leader = log(&leader);
                let mut follower = Log::new();
                for (start, len) in requests {
                    let prev = start.min(leader.len()) as Index;
                    let Some(prev_term) = leader.term_at(prev) else { continue };
                    if !follower.matches(prev, prev_term) {
                        continue;
                    }
                    let before = follower.last_index();
                    follower.append_after(prev, &leader.entries_from(prev + 1, len));
                    prop_assert!(follower.last_index() >= before, "an append shortened the log");
                    for i in 1..=follower.last_index() {
                        prop_assert_eq!(follower.get(i), leader.get(i));
                    }
                }
            }
        }
    }
}
