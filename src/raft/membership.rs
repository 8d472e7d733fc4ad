//! Configuration changes (thesis §4.1): one server at a time, as log entries. A server uses
//! the latest configuration in its log, committed or not; truncating that entry reverts to the
//! one before. The leader appends a change only once it has committed an entry of its own term
//! and the configuration it uses is committed ([`rules::may_change_membership`]).

use super::message::Msg;
use super::progress::Progress;
use super::rules;
use super::step::Step;
use super::types::{Change, ChangeRefused, Command, Entry, Index};
use stateright::actor::Id;

impl Step<'_, '_> {
    /// An operator asks for `change`. Anyone but the leader refuses, naming the leader it
    /// knows; the leader appends the new configuration and answers with its index, or says why
    /// not. (The model's operator is the leader itself, which needs no answer.)
    pub(super) fn handle_change_membership(&mut self, src: Id, change: Change) {
        let st = self.st();
        let leader_hint = st.leader_hint(self.id);
        let outcome = if !st.is_leader() {
            Err(ChangeRefused::NotLeader)
        } else {
            rules::may_change_membership(
                self.cfg,
                st.log(),
                st.commit_index,
                st.current_term(),
                st.membership_index,
            )
            .and_then(|()| st.membership.changed(change))
            .map(|next| {
                let st = self.st_mut();
                let term = st.current_term();
                let index = st.hard.log.push(Entry {
                    term,
                    command: Command::Membership(next),
                });
                self.persist();
                self.refresh_membership();
                index
            })
        };
        if src != self.id {
            let reply = Msg::ChangeMembershipResponse {
                outcome,
                leader_hint,
            };
            self.send(src, reply);
        }
        if outcome.is_ok() {
            self.broadcast_append_entries(false);
            // Removing a voter that lagged can let the rest commit at once.
            self.maybe_advance_commit();
        }
    }

    /// The log changed where a configuration entry may be: take the latest configuration in
    /// it (or the initial one), and at a leader, track exactly its voters and learners.
    pub(super) fn refresh_membership(&mut self) {
        let log = self.st().log();
        let (index, members) = match log.membership() {
            Some((index, m)) => (index, m.clone()),
            None => (0, self.cfg.initial_membership()),
        };
        let st = self.st();
        if (st.membership_index, &*st.membership) == (index, &members) {
            return;
        }
        let leader = st.is_leader();
        let st = self.st_mut();
        st.membership_index = index;
        st.membership = std::sync::Arc::new(members);
        if !leader {
            return;
        }
        let me = self.id;
        let st = self.st_mut();
        let gone: Vec<Id> = st
            .progress
            .iter()
            .map(|(id, _)| id)
            .filter(|&id| !st.membership.contains(id))
            .collect();
        for peer in gone {
            st.progress.remove(peer);
        }
        let new: Vec<Id> = st
            .membership
            .peers(me)
            .filter(|&id| st.progress.get(id).is_none())
            .collect();
        // A new server is sent the log from the configuration entry that added it on; the
        // rejections of a shorter log take it back from there.
        for peer in new {
            st.progress
                .insert(peer, Progress::new(index.saturating_sub(1)));
        }
    }

    /// The log changed after index `kept` (entries replaced or appended from a leader): the
    /// configuration changes only if its entry was cut, or a new one came.
    pub(super) fn refresh_membership_after(&mut self, kept: Index) {
        let st = self.st();
        let cut = st.membership_index > kept;
        let came = st.log().has_membership_after(kept);
        if cut || came {
            self.refresh_membership();
        }
    }

    /// A leader that removed itself steps down once that configuration commits.
    pub(super) fn step_down_if_removed(&mut self) {
        let st = self.st();
        if st.is_leader()
            && rules::steps_down_removed(
                &st.membership,
                self.id,
                st.membership_index,
                st.commit_index,
            )
        {
            let term = st.current_term();
            self.become_follower(term, None);
        }
    }
}
