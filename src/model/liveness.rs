//! Liveness, stated so that an exhaustive checker can judge it: from a quiet state (nothing in
//! flight, nobody crashed), once faults stop, a fair schedule brings the cluster to agreement
//! within a bounded number of rounds. stateright judges `eventually` only at terminal states,
//! which a Raft model with timers never reaches, so the bound is checked as an always-property:
//! the predicate runs the fault-free continuation itself.
//!
//! The continuation is one fair schedule of partial synchrony: every pending fsync completes,
//! every message between servers in flight is delivered, in order and once (the network is
//! reliable from now on), before any timer fires; a leader's heartbeat fires when the network is
//! quiet, and with CheckQuorum its count fires after every second heartbeat; without a leader,
//! the followers' leases run out (the minimum election timeout is the shortest), then election
//! timeouts fire at each server in turn. Clients have stopped: their messages are dropped, so
//! the servers' logs stop growing and can be compared. Agreement: one leader in the highest term,
//! every server in that term following it, every log equal to the leader's, and everything
//! committed.
//!
//! A deaf or isolated server (`deaf_first_leader`, `isolate_first_leader`) stays so: messages
//! to it (and, isolated, from it) are lost, its timers are left alone, and agreement is among
//! the others.

use super::actor::FSYNC;
use super::{Action, RaftModel, State, messages_in_flight};
use crate::raft::{Log, Role, Timer};
use stateright::Model;
use stateright::actor::{ActorModelAction, Envelope, Id, Network};

/// Rounds the continuation may take: a round delivers what is in flight, or fires one timer.
const ROUNDS: usize = 40;

/// Whether `state` is quiet: no message in flight and no server crashed.
pub fn is_quiet(model: &RaftModel, state: &State) -> bool {
    state.network.len() == 0 && state.crashed[..model.cfg.servers].iter().all(|c| !c)
}

/// From a quiet state, the fault-free continuation reaches agreement within [`ROUNDS`].
/// Other states hold vacuously (the quiet states they lead to are judged themselves).
pub fn catches_up(model: &RaftModel, state: &State) -> bool {
    if !is_quiet(model, state) {
        return true;
    }
    let servers = model.cfg.servers;
    let deaf = state.history.deaf;
    let hears = |id: Id| Some(id) != deaf;
    // An isolated server's timers change nothing the others see; they are left alone.
    let acting: Vec<usize> = (0..servers)
        .filter(|&i| hears(Id::from(i)) || !model.cfg.isolate_first_leader)
        .collect();
    let mut state = state.clone();
    let mut turn = 0;
    let mut heartbeats = 0;
    for _ in 0..ROUNDS {
        if agreed(servers, deaf, &state) {
            return true;
        }
        state = fsync_all(model, state);
        let in_flight: Vec<(Id, Id, crate::raft::Msg)> = messages_in_flight(&state.network)
            .into_iter()
            .map(|(src, dst, msg)| (src, dst, msg.clone()))
            .collect();
        if !in_flight.is_empty() {
            for (src, dst, msg) in in_flight {
                let heard = hears(dst) && (hears(src) || !model.cfg.isolate_first_leader);
                state = if model.cfg.is_server(src) && model.cfg.is_server(dst) && heard {
                    deliver_or_drop(model, state, src, dst, msg)
                } else {
                    drop(model, state, src, dst, msg)
                };
            }
            continue;
        }
        let leader = acting
            .iter()
            .copied()
            .filter(|&i| server(&state, i).is_some_and(|s| s.is_leader()))
            .max_by_key(|&i| server(&state, i).map(|s| s.current_term()));
        let timer_set =
            |state: &State, i: usize, timer: Timer| state.timers_set[i].iter().any(|&t| t == timer);
        let lease = acting
            .iter()
            .copied()
            .find(|&i| timer_set(&state, i, Timer::Lease));
        let (id, timer) = match leader {
            Some(l) if heartbeats % 2 == 1 && timer_set(&state, l, Timer::CheckQuorum) => {
                heartbeats += 1;
                (l, Timer::CheckQuorum)
            }
            Some(l) => {
                heartbeats += 1;
                (l, Timer::Heartbeat)
            }
            None if let Some(i) = lease => (i, Timer::Lease),
            None => {
                turn += 1;
                (acting[(turn - 1) % acting.len()], Timer::Election)
            }
        };
        if let Some(next) = model
            .actors
            .next_state(&state, ActorModelAction::Timeout(Id::from(id), timer))
        {
            state = next;
        }
    }
    agreed(servers, deaf, &state)
}

