//! Figure 2, "Rules for Servers": all servers, followers and candidates (§5.1, §5.2), and
//! what survives a restart.

use super::*;
use crate::raft::OpResult;

/// §5.1, Figure 2 "Persistent state": a restart keeps currentTerm, votedFor and the log, and
/// rebuilds everything else (a follower that knows no leader and has committed nothing).
#[test]
fn a_restart_keeps_term_vote_and_log_and_forgets_the_rest() {
    let cfg = cluster(3);
    let hard = HardState {
        current_term: 4,
        voted_for: Some(id(2)),
        log: log(&[1, 3]),
    };
    let (state, effects) = cfg.start(Some(&hard));
    let mut seeded = hard.clone();
    seeded.log.seed_membership(cfg.initial_membership());
    assert_eq!(
        state,
        ServerState::restarted(seeded, &cfg.initial_membership())
    );
    assert_eq!(
        state.log().membership().map(|(_, m)| m),
        Some(&cfg.initial_membership())
    );
    assert_eq!(state.commit_index, 0);
    assert_eq!(state.role, Role::Follower { leader: None });
    assert_eq!(effects, vec![Effect::SetTimer(Timer::Election)]);
}

/// Rules for all servers, 1: committed entries are applied to the state machine in log
/// order.
#[test]
fn committed_entries_are_applied_in_log_order() {
    let cfg = cluster(3);
    let mut s1 = follower(1, log(&[]));
    let entries = vec![put(1, 1, "x", "a"), put(1, 2, "x", "b")];
    let effects = deliver(&cfg, 1, &mut s1, 0, append(1, 0, (0, 0), entries, 2));
    assert_eq!(
        effects,
        vec![
            Effect::Save,
            Effect::SetTimer(Timer::Election),
            send_when(0, ack(1, 2), Durable::log_through(2))
        ]
    );
    assert_eq!(s1.commit_index, 2);
    assert_eq!(s1.kv.data.get("x").map(String::as_str), Some("b"));
    let session = s1.kv.sessions.get(&10).expect("client 10's session");
    assert_eq!((session.seq, &session.result), (2, &OpResult::Done));
}

/// Rules for all servers, 2: an RPC request or response with a later term makes any server
/// (here a leader) adopt the term and become a follower; the new term is saved first.
#[test]
fn a_later_term_makes_a_leader_step_down() {
    let cfg = cluster(3);
    let p = at(3, 2);
    let mut s0 = leader(&cfg, 0, 2, log(&[1, 2]), p);
    let effects = deliver(&cfg, 0, &mut s0, 1, ack(3, 0));
    assert_eq!(
        effects,
        vec![
            Effect::Save,
            Effect::CancelTimer(Timer::Heartbeat),
            Effect::SetTimer(Timer::Election),
        ]
    );
    assert_eq!((s0.current_term(), s0.hard.voted_for), (3, None));
    assert_eq!(s0.role, Role::Follower { leader: None });
    assert!(s0.progress.is_empty(), "progress belongs to the old reign");
}

/// Followers (§5.2): an election timeout with no leader heard from makes a follower a
/// candidate. Candidates, 1: it increments its term, votes for itself (saved), resets its
/// election timer and asks every other server for its vote.
#[test]
fn an_election_timeout_starts_an_election() {
    let cfg = cluster(3);
    let mut s0 = follower(1, log(&[1]));
    let (effects, _) = step(&cfg, 0, &mut s0, Input::Timeout(Timer::Election));
    let request = request_vote(2, 0, 1, 1);
    assert_eq!(
        effects,
        vec![
            Effect::Save,
            Effect::SetTimer(Timer::Election),
            send_when(1, request.clone(), Durable::TERM_VOTE),
            send_when(2, request, Durable::TERM_VOTE),
        ]
    );
    assert_eq!((s0.current_term(), s0.hard.voted_for), (2, Some(id(0))));
    assert_eq!(
        s0.role,
        Role::Candidate {
            votes: BTreeSet::from([id(0)])
        }
    );
}

