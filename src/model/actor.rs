//! The model's actors: Raft servers and the clients that drive them, as one actor type.
//!
//! A server is hosted here as the runtime hosts it: its effects are carried out, saves go to
//! a disk and messages wait for what they need to be durable. With [`Disk::Fsync`] the disk
//! has a volatile part: a save becomes durable only at a separate step, "fsync completes" (a
//! choice of the model, per server, that makes everything saved so far durable); a crash keeps
//! only what is durable; a message whose [`Durable`] condition is not met waits in the server's
//! [`Unsynced`] part until that step.

use super::client::{ClientState, ModelClient};
use crate::raft::{
    Change, Command, Config, Durable, Effect, HardState, Index, Input, Msg, ServerState, Term,
    Timer,
};
use serde::Serialize;
use stateright::actor::{Actor, Id, Out};
use std::borrow::Cow;

/// The choice that stands for a server's fsync completing.
pub const FSYNC: &str = "fsync";
/// The random choice of a leader to transfer its leadership, and to whom.
pub const TRANSFER: &str = "transfer";
/// The operator's random choice of a configuration change, asked of the leader.
pub const CHANGE: &str = "change";

/// The model's operator: asks any leader for any single-server change among `servers`, while
/// the leader's log holds fewer than `max_changes` configuration entries.
#[derive(Clone, Debug, Default)]
pub struct Admin {
    pub servers: Vec<Id>,
    pub max_changes: usize,
    /// Whether a server may be added as a learner (and then promoted), besides as a voter.
    pub learners: bool,
}

impl Admin {
    /// The changes the operator may ask of `s`, if it leads.
    fn changes(&self, s: &ServerState) -> Vec<Choice> {
        let made = s
            .log()
            .iter()
            .filter(|e| matches!(e.command, Command::Membership(_)))
            .count();
        if !s.is_leader() || made >= self.max_changes {
            return Vec::new();
        }
        let m = &s.membership;
        let mut changes = Vec::new();
        for &id in &self.servers {
            if m.is_voter(id) {
                changes.push(Change::Remove(id));
            } else if m.learners.contains(&id) {
                changes.push(Change::Promote(id));
                changes.push(Change::Remove(id));
            } else {
                changes.push(Change::AddVoter(id));
                if self.learners {
                    changes.push(Change::AddLearner(id));
                }
            }
        }
        // In one order whatever the names, as symmetry keeps every set of choices.
        let mut choices: Vec<Choice> = changes.into_iter().map(Choice::Change).collect();
        choices.sort_unstable();
        choices
    }
}

/// When a server's saves are durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disk {
    /// At once: every save is durable in the step that makes it.
    Synchronous,
    /// At a separate step, "fsync completes".
    Fsync,
}

#[derive(Clone, Debug)]
pub enum ModelActor {
    /// The server's configuration, its disk, the term below which a leader may decide to
    /// transfer its leadership (0: never), and the operator's configuration changes.
    Server(Config, Disk, Term, Admin),
    Client(ModelClient),
}

/// A choice the model makes for an actor (a stateright random choice): each one is a branch.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Choice {
    /// A client that has waited re-sends to this server.
    ResendTo(Id),
    /// A server compacts its log through this applied index (offered by `RaftModel`).
    CompactThrough(Index),
    /// A server's fsync completes.
    Fsync,
    /// A leader hands its leadership to this server (with the model's `transfers` option).
    TransferTo(Id),
    /// The operator asks the leader for this configuration change.
    Change(Change),
}

// Each node state already sits behind stateright's `Arc`; a box would add an allocation per step.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum NodeState {
    Server(ServerState, Unsynced),
    Client(ClientState),
}

/// What a server has done since its last fsync that a crash would undo, beyond its state:
/// always empty with a synchronous disk.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Unsynced {
    /// The term or the vote changed since the last fsync.
    pub term_vote: bool,
    /// Messages waiting for the next fsync, by destination, each destination's in the order
    /// they were sent. Only that order can matter, and one order across destinations keeps
    /// states that differ by a renaming of servers renamings of each other (symmetry).
    pub held: im::Vector<(Id, Msg)>,
}

impl Unsynced {
    fn hold(&mut self, to: Id, msg: Msg) {
        let at = self.held.iter().take_while(|(d, _)| *d <= to).count();
        self.held.insert(at, (to, msg));
    }
}

impl NodeState {
    pub fn as_server(&self) -> Option<&ServerState> {
        match self {
            NodeState::Server(s, _) => Some(s),
            NodeState::Client(_) => None,
        }
    }

    pub fn as_client(&self) -> Option<&ClientState> {
        match self {
            NodeState::Client(c) => Some(c),
            NodeState::Server(..) => None,
        }
    }

    /// The server's messages waiting for its next fsync.
    pub fn held(&self) -> Option<&im::Vector<(Id, Msg)>> {
        match self {
            NodeState::Server(_, u) => Some(&u.held),
            NodeState::Client(_) => None,
        }
    }
}

