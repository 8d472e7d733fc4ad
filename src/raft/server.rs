//! A Raft server: Figure 2 of the Raft paper, event by event.
//!
//! [`Config::start`] and [`Config::step`] are the protocol's whole interface: pure functions
//! of (state, input) to (state, [`Effect`]s). The runtime and the model each host them in a
//! stateright actor that carries out the effects: saves to a disk that reports back when they
//! are durable ([`Input::Synced`]), and messages once what they need is durable. Time enters
//! only as the timers the server sets: the runtime draws each election timeout from its
//! range, the model checker collapses it.

use super::config::{Config, Timer};
use super::message::Msg;
use super::rules;
use super::state::{HardState, ServerState};
use super::step::{Effect, Input, Step};
use super::types::LogId;
use super::validate::validate;
use stateright::actor::Id;
use std::borrow::Cow;

impl Config {
    /// Starts (or restarts after a crash) from the last saved hard state (§5.1).
    pub fn start(&self, saved: Option<&HardState>) -> (ServerState, Vec<Effect>) {
        let mut hard = rules::restored(self, saved.cloned().unwrap_or_default());
        hard.log.seed_membership(self.initial_membership());
        let state = ServerState::restarted(hard, &self.initial_membership());
        (state, vec![Effect::SetTimer(Timer::Election)])
    }

    /// Runs the handler for `input`; returns the effects, `Save` first when the hard state
    /// changed. `state` stays borrowed when nothing changes.
    pub fn step(&self, id: Id, state: &mut Cow<ServerState>, input: Input) -> Vec<Effect> {
        let mut step = Step::new(self, id, state);
        match input {
            Input::Msg(src, msg) => step.on_msg(src, msg),
            Input::Timeout(Timer::Election) => step.on_election_timeout(),
            Input::Timeout(Timer::Heartbeat) => step.on_heartbeat(),
            Input::Synced { log_through } => step.on_synced(log_through),
            Input::Timeout(Timer::CheckQuorum) => step.on_check_quorum(),
            Input::Timeout(Timer::Lease) => step.on_lease_expired(),
            Input::Compact(through) => step.on_compact(through, None),
            Input::CompactWith { through, state } => step.on_compact(through, Some(state)),
            Input::Timeout(Timer::Transfer) => step.on_transfer_timeout(),
        }
        step.finish()
    }
}

impl Step<'_, '_> {
    fn on_msg(&mut self, src: Id, msg: Msg) {
        match msg {
            Msg::ClientRequest { client_id, seq, op } => {
                return self.handle_client_request(src, client_id, seq, op);
            }
            Msg::TransferLeader { target } => return self.handle_transfer_leader(src, target),
            Msg::ChangeMembership { change } => return self.handle_change_membership(src, change),
            Msg::StatusRequest => {
                let status = self.st().status(self.id);
                return self.send(src, Msg::StatusResponse(status));
            }
            Msg::ClientResponse { .. }
            | Msg::StatusResponse(_)
            | Msg::ChangeMembershipResponse { .. } => return,
            _ => {}
        }
        // A peer outside this server's configuration is heard too (thesis §4.1): a leader
        // this server does not know yet, a candidate of a configuration it has not received.
        if let Err(why) = validate(src, &msg) {
            return self.refuse(why);
        }
        if !self.settle_term(src, &msg) {
            return;
        }
        match msg {
            Msg::RequestVote {
                candidate_id,
                last_log_index,
                last_log_term,
                ..
            } => {
                let last = LogId {
                    term: last_log_term,
                    index: last_log_index,
                };
                self.handle_request_vote(candidate_id, last);
            }
            Msg::TimeoutNow { .. } => self.handle_timeout_now(src),
            Msg::RequestVoteResponse {
                vote_granted: true, ..
            } => self.count_vote(src),
            Msg::PreVote {
                term,
                candidate_id,
                last_log_index,
                last_log_term,
            } => {
                let last = LogId {
                    term: last_log_term,
                    index: last_log_index,
                };
                self.handle_pre_vote(candidate_id, term, last);
            }
            Msg::PreVoteResponse {
                term,
                vote_granted: true,
            } => self.count_pre_vote(src, term),
            Msg::AppendEntries {
                leader_id,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                read_round,
                ..
            } => {
                let prev = LogId {
                    term: prev_log_term,
                    index: prev_log_index,
                };
                self.handle_append_entries(leader_id, prev, entries, leader_commit, read_round);
            }
            Msg::InstallSnapshot {
                leader_id,
                snapshot,
                ..
            } => self.handle_install_snapshot(leader_id, snapshot),
            Msg::AppendEntriesResponse {
                success,
                match_index,
                conflict,
                read_round,
                ..
            } => {
                self.handle_append_entries_response(
                    src,
                    success,
                    match_index,
                    conflict,
                    read_round,
                );
            }
            _ => {}
        }
    }

    /// "Term first, role second" (Figure 2, rules for all servers): settle the term of a peer
    /// message once. A later term makes this server a follower of it; a request of an earlier
    /// term is answered with the current term so that its sender steps down; a reply of an
    /// earlier term is ignored. Returns whether the message goes on to its handler.
    ///
    /// PreVote and CheckQuorum (thesis §9.6, §6.2): a request for a (pre-)vote of a later term
    /// is ignored altogether under a lease; a pre-vote request or a granted pre-vote of a later
    /// term moves no term (it is a question about the next term, not a candidacy); a pre-vote
    /// request of an earlier term is refused in the current term, so that its sender catches up.
    fn settle_term(&mut self, src: Id, msg: &Msg) -> bool {
        let Some(term) = msg.term() else { return true };
        let st = self.st();
        let current = st.current_term();
        let vote_request = matches!(msg, Msg::RequestVote { .. } | Msg::PreVote { .. });
        let transfer = matches!(msg, Msg::RequestVote { transfer: true, .. });
        if term > current
            && vote_request
            && rules::ignores_vote_request(self.cfg, st.is_leader(), st.lease, transfer)
        {
            return false;
        }
        let pre_vote_question = match msg {
            Msg::PreVote { .. } => !rules::pre_vote_moves_term(self.cfg),
            Msg::PreVoteResponse { vote_granted, .. } => *vote_granted,
            _ => false,
        };
        if term > current && pre_vote_question {
            return true;
        }
        if term > current {
            if rules::follows_later_term(self.cfg) {
                let from_leader =
                    matches!(msg, Msg::AppendEntries { .. } | Msg::InstallSnapshot { .. });
                let leader = from_leader.then_some(src);
                self.become_follower(term, leader);
            } else {
                self.adopt_term(term);
            }
            return true;
        }
        if term == current || rules::acts_on_earlier_term(self.cfg, msg) {
            return true;
        }
        match msg {
            Msg::RequestVote { .. } => {
                let (term, vote_granted) =
                    rules::answer_to_earlier_request_vote(self.cfg, current, term);
                self.send(src, Msg::RequestVoteResponse { term, vote_granted });
            }
            Msg::PreVote { .. } => self.send(
                src,
                Msg::PreVoteResponse {
                    term: current,
                    vote_granted: false,
                },
            ),
            Msg::AppendEntries { .. } | Msg::InstallSnapshot { .. } => self.send(
                src,
                Msg::AppendEntriesResponse {
                    term: current,
                    success: false,
                    match_index: 0,
                    conflict: None,
                    read_round: 0,
                },
            ),
            _ => {}
        }
        false
    }
}
