//! Log replication (§5.3) and commitment (§5.4.2): AppendEntries on both ends, the leader's
//! progress per follower, and applying committed entries.

use super::log::Snapshot;
use super::message::{Conflict, Msg, Reply};
use super::rules;
use super::state::Role;
use super::step::Step;
use super::types::{Command, Entry, Index, LogId};
use super::validate::Refusal;
use crate::kv::Applied;
use stateright::actor::Id;
use std::sync::Arc;

impl Step<'_, '_> {
    /// Leaders: the heartbeat re-sends whatever each follower has not acknowledged.
    pub(super) fn on_heartbeat(&mut self) {
        if self.st().is_leader() && rules::heartbeats(self.cfg) {
            self.broadcast_append_entries(true);
            self.set_heartbeat_timer();
        }
    }

    pub(super) fn broadcast_append_entries(&mut self, resend: bool) {
        for peer in self.st().membership.peers(self.id).collect::<Vec<_>>() {
            self.send_append_entries(peer, resend);
        }
    }

    /// Sends `peer` the entries from its nextIndex (§5.3) and pipelines: the next send starts
    /// after them without waiting for the answer; a rejection rewinds. With `resend` (the
    /// heartbeat) it starts after matchIndex instead, re-sending whatever is unacknowledged,
    /// and the next send continues after what it carried: a follower that lost what was sent
    /// (it was down, or the network dropped it) then catches up at the pace of its answers,
    /// not of heartbeats.
    pub(super) fn send_append_entries(&mut self, peer: Id, resend: bool) {
        let st = self.st();
        let Some(p) = st.progress.get(peer) else {
            return;
        };
        let log = st.log();
        let from = if resend {
            p.match_index + 1
        } else {
            p.next_index
        };
        let next = from.min(log.last_index() + 1);
        if next <= log.snapshot_index() {
            return self.send_snapshot(peer);
        }
        let prev_log_index = next - 1;
        let entries = log.entries_from(next, self.cfg.max_append_entries);
        let last_sent = prev_log_index + entries.len() as Index;
        let msg = Msg::AppendEntries {
            term: st.current_term(),
            leader_id: self.id,
            prev_log_index,
            prev_log_term: log.term_at(prev_log_index).unwrap_or(0),
            entries,
            leader_commit: st.commit_index,
            read_round: st.read_round,
        };
        let mut after = p;
        if resend {
            after.on_resent(last_sent);
        } else {
            after.on_sent(last_sent);
        }
        if after != p {
            self.st_mut().progress.set(peer, after);
        }
        self.send_when(peer, msg, rules::append_needs(prev_log_index));
    }

    /// ReadIndex: a round of heartbeats asks only "am I still leader?". Each carries no
    /// entries and stands at the follower's matchIndex, so it leaves at once (no fsync of the
    /// leader's to wait for) and the follower's answer claims only what it has already made
    /// durable, so it leaves at once too. A follower whose matchIndex is compacted away gets
    /// the usual AppendEntries.
    pub(super) fn send_read_round(&mut self, peer: Id) {
        let st = self.st();
        let Some(p) = st.progress.get(peer) else {
            return;
        };
        let log = st.log();
        let Some(prev_log_term) = log.term_at(p.match_index) else {
            return self.send_append_entries(peer, false);
        };
        let msg = Msg::AppendEntries {
            term: st.current_term(),
            leader_id: self.id,
            prev_log_index: p.match_index,
            prev_log_term,
            entries: Vec::new(),
            leader_commit: st.commit_index,
            read_round: st.read_round,
        };
        self.send(peer, msg);
    }

    /// The entries `peer` needs next are compacted: send the snapshot (§7), and send on from
    /// after it.
    fn send_snapshot(&mut self, peer: Id) {
        let st = self.st();
        let Some(p) = st.progress.get(peer) else {
            return;
        };
        let snapshot = st.log().snapshot_shared();
        let msg = Msg::InstallSnapshot {
            term: st.current_term(),
            leader_id: self.id,
            snapshot: Arc::clone(&snapshot),
        };
        if snapshot.last.index + 1 > p.next_index {
            let mut after = p;
            after.on_sent(snapshot.last.index);
            self.st_mut().progress.set(peer, after);
        }
        self.send(peer, msg);
    }

    /// A message of the current term from `leader`: this server follows it (Figure 2,
    /// candidates: AppendEntries from the new leader makes a candidate its follower). Returns
    /// whether the message goes on to be handled. A leader's message also renews the lease.
    fn follow(&mut self, leader: Id, read_round: u64) -> bool {
        if self.st().is_leader() {
            return false; // Two leaders in one term: only a broken variant gets here.
        }
        let is_candidate = matches!(self.st().role, Role::Candidate { .. });
        if is_candidate && !rules::candidate_follows_leader(self.cfg) {
            let term = self.st().current_term();
            let refusal = Msg::AppendEntriesResponse {
                term,
                success: false,
                match_index: 0,
                conflict: None,
                read_round,
            };
            self.send(leader, refusal);
            return false;
        }
        let following = Role::Follower {
            leader: Some(leader),
        };
        if self.st().role != following {
            self.st_mut().role = following;
        }
        self.reset_election_timer();
        self.renew_lease();
        true
    }

