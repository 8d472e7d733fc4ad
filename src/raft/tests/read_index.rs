//! ReadIndex reads (thesis §6.4): a Get answered without a log entry, once the leader has
//! confirmed its leadership after the read arrived and applied through the read's index.

use super::*;
use crate::raft::{Mutant, OpResult};

fn reading() -> Config {
    Config {
        read_index: true,
        ..cluster(3)
    }
}

fn get(seq: u64) -> Msg {
    Msg::ClientRequest {
        client_id: 10,
        seq,
        op: Op::Get { key: "x".into() },
    }
}

fn heartbeat_ack(term: Term, match_index: Index, read_round: u64) -> Msg {
    Msg::AppendEntriesResponse {
        term,
        success: true,
        match_index,
        conflict: None,
        read_round,
    }
}

/// S0 leading term 2 with a committed no-op of its term and x=a applied.
fn leader_with_x(cfg: &Config) -> ServerState {
    let p = at(3, 2);
    let mut s0 = leader(
        cfg,
        0,
        2,
        Log::from_entries([put(1, 1, "x", "a"), noop(2)]),
        p,
    );
    s0.commit_index = 2;
    s0.kv.apply(
        10,
        1,
        &Op::Put {
            key: "x".into(),
            value: "a".into(),
        },
    );
    s0
}

/// A Get starts a round of heartbeats and writes nothing; a majority's echo of the round
/// answers it from the state machine.
#[test]
fn a_read_is_answered_after_a_majority_echoes_its_round() {
    let cfg = reading();
    let mut s0 = leader_with_x(&cfg);
    let effects = deliver(&cfg, 0, &mut s0, 10, get(2));
    assert!(!effects.contains(&Effect::Save), "no log entry");
    assert_eq!(s0.log().last_index(), 2);
    for peer in [1, 2] {
        assert!(effects.iter().any(|e| matches!(e,
            Effect::Send(to, Msg::AppendEntries { read_round: 1, .. }, _) if *to == id(peer))));
    }
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::Send(_, Msg::ClientResponse { .. }, _)))
    );
    let stale = deliver(&cfg, 0, &mut s0, 1, heartbeat_ack(2, 2, 0));
    assert!(
        stale.is_empty(),
        "an echo of an earlier round confirms nothing: {stale:?}"
    );
    let effects = deliver(&cfg, 0, &mut s0, 1, heartbeat_ack(2, 2, 1));
    assert_eq!(
        effects,
        vec![send(10, ok(2, OpResult::Value(Some("a".into()))))]
    );
    assert!(s0.reads.is_empty());
}

/// A round is a question, not replication: each follower gets an empty AppendEntries at its
/// matchIndex that needs nothing durable, so neither the leader's fsync of entries still in
/// flight nor the follower's holds it up.
#[test]
fn a_read_round_stands_at_match_index_and_waits_for_no_fsync() {
    let cfg = reading();
    let mut s0 = leader_with_x(&cfg);
    s0.progress.set(id(1), at(4, 1)); // entries 2 and 3 sent, not yet acknowledged
    s0.hard.log = Log::from_entries([put(1, 1, "x", "a"), noop(2), put(2, 2, "y", "b")]);
    s0.log_synced = 2; // the leader's own copy of entry 3 is not yet durable
    let effects = deliver(&cfg, 0, &mut s0, 10, get(3));
    let round = |prev: (Index, Term)| {
        let mut m = append(2, 0, prev, vec![], 2);
        if let Msg::AppendEntries { read_round, .. } = &mut m {
            *read_round = 1;
        }
        m
    };
    assert_eq!(
        effects,
        vec![send(1, round((1, 1))), send(2, round((2, 2)))]
    );
}

/// Until a leader has committed an entry of its own term it cannot know the commit index is
/// current: the Get goes through the log.
#[test]
fn a_new_leader_reads_through_the_log_until_its_term_commits() {
    let cfg = reading();
    let mut s0 = leader_with_x(&cfg);
    s0.commit_index = 1;
    let effects = deliver(&cfg, 0, &mut s0, 10, get(2));
    assert_eq!(effects[0], Effect::Save);
    assert_eq!(s0.log().last_index(), 3);
    assert!(s0.reads.is_empty());
}

/// A follower echoes the round of the AppendEntries it answers.
#[test]
fn a_follower_echoes_the_read_round() {
    let cfg = reading();
    let mut s1 = follower(2, log(&[1, 2]));
    let mut heartbeat = append(2, 0, (2, 2), vec![], 2);
    if let Msg::AppendEntries { read_round, .. } = &mut heartbeat {
        *read_round = 7;
    }
    let effects = deliver(&cfg, 1, &mut s1, 0, heartbeat);
    assert!(
        effects.contains(&send_when(
            0,
            heartbeat_ack(2, 2, 7),
            Durable::log_through(2)
        )),
        "{effects:?}"
    );
}

/// The broken variant answers at once, without the round.
#[test]
fn stale_read_index_answers_without_a_round() {
    let cfg = Config {
        mutant: Some(Mutant::StaleReadIndex),
        ..reading()
    };
    let mut s0 = leader_with_x(&cfg);
    let effects = deliver(&cfg, 0, &mut s0, 10, get(2));
    assert_eq!(
        effects,
        vec![send(10, ok(2, OpResult::Value(Some("a".into()))))]
    );
}