/// Candidates, 4: an election that times out (a split vote) starts a new one in the next
/// term, with the votes of the old one forgotten.
#[test]
fn a_candidate_whose_election_times_out_starts_another() {
    let cfg = cluster(5);
    let mut s0 = candidate(0, 2, log(&[]));
    deliver(&cfg, 0, &mut s0, 1, vote(2, true));
    let (effects, _) = step(&cfg, 0, &mut s0, Input::Timeout(Timer::Election));
    assert_eq!(effects.len(), 2 + 4, "save, timer, four requests");
    assert_eq!(s0.current_term(), 3);
    assert_eq!(
        s0.role,
        Role::Candidate {
            votes: BTreeSet::from([id(0)])
        }
    );
}

/// Candidates, 2: votes from a majority make a candidate leader. Figure 2 (rules for leaders)
/// and §8: it reinitialises nextIndex (last index + 1) and matchIndex (0), appends a no-op of
/// its term, and sends it to everyone at once (the first heartbeat).
#[test]
fn votes_from_a_majority_make_a_candidate_leader() {
    let cfg = cluster(3);
    let mut s0 = candidate(0, 2, log(&[1]));
    let effects = deliver(&cfg, 0, &mut s0, 1, vote(2, true));
    let announce = append(2, 0, (1, 1), vec![noop(2)], 0);
    assert_eq!(
        effects,
        vec![
            Effect::Save,
            Effect::CancelTimer(Timer::Election),
            Effect::SetTimer(Timer::Heartbeat),
            send_append(1, announce.clone()),
            send_append(2, announce),
        ]
    );
    assert!(s0.is_leader());
    assert_eq!(s0.log(), &log(&[1, 2]));
    for peer in [1, 2] {
        // nextIndex was 2 (last index + 1); the no-op is in flight, so the next send is 3.
        let expected = at(3, 0);
        assert_eq!(s0.progress.get(id(peer)), Some(expected));
    }
}

/// Candidates, 2, with a duplicating network: a vote counts once, a denial not at all, and a
/// vote granted in an earlier term (a stale reply) is ignored.
#[test]
fn a_vote_counts_once_and_only_in_its_own_term() {
    let cfg = cluster(5);
    let mut s0 = candidate(0, 3, log(&[]));
    deliver(&cfg, 0, &mut s0, 1, vote(3, true));
    let votes = s0.role.clone();
    for (from, msg) in [(1, vote(3, true)), (2, vote(2, true)), (3, vote(3, false))] {
        let (effects, changed) = step(&cfg, 0, &mut s0, Input::Msg(id(from), msg.clone()));
        assert_eq!((effects, changed), (vec![], false), "{msg:?} from S{from}");
    }
    assert_eq!(s0.role, votes);
}

/// Candidates, 3: an AppendEntries from the new leader of its term makes a candidate follow it.
#[test]
fn a_candidate_follows_the_new_leader_of_its_term() {
    let cfg = cluster(3);
    let mut s0 = candidate(0, 2, log(&[]));
    let effects = deliver(&cfg, 0, &mut s0, 1, append(2, 1, (0, 0), vec![], 0));
    assert_eq!(
        effects,
        vec![Effect::SetTimer(Timer::Election), send(1, ack(2, 0))]
    );
    assert_eq!(
        s0.role,
        Role::Follower {
            leader: Some(id(1))
        }
    );
}

/// The model checker skips, unbuilt, the election timeouts that would leave its term bound;
/// `term_after_timeout` must predict the handler exactly, for every role and variant.
#[test]
fn term_after_timeout_predicts_the_handler() {
    use crate::raft::Mutant;
    let variants = std::iter::once(None).chain(Mutant::ALL.into_iter().map(Some));
    for mutant in variants {
        for (pre_vote, check_quorum) in [(false, false), (true, true)] {
            let cfg = Config {
                mutant,
                pre_vote,
                check_quorum,
                ..cluster(3)
            };
            let p = at(2, 0);
            let states = [
                follower(1, log(&[1])),
                candidate(0, 2, log(&[])),
                leader(&cfg, 0, 2, log(&[2]), p),
                follower(u64::MAX, log(&[])),
            ];
            for state in states {
                for timer in [
                    Timer::Election,
                    Timer::Heartbeat,
                    Timer::CheckQuorum,
                    Timer::Lease,
                ] {
                    let mut next = state.clone();
                    step(&cfg, 0, &mut next, Input::Timeout(timer));
                    assert_eq!(
                        cfg.term_after_timeout(id(0), &state, timer),
                        next.current_term(),
                        "{timer:?} on a {} ({mutant:?})",
                        state.role.name()
                    );
                }
            }
        }
    }
}
