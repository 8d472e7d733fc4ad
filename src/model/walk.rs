//! Seeded random walks of the model: the simulation strategy of `check` and the traces
//! exported for TLA+ trace validation. A walk is reproduced from its seed.

use super::config::ModelCfg;
use super::{Action, RaftModel, State};
use crate::raft::Timer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stateright::Model;
use stateright::actor::Id;

/// One step of a walk: the action taken (none for the initial state) and the state reached.
pub type Step = (Option<Action>, State);
/// The initial state and every (action, state) after it.
pub type Walk = Vec<Step>;

/// A walk of at most `depth` steps, each chosen with a seeded RNG among the actions that change
/// the state and stay within the model's bounds.
pub fn random_walk(model: &RaftModel, seed: u64, depth: usize) -> Walk {
    let mut rng = StdRng::seed_from_u64(seed);
    let init = model
        .init_states()
        .into_iter()
        .next()
        .expect("an initial state");
    let mut walk = vec![(None, init)];
    let mut actions = Vec::new();
    for _ in 0..depth {
        let last = &walk.last().expect("non-empty walk").1;
        actions.clear();
        model.actions(last, &mut actions);
        let mut enabled: Vec<(Action, State)> = actions
            .drain(..)
            .filter_map(|a| {
                let next = model.next_state(last, a.clone())?;
                model.within_boundary(&next).then_some((a, next))
            })
            .collect();
        if enabled.is_empty() {
            break;
        }
        let total: u32 = enabled.iter().map(|(a, _)| weight(&model.cfg, a)).sum();
        let mut pick = rng.random_range(0..total);
        let chosen = enabled
            .iter()
            .position(|(a, _)| {
                let w = weight(&model.cfg, a);
                if pick < w {
                    return true;
                }
                pick -= w;
                false
            })
            .expect("pick < total");
        let (action, next) = enabled.swap_remove(chosen);
        walk.push((Some(action), next));
    }
    walk
}

/// How likely an action is, relative to the others. Delivery is favoured over loss and
/// timeouts so that walks elect leaders and commit entries instead of only starting
/// elections; every enabled action keeps a chance.
/// Client traffic weighs less: it is invisible to the specification but for the entries it
/// makes a leader append.
pub fn weight(cfg: &ModelCfg, action: &Action) -> u32 {
    use stateright::actor::ActorModelAction::*;
    let peers = |src: Id, dst: Id| cfg.is_server(src) && cfg.is_server(dst);
    match action {
        Deliver { src, dst, .. } if peers(*src, *dst) => 12,
        Deliver { .. } => 4,
        Drop(env) if peers(env.src, env.dst) => 2,
        Drop(_) => 1,
        Timeout(_, Timer::Heartbeat) => 3,
        Timeout(..) => 1,
        Crash(_) => 1,
        Recover(_) => 3,
        SelectRandom { .. } => 1,
    }
}