    /// InstallSnapshot RPC, receiver implementation (Figure 13; §7). The term is already
    /// settled. A snapshot of no more than what is applied changes nothing (a stale, duplicated
    /// or reordered one); otherwise it replaces the state machine and the log it covers, and
    /// entries after it stay if the log holds its last entry. Either way the reply acknowledges
    /// its last index: everything up to there is committed here and so matches the leader.
    pub(super) fn handle_install_snapshot(&mut self, leader: Id, snapshot: Arc<Snapshot>) {
        if !self.follow(leader, 0) {
            return;
        }
        let term = self.st().current_term();
        let last = snapshot.last;
        let st = self.st();
        if rules::installs_snapshot(self.cfg, st.commit_index, last) {
            let keep = rules::keeps_entries_after_snapshot(self.cfg, st.log(), last);
            let st = self.st_mut();
            if !keep {
                // Entries after the old commit point may be replaced: only the committed
                // prefix, the same in every log, stays known durable.
                st.log_synced = st.log_synced.min(st.commit_index);
            }
            st.kv = snapshot.state.clone();
            st.commit_index = st.commit_index.max(last.index);
            st.hard.log.install(snapshot, keep);
            self.persist();
            self.refresh_membership();
        }
        let reply = Msg::AppendEntriesResponse {
            term,
            success: true,
            match_index: last.index,
            conflict: None,
            read_round: 0,
        };
        self.send_when(leader, reply, rules::ack_needs(self.cfg, last.index));
    }

    /// Compaction (§7): entries through `through`, applied, become the snapshot. The host
    /// asks; a request outside the kept, applied entries is refused.
    pub(super) fn on_compact(&mut self, through: Index) {
        let st = self.st();
        let (first, commit) = (st.log().first_index(), st.commit_index);
        if through < first || through > commit {
            return self.refuse(Refusal::CompactionOutOfRange {
                through,
                first,
                commit,
            });
        }
        let state = st.log().replay_through(through);
        self.st_mut().hard.log.compact_through(through, state);
        self.persist();
        self.refresh_membership();
    }

    /// AppendEntries RPC, receiver implementation (Figure 2; §5.3). The term is already
    /// settled: the request is of this server's current term.
    pub(super) fn handle_append_entries(
        &mut self,
        leader: Id,
        prev: LogId,
        entries: Vec<Entry>,
        leader_commit: Index,
        read_round: u64,
    ) {
        if !self.follow(leader, read_round) {
            return;
        }
        let term = self.st().current_term();

        let log = self.st().log();
        if !rules::append_consistent(self.cfg, log, prev) {
            let conflict = match log.term_at(prev.index) {
                None => Conflict {
                    term: None,
                    index: log.last_index() + 1,
                },
                Some(t) => Conflict {
                    term: Some(t),
                    index: log.first_index_of_term_at(prev.index),
                },
            };
            let reply = Msg::AppendEntriesResponse {
                term,
                success: false,
                match_index: 0,
                conflict: Some(conflict),
                read_round,
            };
            self.send(leader, reply);
            return;
        }

        let last_new = prev.index + entries.len() as Index;
        if let Some(log) = rules::appended_log(self.cfg, log, prev.index, &entries) {
            self.replace_log(log, prev.index);
        }
        let commit = self.st().commit_index;
        if let Some(target) = rules::follower_commit(self.cfg, commit, leader_commit, last_new) {
            self.commit_to(target);
        }
        let reply = Msg::AppendEntriesResponse {
            term,
            success: true,
            match_index: last_new,
            conflict: None,
            read_round,
        };
        self.send_when(leader, reply, rules::ack_needs(self.cfg, last_new));
    }

    /// Takes `log`, which keeps the entries through `kept` and may replace any after; what
    /// was known durable of a replaced entry is no longer.
    fn replace_log(&mut self, log: super::log::Log, kept: Index) {
        let st = self.st_mut();
        let old = std::mem::replace(&mut st.hard.log, log);
        let unchanged = (kept + 1..=st.log_synced)
            .find(|&i| old.get(i) != st.hard.log.get(i))
            .map_or(st.log_synced, |i| i - 1);
        st.log_synced = unchanged.min(st.hard.log.last_index());
        self.persist();
        self.refresh_membership_after(kept);
    }

    /// The disk reports the log durable through `log_through`: a leader may now count more of
    /// its own copy toward commit.
    pub(super) fn on_synced(&mut self, log_through: Index) {
        let through = log_through.min(self.st().log().last_index());
        if through == self.st().log_synced {
            return;
        }
        self.st_mut().log_synced = through;
        self.maybe_advance_commit();
    }

