//! A model's configuration: cluster and client sizes, network semantics, faults and bounds.
//! It is data (see `models/*.toml`), and the only place that knows the bounds.

use super::State;
use super::actor::{Admin, Disk, ModelActor, NodeState};
use super::client::ModelClient;
use super::history::History;
use crate::raft::{Config, Index, Mutant, Op};
use serde::{Deserialize, Serialize};
use stateright::actor::{ActorModel, Id, LossyNetwork, Network, model_timeout};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkKind {
    /// Per-link FIFO, no duplicates.
    Ordered,
    /// Any order, each message delivered at most once.
    UnorderedNonduplicating,
    /// Any order, and a message can be delivered again and again.
    UnorderedDuplicating,
}

impl NetworkKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ordered" => Some(Self::Ordered),
            "unordered_nonduplicating" | "unordered-nonduplicating" => {
                Some(Self::UnorderedNonduplicating)
            }
            "unordered_duplicating" | "unordered-duplicating" => Some(Self::UnorderedDuplicating),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Ordered => "ordered",
            Self::UnorderedNonduplicating => "unordered_nonduplicating",
            Self::UnorderedDuplicating => "unordered_duplicating",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelCfg {
    pub servers: usize,
    pub clients: usize,
    /// Operations per client: Put and Get alternate, starting with a Put.
    pub ops_per_client: usize,
    /// Re-sends per operation before a client gives up on it: following a "not leader" hint,
    /// or, after waiting, to any server (the model's choice), so that every server is reachable.
    pub client_retries: u8,
    pub network: NetworkKind,
    /// Whether the network may lose messages.
    pub lossy: bool,
    /// How many servers may be down at once (crash, then restart from saved storage).
    pub max_crashes: usize,
    /// Crashes in one run at most (each followed by a restart from saved storage).
    pub max_crash_events: u8,
    /// Whether the leader's periodic heartbeat fires. Without it, AppendEntries still go out on
    /// election, on new entries and on every acknowledgement or rejection that calls for more;
    /// only the periodic re-send (which matters after a loss, and spreads a new commit index
    /// sooner) is left out. A large part of the state space, so a knob.
    pub heartbeats: bool,
    /// Compactions in one run at most: a running server compacts its log through any applied
    /// index past its snapshot, whenever the model chooses (0: logs are never compacted).
    pub max_compactions: u8,
    /// Bound: no server's term goes past this.
    pub max_term: u64,
    /// Bound: no server's log grows past this.
    pub max_log_len: usize,
    /// Entries per AppendEntries; 1 lets the checker see partially replicated batches.
    pub max_append_entries: usize,
    /// Bound: at most this many distinct messages in flight between servers (0: no bound). With a
    /// duplicating network every message stays deliverable until it is lost, so this bound
    /// together with loss is what keeps the state space finite and small.
    pub max_in_flight: usize,
    /// Bound: at most this many messages in flight on one link (sender to receiver; 0: no
    /// bound).
    pub max_per_link: usize,
    /// Non-duplicating network: copies of one identical message it holds at most (retransmissions
    /// beyond that are lost).
    pub max_copies: usize,
    /// Non-duplicating network: every message may be delivered twice (a duplicate).
    pub duplicate_once: bool,
    /// Whether a save becomes durable only at a separate step, "fsync completes" (per server;
    /// it makes everything saved so far durable), so that a crash loses what was not, and a
    /// message waits for what it needs to be durable. Off: every save is durable at once.
    pub fsync: bool,
    /// The servers run PreVote (thesis §9.6).
    pub pre_vote: bool,
    /// The servers run CheckQuorum and its lease (thesis §6.2, §4.2.3).
    pub check_quorum: bool,
    /// From its first election on, the first leader hears no other server (it still sends):
    /// the deaf-leader fault, which only CheckQuorum gets a cluster out of.
    pub deaf_first_leader: bool,
    /// Once the first leader has committed an entry, it is cut off from the other servers in
    /// both directions (clients still reach it): a stale leader that believes it leads.
    pub isolate_first_leader: bool,
    /// While the first leader leads, no server hears it (clients still do): its entries reach
    /// nobody, and a later leader's snapshot meets them.
    pub mute_first_leader: bool,
    /// Gets are ReadIndex reads (thesis §6.4) rather than log entries.
    pub read_index: bool,
    /// A leader may decide, at any step, to transfer its leadership to any other server
    /// (thesis §3.10; a random choice), while its term is below `max_term`.
    pub transfers: bool,
    /// The initial configuration's voters: the first this many servers (0: all of them). The
    /// others start outside the cluster, to be added.
    pub members: usize,
    /// Configuration changes: an operator asks any leader for any single-server change, while
    /// the leader's log holds fewer than this many configuration entries (0: none).
    pub max_changes: usize,
    /// With `max_changes`: a server may also be added as a learner, and promoted.
    pub learners: bool,
    #[serde(skip)]
    pub mutant: Option<Mutant>,
}

