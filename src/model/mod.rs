//! The model: Raft servers and clients under stateright's actor model, with faults (loss,
//! duplication, reordering, crashes and restarts, writes not yet synced) and the properties of
//! the Raft paper.
//!
//! [`RaftModel`] wraps stateright's `ActorModel`. It adds what a plain actor model cannot say:
//! properties about steps (commitIndex never goes down, a leader only appends) recorded as
//! sticky flags in the history, and it forgets the network's "last delivered message", which
//! stateright keeps only to tell apart deliveries that change nothing.

pub mod actor;
pub mod check;
pub mod client;
pub mod config;
pub mod diagram;
pub mod file;
pub mod history;
pub mod liveness;
pub mod mutants;
pub mod properties;
pub mod shorten;
pub mod story;
pub mod symmetry;
pub mod walk;

pub use actor::{Choice, ModelActor, NodeState};
pub use config::ModelCfg;
pub use history::History;

use crate::raft::{Index, Msg, Role, ServerState, Timer};
use stateright::actor::{ActorModel, ActorModelAction, ActorModelState, Id, Network};
use stateright::{Model, Path, Property};

pub type State = ActorModelState<ModelActor, History>;
pub type Action = ActorModelAction<Msg, Timer, Choice>;

pub struct RaftModel {
    pub cfg: ModelCfg,
    pub actors: ActorModel<ModelActor, ModelCfg, History>,
}

impl RaftModel {
    pub fn new(cfg: ModelCfg) -> Self {
        let actors = cfg.actor_model();
        Self { cfg, actors }
    }

    /// Keeps the network finite and canonical. A duplicating network forgets which message
    /// was delivered last (stateright keeps it only to tell no-op deliveries apart). A
    /// non-duplicating one holds at most `max_copies` copies of identical messages (a further
    /// copy is lost, which the fault model allows); with `duplicate_once`, a message sent in
    /// this step gets a second copy that the network may deliver later, out of order, or never.
    fn normalize_network(&self, last: &State, next: &mut State) {
        if let Some(muted) = next.history.muted {
            let is_server = |id: Id| usize::from(id) < self.cfg.servers;
            drop_messages(&mut next.network, |src, dst| src == muted && is_server(dst));
        }
        if let Some(deaf) = next.history.deaf {
            let servers = self.cfg.servers;
            let both_ways = self.cfg.isolate_first_leader;
            let is_server = |id: Id| usize::from(id) < servers;
            drop_messages(&mut next.network, |src, dst| {
                (dst == deaf && is_server(src)) || (both_ways && src == deaf && is_server(dst))
            });
        }
        match (&last.network, &mut next.network) {
            (_, Network::UnorderedDuplicating(_, last_delivered)) => *last_delivered = None,
            (Network::UnorderedNonDuplicating(before), Network::UnorderedNonDuplicating(after)) => {
                let cap = if self.cfg.duplicate_once { 2 } else { 1 }.max(self.cfg.max_copies);
                for (env, count) in after.iter_mut() {
                    let sent_now = *count > before.get(env).copied().unwrap_or(0);
                    if sent_now && self.cfg.duplicate_once {
                        *count += 1;
                    }
                    *count = (*count).min(cap);
                }
                // Over the in-flight bound, the network first loses the spare copies of
                // messages it has already delivered once.
                if self.cfg.duplicate_once && self.cfg.max_in_flight > 0 {
                    let is_server = |id| self.cfg.is_server(id);
                    let peer =
                        |e: &stateright::actor::Envelope<Msg>| is_server(e.src) && is_server(e.dst);
                    if after.keys().filter(|e| peer(e)).count() > self.cfg.max_in_flight {
                        after
                            .retain(|e, count| !(peer(e) && *count == 1 && before.contains_key(e)));
                    }
                }
            }
            (_, Network::Ordered(links)) if self.cfg.max_per_link > 0 => {
                // A full link loses its oldest message.
                for queue in links.values_mut() {
                    while queue.len() > self.cfg.max_per_link {
                        queue.pop_front();
                    }
                }
            }
            _ => {}
        }
    }

