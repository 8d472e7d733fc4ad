//! A Raft server as a stateright [`Actor`]: Figure 2 of the Raft paper, event by event.
//!
//! [`Config::start`] and [`Config::step`] are the protocol's whole interface: pure functions
//! of (state, input) to (state, [`Effect`]s). The `Actor` implementation only turns effects
//! into stateright's commands; the runtime and the model host the same actor. Time enters only
//! as the timers this actor sets: the runtime draws each election timeout from its range, the
//! model checker collapses it.

use super::config::{Config, Timer};
use super::message::Msg;
use super::rules;
use super::state::{HardState, ServerState};
use super::step::{Effect, Input, Step};
use super::types::{Index, LogId};
use super::validate::validate;
use stateright::actor::{Actor, Id, Out};
use std::borrow::Cow;

impl Config {
    /// Starts (or restarts after a crash) from the last saved hard state (§5.1).
    pub fn start(&self, saved: Option<&HardState>) -> (ServerState, Vec<Effect>) {
        let hard = rules::restored(self, saved.cloned().unwrap_or_default());
        let state = ServerState::restarted(hard);
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
            Input::Compact(through) => step.on_compact(through),
        }
        step.finish()
    }

    /// [`Input::Compact`] as a stateright handler: the model's compaction action.
    pub fn on_compact(
        &self,
        id: Id,
        state: &mut Cow<ServerState>,
        through: Index,
        o: &mut Out<Self>,
    ) {
        let effects = self.step(id, state, Input::Compact(through));
        self.emit(state, effects, o);
    }

    /// Turns effects into stateright commands; `Save` saves `state`'s hard state.
    fn emit(&self, state: &ServerState, effects: Vec<Effect>, o: &mut Out<Self>) {
        for effect in effects {
            match effect {
                Effect::Save => o.save(state.hard.clone()),
                Effect::Send(to, msg) => o.send(to, msg),
                Effect::SetTimer(timer) => o.set_timer(timer, self.timer_range(timer)),
                Effect::CancelTimer(timer) => o.cancel_timer(timer),
                Effect::Refused(_) => {} // the runtime's wrapper reports these
            }
        }
    }
}

impl Step<'_, '_> {
    fn on_msg(&mut self, src: Id, msg: Msg) {
        match msg {
            Msg::ClientRequest { client_id, seq, op } => {
                return self.handle_client_request(src, client_id, seq, op);
            }
            Msg::StatusRequest => {
                let status = self.st().status(self.id);
                return self.send(src, Msg::StatusResponse(status));
            }
            Msg::ClientResponse { .. } | Msg::StatusResponse(_) => return,
            _ => {}
        }
        if !self.cfg.is_member(src) {
            return;
        }
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
            Msg::RequestVoteResponse {
                vote_granted: true, ..
            } => self.count_vote(src),
            Msg::AppendEntries {
                leader_id,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                ..
            } => {
                let prev = LogId {
                    term: prev_log_term,
                    index: prev_log_index,
                };
                self.handle_append_entries(leader_id, prev, entries, leader_commit);
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
                ..
            } => {
                self.handle_append_entries_response(src, success, match_index, conflict);
            }
            _ => {}
        }
    }

    /// "Term first, role second" (Figure 2, rules for all servers): settle the term of a peer
    /// message once. A later term makes this server a follower of it; a request of an earlier
    /// term is answered with the current term so that its sender steps down; a reply of an
    /// earlier term is ignored. Returns whether the message goes on to its handler.
    fn settle_term(&mut self, src: Id, msg: &Msg) -> bool {
        let Some(term) = msg.term() else { return true };
        let current = self.st().current_term();
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
            Msg::AppendEntries { .. } | Msg::InstallSnapshot { .. } => self.send(
                src,
                Msg::AppendEntriesResponse {
                    term: current,
                    success: false,
                    match_index: 0,
                    conflict: None,
                },
            ),
            _ => {}
        }
        false
    }
}

impl Actor for Config {
    type Msg = Msg;
    type State = ServerState;
    type Timer = Timer;
    type Random = ();
    type Storage = HardState;

    fn name(&self) -> String {
        "Server".to_owned()
    }

    fn on_start(&self, _id: Id, storage: &Option<HardState>, o: &mut Out<Self>) -> ServerState {
        let (state, effects) = self.start(storage.as_ref());
        self.emit(&state, effects, o);
        state
    }

    fn on_msg(&self, id: Id, state: &mut Cow<ServerState>, src: Id, msg: Msg, o: &mut Out<Self>) {
        let effects = self.step(id, state, Input::Msg(src, msg));
        self.emit(state, effects, o);
    }

    fn on_timeout(&self, id: Id, state: &mut Cow<ServerState>, timer: &Timer, o: &mut Out<Self>) {
        let effects = self.step(id, state, Input::Timeout(*timer));
        self.emit(state, effects, o);
    }
}
