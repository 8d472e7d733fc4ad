//! One step of a server: an input (a message or a timer) goes in; the state changes and a list
//! of [`Effect`]s comes out. Handlers (`election.rs`, `replication.rs`, `clients.rs`) are
//! methods of [`Step`], which collects their effects and emits them in one place, `Save`
//! first, so no message that depends on new persistent state can leave before that state is
//! saved (§5.1, "persist before you speak").
//!
//! The role transitions live here too: a role changes only through `become_follower`,
//! `become_candidate` and `become_leader`, each of which resets exactly what Figure 2 says.

use super::config::{Config, Timer};
use super::message::Msg;
use super::progress::Tracker;
use super::rules;
use super::state::{Role, ServerState};
use super::types::{Command, Entry, Index, Term};
use super::validate::Refusal;
use stateright::actor::Id;
use std::borrow::Cow;
use std::collections::BTreeSet;

/// What a step asks of the world around the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Persist the hard state as it is after this step, before any effect after it.
    Save,
    Send(Id, Msg),
    SetTimer(Timer),
    CancelTimer(Timer),
    /// A message or a step was refused and changed nothing; the runtime logs why.
    Refused(Refusal),
}

/// What a step reacts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Msg(Id, Msg),
    Timeout(Timer),
    /// The host asks for compaction (§7): the log through this applied index becomes a
    /// snapshot. The model chooses when and where; a real server, when its log grows.
    Compact(Index),
}

/// One handler invocation: the state it may change and the effects it produces.
pub(super) struct Step<'a, 'c> {
    pub(super) cfg: &'a Config,
    pub(super) id: Id,
    state: &'a mut Cow<'c, ServerState>,
    /// Persistent state changed: a `Save` goes out before anything else.
    persist: bool,
    effects: Vec<Effect>,
}

impl<'a, 'c> Step<'a, 'c> {
    pub(super) fn new(cfg: &'a Config, id: Id, state: &'a mut Cow<'c, ServerState>) -> Self {
        Self {
            cfg,
            id,
            state,
            persist: false,
            effects: Vec::new(),
        }
    }

    /// Read-only view of the state.
    pub(super) fn st(&self) -> &ServerState {
        self.state
    }

    /// Mutable view; call only on a path that really changes something, so that a stale or
    /// duplicated message stays a no-op the model checker can prune.
    pub(super) fn st_mut(&mut self) -> &mut ServerState {
        self.state.to_mut()
    }

    /// The hard state changed: it is saved before this step's effects leave.
    pub(super) fn persist(&mut self) {
        self.persist = true;
    }

    pub(super) fn send(&mut self, to: Id, msg: Msg) {
        self.effects.push(Effect::Send(to, msg));
    }

    pub(super) fn reset_election_timer(&mut self) {
        self.effects.push(Effect::SetTimer(Timer::Election));
    }

    pub(super) fn set_heartbeat_timer(&mut self) {
        self.effects.push(Effect::SetTimer(Timer::Heartbeat));
    }

    pub(super) fn cancel_timer(&mut self, timer: Timer) {
        self.effects.push(Effect::CancelTimer(timer));
    }

    pub(super) fn refuse(&mut self, why: Refusal) {
        self.effects.push(Effect::Refused(why));
    }

    /// The effects, `Save` first.
    pub(super) fn finish(mut self) -> Vec<Effect> {
        if cfg!(debug_assertions) && self.cfg.mutant.is_none() {
            self.st().check_invariants();
        }
        if self.persist {
            self.effects.insert(0, Effect::Save);
        }
        self.effects
    }

    // ---- roles ---------------------------------------------------------------------------

    /// Moves to a later `term`, forgetting the vote of the earlier one (§5.1).
    pub(super) fn adopt_term(&mut self, term: Term) {
        if term > self.st().current_term() {
            let hard = &mut self.st_mut().hard;
            hard.current_term = term;
            hard.voted_for = None;
            self.persist();
        }
    }

    /// Adopts `term` (if newer, forgetting the vote) and follows `leader`.
    pub(super) fn become_follower(&mut self, term: Term, leader: Option<Id>) {
        let was_leader = self.st().is_leader();
        self.adopt_term(term);
        if self.st().role != (Role::Follower { leader }) {
            let st = self.st_mut();
            st.role = Role::Follower { leader };
            st.progress = Tracker::default();
        }
        if was_leader {
            self.cancel_timer(Timer::Heartbeat);
            self.reset_election_timer();
        }
    }

    /// §5.2: increment the term, vote for self, ask everyone else. A server whose term cannot
    /// grow refuses, rather than wrap around to a term it has seen.
    pub(super) fn become_candidate(&mut self) {
        let id = self.id;
        let Some(term) = rules::campaign_term(self.cfg, self.st().current_term()) else {
            return self.refuse(Refusal::TermExhausted);
        };
        let vote = rules::candidate_vote(self.cfg, id);
        let st = self.st_mut();
        st.hard.current_term = term;
        st.hard.voted_for = vote;
        st.role = Role::Candidate {
            votes: BTreeSet::from([id]),
        };
        self.persist();
        self.reset_election_timer();
        let st = self.st();
        let request = Msg::RequestVote {
            term: st.current_term(),
            candidate_id: id,
            last_log_index: st.log().last_index(),
            last_log_term: st.log().last_term(),
        };
        for peer in self.cfg.peers(id).collect::<Vec<_>>() {
            self.send(peer, request.clone());
        }
        self.maybe_win_election();
    }

    /// Figure 2, rules for leaders: reinitialise nextIndex and matchIndex, append a no-op of
    /// the new term (§8) and announce it to everyone at once.
    pub(super) fn become_leader(&mut self) {
        let last = self.st().log().last_index();
        let progress = rules::progress_of_new_reign(self.cfg, self.cfg.peers(self.id), last);
        let st = self.st_mut();
        st.role = Role::Leader;
        st.progress = progress;
        let term = st.hard.current_term;
        st.hard.log.push(Entry {
            term,
            command: Command::Noop,
        });
        self.persist();
        self.cancel_timer(Timer::Election);
        self.set_heartbeat_timer();
        self.broadcast_append_entries(false);
        // A single-server cluster commits on its own.
        self.maybe_advance_commit();
    }
}
