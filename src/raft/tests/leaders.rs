//! Figure 2, "Rules for Servers: Leaders" (§5.2, §5.3, §5.4.2), and the client interface (§8).

use super::*;
use crate::kv::Session;
use crate::raft::OpResult;

fn client_put(seq: u64, key: &str, value: &str) -> Msg {
    Msg::ClientRequest {
        client_id: 10,
        seq,
        op: Op::Put {
            key: key.into(),
            value: value.into(),
        },
    }
}

/// Leaders, 1: during idle periods the heartbeat repeats AppendEntries to every follower,
/// re-sending whatever it has not acknowledged.
#[test]
fn the_heartbeat_resends_what_is_unacknowledged() {
    let cfg = cluster(3);
    let mut s0 = leader(&cfg, 0, 2, log(&[1, 2]), at(3, 1));
    let (effects, changed) = step(&cfg, 0, &mut s0, Input::Timeout(Timer::Heartbeat));
    let resend = append(2, 0, (1, 1), vec![noop(2)], 0);
    assert_eq!(
        effects,
        vec![
            send_append(1, resend.clone()),
            send_append(2, resend),
            Effect::SetTimer(Timer::Heartbeat)
        ]
    );
    assert!(!changed);
}

/// A follower that lost what was pipelined to it (it was down) is caught up at the pace of
/// its answers: the heartbeat re-sends from matchIndex, and the next send continues after what
/// the heartbeat carried rather than after what was lost.
#[test]
fn after_a_heartbeat_resend_each_answer_sends_on() {
    let cfg = cluster(2);
    let terms = [1; 20];
    let mut s0 = leader(&cfg, 0, 1, log(&terms), at(21, 2));
    s0.commit_index = 20;
    let (effects, _) = step(&cfg, 0, &mut s0, Input::Timeout(Timer::Heartbeat));
    let first = append(1, 0, (2, 1), vec![noop(1); 8], 20);
    assert_eq!(effects[0], send_append(1, first));
    assert_eq!(s0.progress.get(id(1)), Some(at(11, 2)));
    let effects = deliver(&cfg, 0, &mut s0, 1, ack(1, 10));
    let next = append(1, 0, (10, 1), vec![noop(1); 8], 20);
    assert_eq!(effects, vec![send_append(1, next)]);
    assert_eq!(s0.progress.get(id(1)), Some(at(19, 10)));
}

/// Leaders, 2 (and §8): a client's command is appended, saved and sent to the followers; the
/// answer goes only once the entry is committed and applied.
#[test]
fn a_command_is_answered_only_once_applied() {
    let cfg = cluster(3);
    let mut s0 = leader(&cfg, 0, 1, log(&[1]), at(2, 1));
    s0.commit_index = 1;
    let effects = deliver(&cfg, 0, &mut s0, 10, client_put(1, "x", "a"));
    let replicate = append(1, 0, (1, 1), vec![put(1, 1, "x", "a")], 1);
    assert_eq!(
        effects,
        vec![
            Effect::Save,
            send_append(1, replicate.clone()),
            send_append(2, replicate)
        ]
    );
    assert_eq!(s0.commit_index, 1, "one copy is no majority");

    // A follower's durable copy and the leader's own, not yet durable, are no majority.
    let effects = deliver(&cfg, 0, &mut s0, 1, ack(1, 2));
    assert_eq!(effects, vec![]);
    assert_eq!(s0.commit_index, 1, "the leader's copy is not durable yet");
    let (effects, _) = step(&cfg, 0, &mut s0, Input::Synced { log_through: 2 });
    assert_eq!(effects, vec![send(10, ok(1, OpResult::Done))]);
    assert_eq!(s0.commit_index, 2);
    assert_eq!(s0.progress.get(id(1)), Some(at(3, 2)));
}

