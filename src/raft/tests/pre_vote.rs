//! PreVote (thesis §9.6) and CheckQuorum with its lease (thesis §6.2, §4.2.3), and the ways
//! the two interact (etcd PR 8334, hashicorp/raft 606 and 609).

use super::*;

fn with_both() -> Config {
    Config {
        pre_vote: true,
        check_quorum: true,
        ..cluster(3)
    }
}

fn pre_vote(term: Term, candidate: usize, last_index: Index, last_term: Term) -> Msg {
    Msg::PreVote {
        term,
        candidate_id: id(candidate),
        last_log_index: last_index,
        last_log_term: last_term,
    }
}

fn pre_vote_reply(term: Term, granted: bool) -> Msg {
    Msg::PreVoteResponse {
        term,
        vote_granted: granted,
    }
}

/// S1 following S0 in `term`, having heard from it just now.
fn leased_follower(cfg: &Config, term: Term) -> ServerState {
    let mut s1 = follower(term, log(&[]));
    deliver(cfg, 1, &mut s1, 0, append(term, 0, (0, 0), vec![], 0));
    assert!(s1.lease);
    s1
}

/// An election timeout asks first: no term, no vote, nothing saved.
#[test]
fn an_election_timeout_asks_for_pre_votes_without_raising_the_term() {
    let cfg = with_both();
    let mut s0 = follower(3, log(&[1, 3]));
    let (effects, _) = step(&cfg, 0, &mut s0, Input::Timeout(Timer::Election));
    assert_eq!(
        effects,
        vec![
            Effect::SetTimer(Timer::Election),
            send(1, pre_vote(4, 0, 2, 3)),
            send(2, pre_vote(4, 0, 2, 3)),
        ]
    );
    assert_eq!((s0.current_term(), s0.hard.voted_for), (3, None));
    assert!(matches!(s0.role, Role::PreCandidate { .. }));
}

/// A pre-vote of a later term is answered in that term, and changes nothing at the voter: not
/// its term, not its vote, not its election timer (hashicorp/raft 609).
#[test]
fn a_pre_vote_moves_no_term_and_resets_no_timer() {
    let cfg = with_both();
    let mut s1 = follower(3, log(&[1]));
    let (effects, changed) = step(&cfg, 1, &mut s1, Input::Msg(id(0), pre_vote(4, 0, 1, 1)));
    assert_eq!(effects, vec![send(0, pre_vote_reply(4, true))]);
    assert!(!changed);
    let (effects, _) = step(&cfg, 1, &mut s1, Input::Msg(id(0), pre_vote(4, 0, 0, 0)));
    assert_eq!(
        effects,
        vec![send(0, pre_vote_reply(3, false))],
        "log behind"
    );
}

/// A pre-vote of an earlier term is refused in the current term, so that its sender learns it
/// (otherwise a server behind on terms could never be elected).
#[test]
fn a_pre_vote_of_an_earlier_term_is_refused_in_the_current_term() {
    let cfg = with_both();
    let mut s1 = follower(5, log(&[]));
    let effects = deliver(&cfg, 1, &mut s1, 0, pre_vote(3, 0, 0, 0));
    assert_eq!(effects, vec![send(0, pre_vote_reply(5, false))]);
    let mut s0 = follower(2, log(&[]));
    step(&cfg, 0, &mut s0, Input::Timeout(Timer::Election));
    deliver(&cfg, 0, &mut s0, 1, pre_vote_reply(5, false));
    assert_eq!(s0.current_term(), 5);
    assert_eq!(s0.role, Role::Follower { leader: None });
}

/// A majority of pre-votes for the next term starts the real election in that term.
#[test]
fn a_majority_of_pre_votes_starts_the_election() {
    let cfg = with_both();
    let mut s0 = follower(3, log(&[]));
    step(&cfg, 0, &mut s0, Input::Timeout(Timer::Election));
    let stale = deliver(&cfg, 0, &mut s0, 1, pre_vote_reply(3, true));
    assert!(stale.is_empty(), "a granted pre-vote of another term");
    let effects = deliver(&cfg, 0, &mut s0, 1, pre_vote_reply(4, true));
    assert_eq!(effects[0], Effect::Save);
    assert!(effects.contains(&send_when(2, request_vote(4, 0, 0, 0), Durable::TERM_VOTE)));
    assert_eq!(s0.current_term(), 4);
    assert!(matches!(s0.role, Role::Candidate { .. }));
}