    /// Records the step properties of one transition in the history.
    fn record_step(&self, before: &State, after: &mut State, actor: Option<Id>) {
        let Some(actor) = actor else {
            return;
        };
        let i = usize::from(actor);
        let (Some(b), Some(a)) = (
            before.actor_states[i].as_server(),
            after.actor_states[i].as_server(),
        ) else {
            return;
        };
        let history = &mut after.history;
        if a.commit_index < b.commit_index && !history.commit_regressed {
            history.commit_regressed = true;
        }
        if !properties::leader_append_only(&history.committed, b, a)
            && !history.leader_log_rewritten
        {
            history.leader_log_rewritten = true;
        }
        let elected = a.is_leader() && !(b.is_leader() && b.current_term() == a.current_term());
        if elected && history.elected.insert(a.current_term()).is_some() {
            history.second_leader_in_a_term = true;
        }
        if elected && self.cfg.deaf_first_leader && history.deaf.is_none() {
            history.deaf = Some(actor);
        }
        if elected && self.cfg.mute_first_leader && history.elected.len() == 1 {
            history.muted = Some(actor);
        }
        if history.muted == Some(actor) && !a.is_leader() {
            history.muted = None;
        }
        if self.cfg.max_compactions > 0 && !history.conflicting_log_replaced {
            let last = a.log().snapshot().last;
            history.conflicting_log_replaced = last.index > b.log().snapshot_index()
                && b.log().last_index() > last.index
                && !b.log().matches(last.index, last.term);
        }
        let first_commit = a.is_leader() && a.commit_index > b.commit_index && b.commit_index == 0;
        if first_commit && self.cfg.isolate_first_leader && history.elected.len() == 1 {
            history.deaf = Some(actor);
        }
        let campaigns = matches!(a.role, Role::Candidate { .. })
            && !(matches!(b.role, Role::Candidate { .. }) && b.current_term() == a.current_term());
        if campaigns && a.current_term() > history.campaigned {
            history.campaigned = a.current_term();
        }
        if campaigns && a.is_voter(actor) && a.current_term() > history.voter_campaigned {
            history.voter_campaigned = a.current_term();
        }
        if a.commit_index > b.commit_index && !history.applied_diverged {
            // Every server a voter: the history names none (see `properties::voters_of`).
            let everyone = a.membership.voters.len() == self.cfg.servers;
            history.applied_diverged = !record_commit(history, b.commit_index, a, everyone);
        }
    }

    /// Whether `action` certainly leads outside the boundary: a crash past the crash budget or
    /// an election past `max_term`. Most such steps are of these two kinds, and every user of
    /// `next_state` (the checkers, walks, shortening) drops a step outside the boundary just as
    /// one that is not enabled, so they are refused before the whole state is cloned.
    fn leaves_boundary(&self, last: &State, action: &Action) -> bool {
        match action {
            ActorModelAction::Crash(_) => {
                last.history.crashes.saturating_add(1) > self.cfg.max_crash_events
            }
            ActorModelAction::SelectRandom {
                random: Choice::CompactThrough(_),
                ..
            } => last.history.compactions.saturating_add(1) > self.cfg.max_compactions,
            ActorModelAction::Timeout(id, timer) => {
                let i = usize::from(*id);
                match (&self.actors.actors[i], last.actor_states[i].as_server()) {
                    (ModelActor::Server(server, ..), Some(s)) => {
                        server.term_after_timeout(*id, s, *timer) > self.cfg.max_term
                    }
                    _ => false,
                }
            }
            _ => false,
        }
    }
}

impl RaftModel {
    /// Compaction, the model's choice: while the budget lasts, any running server may compact
    /// through any applied index past its snapshot.
    fn compactions(&self, state: &State, actions: &mut Vec<Action>) {
        if state.history.compactions >= self.cfg.max_compactions {
            return;
        }
        for (i, node) in state.actor_states.iter().enumerate() {
            let Some(server) = node.as_server().filter(|_| !state.crashed[i]) else {
                continue;
            };
            for index in server.log().first_index()..=server.commit_index {
                actions.push(ActorModelAction::SelectRandom {
                    actor: Id::from(i),
                    key: COMPACT.to_owned(),
                    random: Choice::CompactThrough(index),
                });
            }
        }
    }
}

/// The key of the compaction choice.
const COMPACT: &str = "compact";