/// Leaders, 3: a rejection moves nextIndex back (here past the follower's whole conflicting
/// term, §5.3) and the entries from there go at once; the leader's own log never changes
/// (Leader Append-Only).
#[test]
fn a_rejection_moves_next_index_back_and_retries() {
    let cfg = cluster(3);
    let mut s0 = leader(&cfg, 0, 3, log(&[1, 1, 3, 3]), at(5, 0));
    let hint = Conflict {
        term: Some(2),
        index: 3,
    };
    let effects = deliver(&cfg, 0, &mut s0, 1, reject(3, Some(hint)));
    assert_eq!(
        effects,
        vec![send_append(
            1,
            append(3, 0, (2, 1), vec![noop(3), noop(3)], 0)
        )]
    );
    assert_eq!(s0.log(), &log(&[1, 1, 3, 3]));
    assert_eq!(s0.progress.get(id(1)), Some(at(5, 0)), "pipelined again");

    // A shorter follower log: back to its end.
    let short = Conflict {
        term: None,
        index: 2,
    };
    let effects = deliver(&cfg, 0, &mut s0, 2, reject(3, Some(short)));
    let from_2 = append(3, 0, (1, 1), vec![noop(1), noop(3), noop(3)], 0);
    assert_eq!(effects, vec![send_append(2, from_2)]);
}

/// A rejection that asks for entries the follower already acknowledged is stale (or the
/// follower lost its disk): nothing moves and nothing is resent, so a lost follower cannot
/// draw one AppendEntries per rejection; heartbeats still go to it. A follower holding fewer
/// entries than it acknowledged is reported to the host, which tells a lost disk from a
/// stale answer by how many come in a row.
#[test]
fn a_rejection_below_match_index_moves_nothing_and_sends_nothing() {
    let cfg = cluster(3);
    let mut s0 = leader(&cfg, 0, 3, log(&[1, 1, 3, 3]), at(5, 3));
    let lost = Conflict {
        term: None,
        index: 1,
    };
    let effects = deliver(&cfg, 0, &mut s0, 1, reject(3, Some(lost)));
    let reported = crate::raft::Refusal::FollowerLostEntries {
        follower: id(1),
        holds: 0,
        acknowledged: 3,
    };
    assert_eq!(effects, vec![Effect::Refused(reported)]);
    assert_eq!(s0.progress.get(id(1)), Some(at(5, 3)));
    assert_eq!(s0.log(), &log(&[1, 1, 3, 3]));

    // A conflicting term below matchIndex is stale: the follower held those entries.
    let stale = Conflict {
        term: Some(1),
        index: 1,
    };
    let effects = deliver(&cfg, 0, &mut s0, 1, reject(3, Some(stale)));
    assert_eq!(effects, vec![]);
}

/// Leaders, 4, and §5.4.2 (Figure 8): an entry of an earlier term is never committed by
/// counting its replicas; it commits when an entry of the leader's own term after it does.
#[test]
fn only_entries_of_the_leaders_term_commit_by_counting() {
    let cfg = cluster(3);
    let mut s0 = leader(&cfg, 0, 3, log(&[1, 2, 3]), at(4, 0));
    let (effects, _) = step(&cfg, 0, &mut s0, Input::Msg(id(1), ack(3, 2)));
    assert_eq!(effects, vec![]);
    assert_eq!(
        s0.commit_index, 0,
        "index 2 is of term 2: held by a majority, not committed"
    );
    deliver(&cfg, 0, &mut s0, 1, ack(3, 3));
    assert_eq!(s0.commit_index, 3);
}

/// Rules for all servers: an acknowledgement from an earlier term answers a request of an
/// earlier reign, and is ignored.
#[test]
fn an_acknowledgement_of_an_earlier_term_is_ignored() {
    let cfg = cluster(3);
    let mut s0 = leader(&cfg, 0, 3, log(&[1, 3]), at(3, 0));
    let (effects, changed) = step(&cfg, 0, &mut s0, Input::Msg(id(1), ack(2, 2)));
    assert_eq!((effects, changed), (vec![], false));
}

/// Figure 2, rules for leaders (nextIndex and matchIndex are reinitialised after election):
/// a server that led before starts its new reign from nothing it knew then.
#[test]
fn a_new_reign_starts_from_fresh_progress() {
    let cfg = cluster(3);
    let mut s0 = leader(&cfg, 0, 1, log(&[1, 1]), at(3, 2));
    deliver(&cfg, 0, &mut s0, 1, request_vote(2, 1, 0, 0)); // steps down, refuses
    assert!(s0.progress.is_empty());
    step(&cfg, 0, &mut s0, Input::Timeout(Timer::Election));
    deliver(&cfg, 0, &mut s0, 2, vote(3, true));
    assert!(s0.is_leader());
    // nextIndex = 3 (after its two entries), then the no-op went out: 4. matchIndex = 0.
    assert_eq!(s0.progress.get(id(1)), Some(at(4, 0)));
}