impl Default for ModelCfg {
    /// The settings of `models/clients.toml`: 3 servers, 1 client that writes then reads and
    /// may re-send once to any server, reordering and heartbeats, terms up to 2.
    fn default() -> Self {
        Self {
            servers: 3,
            clients: 1,
            ops_per_client: 2,
            client_retries: 1,
            network: NetworkKind::UnorderedNonduplicating,
            lossy: false,
            max_crashes: 0,
            max_crash_events: 0,
            max_compactions: 0,
            heartbeats: true,
            max_term: 2,
            max_log_len: 3,
            max_append_entries: 1,
            max_in_flight: 3,
            max_copies: 1,
            max_per_link: 0,
            duplicate_once: false,
            fsync: false,
            pre_vote: false,
            check_quorum: false,
            deaf_first_leader: false,
            isolate_first_leader: false,
            mute_first_leader: false,
            read_index: false,
            transfers: false,
            members: 0,
            max_changes: 0,
            learners: false,
            mutant: None,
        }
    }
}

impl ModelCfg {
    pub fn server_ids(&self) -> Vec<Id> {
        (0..self.servers).map(Id::from).collect()
    }

    /// The initial configuration's voters.
    pub fn initial_members(&self) -> Vec<Id> {
        let members = if self.members == 0 {
            self.servers
        } else {
            self.members.min(self.servers)
        };
        (0..members).map(Id::from).collect()
    }

    pub fn is_server(&self, id: Id) -> bool {
        usize::from(id) < self.servers
    }

    /// The operations of client `c` (0-based) on one key: even clients start with a Put,
    /// odd ones with a Get, and each then alternates.
    pub fn workload(&self, c: usize) -> Vec<Op> {
        let letter = (b'a' + c as u8) as char;
        (0..self.ops_per_client)
            .map(|k| {
                if (k + c).is_multiple_of(2) {
                    let value = if k == 0 {
                        letter.to_string()
                    } else {
                        format!("{letter}{}", k / 2)
                    };
                    Op::Put {
                        key: "x".into(),
                        value,
                    }
                } else {
                    Op::Get { key: "x".into() }
                }
            })
            .collect()
    }

    pub fn actor_model(&self) -> ActorModel<ModelActor, ModelCfg, History> {
        let server = Config {
            servers: self.initial_members(),
            election_timeout: model_timeout(),
            heartbeat: model_timeout().start,
            max_append_entries: self.max_append_entries,
            pre_vote: self.pre_vote,
            check_quorum: self.check_quorum,
            read_index: self.read_index,
            mutant: self.mutant,
        };
        let disk = if self.fsync {
            Disk::Fsync
        } else {
            Disk::Synchronous
        };
        let network = match self.network {
            NetworkKind::Ordered => Network::new_ordered([]),
            NetworkKind::UnorderedNonduplicating => Network::new_unordered_nonduplicating([]),
            NetworkKind::UnorderedDuplicating => Network::new_unordered_duplicating([]),
        };
        let mut model = ActorModel::new(self.clone(), History::default())
            .actors((0..self.servers).map(|_| {
                let transfers_below = if self.transfers { self.max_term } else { 0 };
                let admin = Admin {
                    servers: self.server_ids(),
                    max_changes: self.max_changes,
                    learners: self.learners,
                };
                ModelActor::Server(server.clone(), disk, transfers_below, admin)
            }))
            .actors((0..self.clients).map(|c| {
                ModelActor::Client(ModelClient {
                    servers: self.server_ids(),
                    ops: self.workload(c),
                    max_retries: self.client_retries,
                })
            }))
            .init_network(network)
            .lossy_network(if self.lossy {
                LossyNetwork::Yes
            } else {
                LossyNetwork::No
            })
            .max_crashes(self.max_crashes)
            .record_msg_out(History::record_invocation)
            .record_msg_in(History::record_return);
        // Bounds are enforced by `RaftModel::within_boundary`; the inner one stays permissive.
        model.within_boundary = |_, _| true;
        model
    }