/// Records the entries `server` committed after `from` in the history; returns whether they
/// agree with what was committed before at their indexes, and whether the server's state
/// machine is the replay of its committed prefix.
fn record_commit(
    history: &mut History,
    from: Index,
    server: &ServerState,
    initial_voters: bool,
) -> bool {
    // What the snapshot covers was committed before it was taken.
    for index in from.max(server.log().snapshot_index()) + 1..=server.commit_index {
        let Some(entry) = server.log().get(index) else {
            return false; // committed past its own log
        };
        match history.committed.get(&index) {
            Some(c) if c.entry != *entry => return false,
            Some(_) => {}
            None => {
                let committed = history::Committed {
                    term: server.current_term(),
                    entry: entry.clone(),
                    voters: (!initial_voters).then(|| server.membership.voters.clone()),
                };
                history.committed.insert(index, committed);
            }
        }
    }
    server.kv == server.log().replay_through(server.commit_index)
}

/// Loses every message in flight from `src` to `dst` where `lost(src, dst)`.
pub fn drop_messages(network: &mut Network<Msg>, lost: impl Fn(Id, Id) -> bool) {
    match network {
        Network::UnorderedNonDuplicating(multiset) => {
            if multiset.keys().any(|e| lost(e.src, e.dst)) {
                multiset.retain(|e, _| !lost(e.src, e.dst));
            }
        }
        Network::UnorderedDuplicating(set, _) => {
            if set.iter().any(|e| lost(e.src, e.dst)) {
                set.retain(|e| !lost(e.src, e.dst));
            }
        }
        Network::Ordered(links) => {
            if links.keys().any(|&(src, dst)| lost(src, dst)) {
                links.retain(|&(src, dst), _| !lost(src, dst));
            }
        }
    }
}

/// Every message in flight as (sender, receiver, message), one item per copy. (stateright
/// 0.31's `Network::iter_all` repeats the first message of an ordered network forever and
/// yields a duplicated message once too often.)
pub fn messages_in_flight(network: &Network<Msg>) -> Vec<(Id, Id, &Msg)> {
    let mut out = Vec::new();
    match network {
        Network::UnorderedNonDuplicating(multiset) => {
            for (env, &count) in multiset.iter() {
                for _ in 0..count {
                    out.push((env.src, env.dst, &env.msg));
                }
            }
        }
        Network::UnorderedDuplicating(set, _) => {
            out.extend(set.iter().map(|env| (env.src, env.dst, &env.msg)));
        }
        Network::Ordered(links) => {
            for (&(src, dst), queue) in links.iter() {
                out.extend(queue.iter().map(|msg| (src, dst, msg)));
            }
        }
    }
    out
}

/// The server whose handler runs in `action`, if the action runs one within a lifetime
/// (a restart legitimately resets volatile state).
fn acting_server(action: &Action) -> Option<Id> {
    match action {
        ActorModelAction::Deliver { dst, .. } => Some(*dst),
        ActorModelAction::Timeout(id, _) => Some(*id),
        // A server's fsync completing (a client's choice changes no server).
        ActorModelAction::SelectRandom { actor, .. } => Some(*actor),
        _ => None,
    }
}

impl Model for RaftModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        self.actors.init_states()
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        self.actors.actions(state, actions);
        self.compactions(state, actions);
        if !self.cfg.heartbeats {
            actions.retain(|a| !matches!(a, ActorModelAction::Timeout(_, Timer::Heartbeat)));
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        if self.leaves_boundary(last, &action) {
            return None;
        }
        // Read what the step needs from the action up front, so it moves without a clone.
        let crash = matches!(action, ActorModelAction::Crash(_));
        let compaction = matches!(
            action,
            ActorModelAction::SelectRandom {
                random: Choice::CompactThrough(_),
                ..
            }
        );
        let actor = acting_server(&action);
        let mut next = self.actors.next_state(last, action)?;
        if crash {
            next.history.crashes = next.history.crashes.saturating_add(1);
        }
        if compaction {
            next.history.compactions = next.history.compactions.saturating_add(1);
        }
        self.record_step(last, &mut next, actor);
        self.normalize_network(last, &mut next);
        if &next == last { None } else { Some(next) }
    }

    fn format_action(&self, action: &Action) -> String {
        story::action(&self.cfg, action)
    }

    fn format_step(&self, last: &State, action: Action) -> Option<String> {
        let next = self.next_state(last, action)?;
        Some(story::state(&self.cfg, &next))
    }

    fn as_svg(&self, path: Path<State, Action>) -> Option<String> {
        Some(diagram::svg(self, path))
    }

    fn properties(&self) -> Vec<Property<Self>> {
        properties::all(&self.cfg)
    }

    fn within_boundary(&self, state: &State) -> bool {
        self.cfg.within_boundary(state)
    }
}
