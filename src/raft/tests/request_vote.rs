//! Figure 2, "RequestVote RPC, receiver implementation" (§5.2, §5.4.1).

use super::*;

/// Figure 2, RequestVote receiver, step 1: reply false if term < currentTerm.
#[test]
fn a_request_of_an_earlier_term_is_refused() {
    let cfg = cluster(3);
    let mut s1 = follower(2, log(&[]));
    let (effects, changed) = step(
        &cfg,
        1,
        &mut s1,
        Input::Msg(id(0), request_vote(1, 0, 0, 0)),
    );
    assert_eq!(effects, vec![send(0, vote(2, false))]);
    assert!(!changed);
}

/// Figure 2, RequestVote receiver, step 2 (votedFor is null or candidateId) and §5.2: one
/// vote per term, saved before the answer leaves; a duplicate request gets the same answer.
#[test]
fn one_vote_per_term_saved_before_it_is_granted() {
    let cfg = cluster(3);
    let mut s1 = follower(1, log(&[]));
    let effects = deliver(&cfg, 1, &mut s1, 0, request_vote(1, 0, 0, 0));
    assert_eq!(
        effects,
        vec![
            Effect::Save,
            Effect::SetTimer(Timer::Election),
            send_when(0, vote(1, true), Durable::TERM_VOTE)
        ]
    );
    assert_eq!(s1.hard.voted_for, Some(id(0)));

    let (effects, changed) = step(
        &cfg,
        1,
        &mut s1,
        Input::Msg(id(2), request_vote(1, 2, 0, 0)),
    );
    assert_eq!(effects, vec![send(2, vote(1, false))], "a second candidate");
    assert!(!changed);

    let (effects, changed) = step(
        &cfg,
        1,
        &mut s1,
        Input::Msg(id(0), request_vote(1, 0, 0, 0)),
    );
    assert_eq!(
        effects,
        vec![
            Effect::SetTimer(Timer::Election),
            send_when(0, vote(1, true), Durable::TERM_VOTE)
        ],
        "a duplicate of the granted request"
    );
    assert!(!changed);
}

/// §5.1 and Figure 2, rules for all servers: a request of a later term first moves this
/// server to that term, forgetting its old vote, and is then judged in the new term.
#[test]
fn a_later_term_resets_the_vote_before_the_request_is_judged() {
    let cfg = cluster(3);
    let mut s1 = follower(1, log(&[]));
    s1.hard.voted_for = Some(id(2));
    let effects = deliver(&cfg, 1, &mut s1, 0, request_vote(2, 0, 0, 0));
    assert_eq!(
        effects,
        vec![
            Effect::Save,
            Effect::SetTimer(Timer::Election),
            send_when(0, vote(2, true), Durable::TERM_VOTE)
        ]
    );
    assert_eq!((s1.current_term(), s1.hard.voted_for), (2, Some(id(0))));
}

/// §5.4.1, the election restriction: a later last term wins whatever the length; with equal
/// last terms, the longer log wins. Both halves matter.
#[test]
fn votes_go_only_to_logs_at_least_as_up_to_date() {
    let cfg = cluster(3);
    let cases = [
        // (candidate's last index, last term, granted)
        (5, 1, false), // longer, but an earlier last term
        (1, 2, false), // same last term, shorter
        (2, 2, true),  // same last term, as long
        (1, 3, true),  // a later last term, shorter
    ];
    for (last_index, last_term, granted) in cases {
        let mut s1 = follower(2, log(&[1, 2]));
        let effects = deliver(
            &cfg,
            1,
            &mut s1,
            0,
            request_vote(3, 0, last_index, last_term),
        );
        let answer = effects.last().cloned();
        assert_eq!(
            answer,
            Some(if granted {
                send_when(0, vote(3, true), Durable::TERM_VOTE)
            } else {
                send(0, vote(3, false))
            }),
            "candidate's last entry {last_index}:{last_term}"
        );
        assert_eq!(s1.hard.voted_for, granted.then_some(id(0)));
    }
}
