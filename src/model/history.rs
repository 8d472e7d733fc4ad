//! The model's auxiliary history: what clients invoked and saw (for the linearizability
//! check), the history variables of Ongaro's raft.tla (every term that elected a leader, every
//! entry ever committed), and sticky flags for the properties about transitions rather than
//! states. It names servers only in the deaf one (`deaf`) and in configurations (committed
//! configuration entries, the voters that committed an entry), which symmetry renames.

use crate::kv::KvStore;
use crate::raft::{ClientId, Entry, Index, Msg, Op, OpResult, Reply, Term};
use im::{OrdMap, OrdSet};
use stateright::actor::{Envelope, Id};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};
use std::collections::{BTreeMap, BTreeSet};
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

/// An entry as first committed: by whom does not matter, only in which term, and which voters
/// made up the configuration that decided it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Committed {
    /// The term of the server that first counted it committed.
    pub term: Term,
    pub entry: Entry,
    /// The voters of that server's configuration then; `None` when every server was one (so
    /// that a history without configuration changes names no server).
    pub voters: Option<BTreeSet<Id>>,
}

/// The tester and `in_flight` are shared (`Arc`): they change only when a client invokes or
/// returns, and every state clones the history. `Arc` hashes and compares as its contents.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct History {
    pub tester: Arc<LinearizabilityTester<Id, KvSpec>>,
    /// The sequence number each client has invoked and not yet seen answered. A retry is the
    /// same invocation; a second or stale answer is not a return.
    pub in_flight: Arc<BTreeMap<Id, u64>>,
    /// Every term in which some server became leader (raft.tla's `elections`).
    pub elected: OrdSet<Term>,
    /// Every entry ever committed, by index (raft.tla's `committed`): the first entry any
    /// server applied there.
    pub committed: OrdMap<Index, Committed>,
    /// Every write (Put or Delete) a client was told succeeded, as (client id, sequence).
    pub acknowledged: OrdSet<(ClientId, u64)>,
    /// Some server became leader in a term that had elected one already.
    pub second_leader_in_a_term: bool,
    /// Some server applied an entry other than the one committed at its index, or holds a
    /// state machine that is not the replay of what it committed.
    pub applied_diverged: bool,
    /// Some server's commitIndex went down without a restart.
    pub commit_regressed: bool,
    /// Some leader removed or replaced an entry of its own log within its term.
    pub leader_log_rewritten: bool,
    /// Some Get returned a value that a Put wrote (a witness that reads are exercised).
    pub read_saw_write: bool,
    /// Crashes so far (the model bounds the total, not only how many are down at once).
    pub crashes: u8,
    /// The highest term any server stood for election in (a pre-vote is not a candidacy).
    pub campaigned: Term,
    /// The highest term a voter of its own configuration stood for election in.
    pub voter_campaigned: Term,
    /// With `deaf_first_leader` or `isolate_first_leader`: the first leader, cut off from the
    /// other servers from then on (deaf: it hears none; isolated: nor do they hear it). The
    /// only name the history holds; symmetry renames it.
    pub deaf: Option<Id>,
    /// With `mute_first_leader`: the first leader while it leads, which no server hears.
    pub muted: Option<Id>,
    /// Compactions so far (the model bounds the total).
    pub compactions: u8,
    /// Some server installed a snapshot over a log that conflicted with it, with entries
    /// after it (Figure 13, step 7).
    pub conflicting_log_replaced: bool,
}

impl Default for History {
    fn default() -> Self {
        Self {
            tester: Arc::new(LinearizabilityTester::new(KvSpec::default())),
            in_flight: Arc::default(),
            elected: OrdSet::new(),
            committed: OrdMap::new(),
            acknowledged: OrdSet::new(),
            second_leader_in_a_term: false,
            applied_diverged: false,
            commit_regressed: false,
            leader_log_rewritten: false,
            read_saw_write: false,
            crashes: 0,
            campaigned: 0,
            voter_campaigned: 0,
            deaf: None,
            muted: None,
            compactions: 0,
            conflicting_log_replaced: false,
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
        match result {
            OpResult::Value(Some(_)) => next.read_saw_write = true,
            OpResult::Value(None) => {}
            OpResult::Done => {
                let client_id = super::client::ModelClient::client_id(env.dst);
                next.acknowledged.insert((client_id, *seq));
            }
        }
        Some(next)
    }
}
