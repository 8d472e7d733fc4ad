//! Leadership transfer (thesis §3.10): TransferLeader at the leader, TimeoutNow at the target,
//! and the transfer's RequestVote under CheckQuorum's lease (etcd's `campaignTransfer`).

use super::*;

fn with_both() -> Config {
    Config {
        pre_vote: true,
        check_quorum: true,
        ..cluster(3)
    }
}

fn transfer_to(target: usize) -> Msg {
    Msg::TransferLeader { target: id(target) }
}

/// S0 leading term 2 with log [1, 2]; S1 and S2 hold entry 1 only.
fn leader_ahead_of_followers(cfg: &Config) -> ServerState {
    let p = at(2, 1);
    leader(cfg, 0, 2, log(&[1, 2]), p)
}

fn transfer_request_vote(term: Term, candidate: usize, last_index: Index, last_term: Term) -> Msg {
    let Msg::RequestVote {
        term,
        candidate_id,
        last_log_index,
        last_log_term,
        ..
    } = request_vote(term, candidate, last_index, last_term)
    else {
        unreachable!("request_vote builds a RequestVote")
    };
    Msg::RequestVote {
        term,
        candidate_id,
        last_log_index,
        last_log_term,
        transfer: true,
    }
}

fn put_request(seq: u64) -> Msg {
    Msg::ClientRequest {
        client_id: 10,
        seq,
        op: Op::Put {
            key: "k".into(),
            value: "v".into(),
        },
    }
}

/// S1 following S0 in `term` with `log`, having heard from it just now.
fn leased_follower(cfg: &Config, term: Term, log: Log) -> ServerState {
    let mut s1 = follower(term, log);
    let last = (s1.log().last_index(), s1.log().last_term());
    deliver(cfg, 1, &mut s1, 0, append(term, 0, last, vec![], 0));
    assert!(s1.lease && s1.leader_hint(id(1)) == Some(id(0)));
    s1
}

/// The leader first brings a target that lacks entries up to date; TimeoutNow waits.
#[test]
fn a_transfer_to_a_target_behind_sends_it_the_missing_entries_first() {
    let cfg = cluster(3);
    let mut s0 = leader_ahead_of_followers(&cfg);
    let effects = deliver(&cfg, 0, &mut s0, 10, transfer_to(1));
    assert_eq!(
        effects,
        vec![
            Effect::SetTimer(Timer::Transfer),
            send_append(1, append(2, 0, (1, 1), vec![noop(2)], 0)),
        ]
    );
    let transfer = s0.transfer.expect("a transfer under way");
    assert_eq!((transfer.target, transfer.timeout_now_sent), (id(1), false));
}

/// Once the target acknowledges the leader's last index, TimeoutNow goes to it, once.
#[test]
fn timeout_now_goes_once_the_target_holds_the_whole_log() {
    let cfg = cluster(3);
    let mut s0 = leader_ahead_of_followers(&cfg);
    deliver(&cfg, 0, &mut s0, 10, transfer_to(1));
    let effects = deliver(&cfg, 0, &mut s0, 1, ack(2, 2));
    assert!(
        effects.contains(&send(1, Msg::TimeoutNow { term: 2 })),
        "{effects:?}"
    );
    assert!(s0.transfer.is_some_and(|t| t.timeout_now_sent));
    let again = deliver(&cfg, 0, &mut s0, 1, ack(2, 2));
    assert!(
        !again
            .iter()
            .any(|e| matches!(e, Effect::Send(_, Msg::TimeoutNow { .. }, _))),
        "a second TimeoutNow would start a second election: {again:?}"
    );
}

/// A target already up to date gets TimeoutNow at once.
#[test]
fn a_target_up_to_date_gets_timeout_now_at_once() {
    let cfg = cluster(3);
    let p = at(3, 2);
    let mut s0 = leader(&cfg, 0, 2, log(&[1, 2]), p);
    let effects = deliver(&cfg, 0, &mut s0, 10, transfer_to(2));
    assert_eq!(
        effects,
        vec![
            Effect::SetTimer(Timer::Transfer),
            send(2, Msg::TimeoutNow { term: 2 }),
        ]
    );
}

/// While transferring the leader takes no writes (answered "not leader", no hint); when the
/// transfer times out it takes them again.
#[test]
fn writes_wait_out_the_transfer_and_resume_when_it_is_abandoned() {
    let cfg = cluster(3);
    let mut s0 = leader_ahead_of_followers(&cfg);
    deliver(&cfg, 0, &mut s0, 10, transfer_to(1));
    let effects = deliver(&cfg, 0, &mut s0, 10, put_request(1));
    let not_leader = Msg::ClientResponse {
        seq: 1,
        reply: Reply::NotLeader { leader_hint: None },
    };
    assert_eq!(effects, vec![send(10, not_leader)]);
    assert_eq!(s0.log().last_index(), 2, "nothing appended");
    let (effects, changed) = step(&cfg, 0, &mut s0, Input::Timeout(Timer::Transfer));
    assert!(effects.is_empty() && changed && s0.transfer.is_none());
    deliver(&cfg, 0, &mut s0, 10, put_request(1));
    assert_eq!(s0.log().last_index(), 3, "the write is taken again");
}