/// Whether `needs` is durable for a server in `state` with `unsynced` not yet durable.
fn durable(needs: Durable, state: &ServerState, unsynced: &Unsynced) -> bool {
    (!needs.term_vote || !unsynced.term_vote) && needs.log_through <= state.log_synced
}

/// One server step and its effects, carried out.
struct Host<'a> {
    server: &'a Config,
    disk: Disk,
    id: Id,
    transfers_below: Term,
    admin: &'a Admin,
}

impl Host<'_> {
    /// Steps `input` on `state`; returns the next node state, or `None` when nothing changed
    /// and nothing happened.
    fn step(
        &self,
        state: &ServerState,
        unsynced: &Unsynced,
        input: Input,
        o: &mut Out<ModelActor>,
    ) -> Option<NodeState> {
        let mut s = Cow::Borrowed(state);
        let mut u = Cow::Borrowed(unsynced);
        let effects = self.server.step(self.id, &mut s, input);
        // A refusal is only a line in a real server's log: a step that changed nothing and
        // refused is as if it had not happened.
        let refused_only = effects.iter().all(|e| matches!(e, Effect::Refused(_)));
        if refused_only && matches!(s, Cow::Borrowed(_)) {
            return None;
        }
        self.carry_out(state, &mut s, &mut u, effects, o);
        self.offer_transfer(state, &s, o);
        self.offer_changes(state, &s, o);
        Some(NodeState::Server(s.into_owned(), u.into_owned()))
    }

    /// A leader with no transfer under way may decide to hand its leadership to any other
    /// server (a random choice), while its term is below the bound, so that the target's
    /// election stays within `max_term`.
    fn offer_transfer(&self, before: &ServerState, after: &ServerState, o: &mut Out<ModelActor>) {
        let may = |s: &ServerState| {
            s.is_leader() && s.transfer.is_none() && s.current_term() < self.transfers_below
        };
        match (may(before), may(after)) {
            (false, true) => o.choose_random(
                TRANSFER,
                after
                    .membership
                    .voters
                    .iter()
                    .copied()
                    .filter(|&v| v != self.id)
                    .map(Choice::TransferTo)
                    .collect(),
            ),
            (true, false) => o.remove_random(TRANSFER),
            _ => {}
        }
    }

    /// The operator may ask a leader for a configuration change (a random choice), while the
    /// budget of changes lasts.
    fn offer_changes(&self, before: &ServerState, after: &ServerState, o: &mut Out<ModelActor>) {
        if self.admin.max_changes == 0 {
            return;
        }
        let (was, now) = (self.admin.changes(before), self.admin.changes(after));
        if was == now {
            return;
        }
        if now.is_empty() {
            o.remove_random(CHANGE);
        } else {
            o.choose_random(CHANGE, now);
        }
    }

    /// Carries out `effects` of a step from `before` to `s`.
    fn carry_out(
        &self,
        before: &ServerState,
        s: &mut Cow<ServerState>,
        u: &mut Cow<Unsynced>,
        effects: Vec<Effect>,
        o: &mut Out<ModelActor>,
    ) {
        let mut synced_now = false;
        for effect in effects {
            match effect {
                Effect::Save => match self.disk {
                    Disk::Synchronous => {
                        o.save(s.hard.clone());
                        synced_now = true;
                    }
                    Disk::Fsync => {
                        let (b, a) = (&before.hard, &s.hard);
                        let changed =
                            (b.current_term, b.voted_for) != (a.current_term, a.voted_for);
                        if changed && !u.term_vote {
                            u.to_mut().term_vote = true;
                        }
                        o.choose_random(FSYNC, vec![Choice::Fsync]);
                    }
                },
                Effect::Send(to, msg, needs) => {
                    if self.disk == Disk::Synchronous || durable(needs, s, u) {
                        o.send(to, msg);
                    } else {
                        u.to_mut().hold(to, msg);
                    }
                }
                Effect::SetTimer(timer) => o.set_timer(timer, self.server.timer_range(timer)),
                Effect::CancelTimer(timer) => o.cancel_timer(timer),
                Effect::Refused(_) => {}
            }
        }
        if synced_now {
            self.report_synced(s, u, o);
        }
    }

    /// The disk reports the whole log durable.
    fn report_synced(
        &self,
        s: &mut Cow<ServerState>,
        u: &mut Cow<Unsynced>,
        o: &mut Out<ModelActor>,
    ) {
        let log_through = s.log().last_index();
        let before = s.clone().into_owned();
        let effects = self.server.step(self.id, s, Input::Synced { log_through });
        self.carry_out(&before, s, u, effects, o);
    }

    /// "fsync completes": everything saved so far becomes durable and the messages that
    /// waited for it leave.
    fn fsync(
        &self,
        state: &ServerState,
        unsynced: &Unsynced,
        o: &mut Out<ModelActor>,
    ) -> NodeState {
        o.save(state.hard.clone());
        for (to, msg) in unsynced.held.iter() {
            o.send(*to, msg.clone());
        }
        let mut s = Cow::Borrowed(state);
        let mut u = Cow::Owned(Unsynced::default());
        self.report_synced(&mut s, &mut u, o);
        NodeState::Server(s.into_owned(), u.into_owned())
    }
}

