//! `raftright traces`: seeded random walks of the model, written as JSON for trace validation
//! against the TLA+ specification (specs/Raft.tla, specs/check).
//!
//! Each walk starts in the model's initial state and repeatedly takes one enabled action,
//! chosen with a seeded RNG among those that change the state and stay within the model's
//! bounds (exactly the steps the checker would explore). Every state along the walk is
//! written down as the specification sees it: per server `currentTerm`, `votedFor`, the log
//! (terms and commands), `commitIndex`, the role with its data (votes of a candidate, progress
//! of a leader), plus the peer messages in flight. Clients, timers, leader hints and the
//! key-value store are left out: the specification does not model them, and steps that
//! change only those are stutters there.

use super::ModelArgs;
use raftright::model::config::NetworkKind;
use raftright::model::{Action, RaftModel, State, story, walk};
use raftright::raft::{Command, Entry, Log, Msg, Role, ServerState};
use serde_json::{Value, json};
use stateright::actor::Id;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct TracesArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// How many walks.
    #[arg(long, default_value_t = 100)]
    pub count: usize,
    /// Steps per walk (a walk ends early only if no action is enabled).
    #[arg(long, default_value_t = 40)]
    pub depth: usize,
    /// Seed of the first walk; walk k uses seed + k.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Directory for trace-NNNN.json (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: TracesArgs) -> Result<i32, super::CliError> {
    let loaded = args.model.load()?;
    let cfg = loaded.cfg;
    if cfg.network != NetworkKind::UnorderedDuplicating || !cfg.lossy {
        return Err("specs/Raft.tla models the lossy unordered_duplicating network only".into());
    }
    if cfg.servers < 2 {
        return Err("specs/Raft.tla models clusters of two or more servers".into());
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let model = RaftModel::new(cfg.clone());
    let mut totals = Totals::default();
    for k in 0..args.count {
        let seed = args.seed.wrapping_add(k as u64);
        let walk = walk::random_walk(&model, seed, args.depth);
        totals.add(&model, &walk);
        let states: Vec<Value> = walk
            .iter()
            .map(|(action, state)| snapshot(&model, action.as_ref(), state))
            .collect();
        let trace = json!({
            "seed": seed,
            "config": {
                "servers": cfg.servers,
                "clients": cfg.clients,
                "max_append_entries": cfg.max_append_entries,
                "description": cfg.to_string(),
            },
            "states": states,
        });
        let path = args.out.join(format!("trace-{k:04}.json"));
        let text = serde_json::to_string(&trace).map_err(|e| e.to_string())?;
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    println!("config: {cfg}");
    println!(
        "wrote {} traces, {} steps, to {} (longest {} steps; {} elect a leader, {} commit, \
         {} restart a server, {} reach term >= 3)",
        args.count,
        totals.steps,
        args.out.display(),
        totals.longest,
        totals.with_leader,
        totals.with_commit,
        totals.with_restart,
        totals.with_term3,
    );
    Ok(0)
}

#[derive(Default)]
struct Totals {
    steps: usize,
    longest: usize,
    with_leader: usize,
    with_commit: usize,
    with_restart: usize,
    with_term3: usize,
}

impl Totals {
    fn add(&mut self, model: &RaftModel, walk: &[(Option<Action>, State)]) {
        let steps = walk.len() - 1;
        self.steps += steps;
        self.longest = self.longest.max(steps);
        let servers = |s: &State| -> Vec<ServerState> {
            servers(model, s).into_iter().cloned().collect::<Vec<_>>()
        };
        let any =
            |f: &dyn Fn(&ServerState) -> bool| walk.iter().any(|(_, s)| servers(s).iter().any(f));
        self.with_leader += usize::from(any(&|s| s.is_leader()));
        self.with_commit += usize::from(any(&|s| s.commit_index > 0));
        self.with_term3 += usize::from(any(&|s| s.current_term() >= 3));
        self.with_restart += usize::from(
            walk.iter()
                .any(|(a, _)| matches!(a, Some(stateright::actor::ActorModelAction::Recover(id)) if model.cfg.is_server(*id))),
        );
    }
}

fn servers<'s>(model: &RaftModel, state: &'s State) -> Vec<&'s ServerState> {
    state
        .actor_states
        .iter()
        .take(model.cfg.servers)
        .map(|a| a.as_server().expect("servers come first"))
        .collect()
}

/// One state as the specification sees it.
fn snapshot(model: &RaftModel, action: Option<&Action>, state: &State) -> Value {
    let servers: Vec<Value> = servers(model, state)
        .iter()
        .zip(&state.crashed)
        .map(|(s, &crashed)| server(s, crashed))
        .collect();
    let mut msgs: Vec<Value> = raftright::model::messages_in_flight(&state.network)
        .into_iter()
        .filter(|&(src, dst, _)| model.cfg.is_server(src) && model.cfg.is_server(dst))
        .map(|(src, dst, msg)| message(src, dst, msg))
        .collect();
    msgs.sort_by_key(|m| m.to_string());
    json!({
        "action": action.map_or_else(|| "init".to_string(), |a| story::action(&model.cfg, a)),
        "servers": servers,
        "msgs": msgs,
    })
}

