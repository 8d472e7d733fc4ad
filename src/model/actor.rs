//! The model's actors: Raft servers and the clients that drive them, as one actor type.

use super::client::{ClientState, ModelClient};
use crate::raft::{Config, HardState, Index, Msg, ServerState, Timer};
use serde::Serialize;
use stateright::actor::{Actor, Command, Id, Out};
use std::borrow::Cow;

#[derive(Clone, Debug)]
pub enum ModelActor {
    Server(Config),
    Client(ModelClient),
}

/// A choice the model makes for an actor (a stateright random choice): each one is a branch.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Choice {
    /// A client that has waited re-sends to this server.
    ResendTo(Id),
    /// A server compacts its log through this applied index (offered by `RaftModel`).
    CompactThrough(Index),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum NodeState {
    Server(ServerState),
    Client(ClientState),
}

impl NodeState {
    pub fn as_server(&self) -> Option<&ServerState> {
        match self {
            NodeState::Server(s) => Some(s),
            NodeState::Client(_) => None,
        }
    }

    pub fn as_client(&self) -> Option<&ClientState> {
        match self {
            NodeState::Client(c) => Some(c),
            NodeState::Server(_) => None,
        }
    }
}

/// Lifts a server's commands into the model's types.
fn lift_commands(server_out: Out<Config>, o: &mut Out<ModelActor>) {
    for command in server_out {
        match command {
            Command::Send(to, msg) => o.send(to, msg),
            Command::SetTimer(t, range) => o.set_timer(t, range),
            Command::CancelTimer(t) => o.cancel_timer(t),
            Command::Save(hard) => o.save(hard),
            Command::ChooseRandom(..) => unreachable!("servers make no random choices"),
        }
    }
}

/// Runs a server handler and lifts its state and commands into the model's types.
fn lift(
    state: &mut Cow<NodeState>,
    o: &mut Out<ModelActor>,
    f: impl FnOnce(&mut Cow<ServerState>, &mut Out<Config>),
) {
    let NodeState::Server(server_state) = &**state else {
        unreachable!("server actor with client state")
    };
    let mut server_state = Cow::Borrowed(server_state);
    let mut server_out = Out::new();
    f(&mut server_state, &mut server_out);
    lift_commands(server_out, o);
    if let Cow::Owned(next) = server_state {
        *state = Cow::Owned(NodeState::Server(next));
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
            ModelActor::Server(_) => "Server".into(),
            ModelActor::Client(_) => "Client".into(),
        }
    }

    fn on_start(&self, id: Id, storage: &Option<HardState>, o: &mut Out<Self>) -> NodeState {
        match self {
            ModelActor::Server(server) => {
                let mut server_out = Out::new();
                let state = server.on_start(id, storage, &mut server_out);
                lift_commands(server_out, o);
                NodeState::Server(state)
            }
            ModelActor::Client(client) => NodeState::Client(client.on_start(id, o)),
        }
    }

    fn on_msg(&self, id: Id, state: &mut Cow<NodeState>, src: Id, msg: Msg, o: &mut Out<Self>) {
        match self {
            ModelActor::Server(server) => {
                lift(state, o, |s, so| server.on_msg(id, s, src, msg, so))
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
        if let ModelActor::Server(server) = self {
            lift(state, o, |s, so| server.on_timeout(id, s, timer, so))
        }
    }

    fn on_random(&self, id: Id, state: &mut Cow<NodeState>, choice: &Choice, o: &mut Out<Self>) {
        match (self, choice) {
            (ModelActor::Client(client), Choice::ResendTo(server)) => {
                if let NodeState::Client(cs) = &**state
                    && let Some(next) = client.on_retry(id, cs, *server, o)
                {
                    *state = Cow::Owned(NodeState::Client(next));
                }
            }
            (ModelActor::Server(server), Choice::CompactThrough(index)) => {
                lift(state, o, |s, so| server.on_compact(id, s, *index, so))
            }
            _ => {}
        }
    }
}
