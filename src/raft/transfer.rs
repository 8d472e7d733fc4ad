//! Leadership transfer (thesis §3.10): the leader stops taking client writes, brings the
//! target's log up to its own, and sends it TimeoutNow; the target campaigns at once. A
//! transfer not done within an election timeout is abandoned, and writes are taken again.

use super::config::Timer;
use super::message::{Msg, Reply};
use super::rules;
use super::state::Transfer;
use super::step::Step;
use super::validate::Refusal;
use stateright::actor::Id;

impl Step<'_, '_> {
    /// An operator asks for leadership to go to `target`. A follower answers "not leader" with
    /// its hint; the leader starts the transfer (a request for the transfer under way, or for
    /// a server that cannot take over, changes nothing).
    pub(super) fn handle_transfer_leader(&mut self, src: Id, target: Id) {
        let st = self.st();
        if !st.is_leader() {
            let leader_hint = st.leader_hint(self.id);
            let reply = Reply::NotLeader { leader_hint };
            return self.send(src, Msg::ClientResponse { seq: 0, reply });
        }
        if !st.membership.is_voter(target) {
            return self.refuse(Refusal::TransferToNonMember { target });
        }
        if !rules::may_transfer_to(&st.membership, self.id, target)
            || st.transfer.is_some_and(|t| t.target == target)
        {
            return;
        }
        self.st_mut().transfer = Some(Transfer {
            target,
            timeout_now_sent: false,
        });
        self.set_timer(Timer::Transfer);
        self.maybe_send_timeout_now();
        if self.st().transfer.is_some_and(|t| !t.timeout_now_sent) {
            self.send_append_entries(target, false);
        }
    }

    /// Sends TimeoutNow once the transfer's target holds the whole log.
    pub(super) fn maybe_send_timeout_now(&mut self) {
        let st = self.st();
        let Some(transfer) = st.transfer else { return };
        let Some(progress) = st.progress.get(transfer.target) else {
            return;
        };
        if transfer.timeout_now_sent
            || !rules::transfer_target_ready(progress.match_index, st.log().last_index())
        {
            return;
        }
        let term = st.current_term();
        self.st_mut().transfer = Some(Transfer {
            timeout_now_sent: true,
            ..transfer
        });
        self.send(transfer.target, Msg::TimeoutNow { term });
    }

    /// The transfer took an election timeout: abandoned, writes are taken again.
    pub(super) fn on_transfer_timeout(&mut self) {
        if self.st().transfer.is_some() {
            self.st_mut().transfer = None;
        }
    }

    /// TimeoutNow (the term is settled): campaign at once, if it came from the leader this
    /// server follows.
    pub(super) fn handle_timeout_now(&mut self, from: Id) {
        let from_leader = !self.st().is_leader() && self.st().leader_hint(self.id) == Some(from);
        if rules::campaigns_on_timeout_now(from_leader) {
            self.become_candidate(true);
        }
    }
}