fn server(s: &ServerState, crashed: bool) -> Value {
    let (votes, progress) = match &s.role {
        Role::Follower { .. } => (json!([]), Value::Null),
        Role::Candidate { votes } | Role::PreCandidate { votes } => (
            votes.iter().map(|&v| usize::from(v)).collect::<Vec<_>>().into(),
            Value::Null,
        ),
        Role::Leader => (
            json!([]),
            s.progress
                .iter()
                .map(|(peer, p)| {
                    json!({"peer": usize::from(peer), "next": p.next_index, "match": p.match_index})
                })
                .collect::<Vec<_>>()
                .into(),
        ),
    };
    json!({
        "term": s.current_term(),
        "voted_for": s.hard.voted_for.map(usize::from),
        "log": log(s.log()),
        "commit": s.commit_index,
        "role": s.role.name(),
        "votes": votes,
        "progress": progress,
        "crashed": crashed,
    })
}

fn log(l: &Log) -> Value {
    l.iter().map(entry).collect::<Vec<_>>().into()
}

fn entries<'a>(es: impl IntoIterator<Item = &'a Entry>) -> Value {
    es.into_iter().map(entry).collect::<Vec<_>>().into()
}

/// An entry as its term and a name for its command: "noop", "c<client>s<seq>" (a client
/// request is named by its client id and sequence number, which fix its operation), or
/// "config{S0,S1}" (a configuration).
fn entry(e: &Entry) -> Value {
    let cmd = match &e.command {
        Command::Noop => "noop".to_string(),
        Command::Client { client_id, seq, .. } => format!("c{client_id}s{seq}"),
        Command::Membership(m) => format!("config{}", raftright::model::story::membership(m)),
    };
    json!({"term": e.term, "cmd": cmd})
}

fn message(src: Id, dst: Id, msg: &Msg) -> Value {
    let (src, dst) = (usize::from(src), usize::from(dst));
    match msg {
        Msg::RequestVote {
            term,
            candidate_id,
            last_log_index,
            last_log_term,
            ..
        } => {
            assert_eq!(
                usize::from(*candidate_id),
                src,
                "candidate_id is the sender"
            );
            json!({"type": "RequestVote", "src": src, "dst": dst, "term": term,
                   "last_log_index": last_log_index, "last_log_term": last_log_term})
        }
        Msg::RequestVoteResponse { term, vote_granted } => {
            json!({"type": "RequestVoteResponse", "src": src, "dst": dst, "term": term,
                   "vote_granted": vote_granted})
        }
        Msg::AppendEntries {
            term,
            leader_id,
            prev_log_index,
            prev_log_term,
            entries: es,
            leader_commit,
            ..
        } => {
            assert_eq!(usize::from(*leader_id), src, "leader_id is the sender");
            json!({"type": "AppendEntries", "src": src, "dst": dst, "term": term,
                   "prev_log_index": prev_log_index, "prev_log_term": prev_log_term,
                   "entries": entries(es), "leader_commit": leader_commit})
        }
        Msg::AppendEntriesResponse {
            term,
            success,
            match_index,
            conflict,
            ..
        } => {
            let conflict = conflict.map(|c| json!({"term": c.term, "index": c.index}));
            json!({"type": "AppendEntriesResponse", "src": src, "dst": dst, "term": term,
                   "success": success, "match_index": match_index, "conflict": conflict})
        }
        other => json!({"type": "other", "src": src, "dst": dst, "debug": format!("{other:?}")}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftright::model::ModelCfg;
    use stateright::Model;

    fn model() -> RaftModel {
        let cfg = ModelCfg {
            network: NetworkKind::UnorderedDuplicating,
            lossy: true,
            ..ModelCfg::default()
        };
        RaftModel::new(cfg)
    }

    #[test]
    fn a_walk_is_determined_by_its_seed() {
        let model = model();
        let json = |seed| {
            walk::random_walk(&model, seed, 30)
                .iter()
                .map(|(a, s)| snapshot(&model, a.as_ref(), s))
                .collect::<Vec<_>>()
        };
        assert_eq!(json(7), json(7));
        assert_ne!(json(7), json(8));
    }

    #[test]
    fn a_walk_starts_in_the_initial_state_and_takes_only_real_steps() {
        let model = model();
        let walk = walk::random_walk(&model, 1, 30);
        assert!(walk.len() > 1 && walk.len() <= 31);
        assert!(walk[0].0.is_none());
        assert_eq!(walk[0].1, model.init_states()[0]);
        for pair in walk.windows(2) {
            let action = pair[1].0.clone().expect("every later state has its action");
            assert_eq!(
                model.next_state(&pair[0].1, action).as_ref(),
                Some(&pair[1].1)
            );
            assert!(model.within_boundary(&pair[1].1));
        }
    }
}
