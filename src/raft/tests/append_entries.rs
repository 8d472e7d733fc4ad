//! Figure 2, "AppendEntries RPC, receiver implementation" (§5.3), and the idempotence a
//! duplicating, reordering network needs.

use super::*;

fn following(leader: usize, term: Term, log: Log) -> ServerState {
    let mut s = follower(term, log);
    s.role = Role::Follower {
        leader: Some(id(leader)),
    };
    s
}

/// Figure 2, AppendEntries receiver, step 1: reply false if term < currentTerm (§5.1), with
/// the current term so that the stale leader steps down.
#[test]
fn an_append_of_an_earlier_term_is_refused() {
    let cfg = cluster(3);
    let mut s1 = follower(2, log(&[]));
    let msg = append(1, 0, (0, 0), vec![noop(1)], 0);
    let (effects, changed) = step(&cfg, 1, &mut s1, Input::Msg(id(0), msg));
    assert_eq!(effects, vec![send(0, reject(2, None))]);
    assert!(!changed);
}

/// Figure 2, AppendEntries receiver, step 2 (§5.3): reply false if the log has no entry at
/// prevLogIndex whose term matches prevLogTerm, with a hint that lets the leader skip a whole
/// term at once (or to the end of a shorter log).
#[test]
fn an_append_without_the_previous_entry_is_refused_with_a_hint() {
    let cfg = cluster(3);
    let mut s1 = following(0, 3, log(&[1, 1, 2, 2]));
    let effects = deliver(&cfg, 1, &mut s1, 0, append(3, 0, (4, 3), vec![], 0));
    let hint = Conflict {
        term: Some(2),
        index: 3,
    };
    assert_eq!(
        effects,
        vec![
            Effect::SetTimer(Timer::Election),
            send(0, reject(3, Some(hint)))
        ]
    );
    let effects = deliver(&cfg, 1, &mut s1, 0, append(3, 0, (6, 3), vec![], 0));
    let hint = Conflict {
        term: None,
        index: 5,
    };
    assert_eq!(effects.last(), Some(&send(0, reject(3, Some(hint)))));
    assert_eq!(s1.log(), &log(&[1, 1, 2, 2]), "a refusal changes no entry");
}

/// Figure 2, AppendEntries receiver, step 3: an existing entry that conflicts with a new one
/// (same index, different term) is deleted with all that follow it.
#[test]
fn a_conflicting_entry_and_all_after_it_are_replaced() {
    let cfg = cluster(3);
    let mut s1 = following(0, 3, log(&[1, 1, 2, 2]));
    let effects = deliver(&cfg, 1, &mut s1, 0, append(3, 0, (2, 1), vec![noop(3)], 0));
    assert_eq!(
        effects,
        vec![
            Effect::Save,
            Effect::SetTimer(Timer::Election),
            send_when(0, ack(3, 3), Durable::log_through(3))
        ]
    );
    assert_eq!(s1.log(), &log(&[1, 1, 3]));
}

/// Figure 2, AppendEntries receiver, step 4: new entries are appended, and saved before the
/// acknowledgement leaves (§5.1); the first append from a leader makes it the known leader.
#[test]
fn new_entries_are_appended_and_saved_before_the_acknowledgement() {
    let cfg = cluster(3);
    let mut s1 = follower(1, log(&[1]));
    let msg = append(1, 0, (1, 1), vec![noop(1), noop(1)], 0);
    let effects = deliver(&cfg, 1, &mut s1, 0, msg);
    assert_eq!(
        effects,
        vec![
            Effect::Save,
            Effect::SetTimer(Timer::Election),
            send_when(0, ack(1, 3), Durable::log_through(3))
        ]
    );
    assert_eq!(s1.log(), &log(&[1, 1, 1]));
    assert_eq!(
        s1.role,
        Role::Follower {
            leader: Some(id(0))
        }
    );
}

/// A stale or duplicated AppendEntries (delivered late, or twice) never removes the entries
/// that follow the ones it carries, and changes no state at all.
#[test]
fn a_stale_or_duplicate_append_changes_nothing() {
    let cfg = cluster(3);
    let mut s1 = following(0, 1, log(&[1, 1, 1]));
    let msg = append(1, 0, (0, 0), vec![noop(1)], 0);
    let (effects, changed) = step(&cfg, 1, &mut s1, Input::Msg(id(0), msg));
    assert_eq!(
        effects,
        vec![
            Effect::SetTimer(Timer::Election),
            send_when(0, ack(1, 1), Durable::log_through(1))
        ]
    );
    assert!(
        !changed,
        "the state must stay borrowed (a no-op the checker prunes)"
    );
}

/// Figure 2, AppendEntries receiver, step 5: commitIndex = min(leaderCommit, index of the last
/// new entry); entries up to it are applied (rules for all servers).
#[test]
fn commit_index_is_the_min_of_leader_commit_and_the_last_new_entry() {
    let cfg = cluster(3);
    let mut s1 = following(0, 1, log(&[1]));
    let msg = append(1, 0, (1, 1), vec![put(1, 1, "x", "a")], 3);
    deliver(&cfg, 1, &mut s1, 0, msg);
    assert_eq!(s1.commit_index, 2, "not 3: entry 3 was not in this request");
    assert_eq!(s1.kv.data.get("x").map(String::as_str), Some("a"));
}

/// Step 5 again: a stale AppendEntries with a lower leaderCommit never lowers commitIndex.
#[test]
fn commit_index_never_goes_down() {
    let cfg = cluster(3);
    let mut s1 = following(0, 1, log(&[1, 1]));
    s1.commit_index = 2;
    let (_, changed) = step(
        &cfg,
        1,
        &mut s1,
        Input::Msg(id(0), append(1, 0, (0, 0), vec![], 0)),
    );
    assert_eq!(s1.commit_index, 2);
    assert!(!changed);
}