    /// AppendEntries reply at the leader: advance or rewind the follower's progress.
    pub(super) fn handle_append_entries_response(
        &mut self,
        follower: Id,
        success: bool,
        match_index: Index,
        conflict: Option<Conflict>,
        read_round: u64,
    ) {
        let last_index = self.st().log().last_index();
        if success && match_index > last_index && self.st().progress.get(follower).is_some() {
            return self.refuse(Refusal::AckBeyondLog {
                match_index,
                last_index,
            });
        }
        if read_round > 0
            && let Some(mut p) = self.st().progress.get(follower)
            && read_round > p.read_ack
            && read_round <= self.st().read_round
        {
            p.read_ack = read_round;
            self.st_mut().progress.set(follower, p);
            self.answer_reads();
        }
        if self.cfg.check_quorum
            && self.st().is_leader()
            && !self
                .st()
                .progress
                .get(follower)
                .is_some_and(|p| p.recent_active)
        {
            self.st_mut().progress.mark_active(follower);
        }
        let st = self.st();
        let Some(before) = st.progress.get(follower) else {
            return;
        };
        let mut after = before;
        if success {
            let last_index = st.log().last_index();
            if match_index > last_index {
                return self.refuse(Refusal::AckBeyondLog {
                    match_index,
                    last_index,
                });
            }
            let grew = after.on_ack(rules::acknowledged(self.cfg, match_index, last_index));
            if after != before {
                self.st_mut().progress.set(follower, after);
            }
            if grew {
                self.maybe_advance_commit();
                self.maybe_send_timeout_now();
            }
        } else if let Some(conflict) = conflict {
            // Skip back over the follower's whole conflicting term, or to the end of its log.
            let log = st.log();
            let hint = match conflict.term {
                Some(t) => log.last_index_of_term(t).map_or(conflict.index, |i| i + 1),
                None => conflict.index,
            };
            if let Some(keep) = rules::leader_cut_on_reject(self.cfg, hint, log.last_index()) {
                let mut cut = log.clone();
                cut.truncate_after(keep);
                self.replace_log(cut, keep);
            }
            if hint <= before.match_index {
                // The follower says it lacks an entry it acknowledged: the rejection is stale
                // (reordered), or the follower lost its disk. Answering every such rejection at
                // once would be a storm of AppendEntries that cannot succeed; heartbeats go on,
                // and the host, which sees every heartbeat answered so, can tell a lost disk.
                if conflict.term.is_none() {
                    self.refuse(Refusal::FollowerLostEntries {
                        follower,
                        holds: conflict.index.saturating_sub(1),
                        acknowledged: before.match_index,
                    });
                }
                return;
            }
            after.on_reject(hint);
            if after != before {
                self.st_mut().progress.set(follower, after);
            }
        } else {
            return;
        }
        let st = self.st();
        if st
            .progress
            .get(follower)
            .is_some_and(|p| p.next_index <= st.log().last_index())
        {
            self.send_append_entries(follower, false);
        }
    }

    /// Figure 2, rules for leaders: commit the highest index held by a majority, if the rule
    /// allows (see [`rules::leader_commit`]).
    pub(super) fn maybe_advance_commit(&mut self) {
        let st = self.st();
        if !st.is_leader() {
            return;
        }
        let term = st.current_term();
        let commit = st.commit_index;
        let synced = st.log_synced;
        if let Some(n) = rules::leader_commit(
            self.cfg,
            self.id,
            &st.membership,
            st.log(),
            synced,
            term,
            &st.progress,
            commit,
        ) {
            self.commit_to(n);
        }
    }

    /// Advances commitIndex and applies what became committed (Figure 2, rules for all
    /// servers); a leader answers the clients whose entries applied.
    pub(super) fn commit_to(&mut self, new_commit: Index) {
        let old = self.st().commit_index;
        if new_commit == old {
            return;
        }
        self.st_mut().commit_index = new_commit;
        let last = self.st().log().last_index();
        for index in old + 1..=rules::apply_through(self.cfg, new_commit, last) {
            let entry = self
                .st()
                .log()
                .get(index)
                .cloned()
                .expect("index within log");
            let Command::Client {
                client_id,
                seq,
                op,
                reply_to,
            } = entry.command
            else {
                continue;
            };
            let applied = self.st_mut().kv.apply(client_id, seq, &op);
            if self.st().is_leader()
                && let Applied::Fresh(result) | Applied::Duplicate(result) = applied
            {
                self.send(
                    reply_to,
                    Msg::ClientResponse {
                        seq,
                        reply: Reply::Ok { result },
                    },
                );
            }
        }
        self.answer_reads();
        self.step_down_if_removed();
    }
}