impl Actor for ModelActor {
    type Msg = Msg;
    type State = NodeState;
    type Timer = Timer;
    type Random = Choice;
    type Storage = HardState;

    fn name(&self) -> String {
        match self {
            ModelActor::Server(..) => "Server".into(),
            ModelActor::Client(_) => "Client".into(),
        }
    }

    fn on_start(&self, id: Id, storage: &Option<HardState>, o: &mut Out<Self>) -> NodeState {
        match self {
            ModelActor::Server(server, disk, transfers_below, admin) => {
                let (state, effects) = server.start(storage.as_ref());
                if storage.is_none() && admin.max_changes > 0 {
                    // The initial configuration is saved with the log from the start, so that a
                    // restart takes it from the disk, where renaming servers renames it too.
                    o.save(state.hard.clone());
                }
                let host = Host {
                    server,
                    disk: *disk,
                    id,
                    transfers_below: *transfers_below,
                    admin,
                };
                let mut s = Cow::Borrowed(&state);
                let mut u = Cow::Owned(Unsynced::default());
                host.carry_out(&state, &mut s, &mut u, effects, o);
                NodeState::Server(s.into_owned(), u.into_owned())
            }
            ModelActor::Client(client) => NodeState::Client(client.on_start(id, o)),
        }
    }

    fn on_msg(&self, id: Id, state: &mut Cow<NodeState>, src: Id, msg: Msg, o: &mut Out<Self>) {
        match self {
            ModelActor::Server(server, disk, transfers_below, admin) => {
                let NodeState::Server(s, u) = &**state else {
                    unreachable!("server actor with client state")
                };
                let host = Host {
                    server,
                    disk: *disk,
                    id,
                    transfers_below: *transfers_below,
                    admin,
                };
                if let Some(next) = host.step(s, u, Input::Msg(src, msg), o) {
                    *state = Cow::Owned(next);
                }
            }
            ModelActor::Client(client) => {
                let (NodeState::Client(cs), Msg::ClientResponse { seq, reply }) = (&**state, &msg)
                else {
                    return;
                };
                if let Some(next) = client.on_response(id, cs, *seq, reply, o) {
                    *state = Cow::Owned(NodeState::Client(next));
                }
            }
        }
    }

    fn on_timeout(&self, id: Id, state: &mut Cow<NodeState>, timer: &Timer, o: &mut Out<Self>) {
        if let (ModelActor::Server(server, disk, transfers_below, admin), NodeState::Server(s, u)) =
            (self, &**state)
        {
            let host = Host {
                server,
                disk: *disk,
                id,
                transfers_below: *transfers_below,
                admin,
            };
            if let Some(next) = host.step(s, u, Input::Timeout(*timer), o) {
                *state = Cow::Owned(next);
            }
        }
    }

    fn on_random(&self, id: Id, state: &mut Cow<NodeState>, choice: &Choice, o: &mut Out<Self>) {
        match (self, &**state, choice) {
            (ModelActor::Client(client), NodeState::Client(cs), Choice::ResendTo(server)) => {
                if let Some(next) = client.on_retry(id, cs, *server, o) {
                    *state = Cow::Owned(NodeState::Client(next));
                }
            }
            (
                ModelActor::Server(server, disk, transfers_below, admin),
                NodeState::Server(s, u),
                choice,
            ) => {
                let host = Host {
                    server,
                    disk: *disk,
                    id,
                    transfers_below: *transfers_below,
                    admin,
                };
                let input = match choice {
                    Choice::Fsync => {
                        *state = Cow::Owned(host.fsync(s, u, o));
                        return;
                    }
                    Choice::CompactThrough(index) => Input::Compact(*index),
                    // The leader decided to hand its leadership to `target`.
                    Choice::TransferTo(target) if s.is_leader() => {
                        Input::Msg(id, Msg::TransferLeader { target: *target })
                    }
                    Choice::Change(change) => {
                        let input = Input::Msg(id, Msg::ChangeMembership { change: *change });
                        let next = host.step(s, u, input, o);
                        // Choosing took the offer away; it stands while the leader may change.
                        let after = next.as_ref().and_then(|n| n.as_server()).unwrap_or(s);
                        let offer = admin.changes(after);
                        if !offer.is_empty() {
                            o.choose_random(CHANGE, offer);
                        }
                        if let Some(next) = next {
                            *state = Cow::Owned(next);
                        }
                        return;
                    }
                    Choice::TransferTo(_) | Choice::ResendTo(_) => return,
                };
                if let Some(next) = host.step(s, u, input, o) {
                    *state = Cow::Owned(next);
                }
            }
            _ => {}
        }
    }
}
