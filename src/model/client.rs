//! The clients of the model. They behave like the real client: each request carries the
//! client's id and a sequence number; "not leader" sends it to the hinted leader; and a client
//! that has waited may send it again, to any server. Both count as re-sends, of which an
//! operation has a bounded number. Which server is
//! the model's choice (a stateright random choice), so every server is reachable and none is
//! special (the checker treats servers as interchangeable: symmetry).

use super::ModelActor;
use super::actor::Choice;
use crate::raft::{ClientId, Msg, Op, Reply};
use serde::Serialize;
use stateright::actor::{Id, Out};

/// The key of a client's pending choice of where to re-send.
const CHOICE: &str = "resend";

#[derive(Clone, Debug)]
pub struct ModelClient {
    pub servers: Vec<Id>,
    /// The operations this client runs, one after another.
    pub ops: Vec<Op>,
    /// How many times one operation may be re-sent before the client gives up on it.
    pub max_retries: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ClientState {
    /// Sequence number of the operation in flight (1-based), or of the last one when done.
    pub seq: u64,
    /// Whether `seq` still waits for its answer.
    pub awaiting: bool,
    /// The server the request went to last.
    pub target: Id,
    /// Re-sends of the operation in flight so far.
    pub retries: u8,
}

impl ModelClient {
    pub fn client_id(id: Id) -> ClientId {
        usize::from(id) as ClientId
    }

    fn request(&self, id: Id, seq: u64) -> Msg {
        Msg::ClientRequest {
            client_id: Self::client_id(id),
            seq,
            op: self.ops[(seq - 1) as usize].clone(),
        }
    }

    /// Sends operation `next.seq` to `next.target` and offers a re-send while any is left.
    fn send(&self, id: Id, next: &ClientState, o: &mut Out<ModelActor>) {
        o.send(next.target, self.request(id, next.seq));
        if next.retries < self.max_retries {
            let choices = self.servers.iter().map(|&s| Choice::ResendTo(s)).collect();
            o.choose_random(CHOICE, choices);
        } else {
            o.remove_random(CHOICE);
        }
    }

    pub fn on_start(&self, id: Id, o: &mut Out<ModelActor>) -> ClientState {
        let mut state = ClientState {
            seq: 0,
            awaiting: false,
            target: self.servers[0],
            retries: 0,
        };
        if self.ops.is_empty() {
            return state;
        }
        state.seq = 1;
        state.awaiting = true;
        self.send(id, &state, o);
        state
    }

    /// Handles a server's answer; returns the next state, or `None` when the answer is stale.
    pub fn on_response(
        &self,
        id: Id,
        state: &ClientState,
        seq: u64,
        reply: &Reply,
        o: &mut Out<ModelActor>,
    ) -> Option<ClientState> {
        if !state.awaiting || seq != state.seq {
            return None;
        }
        let mut next = state.clone();
        match reply {
            Reply::Ok { .. } => {
                next.retries = 0;
                if (state.seq as usize) < self.ops.len() {
                    next.seq += 1;
                    self.send(id, &next, o);
                } else {
                    next.awaiting = false;
                    o.remove_random(CHOICE);
                }
            }
            Reply::NotLeader { leader_hint } => {
                if state.retries >= self.max_retries {
                    return None;
                }
                let leader =
                    (*leader_hint).filter(|l| *l != state.target && self.servers.contains(l))?;
                next.retries += 1;
                next.target = leader;
                self.send(id, &next, o);
            }
        }
        Some(next)
    }

    /// The client stops waiting and re-sends its request to `server`, the model's choice.
    pub fn on_retry(
        &self,
        id: Id,
        state: &ClientState,
        server: Id,
        o: &mut Out<ModelActor>,
    ) -> Option<ClientState> {
        if !state.awaiting || state.retries >= self.max_retries {
            return None;
        }
        let next = ClientState {
            retries: state.retries + 1,
            target: server,
            ..state.clone()
        };
        self.send(id, &next, o);
        Some(next)
    }
}
