//! The model's auxiliary history: what clients invoked and saw (for the linearizability
//! check) and sticky flags for the properties that are about transitions rather than states.

use crate::kv::KvStore;
use crate::raft::{Msg, Op, OpResult, Reply};
use stateright::actor::{Envelope, Id};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The sequential specification clients are checked against: one key-value map.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KvSpec(KvStore);

impl SequentialSpec for KvSpec {
    type Op = Op;
    type Ret = OpResult;
    fn invoke(&mut self, op: &Op) -> OpResult {
        self.0.execute(op)
    }
}

/// The tester and `in_flight` are shared (`Arc`): they change only when a client invokes or
/// returns, and every state clones the history. `Arc` hashes and compares as its contents.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct History {
    pub tester: Arc<LinearizabilityTester<Id, KvSpec>>,
    /// The sequence number each client has invoked and not yet seen answered. A retry is the
    /// same invocation; a second or stale answer is not a return.
    pub in_flight: Arc<BTreeMap<Id, u64>>,
    /// Some server's commitIndex went down without a restart.
    pub commit_regressed: bool,
    /// Some leader removed or replaced an entry of its own log within its term.
    pub leader_log_rewritten: bool,
    /// Some Get returned a value that a Put wrote (a witness that reads are exercised).
    pub read_saw_write: bool,
    /// Crashes so far (the model bounds the total, not only how many are down at once).
    pub crashes: u8,
}

impl Default for History {
    fn default() -> Self {
        Self {
            tester: Arc::new(LinearizabilityTester::new(KvSpec::default())),
            in_flight: Arc::default(),
            commit_regressed: false,
            leader_log_rewritten: false,
            read_saw_write: false,
            crashes: 0,
        }
    }
}

impl History {
    /// `record_msg_out`: a client's request is an invocation, once per sequence number.
    pub fn record_invocation<C>(_: &C, history: &History, env: Envelope<&Msg>) -> Option<History> {
        let Msg::ClientRequest { seq, op, .. } = env.msg else {
            return None;
        };
        if history.in_flight.get(&env.src) == Some(seq) {
            return None;
        }
        let mut next = history.clone();
        let _ = Arc::make_mut(&mut next.tester).on_invoke(env.src, op.clone());
        Arc::make_mut(&mut next.in_flight).insert(env.src, *seq);
        Some(next)
    }

    /// `record_msg_in`: the first successful answer for the request in flight is its return.
    pub fn record_return<C>(_: &C, history: &History, env: Envelope<&Msg>) -> Option<History> {
        let Msg::ClientResponse {
            seq,
            reply: Reply::Ok { result },
        } = env.msg
        else {
            return None;
        };
        if history.in_flight.get(&env.dst) != Some(seq) {
            return None;
        }
        let mut next = history.clone();
        let _ = Arc::make_mut(&mut next.tester).on_return(env.dst, result.clone());
        Arc::make_mut(&mut next.in_flight).remove(&env.dst);
        if matches!(result, OpResult::Value(Some(_))) {
            next.read_saw_write = true;
        }
        Some(next)
    }
}