/// Every server's pending fsync completes (the disk keeps up once faults stop).
fn fsync_all(model: &RaftModel, mut state: State) -> State {
    for i in 0..model.cfg.servers {
        if state.random_choices[i].map.contains_key(FSYNC) {
            let id = Id::from(i);
            let fsync: Action = ActorModelAction::SelectRandom {
                actor: id,
                key: FSYNC.into(),
                random: super::actor::Choice::Fsync,
            };
            if let Some(next) = model.actors.next_state(&state, fsync) {
                state = next;
            }
        }
    }
    state
}

/// Whether two logs are one logical log: the same last entry, and the same entries wherever
/// both keep them. (What one has compacted and the other keeps is committed, so the same.)
fn same_log(a: &Log, b: &Log) -> bool {
    let from = a.snapshot_index().max(b.snapshot_index());
    a.last_index() == b.last_index()
        && a.term_at(from) == b.term_at(from)
        && (from + 1..=a.last_index()).all(|i| a.get(i) == b.get(i))
}

fn server(state: &State, i: usize) -> Option<&crate::raft::ServerState> {
    state.actor_states[i].as_server()
}

fn deliver_or_drop(
    model: &RaftModel,
    state: State,
    src: Id,
    dst: Id,
    msg: crate::raft::Msg,
) -> State {
    let deliver: Action = ActorModelAction::Deliver {
        src,
        dst,
        msg: msg.clone(),
    };
    match model.actors.next_state(&state, deliver) {
        // Delivered once: a duplicating network keeps a delivered message, a reliable one not.
        Some(next) if matches!(next.network, Network::UnorderedDuplicating(..)) => {
            drop(model, next, src, dst, msg)
        }
        Some(next) => next,
        None => drop(model, state, src, dst, msg),
    }
}

fn drop(model: &RaftModel, state: State, src: Id, dst: Id, msg: crate::raft::Msg) -> State {
    let drop: Action = ActorModelAction::Drop(Envelope { src, dst, msg });
    model.actors.next_state(&state, drop).unwrap_or(state)
}

/// One leader in the highest term, followed by every server of its configuration in that
/// term, every log equal to the leader's and committed through its end; a deaf server, and one
/// outside the leader's configuration, do not count.
fn agreed(servers: usize, deaf: Option<Id>, state: &State) -> bool {
    let all: Vec<_> = (0..servers)
        .filter(|&i| Some(Id::from(i)) != deaf)
        .filter_map(|i| server(state, i).map(|s| (Id::from(i), s)))
        .collect();
    let Some(&(_, leader)) = all.iter().find(|(_, s)| s.is_leader()) else {
        return false;
    };
    let leaders = all.iter().filter(|(_, s)| s.is_leader()).count();
    let all: Vec<_> = all
        .into_iter()
        .filter(|(id, _)| leader.membership.contains(*id))
        .map(|(_, s)| s)
        .collect();
    let term = leader.current_term();
    let last = leader.log().last_index();
    all.iter().all(|s| {
        s.current_term() == term
            && (s.is_leader() || matches!(s.role, Role::Follower { leader: Some(_) }))
            && same_log(s.log(), leader.log())
            && s.commit_index == last
    }) && leaders == 1
}
