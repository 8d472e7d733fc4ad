//! The clients of the model. They behave like the real client: each request carries the
//! client's id and a sequence number; "not leader" sends it to the hinted leader, and silence
//! sends it again, a bounded number of times. A retry goes to every server, so that no server
//! is special and the checker can treat servers as interchangeable (symmetry).

use super::actor::ModelTimer;
use crate::raft::{ClientId, Msg, Op, Reply};
use serde::Serialize;
use stateright::actor::{Id, Out, model_timeout};

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

    pub fn on_start(&self, id: Id, o: &mut Out<super::ModelActor>) -> ClientState {
        let target = self.servers[0];
        if self.ops.is_empty() {
            return ClientState {
                seq: 0,
                awaiting: false,
                target,
                retries: 0,
            };
        }
        o.send(target, self.request(id, 1));
        o.set_timer(ModelTimer::ClientRetry, model_timeout());
        ClientState {
            seq: 1,
            awaiting: true,
            target,
            retries: 0,
        }
    }

    /// Handles a server's answer; returns the next state, or `None` when the answer is stale.
    pub fn on_response(
        &self,
        id: Id,
        state: &ClientState,
        seq: u64,
        reply: &Reply,
        o: &mut Out<super::ModelActor>,
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
                    o.send(next.target, self.request(id, next.seq));
                } else {
                    next.awaiting = false;
                    o.cancel_timer(ModelTimer::ClientRetry);
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
                o.send(leader, self.request(id, next.seq));
            }
        }
        Some(next)
    }

    /// No answer in time: ask every server.
    pub fn on_retry(
        &self,
        id: Id,
        state: &ClientState,
        o: &mut Out<super::ModelActor>,
    ) -> Option<ClientState> {
        if !state.awaiting || state.retries >= self.max_retries {
            return None;
        }
        let mut next = state.clone();
        next.retries += 1;
        o.broadcast(&self.servers, &self.request(id, next.seq));
        o.set_timer(ModelTimer::ClientRetry, model_timeout());
        Some(next)
    }
}
