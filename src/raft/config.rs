//! The static configuration of a server: who the members are, its timing, and (for checking
//! the checker) which deliberately broken variant of the protocol it runs.

use super::mutant::Mutant;
use super::rules;
use super::state::{Role, ServerState};
use super::types::Term;
use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use std::ops::Range;
use std::time::Duration;

/// Shared by every server of a cluster. A server's identity is the `Id` each handler receives,
/// so servers are interchangeable (which the model checker's symmetry relies on). As in
/// stateright's examples, this static configuration is the actor.
#[derive(Clone, Debug)]
pub struct Config {
    /// Every member of the cluster, this server included.
    pub servers: Vec<Id>,
    /// A follower that hears no leader within a random time in this range starts an election.
    pub election_timeout: Range<Duration>,
    /// How often an idle leader sends AppendEntries to assert itself.
    pub heartbeat: Duration,
    /// At most this many entries in one AppendEntries (keeps datagrams small).
    pub max_append_entries: usize,
    /// A deliberately broken variant, for checking the checker; `None` in every real run.
    pub mutant: Option<Mutant>,
}

/// The timers a server sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Timer {
    /// Followers and candidates: no leader heard from, start an election (§5.2).
    Election,
    /// Leaders: time to send AppendEntries to every follower.
    Heartbeat,
}

impl Config {
    pub fn majority(&self) -> usize {
        self.servers.len() / 2 + 1
    }

    /// Every member but `id`.
    pub fn peers(&self, id: Id) -> impl Iterator<Item = Id> + '_ {
        self.servers.iter().copied().filter(move |&s| s != id)
    }

    pub fn is_member(&self, id: Id) -> bool {
        self.servers.contains(&id)
    }

    /// The range a timer is drawn from: the runtime picks at random, the model collapses it.
    pub fn timer_range(&self, timer: Timer) -> Range<Duration> {
        match timer {
            Timer::Election => self.election_timeout.clone(),
            Timer::Heartbeat => self.heartbeat..self.heartbeat,
        }
    }

    /// The term `state` is in after `timer` fires: lets the model checker skip, unbuilt, the
    /// steps that would leave its term bound. A test keeps it in step with the handlers.
    pub fn term_after_timeout(&self, state: &ServerState, timer: Timer) -> Term {
        match timer {
            Timer::Election
                if !state.is_leader()
                    && rules::campaigns(self, matches!(state.role, Role::Candidate { .. })) =>
            {
                rules::campaign_term(self, state.current_term()).unwrap_or(state.current_term())
            }
            _ => state.current_term(),
        }
    }
}