/// The lease: a follower that heard from its leader within the minimum election timeout
/// ignores (pre-)votes of later terms altogether; once the lease runs out, it answers.
#[test]
fn a_follower_under_lease_ignores_requests_for_votes() {
    let cfg = with_both();
    let mut s1 = leased_follower(&cfg, 2);
    for request in [pre_vote(3, 2, 5, 2), request_vote(3, 2, 5, 2)] {
        let (effects, changed) = step(&cfg, 1, &mut s1, Input::Msg(id(2), request));
        assert!(effects.is_empty() && !changed, "{effects:?}");
    }
    let (effects, _) = step(&cfg, 1, &mut s1, Input::Timeout(Timer::Lease));
    assert!(effects.is_empty());
    assert!(!s1.lease);
    let effects = deliver(&cfg, 1, &mut s1, 2, pre_vote(3, 2, 5, 2));
    assert_eq!(effects, vec![send(2, pre_vote_reply(3, true))]);
}

/// A pre-candidate knows no leader, so it holds no lease and does not refuse another's pre-vote
/// on a leader's behalf (etcd PR 8334).
#[test]
fn a_pre_candidate_holds_no_lease() {
    let cfg = with_both();
    let mut s1 = leased_follower(&cfg, 2);
    let (effects, _) = step(&cfg, 1, &mut s1, Input::Timeout(Timer::Election));
    assert!(effects.contains(&Effect::CancelTimer(Timer::Lease)));
    assert!(!s1.lease);
    let effects = deliver(&cfg, 1, &mut s1, 2, pre_vote(3, 2, 0, 0));
    assert_eq!(effects, vec![send(2, pre_vote_reply(3, true))]);
}

/// With CheckQuorum a leader also ignores requests for votes of later terms: a server that
/// cannot hear it cannot depose it. Without CheckQuorum it steps down as Figure 2 says.
#[test]
fn a_leader_with_check_quorum_ignores_requests_for_votes() {
    let p = Progress::new(1);
    let cfg = with_both();
    let mut s0 = leader(&cfg, 0, 1, log(&[1]), p);
    let (effects, changed) = step(
        &cfg,
        0,
        &mut s0,
        Input::Msg(id(1), request_vote(2, 1, 1, 1)),
    );
    assert!(effects.is_empty() && !changed);
    let plain = cluster(3);
    let mut s0 = leader(&plain, 0, 1, log(&[1]), p);
    deliver(&plain, 0, &mut s0, 1, request_vote(2, 1, 1, 1));
    assert_eq!(s0.current_term(), 2);
    assert!(!s0.is_leader());
}

/// CheckQuorum: a leader that heard from no majority since its last count steps down; one that
/// did counts afresh.
#[test]
fn a_leader_that_hears_no_majority_steps_down() {
    let cfg = with_both();
    let mut s0 = leader(&cfg, 0, 1, log(&[1]), Progress::new(1));
    deliver(&cfg, 0, &mut s0, 1, ack(1, 1));
    let (effects, _) = step(&cfg, 0, &mut s0, Input::Timeout(Timer::CheckQuorum));
    assert_eq!(effects, vec![Effect::SetTimer(Timer::CheckQuorum)]);
    assert!(s0.is_leader());
    assert_eq!(s0.progress.active(), 0, "the next count starts afresh");
    let (effects, _) = step(&cfg, 0, &mut s0, Input::Timeout(Timer::CheckQuorum));
    assert_eq!(
        effects,
        vec![
            Effect::CancelTimer(Timer::Heartbeat),
            Effect::CancelTimer(Timer::CheckQuorum),
            Effect::SetTimer(Timer::Election),
        ]
    );
    assert_eq!(s0.role, Role::Follower { leader: None });
    assert_eq!(s0.current_term(), 1, "stepping down raises no term");
}

/// A stale leader's AppendEntries is refused with the later term even under CheckQuorum, so a
/// server whose term ran ahead (before PreVote, or by a lost election) can rejoin.
#[test]
fn an_append_of_an_earlier_term_is_refused_with_the_later_term() {
    let cfg = with_both();
    let mut s1 = follower(4, log(&[]));
    let effects = deliver(&cfg, 1, &mut s1, 0, append(3, 0, (0, 0), vec![], 0));
    assert_eq!(effects, vec![send(0, reject(4, None))]);
}
