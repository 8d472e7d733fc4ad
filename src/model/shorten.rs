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
        for width in 1..=2 {
            for i in 0..best.len() {
                for j in (i + width - 1)..best.len().min(i + MAX_PAIR_SPAN) {
                    let mut candidate = best.clone();
                    candidate.remove(j);
                    if width == 2 {
                        candidate.remove(i);
                    }
                    if let Some(shorter) = replay(model, &init, &candidate, &violated)
                        && shorter.len() < best.len()
                    {
                        best = shorter;
                        continue 'improve;
                    }
                    if width == 1 {
                        break;
                    }
                }
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
