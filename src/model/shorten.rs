//! Shorter counterexamples. Depth-first and random search find a violation by a long path
//! full of steps it does not need; dropping those steps leaves a story a person can follow.

use super::{Action, RaftModel, State};
use stateright::{Model, Path};

/// How far apart two steps dropped together may be.
const MAX_PAIR_SPAN: usize = 12;

/// A path to a state where `violated` holds, at most as long as `path` (which must end in
/// one): steps are dropped one at a time, along with any later step that is then no longer
/// possible, for as long as the rest still reaches a violation within the model's bounds.
pub fn shorten(
    model: &RaftModel,
    path: &Path<State, Action>,
    violated: impl Fn(&State) -> bool,
) -> Path<State, Action> {
    let init = path.clone().into_vec().swap_remove(0).0;
    let mut best: Vec<Action> = path.clone().into_actions();
    // Single steps first, then pairs (two steps that only make sense together, such as two
    // timeouts of one server); each success starts over, since the path has changed.
    'improve: loop {
        let n = best.len();
        let singles = (0..n).map(|i| vec![i]);
        let pairs = (0..n).flat_map(|i| (i + 1..n.min(i + MAX_PAIR_SPAN)).map(move |j| vec![i, j]));
        for dropped in singles.chain(pairs) {
            let candidate: Vec<Action> = best
                .iter()
                .enumerate()
                .filter(|(k, _)| !dropped.contains(k))
                .map(|(_, a)| a.clone())
                .collect();
            if let Some(shorter) = replay(model, &init, &candidate, &violated)
                && shorter.len() < n
            {
                best = shorter;
                continue 'improve;
            }
        }
        break;
    }
    Path::from_actions(model, init, &best).unwrap_or_else(|| path.clone())
}

/// Applies the steps of `actions` that are possible in turn and skips the others; returns
/// the steps applied up to the first violating state, if one is reached.
fn replay(
    model: &RaftModel,
    init: &State,
    actions: &[Action],
    violated: &impl Fn(&State) -> bool,
) -> Option<Vec<Action>> {
    let mut state = init.clone();
    let mut applied = Vec::new();
    let mut enabled = Vec::new();
    if violated(&state) {
        return Some(applied);
    }
    for action in actions {
        enabled.clear();
        model.actions(&state, &mut enabled);
        if !enabled.contains(action) {
            continue;
        }
        let Some(next) = model.next_state(&state, action.clone()) else {
            continue;
        };
        if !model.within_boundary(&next) {
            continue;
        }
        applied.push(action.clone());
        state = next;
        if violated(&state) {
            return Some(applied);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelCfg, walk};

    #[test]
    fn a_long_walk_to_a_leader_shortens_to_the_three_steps_of_an_election() {
        let model = RaftModel::new(ModelCfg::default());
        let has_leader = |s: &State| {
            s.actor_states
                .iter()
                .any(|a| a.as_server().is_some_and(|s| s.is_leader()))
        };
        let (seed, walk) = (0..100)
            .map(|seed| (seed, walk::random_walk(&model, seed, 60)))
            .find(|(_, w)| {
                w.iter()
                    .position(|(_, s)| has_leader(s))
                    .is_some_and(|i| i > 6)
            })
            .expect("some walk elects a leader after a detour");
        let end = walk.iter().position(|(_, s)| has_leader(s)).unwrap();
        let actions: Vec<Action> = walk[..=end].iter().filter_map(|(a, _)| a.clone()).collect();
        let path = Path::from_actions(&model, walk[0].1.clone(), &actions).expect("replays");
        let short = shorten(&model, &path, has_leader);
        // Timeout, RequestVote delivered, vote delivered.
        assert_eq!(short.clone().into_actions().len(), 3, "seed {seed}");
        assert!(has_leader(short.last_state()));
    }
}
