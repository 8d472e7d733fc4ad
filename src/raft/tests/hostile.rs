//! Messages from a broken or hostile peer: any field may hold any value. A server never
//! panics, never lets its term wrap, and never acts on a message that contradicts itself.

use super::*;
use crate::raft::Refusal;
use proptest::prelude::*;

fn any_id() -> impl Strategy<Value = Id> {
    prop_oneof![(0usize..4).prop_map(id), any::<usize>().prop_map(Id::from)]
}

fn any_term() -> impl Strategy<Value = Term> {
    prop_oneof![0u64..6, Just(u64::MAX - 1), Just(u64::MAX), any::<u64>()]
}

fn any_index() -> impl Strategy<Value = Index> {
    prop_oneof![0u64..8, Just(u64::MAX), any::<u64>()]
}

fn any_msg() -> impl Strategy<Value = Msg> {
    let entries = proptest::collection::vec(any_term().prop_map(noop), 0..4);
    let conflict = proptest::option::of(
        (proptest::option::of(any_term()), any_index())
            .prop_map(|(term, index)| Conflict { term, index }),
    );
    prop_oneof![
        (any_term(), any_id(), any_index(), any_term(), any::<bool>()).prop_map(
            |(t, c, i, lt, transfer)| Msg::RequestVote {
                term: t,
                candidate_id: c,
                last_log_index: i,
                last_log_term: lt,
                transfer,
            }
        ),
        any_term().prop_map(|term| Msg::TimeoutNow { term }),
        any_id().prop_map(|target| Msg::TransferLeader { target }),
        (any_term(), any::<bool>()).prop_map(|(t, g)| vote(t, g)),
        (any_term(), any_id(), any_index(), any_term()).prop_map(|(t, c, i, lt)| {
            Msg::PreVote {
                term: t,
                candidate_id: c,
                last_log_index: i,
                last_log_term: lt,
            }
        }),
        (any_term(), any::<bool>()).prop_map(|(t, g)| Msg::PreVoteResponse {
            term: t,
            vote_granted: g
        }),
        (
            any_term(),
            any_id(),
            any_index(),
            any_term(),
            entries,
            any_index()
        )
            .prop_map(
                |(term, leader_id, prev_log_index, prev_log_term, entries, leader_commit)| {
                    Msg::AppendEntries {
                        term,
                        leader_id,
                        prev_log_index,
                        prev_log_term,
                        entries,
                        leader_commit,
                        read_round: 0,
                    }
                }
            ),
        (any_term(), any::<bool>(), any_index(), conflict).prop_map(|(t, s, m, c)| {
            Msg::AppendEntriesResponse {
                term: t,
                success: s,
                match_index: m,
                conflict: c,
                read_round: 0,
            }
        }),
    ]
}

fn any_server(cfg: &Config) -> impl Strategy<Value = ServerState> + use<> {
    let cfg = cfg.clone();
    (0usize..3, prop_oneof![1u64..4, Just(u64::MAX)]).prop_map(move |(kind, term)| {
        let l = log(&[1, 1]);
        match kind {
            0 => follower(term, l),
            1 => candidate(0, term, l),
            _ => leader(&cfg, 0, term, l, at(3, 0)),
        }
    })
}

proptest! {
    #[test]
    fn any_message_from_anyone_leaves_a_consistent_server(
        (mut state, msgs, from, extras) in (any_server(&cluster(3)), proptest::collection::vec(any_msg(), 1..6), 0usize..4, any::<bool>())
    ) {
        // With PreVote, CheckQuorum and ReadIndex on, or all off.
        let cfg = Config { pre_vote: extras, check_quorum: extras, read_index: extras, ..cluster(3) };
        for msg in msgs {
            let term_before = state.current_term();
            let (effects, changed) = step(&cfg, 0, &mut state, Input::Msg(id(from), msg.clone()));
            prop_assert!(state.current_term() >= term_before, "{msg:?}: the term went back");
            state.check_invariants();
            let refused = effects.iter().any(|e| matches!(e, Effect::Refused(_)));
            prop_assert!(!(refused && changed), "{msg:?}: refused, yet the state changed");
            // S3 is outside the configuration, and heard all the same: it may lead, or
            // campaign in, a configuration this server has not received yet (thesis §4.1).
        }
    }

    #[test]
    fn a_server_at_the_largest_term_refuses_to_campaign(log_terms in proptest::collection::vec(1u64..3, 0..3)) {
        let cfg = cluster(3);
        let mut log_terms = log_terms;
        log_terms.sort_unstable();
        let mut s0 = follower(u64::MAX, log(&log_terms));
        let (effects, changed) = step(&cfg, 0, &mut s0, Input::Timeout(Timer::Election));
        prop_assert_eq!(effects, vec![Effect::Refused(Refusal::TermExhausted)]);
        prop_assert!(!changed);
        prop_assert_eq!(cfg.term_after_timeout(id(0), &s0, Timer::Election), u64::MAX);
    }
}

/// The forged acknowledgement of an issue report: a follower "holds" index 1000 of a leader
/// whose log ends at 2. Believed, it would commit entries no majority holds.
#[test]
fn an_acknowledgement_past_the_leaders_log_is_refused() {
    let cfg = cluster(3);
    let p = at(3, 0);
    let mut s0 = leader(&cfg, 0, 2, log(&[1, 2]), p);
    let (effects, changed) = step(&cfg, 0, &mut s0, Input::Msg(id(1), ack(2, 1000)));
    let why = Refusal::AckBeyondLog {
        match_index: 1000,
        last_index: 2,
    };
    assert_eq!((effects, changed), (vec![Effect::Refused(why)], false));
    assert_eq!(s0.commit_index, 0);
}

/// An entry whose term is after the message's own term cannot come from that term's leader.
#[test]
fn an_entry_from_the_future_is_refused() {
    let cfg = cluster(3);
    let mut s1 = follower(2, log(&[1]));
    let msg = append(2, 0, (1, 1), vec![noop(1000)], 0);
    let (effects, changed) = step(&cfg, 1, &mut s1, Input::Msg(id(0), msg));
    assert!(matches!(
        effects[..],
        [Effect::Refused(Refusal::EntryAfterTerm { .. })]
    ));
    assert!(!changed);
    assert_eq!(s1.log(), &log(&[1]));
}
