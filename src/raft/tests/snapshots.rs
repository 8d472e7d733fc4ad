//! Compaction and InstallSnapshot (§7, Figure 13).

use super::*;

/// A follower of `term` whose log of Puts `1..=n` (term 1) is compacted through `through` and
/// committed through `n`.
fn compacted(cfg: &Config, n: u64, through: Index, term: Term) -> ServerState {
    let entries = (1..=n).map(|i| put(1, i, "k", &i.to_string()));
    let mut s = follower(term, Log::from_entries(entries));
    s.commit_index = n;
    s.kv = s.log().replay_through(n);
    let (effects, changed) = step(cfg, 0, &mut s, Input::Compact(through));
    assert!(changed);
    assert_eq!(effects, vec![Effect::Save]);
    s
}

fn install(term: Term, leader: usize, of: &ServerState) -> Msg {
    Msg::InstallSnapshot {
        term,
        leader_id: id(leader),
        snapshot: of.log().snapshot_shared(),
    }
}

#[test]
fn compaction_is_refused_outside_the_applied_entries() {
    let cfg = cluster(3);
    let mut s = compacted(&cfg, 3, 2, 1);
    for through in [1, 2, 4] {
        let (effects, changed) = step(&cfg, 0, &mut s, Input::Compact(through));
        assert!(!changed, "compact through {through}");
        assert!(matches!(effects[..], [Effect::Refused(_)]), "{effects:?}");
    }
}

#[test]
fn a_compaction_with_the_state_replayed_by_the_host_is_the_same_compaction() {
    let cfg = cluster(3);
    let entries = (1..=5).map(|i| put(1, i, &format!("k{}", i % 2), &i.to_string()));
    let mut s = follower(1, Log::from_entries(entries));
    s.commit_index = 5;
    s.kv = s.log().replay_through(5);
    let copy = s.log().clone();
    let mut by_host = s.clone();
    let (effects, _) = step(&cfg, 0, &mut s, Input::Compact(4));
    let state = copy.replay_through(4);
    let input = Input::CompactWith { through: 4, state };
    let (host_effects, changed) = step(&cfg, 0, &mut by_host, input);
    assert!(changed);
    assert_eq!(host_effects, effects);
    assert_eq!(by_host, s);
    // Replayed from an older copy of the log, and late: refused once out of range.
    for through in [3, 4, 6] {
        let input = Input::CompactWith {
            through,
            state: copy.replay_through(through.min(5)),
        };
        let (effects, changed) = step(&cfg, 0, &mut by_host, input);
        assert!(!changed, "compact through {through}");
        assert!(matches!(effects[..], [Effect::Refused(_)]), "{effects:?}");
    }
}

#[test]
fn a_leader_sends_its_snapshot_to_a_follower_behind_it() {
    let cfg = cluster(3);
    let log = compacted(&cfg, 3, 2, 1).hard.log;
    let behind = Progress {
        next_index: 1,
        match_index: 0,
        ..Progress::new(0)
    };
    let mut l = leader(&cfg, 0, 1, log, behind);
    l.commit_index = 3;
    let (effects, _) = step(&cfg, 0, &mut l, Input::Timeout(Timer::Heartbeat));
    let expected = install(1, 0, &l);
    assert!(effects.contains(&send(1, expected)), "{effects:?}");
    assert_eq!(l.progress.get(id(1)).unwrap().next_index, 3);
}

#[test]
fn a_follower_installs_a_newer_snapshot_and_ignores_an_older_one() {
    let cfg = cluster(3);
    let source = compacted(&cfg, 3, 2, 1);
    let mut f = follower(1, Log::new());
    let effects = deliver(&cfg, 1, &mut f, 0, install(1, 0, &source));
    assert_eq!(effects[0], Effect::Save);
    assert!(
        effects.contains(&send_when(0, ack(1, 2), Durable::log_through(2))),
        "{effects:?}"
    );
    assert_eq!((f.commit_index, f.log().last_index()), (2, 2));
    assert_eq!(f.kv, source.log().replay_through(2));

    // Later: the follower has applied through 3; the same snapshot again changes nothing.
    let mut ahead = compacted(&cfg, 3, 1, 1);
    let before = ahead.clone();
    let effects = deliver(&cfg, 1, &mut ahead, 0, install(1, 0, &source));
    assert_eq!(
        effects,
        vec![
            Effect::SetTimer(Timer::Election),
            send_when(0, ack(1, 2), Durable::log_through(2))
        ]
    );
    assert_eq!(ahead.log(), before.log());
    assert_eq!(ahead.kv, before.kv);
}

/// Figure 13, steps 6 and 7: a log that holds the snapshot's last entry keeps what follows it;
/// one that does not (its entry there is of another term) is discarded whole, so no suffix of
/// another history survives behind the snapshot.
#[test]
fn install_keeps_a_matching_suffix_and_discards_a_conflicting_log() {
    let cfg = cluster(3);
    let source = compacted(&cfg, 3, 2, 2); // snapshot through 2, entries of term 1

    let mut matching = follower(2, Log::from_entries((1..=4).map(|i| put(1, i, "k", "v"))));
    deliver(&cfg, 1, &mut matching, 0, install(2, 0, &source));
    assert_eq!(matching.log().snapshot_index(), 2);
    assert_eq!(
        matching.log().last_index(),
        4,
        "entries 3 and 4 follow the snapshot's last"
    );

    let mut conflicting = follower(2, log(&[1, 2, 2, 2])); // its entry 2 is of term 2
    deliver(&cfg, 1, &mut conflicting, 0, install(2, 0, &source));
    assert_eq!(conflicting.log().snapshot_index(), 2);
    assert_eq!(
        conflicting.log().last_index(),
        2,
        "nothing of the other history stays"
    );
}
