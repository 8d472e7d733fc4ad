//! Short, readable renderings of actions, messages and states, for counterexamples and the
//! Explorer: "S0 -> S1 AppendEntries(term 2, prev 1:1, 1 entry, commit 1)", not `Debug` dumps.

use super::client::ClientState;
use super::config::ModelCfg;
use super::{Action, NodeState, State};
use crate::model::Choice;
use crate::raft::{
    Change, Command, Entry, Log, Membership, Msg, Op, OpResult, Reply, Role, ServerState, Timer,
};
use stateright::actor::{ActorModelAction, Id, Network};
use std::collections::BTreeMap;
use std::fmt::Write;

/// "S0".."Sn" for servers, "C0".. for clients.
pub fn node(cfg: &ModelCfg, id: Id) -> String {
    let i = usize::from(id);
    if i < cfg.servers {
        format!("S{i}")
    } else {
        format!("C{}", i - cfg.servers)
    }
}

pub fn op(op: &Op) -> String {
    match op {
        Op::Put { key, value } => format!("Put {key}={value}"),
        Op::Get { key } => format!("Get {key}"),
        Op::Delete { key } => format!("Delete {key}"),
    }
}

fn result(r: &OpResult) -> String {
    match r {
        OpResult::Done => "ok".into(),
        OpResult::Value(Some(v)) => format!("\"{v}\""),
        OpResult::Value(None) => "(none)".into(),
    }
}

/// An entry as index:term:command.
pub fn entry(index: u64, e: &Entry) -> String {
    match &e.command {
        Command::Noop => format!("{index}:{}:noop", e.term),
        Command::Client { op: o, .. } => format!("{index}:{}:{}", e.term, op(o)),
        Command::Membership(m) => format!("{index}:{}:config{}", e.term, membership(m)),
    }
}

/// A configuration as "{S0,S1}" with its learners after a "+": "{S0,S1}+{S2}".
pub fn membership(m: &Membership) -> String {
    let names = |ids: &std::collections::BTreeSet<Id>| {
        let names: Vec<String> = ids
            .iter()
            .map(|&i| format!("S{}", usize::from(i)))
            .collect();
        format!("{{{}}}", names.join(","))
    };
    if m.learners.is_empty() {
        names(&m.voters)
    } else {
        format!("{}+{}", names(&m.voters), names(&m.learners))
    }
}

/// A configuration change, as the operator would ask for it.
pub fn change(cfg: &ModelCfg, c: &Change) -> String {
    match *c {
        Change::AddVoter(id) => format!("add {}", node(cfg, id)),
        Change::AddLearner(id) => format!("add {} as a learner", node(cfg, id)),
        Change::Promote(id) => format!("promote {}", node(cfg, id)),
        Change::Remove(id) => format!("remove {}", node(cfg, id)),
    }
}

