//! One step of a server: an input (a message or a timer) goes in; the state changes and a list
//! of [`Effect`]s comes out. Handlers (`election.rs`, `replication.rs`, `clients.rs`) are
//! methods of [`Step`], which collects their effects and emits them in one place, `Save`
//! first; each message says what must be durable before it leaves ([`Durable`], decided by
//! named rules in `rules.rs`), so none that depends on new persistent state leaves before that
//! state is on disk (§5.1, "persist before you speak").
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
use crate::kv::KvStore;
use serde::Serialize;
use stateright::actor::Id;
use std::borrow::Cow;
use std::collections::BTreeSet;

/// What must be durable before a message may leave: the condition the host (the runtime's
/// outbox, the model's disk) carries out. As etcd's `Ready` contract ("HardState and Entries
/// saved before Messages are sent"), but per message, so that what needs nothing leaves at
/// once while the disk works.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Durable {
    /// The term and vote as they are after this step.
    pub term_vote: bool,
    /// The log through this index, as it is after this step (0: none of it).
    pub log_through: Index,
}

impl Durable {
    /// Needs nothing on disk: leaves at once.
    pub const NOTHING: Durable = Durable {
        term_vote: false,
        log_through: 0,
    };
    pub const TERM_VOTE: Durable = Durable {
        term_vote: true,
        log_through: 0,
    };

    pub fn log_through(index: Index) -> Durable {
        Durable {
            term_vote: false,
            log_through: index,
        }
    }

    pub fn is_nothing(self) -> bool {
        self == Durable::NOTHING
    }
}

/// What a step asks of the world around the protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Persist the hard state as it is after this step. Saves are durable in the order they
    /// are made; a save becomes durable later, when the disk says so (`Input::Synced`).
    Save,
    /// Send once what the [`Durable`] names is durable; never before.
    Send(Id, Msg, Durable),
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
    /// The disk reports that the log through `log_through` (as it is now) is durable.
    Synced {
        log_through: Index,
    },
    /// The host asks for compaction (§7): the log through this applied index becomes a
    /// snapshot. The model chooses when and where; a real server, when its log grows.
    Compact(Index),
    /// `Compact`, with the state machine after entries `1..=through` already computed by the
    /// host from a copy of the log ([`crate::raft::Log::replay_through`]), so that the replay
    /// runs off the server's thread. Applied entries never change, so the state is still
    /// right whenever `through` is still in range.
    CompactWith {
        through: Index,
        state: KvStore,
    },
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

    /// Sends `msg` at once: it rests on nothing still on its way to disk.
    pub(super) fn send(&mut self, to: Id, msg: Msg) {
        self.send_when(to, msg, Durable::NOTHING);
    }

    /// Sends `msg` once what `needs` names is durable.
    pub(super) fn send_when(&mut self, to: Id, msg: Msg, needs: Durable) {
        self.effects.push(Effect::Send(to, msg, needs));
    }

    pub(super) fn reset_election_timer(&mut self) {
        self.effects.push(Effect::SetTimer(Timer::Election));
    }

    pub(super) fn set_heartbeat_timer(&mut self) {
        self.set_timer(Timer::Heartbeat);
    }

    pub(super) fn set_timer(&mut self, timer: Timer) {
        self.effects.push(Effect::SetTimer(timer));
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

    /// The voters of this server's configuration, but itself: whom it asks for votes.
    pub(super) fn voters_but_me(&self) -> Vec<Id> {
        let me = self.id;
        let voters = &self.st().membership.voters;
        voters.iter().copied().filter(|&v| v != me).collect()
    }

    /// Adopts `term` (if newer, forgetting the vote) and follows `leader`.
    pub(super) fn become_follower(&mut self, term: Term, leader: Option<Id>) {
        let was_leader = self.st().is_leader();
        let was_transferring = self.st().transfer.is_some();
        let new_term = term > self.st().current_term();
        self.adopt_term(term);
        if self.st().role != (Role::Follower { leader }) {
            let st = self.st_mut();
            st.role = Role::Follower { leader };
            st.progress = Tracker::default();
            // Waiting reads go unanswered; their clients try again elsewhere.
            st.reads.clear();
            st.read_round = 0;
            st.transfer = None;
        }
        if new_term || leader.is_none() {
            self.end_lease();
        }
        if was_leader {
            self.cancel_timer(Timer::Heartbeat);
            if self.cfg.check_quorum {
                self.cancel_timer(Timer::CheckQuorum);
            }
            if was_transferring {
                self.cancel_timer(Timer::Transfer);
            }
            self.reset_election_timer();
        }
    }

    /// CheckQuorum: the leader of this term was heard from; the lease on its behalf runs for
    /// the minimum election timeout from now.
    pub(super) fn renew_lease(&mut self) {
        if !self.cfg.check_quorum {
            return;
        }
        if !self.st().lease {
            self.st_mut().lease = true;
        }
        self.set_timer(Timer::Lease);
    }

    /// The lease ends: its time ran out, or the term or the leader changed.
    pub(super) fn end_lease(&mut self) {
        if self.st().lease {
            self.st_mut().lease = false;
            self.cancel_timer(Timer::Lease);
        }
    }

    /// PreVote (thesis §9.6): ask everyone whether they would vote for this server in the next
    /// term, raising no term and recording no vote. It knows no leader from now on, so it does
    /// not refuse others' pre-votes on a leader's behalf (etcd PR 8334).
    pub(super) fn become_pre_candidate(&mut self) {
        let id = self.id;
        let Some(term) = self.st().current_term().checked_add(1) else {
            return self.refuse(Refusal::TermExhausted);
        };
        self.end_lease();
        self.st_mut().role = Role::PreCandidate {
            votes: BTreeSet::from([id]),
        };
        self.reset_election_timer();
        let st = self.st();
        let request = Msg::PreVote {
            term,
            candidate_id: id,
            last_log_index: st.log().last_index(),
            last_log_term: st.log().last_term(),
        };
        for peer in self.voters_but_me() {
            self.send(peer, request.clone());
        }
        self.maybe_win_pre_vote();
    }

    /// §5.2: increment the term, vote for self, ask everyone else. A server whose term cannot
    /// grow refuses, rather than wrap around to a term it has seen. `transfer`: the leader sent
    /// TimeoutNow, and the requests say so (thesis §3.10).
    pub(super) fn become_candidate(&mut self, transfer: bool) {
        let id = self.id;
        let Some(term) = rules::campaign_term(self.cfg, self.st().current_term()) else {
            return self.refuse(Refusal::TermExhausted);
        };
        let vote = rules::candidate_vote(self.cfg, id);
        self.end_lease();
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
            transfer,
        };
        let needs = rules::request_vote_needs(self.cfg);
        for peer in self.voters_but_me() {
            self.send_when(peer, request.clone(), needs);
        }
        self.maybe_win_election();
    }

    /// Figure 2, rules for leaders: reinitialise nextIndex and matchIndex, append a no-op of
    /// the new term (§8) and announce it to everyone at once.
    pub(super) fn become_leader(&mut self) {
        let last = self.st().log().last_index();
        let peers = self.st().membership.peers(self.id).collect::<Vec<_>>();
        let progress = rules::progress_of_new_reign(self.cfg, peers.into_iter(), last);
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
        if self.cfg.check_quorum {
            self.set_timer(Timer::CheckQuorum);
        }
        self.broadcast_append_entries(false);
        // A single-server cluster commits on its own.
        self.maybe_advance_commit();
    }
}