/// §8: only the leader takes commands; a follower names the leader it knows, a candidate
/// none.
#[test]
fn a_server_that_does_not_lead_says_so_and_names_the_leader() {
    let cfg = cluster(3);
    let mut s1 = follower(2, log(&[]));
    s1.role = Role::Follower {
        leader: Some(id(0)),
    };
    let not_leader = |hint: Option<usize>| Msg::ClientResponse {
        seq: 1,
        reply: Reply::NotLeader {
            leader_hint: hint.map(id),
        },
    };
    let (effects, changed) = step(
        &cfg,
        1,
        &mut s1,
        Input::Msg(id(10), client_put(1, "x", "a")),
    );
    assert_eq!(
        (effects, changed),
        (vec![send(10, not_leader(Some(0)))], false)
    );
    let mut s2 = candidate(2, 2, log(&[]));
    let effects = deliver(&cfg, 2, &mut s2, 10, client_put(1, "x", "a"));
    assert_eq!(effects, vec![send(10, not_leader(None))]);
}

/// §8: a retried command (same client id and sequence number) is applied once; an applied one
/// gets its first answer again, and one still in the log is not appended twice.
#[test]
fn a_retried_command_applies_once() {
    let cfg = cluster(3);
    let mut s0 = leader(&cfg, 0, 1, log(&[1]), at(2, 1));
    s0.commit_index = 1;
    s0.kv.sessions.insert(
        10,
        Session {
            seq: 1,
            result: OpResult::Done,
        },
    );
    let (effects, changed) = step(
        &cfg,
        0,
        &mut s0,
        Input::Msg(id(10), client_put(1, "x", "a")),
    );
    assert_eq!(
        (effects, changed),
        (vec![send(10, ok(1, OpResult::Done))], false)
    );

    deliver(&cfg, 0, &mut s0, 10, client_put(2, "x", "b"));
    let (effects, changed) = step(
        &cfg,
        0,
        &mut s0,
        Input::Msg(id(10), client_put(2, "x", "b")),
    );
    assert_eq!((effects, changed), (vec![], false), "already in the log");
    assert_eq!(s0.log().len(), 2);
}

/// Leaders, 4, with the leader's own copy not yet durable: the followers' durable copies make
/// a majority on their own, and the answer needs nothing more on disk.
#[test]
fn followers_durable_copies_commit_without_the_leaders_own() {
    let cfg = cluster(3);
    let mut s0 = leader(&cfg, 0, 1, log(&[1]), at(2, 1));
    s0.commit_index = 1;
    deliver(&cfg, 0, &mut s0, 10, client_put(1, "x", "a"));
    assert_eq!(s0.log_synced, 1);
    assert!(deliver(&cfg, 0, &mut s0, 1, ack(1, 2)).is_empty());
    let effects = deliver(&cfg, 0, &mut s0, 2, ack(1, 2));
    assert_eq!(effects, vec![send(10, ok(1, OpResult::Done))]);
    assert_eq!(s0.commit_index, 2);
}

/// A follower's log replaced past what the disk reported durable: the replaced entries are no
/// longer known durable.
#[test]
fn replaced_entries_are_no_longer_known_durable() {
    let cfg = cluster(3);
    let mut s1 = follower(2, log(&[1, 1, 1]));
    assert_eq!(s1.log_synced, 3);
    deliver(&cfg, 1, &mut s1, 0, append(2, 0, (1, 1), vec![noop(2)], 0));
    assert_eq!(s1.log(), &log(&[1, 2]));
    assert_eq!(s1.log_synced, 1);
    let (effects, _) = step(&cfg, 1, &mut s1, Input::Synced { log_through: 2 });
    assert!(effects.is_empty());
    assert_eq!(s1.log_synced, 2);
}
