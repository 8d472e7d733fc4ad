//! The replicated state machine: a key-value map plus one session per client, so a retried
//! request (same client id and sequence number) takes effect once and gets the same answer.
//!
//! It knows nothing of Raft: the protocol applies committed operations to it, in log order.

use im::OrdMap;
use serde::{Deserialize, Serialize};

/// A client's stable identity, chosen by the client and kept across retries.
pub type ClientId = u64;

/// An operation on the key-value store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Put { key: String, value: String },
    Get { key: String },
    Delete { key: String },
}

/// What an applied operation returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "result", content = "value", rename_all = "snake_case")]
pub enum OpResult {
    /// A `Put` or `Delete` took effect.
    Done,
    /// A `Get` read this value (`None`: the key is absent).
    Value(Option<String>),
}

/// The last request a client had applied and what it returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Session {
    pub seq: u64,
    pub result: OpResult,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KvStore {
    pub data: OrdMap<String, String>,
    pub sessions: OrdMap<ClientId, Session>,
}

/// What applying a request did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The request is new and took effect.
    Fresh(OpResult),
    /// The request was applied before; here is the answer it got then.
    Duplicate(OpResult),
    /// The client has moved past this request; nobody waits for an answer.
    Stale,
}

impl KvStore {
    /// The recorded answer for `(client_id, seq)`, if that request was already applied.
    pub fn lookup(&self, client_id: ClientId, seq: u64) -> Option<Applied> {
        let session = self.sessions.get(&client_id)?;
        if seq < session.seq {
            Some(Applied::Stale)
        } else if seq == session.seq {
            Some(Applied::Duplicate(session.result.clone()))
        } else {
            None
        }
    }

    /// Applies a client's request once.
    pub fn apply(&mut self, client_id: ClientId, seq: u64, op: &Op) -> Applied {
        if let Some(done) = self.lookup(client_id, seq) {
            return done;
        }
        let result = self.execute(op);
        self.sessions.insert(
            client_id,
            Session {
                seq,
                result: result.clone(),
            },
        );
        Applied::Fresh(result)
    }

    /// Runs `op` against the map, without a session (also the reference semantics of the model).
    pub fn execute(&mut self, op: &Op) -> OpResult {
        match op {
            Op::Put { key, value } => {
                self.data.insert(key.clone(), value.clone());
                OpResult::Done
            }
            Op::Get { key } => OpResult::Value(self.data.get(key).cloned()),
            Op::Delete { key } => {
                self.data.remove(key);
                OpResult::Done
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> Op {
        Op::Put {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn a_retried_request_applies_once_and_gets_the_same_answer() {
        let mut kv = KvStore::default();
        assert_eq!(
            kv.apply(7, 1, &put("x", "a")),
            Applied::Fresh(OpResult::Done)
        );
        kv.apply(8, 1, &put("x", "b"));
        assert_eq!(
            kv.apply(7, 1, &put("x", "a")),
            Applied::Duplicate(OpResult::Done)
        );
        assert_eq!(
            kv.data.get("x").map(String::as_str),
            Some("b"),
            "the retry must not re-apply"
        );
        assert_eq!(kv.apply(7, 0, &put("x", "z")), Applied::Stale);
    }

    #[test]
    fn get_and_delete() {
        let mut kv = KvStore::default();
        kv.apply(1, 1, &put("k", "v"));
        let get = Op::Get { key: "k".into() };
        assert_eq!(
            kv.apply(1, 2, &get),
            Applied::Fresh(OpResult::Value(Some("v".into())))
        );
        kv.apply(1, 3, &Op::Delete { key: "k".into() });
        assert_eq!(kv.apply(1, 4, &get), Applied::Fresh(OpResult::Value(None)));
    }
}