pub fn log(l: &Log) -> String {
    let first = l.first_index();
    let mut items: Vec<String> = l
        .iter()
        .enumerate()
        .map(|(i, e)| entry(first + i as u64, e))
        .collect();
    if !l.snapshot().is_empty() {
        let last = l.snapshot().last;
        items.insert(0, format!("snapshot..{}:{}", last.index, last.term));
    }
    format!("[{}]", items.join(", "))
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

pub fn msg(cfg: &ModelCfg, m: &Msg) -> String {
    match m {
        Msg::RequestVote {
            term,
            last_log_index,
            last_log_term,
            ..
        } => {
            format!("RequestVote(term {term}, last {last_log_index}:{last_log_term})")
        }
        Msg::RequestVoteResponse { term, vote_granted } => {
            format!(
                "Vote(term {term}, {})",
                if *vote_granted { "granted" } else { "denied" }
            )
        }
        Msg::PreVote {
            term,
            last_log_index,
            last_log_term,
            ..
        } => {
            format!("PreVote(term {term}, last {last_log_index}:{last_log_term})")
        }
        Msg::PreVoteResponse { term, vote_granted } => {
            format!(
                "PreVoteReply(term {term}, {})",
                if *vote_granted { "granted" } else { "denied" }
            )
        }
        Msg::AppendEntries {
            term,
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
            ..
        } => format!(
            "AppendEntries(term {term}, prev {prev_log_index}:{prev_log_term}, {}, commit {leader_commit})",
            plural(entries.len(), "entry").replace("entrys", "entries")
        ),
        Msg::InstallSnapshot { term, snapshot, .. } => format!(
            "InstallSnapshot(term {term}, through {}:{})",
            snapshot.last.index, snapshot.last.term
        ),
        Msg::AppendEntriesResponse {
            term,
            success: true,
            match_index,
            ..
        } => {
            format!("AppendOk(term {term}, match {match_index})")
        }
        Msg::AppendEntriesResponse { term, conflict, .. } => match conflict {
            Some(c) => format!(
                "AppendReject(term {term}, conflict {}{})",
                c.index,
                c.term.map(|t| format!(" in term {t}")).unwrap_or_default()
            ),
            None => format!("AppendReject(term {term})"),
        },
        Msg::ClientRequest { seq, op: o, .. } => format!("Request(#{seq} {})", op(o)),
        Msg::ClientResponse {
            seq,
            reply: Reply::Ok { result: r },
        } => format!("Reply(#{seq} {})", result(r)),
        Msg::ClientResponse {
            seq,
            reply: Reply::NotLeader { leader_hint },
        } => format!(
            "NotLeader(#{seq}, try {})",
            leader_hint
                .map(|l| node(cfg, l))
                .unwrap_or_else(|| "?".into())
        ),
        Msg::TimeoutNow { term } => format!("TimeoutNow(term {term})"),
        Msg::TransferLeader { target } => format!("TransferLeader(to {})", node(cfg, *target)),
        Msg::ChangeMembership { change: c } => format!("ChangeMembership({})", change(cfg, c)),
        Msg::ChangeMembershipResponse { outcome, .. } => match outcome {
            Ok(index) => format!("ChangeMembershipOk(at {index})"),
            Err(why) => format!("ChangeMembershipRefused({why})"),
        },
        Msg::StatusRequest => "StatusRequest".into(),
        Msg::StatusResponse(_) => "StatusResponse".into(),
    }
}

/// One action, short enough for a sequence diagram label.
pub fn action(cfg: &ModelCfg, a: &Action) -> String {
    match a {
        ActorModelAction::Deliver { src, dst, msg: m } => {
            format!("{} -> {} {}", node(cfg, *src), node(cfg, *dst), msg(cfg, m))
        }
        ActorModelAction::Drop(env) => {
            format!(
                "lost: {} -> {} {}",
                node(cfg, env.src),
                node(cfg, env.dst),
                msg(cfg, &env.msg)
            )
        }
        ActorModelAction::Timeout(id, Timer::Election) => {
            format!("{} election timeout", node(cfg, *id))
        }
        ActorModelAction::Timeout(id, Timer::Heartbeat) => {
            format!("{} heartbeat", node(cfg, *id))
        }
        ActorModelAction::Timeout(id, Timer::CheckQuorum) => {
            format!("{} counts who it heard from (CheckQuorum)", node(cfg, *id))
        }
        ActorModelAction::Timeout(id, Timer::Lease) => {
            format!("{} lease on the leader's behalf ends", node(cfg, *id))
        }
        ActorModelAction::Timeout(id, Timer::Transfer) => {
            format!("{} abandons its leadership transfer", node(cfg, *id))
        }
        ActorModelAction::Crash(id) => format!("{} crashes", node(cfg, *id)),
        ActorModelAction::Recover(id) => format!("{} restarts from storage", node(cfg, *id)),
        ActorModelAction::SelectRandom {
            actor,
            random: Choice::Fsync,
            ..
        } => format!("{} fsync completes", node(cfg, *actor)),
        ActorModelAction::SelectRandom {
            actor,
            random: Choice::ResendTo(server),
            ..
        } => format!(
            "{} gives up waiting, re-sends to {}",
            node(cfg, *actor),
            node(cfg, *server)
        ),
        ActorModelAction::SelectRandom {
            actor,
            random: Choice::CompactThrough(index),
            ..
        } => format!("{} compacts its log through {index}", node(cfg, *actor)),
        ActorModelAction::SelectRandom {
            actor,
            random: Choice::TransferTo(target),
            ..
        } => format!(
            "{} hands its leadership to {}",
            node(cfg, *actor),
            node(cfg, *target)
        ),
        ActorModelAction::SelectRandom {
            actor,
            random: Choice::Change(c),
            ..
        } => format!(
            "the operator asks {} to {}",
            node(cfg, *actor),
            change(cfg, c)
        ),
    }
}

/// What a server would lose in a crash now, beyond its saved state.
fn unsynced_line(cfg: &ModelCfg, s: &ServerState, u: &super::actor::Unsynced) -> String {
    let mut parts = Vec::new();
    if u.term_vote {
        parts.push(format!("term {} and vote", s.current_term()));
    }
    if s.log_synced < s.log().last_index() {
        parts.push(format!("log after {}", s.log_synced));
    }
    for (to, m) in u.held.iter() {
        parts.push(format!("waits: -> {} {}", node(cfg, *to), msg(cfg, m)));
    }
    parts.join("; ")
}

/// A server's role, with whom it follows or who voted for it.
pub fn role(cfg: &ModelCfg, s: &ServerState) -> String {
    match &s.role {
        Role::Follower { leader: Some(l) } if s.lease => {
            format!("Follower of {} (lease)", node(cfg, *l))
        }
        Role::Follower { leader: Some(l) } => format!("Follower of {}", node(cfg, *l)),
        Role::Follower { leader: None } => "Follower".into(),
        Role::PreCandidate { votes } => {
            let v: Vec<String> = votes.iter().map(|&id| node(cfg, id)).collect();
            format!("PreCandidate (would vote: {})", v.join(","))
        }
        Role::Candidate { votes } => {
            let v: Vec<String> = votes.iter().map(|&id| node(cfg, id)).collect();
            format!("Candidate (votes {})", v.join(","))
        }
        Role::Leader => "Leader".into(),
    }
}

/// One line per server: role, term, vote, log and commit point.
pub fn server_line(cfg: &ModelCfg, id: Id, s: &ServerState, crashed: bool) -> String {
    let voted = s
        .hard
        .voted_for
        .map(|v| node(cfg, v))
        .unwrap_or_else(|| "-".into());
    format!(
        "{}{} {} | term {} | voted {} | commit {} | log {}",
        node(cfg, id),
        if crashed { " (crashed)" } else { "" },
        role(cfg, s),
        s.current_term(),
        voted,
        s.commit_index,
        log(s.log())
    )
}

/// A client: the operation it waits for, and where it sent it.
pub fn client_line(cfg: &ModelCfg, id: Id, c: &ClientState) -> String {
    let ops = usize::from(id)
        .checked_sub(cfg.servers)
        .map(|n| cfg.workload(n))
        .unwrap_or_default();
    let pending = (c.seq as usize)
        .checked_sub(1)
        .and_then(|k| ops.get(k))
        .map(|o| format!(" ({})", op(o)))
        .unwrap_or_default();
    let status = if c.awaiting {
        format!(
            "waiting for #{}{pending} at {} (retries {})",
            c.seq,
            node(cfg, c.target),
            c.retries
        )
    } else if c.seq == 0 {
        "has no operations".to_string()
    } else {
        format!("done after #{}", c.seq)
    };
    format!("{} {}", node(cfg, id), status)
}

/// Every message in the network, sorted, one line each ("S0 -> S1 Vote(term 1, granted)");
/// a message held more than once (a non-duplicating network) says how many times.
pub fn in_flight(cfg: &ModelCfg, st: &State) -> Vec<String> {
    let mut lines: Vec<String> = network_multiset(&st.network)
        .into_iter()
        .map(|((src, dst, m), n)| {
            let times = if n > 1 {
                format!(" x{n}")
            } else {
                String::new()
            };
            format!(
                "{} -> {} {}{times}",
                node(cfg, src),
                node(cfg, dst),
                msg(cfg, m)
            )
        })
        .collect();
    lines.sort();
    lines
}

/// The network's messages as (src, dst, msg) with how many copies are in flight. Unlike
/// `Network::iter_deliverable`, this includes the messages queued behind the head of an
/// ordered channel.
pub fn network_multiset(network: &Network<Msg>) -> BTreeMap<(Id, Id, &Msg), usize> {
    let mut out = BTreeMap::new();
    match network {
        Network::UnorderedDuplicating(set, _) => {
            for e in set.iter() {
                out.insert((e.src, e.dst, &e.msg), 1);
            }
        }
        Network::UnorderedNonDuplicating(multiset) => {
            for (e, n) in multiset.iter() {
                *out.entry((e.src, e.dst, &e.msg)).or_default() += n;
            }
        }
        Network::Ordered(channels) => {
            for ((src, dst), queue) in channels {
                for m in queue {
                    *out.entry((*src, *dst, m)).or_default() += 1;
                }
            }
        }
    }
    out
}

/// The whole state, as the Explorer and counterexamples show it.
pub fn state(cfg: &ModelCfg, st: &State) -> String {
    let mut out = String::new();
    for (i, a) in st.actor_states.iter().enumerate() {
        let id = Id::from(i);
        match &**a {
            NodeState::Server(s, u) => {
                let _ = writeln!(out, "{}", server_line(cfg, id, s, st.crashed[i]));
                if u.term_vote || !u.held.is_empty() || s.log_synced < s.log().last_index() {
                    let _ = writeln!(out, "    not yet durable: {}", unsynced_line(cfg, s, u));
                }
            }
            NodeState::Client(c) => {
                let _ = writeln!(out, "{}", client_line(cfg, id, c));
            }
        }
    }
    let in_flight = in_flight(cfg, st);
    let _ = writeln!(out, "network: {}", plural(in_flight.len(), "message"));
    for line in in_flight {
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// What one step did, in words: the action plus the visible change to the acting server.
pub fn step(cfg: &ModelCfg, before: &State, a: &Action, after: &State) -> String {
    let mut line = action(cfg, a);
    let actor = match a {
        ActorModelAction::Deliver { dst, .. } => Some(*dst),
        ActorModelAction::Timeout(id, _) | ActorModelAction::Recover(id) => Some(*id),
        _ => None,
    };
    let Some(id) = actor else { return line };
    let i = usize::from(id);
    if let (Some(b), Some(n)) = (
        before.actor_states[i].as_server(),
        after.actor_states[i].as_server(),
    ) {
        let mut changes = Vec::new();
        if b.role.name() != n.role.name() {
            changes.push(format!(
                "becomes {} in term {}",
                n.role.name().to_lowercase(),
                n.current_term()
            ));
        } else if b.current_term() != n.current_term() {
            changes.push(format!("moves to term {}", n.current_term()));
        }
        if b.hard.voted_for != n.hard.voted_for
            && let Some(v) = n.hard.voted_for
        {
            changes.push(format!("votes for {}", node(cfg, v)));
        }
        if b.log() != n.log() {
            changes.push(format!("log {}", log(n.log())));
        }
        if b.commit_index != n.commit_index {
            changes.push(format!("commit {}", n.commit_index));
        }
        if !changes.is_empty() {
            let _ = write!(line, ": {}", changes.join(", "));
        }
    }
    if let (Some(b), Some(n)) = (
        before.actor_states[i].as_client(),
        after.actor_states[i].as_client(),
    ) && b != n
    {
        let now = client_line(cfg, id, n);
        let _ = write!(line, ": now {}", now.split_once(' ').map_or("", |(_, s)| s));
    }
    line
}
