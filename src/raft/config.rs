//! The static configuration of a server: who the members are, its timing, and (for checking
//! the checker) which deliberately broken variant of the protocol it runs.

use super::mutant::Mutant;
use super::rules;
use super::state::ServerState;
use super::types::{Membership, Term};
use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use std::ops::Range;
use std::time::Duration;

/// Shared by every server of a cluster. A server's identity is the `Id` each handler receives,
/// so servers are interchangeable (which the model checker's symmetry relies on). As in
/// stateright's examples, this static configuration is the actor.
#[derive(Clone, Debug)]
pub struct Config {
    /// The initial configuration's voters: the configuration a server uses while its log and
    /// snapshot hold none (a changed one is a log entry, `Command::Membership`).
    pub servers: Vec<Id>,
    /// A follower that hears no leader within a random time in this range starts an election.
    pub election_timeout: Range<Duration>,
    /// How often an idle leader sends AppendEntries to assert itself.
    pub heartbeat: Duration,
    /// At most this many entries in one AppendEntries (keeps datagrams small).
    pub max_append_entries: usize,
    /// PreVote (thesis §9.6): an election starts by asking whether it could win, without
    /// raising any term, so a server that cannot win does not disturb the others.
    pub pre_vote: bool,
    /// CheckQuorum (thesis §6.2): a leader that has not heard from a majority within an
    /// election timeout steps down; and a server that heard from a leader within the minimum
    /// election timeout ignores requests for (pre-)votes of later terms (its lease, §4.2.3).
    pub check_quorum: bool,
    /// ReadIndex (thesis §6.4): a Get is answered once the leader has confirmed its leadership
    /// with a round of heartbeats and applied through the commit index it had when the Get
    /// came; no log entry. Without it, a Get goes through the log like a Put.
    pub read_index: bool,
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
    /// Leaders with CheckQuorum: time to count who was heard from since the last count.
    CheckQuorum,
    /// Followers with CheckQuorum: the minimum election timeout has passed since the leader
    /// was last heard from, so the lease on its behalf ends.
    Lease,
    /// Leaders transferring leadership: an election timeout has passed since the transfer
    /// began, so it is abandoned and client writes are taken again.
    Transfer,
}

impl Config {
    /// The configuration before any change.
    pub fn initial_membership(&self) -> Membership {
        Membership::of_voters(self.servers.iter().copied())
    }

    /// The range a timer is drawn from: the runtime picks at random, the model collapses it.
    pub fn timer_range(&self, timer: Timer) -> Range<Duration> {
        match timer {
            Timer::Election => self.election_timeout.clone(),
            Timer::Heartbeat => self.heartbeat..self.heartbeat,
            Timer::Transfer => self.election_timeout.end..self.election_timeout.end,
            Timer::CheckQuorum | Timer::Lease => {
                self.election_timeout.start..self.election_timeout.start
            }
        }
    }

    /// The term `state` is in after `timer` fires: lets the model checker skip, unbuilt, the
    /// steps that would leave its term bound. A test keeps it in step with the handlers.
    pub fn term_after_timeout(&self, id: Id, state: &ServerState, timer: Timer) -> Term {
        match timer {
            // A pre-vote raises no term, unless this server's own vote already wins it.
            Timer::Election
                if !state.is_leader()
                    && (!rules::pre_votes(self) || rules::wins(self, &state.membership, [&id]))
                    && rules::campaigns(self, state.is_candidate(), state.is_voter(id)) =>
            {
                rules::campaign_term(self, state.current_term()).unwrap_or(state.current_term())
            }
            _ => state.current_term(),
        }
    }
}