    /// Bounds of the search: terms, log lengths, and only servers crash.
    pub fn within_boundary(&self, state: &State) -> bool {
        state.history.crashes <= self.max_crash_events
            && state.history.compactions <= self.max_compactions
            && (self.max_in_flight == 0 || self.peer_messages(state) <= self.max_in_flight)
            && (self.max_per_link == 0
                || self.network == NetworkKind::Ordered
                || self.links_within_bound(state))
            && state
                .actor_states
                .iter()
                .zip(&state.crashed)
                .all(|(a, &crashed)| match &**a {
                    NodeState::Server(s, _) => {
                        s.current_term() <= self.max_term
                            && s.log().last_index() <= self.max_log_len as Index
                    }
                    NodeState::Client(_) => !crashed,
                })
    }
}

impl ModelCfg {
    /// Distinct messages in flight between servers (client traffic is bounded by the clients).
    fn peer_messages(&self, state: &State) -> usize {
        state
            .network
            .iter_deliverable()
            .filter(|e| self.is_server(e.src) && self.is_server(e.dst))
            .count()
    }

    fn links_within_bound(&self, state: &State) -> bool {
        let mut per_link = std::collections::BTreeMap::new();
        for (src, dst, _) in super::messages_in_flight(&state.network) {
            let n = per_link.entry((src, dst)).or_insert(0usize);
            *n += 1;
            if *n > self.max_per_link {
                return false;
            }
        }
        true
    }
}

impl fmt::Display for ModelCfg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "servers={} clients={} ops/client={} retries={} network={} lossy={} max_crashes={} \
             crash_events={} heartbeats={} \
             max_term={} max_log_len={} max_append_entries={} max_in_flight={}\
             {}{}{}{}{}{}",
            self.servers,
            self.clients,
            self.ops_per_client,
            self.client_retries,
            self.network.name(),
            self.lossy,
            self.max_crashes,
            self.max_crash_events,
            self.heartbeats,
            self.max_term,
            self.max_log_len,
            self.max_append_entries,
            self.max_in_flight,
            if self.pre_vote { " pre_vote" } else { "" },
            if self.check_quorum {
                " check_quorum"
            } else {
                ""
            },
            if self.deaf_first_leader {
                " deaf_first_leader"
            } else {
                ""
            },
            if self.isolate_first_leader {
                " isolate_first_leader"
            } else {
                ""
            },
            if self.mute_first_leader {
                " mute_first_leader"
            } else {
                ""
            },
            if self.read_index { " read_index" } else { "" },
        )?;
        if self.transfers {
            write!(f, " transfers")?;
        }
        if self.fsync {
            write!(f, " fsync=true")?;
        }
        if self.members > 0 && self.members < self.servers {
            write!(f, " members={}", self.members)?;
        }
        if self.max_changes > 0 {
            write!(f, " changes={}", self.max_changes)?;
        }
        if self.learners {
            write!(f, " learners")?;
        }
        if self.max_compactions > 0 {
            write!(f, " compactions={}", self.max_compactions)?;
        }
        if let Some(m) = self.mutant {
            write!(f, " mutant={m}")?;
        }
        Ok(())
    }
}