/// A follower answers a transfer request "not leader", naming the leader it knows.
#[test]
fn a_follower_points_a_transfer_request_at_its_leader() {
    let cfg = cluster(3);
    let mut s1 = follower(2, log(&[1]));
    deliver(&cfg, 1, &mut s1, 0, append(2, 0, (1, 1), vec![], 0));
    let effects = deliver(&cfg, 1, &mut s1, 10, transfer_to(2));
    let hint = Msg::ClientResponse {
        seq: 0,
        reply: Reply::NotLeader {
            leader_hint: Some(id(0)),
        },
    };
    assert_eq!(effects, vec![send(10, hint)]);
}

/// A transfer to a server outside the cluster is refused, and changes nothing.
#[test]
fn a_transfer_to_a_non_member_is_refused() {
    let cfg = cluster(3);
    let mut s0 = leader_ahead_of_followers(&cfg);
    let (effects, changed) = step(&cfg, 0, &mut s0, Input::Msg(id(10), transfer_to(7)));
    assert_eq!(
        effects,
        vec![Effect::Refused(crate::raft::Refusal::TransferToNonMember {
            target: id(7)
        })]
    );
    assert!(!changed);
}

/// TimeoutNow from its leader makes a follower campaign at once: a real election (no PreVote,
/// even with PreVote on) whose requests say it is a transfer.
#[test]
fn timeout_now_starts_a_real_election_at_once() {
    let cfg = with_both();
    let mut s1 = leased_follower(&cfg, 2, log(&[1, 2]));
    let effects = deliver(&cfg, 1, &mut s1, 0, Msg::TimeoutNow { term: 2 });
    let request = Msg::RequestVote {
        term: 3,
        candidate_id: id(1),
        last_log_index: 2,
        last_log_term: 2,
        transfer: true,
    };
    assert_eq!(
        effects,
        vec![
            Effect::Save,
            Effect::CancelTimer(Timer::Lease),
            Effect::SetTimer(Timer::Election),
            send_when(0, request.clone(), Durable::TERM_VOTE),
            send_when(2, request, Durable::TERM_VOTE),
        ]
    );
    assert!(matches!(s1.role, Role::Candidate { .. }));
    assert_eq!((s1.current_term(), s1.hard.voted_for), (3, Some(id(1))));
}

/// TimeoutNow from a server this one does not follow changes nothing.
#[test]
fn timeout_now_from_another_than_the_leader_is_ignored() {
    let cfg = with_both();
    let mut s1 = leased_follower(&cfg, 2, log(&[1, 2]));
    let (effects, changed) = step(
        &cfg,
        1,
        &mut s1,
        Input::Msg(id(2), Msg::TimeoutNow { term: 2 }),
    );
    assert!(effects.is_empty() && !changed, "{effects:?}");
}

/// Under CheckQuorum's lease a follower ignores an ordinary RequestVote of a later term, but
/// answers a transfer's: the leader itself asked for that election.
#[test]
fn a_leased_follower_answers_a_transfer_request_vote() {
    let cfg = with_both();
    let mut s2 = leased_follower(&cfg, 2, log(&[1, 2]));
    let plain = request_vote(3, 1, 2, 2);
    let (effects, changed) = step(&cfg, 2, &mut s2, Input::Msg(id(1), plain));
    assert!(effects.is_empty() && !changed, "{effects:?}");
    let transfer = transfer_request_vote(3, 1, 2, 2);
    let effects = deliver(&cfg, 2, &mut s2, 1, transfer);
    assert!(
        effects.contains(&send_when(1, vote(3, true), Durable::TERM_VOTE)),
        "{effects:?}"
    );
    assert_eq!((s2.current_term(), s2.hard.voted_for), (3, Some(id(1))));
}

/// The transferring leader, under CheckQuorum, steps down for the transfer's RequestVote,
/// votes for the target, and forgets its transfer.
#[test]
fn the_old_leader_steps_down_and_votes_for_the_target() {
    let cfg = with_both();
    let p = Progress {
        next_index: 3,
        match_index: 2,
        recent_active: true,
        read_ack: 0,
    };
    let mut s0 = leader(&cfg, 0, 2, log(&[1, 2]), p);
    deliver(&cfg, 0, &mut s0, 10, transfer_to(1));
    let transfer = transfer_request_vote(3, 1, 2, 2);
    let effects = deliver(&cfg, 0, &mut s0, 1, transfer);
    assert!(
        effects.contains(&Effect::CancelTimer(Timer::Transfer)),
        "{effects:?}"
    );
    assert!(
        effects.contains(&send_when(1, vote(3, true), Durable::TERM_VOTE)),
        "{effects:?}"
    );
    assert!(!s0.is_leader() && s0.transfer.is_none());
}
