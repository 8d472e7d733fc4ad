//! Configuration changes (thesis §4.1): single-server changes as log entries, the own-term
//! commit rule, learners, a leader that removes itself, and servers outside the configuration
//! that must not campaign.

use super::*;
use crate::raft::{Change, ChangeRefused, Membership, Mutant};

fn members(voters: &[usize], learners: &[usize]) -> Membership {
    Membership {
        voters: voters.iter().map(|&i| id(i)).collect(),
        learners: learners.iter().map(|&i| id(i)).collect(),
    }
}

fn config(term: Term, m: Membership) -> Entry {
    Entry {
        term,
        command: Command::Membership(m),
    }
}

fn change(c: Change) -> Msg {
    Msg::ChangeMembership { change: c }
}

fn answer(outcome: Result<Index, ChangeRefused>, leader: Option<usize>) -> Msg {
    Msg::ChangeMembershipResponse {
        outcome,
        leader_hint: leader.map(id),
    }
}

/// S0 leading term 2 with log [1, 2], its no-op (index 2) committed on S1.
fn ready_leader(cfg: &Config) -> ServerState {
    let mut s0 = leader(cfg, 0, 2, log(&[1, 2]), at(3, 2));
    s0.commit_index = 2;
    s0.log_synced = 2;
    s0
}

/// The 2015 bug's rule: a leader that has not committed an entry of its own term refuses.
#[test]
fn a_leader_changes_the_configuration_only_once_an_entry_of_its_term_committed() {
    let cfg = cluster(3);
    let mut s0 = leader(&cfg, 0, 2, log(&[1, 2]), at(3, 0));
    s0.commit_index = 1;
    let effects = deliver(&cfg, 0, &mut s0, 10, change(Change::AddVoter(id(3))));
    let refused = Err(ChangeRefused::LeaderNotReady);
    assert_eq!(effects, vec![send(10, answer(refused, Some(0)))]);
    assert_eq!(s0.log().last_index(), 2);

    let broken = Config {
        mutant: Some(Mutant::ReconfigBeforeOwnTermCommit),
        ..cluster(3)
    };
    deliver(&broken, 0, &mut s0, 10, change(Change::AddVoter(id(3))));
    assert_eq!(s0.log().last_index(), 3, "the mutant appends at once");
}

/// §4.1: the new configuration is used as soon as it is appended: the new server is
/// replicated to, and counted in majorities, before the entry commits.
#[test]
fn an_appended_configuration_is_in_force_at_once() {
    let cfg = cluster(3);
    let mut s0 = ready_leader(&cfg);
    let effects = deliver(&cfg, 0, &mut s0, 10, change(Change::AddVoter(id(3))));
    let m = members(&[0, 1, 2, 3], &[]);
    assert_eq!(s0.log().get(3), Some(&config(2, m.clone())));
    assert_eq!(
        ((*s0.membership).clone(), s0.membership_index),
        (m.clone(), 3)
    );
    assert!(
        s0.progress.get(id(3)).is_some(),
        "the new server is tracked"
    );
    assert_eq!(effects[0], Effect::Save);
    assert_eq!(effects[1], send(10, answer(Ok(3), Some(0))));
    assert!(
        effects.contains(&send_append(3, append(2, 0, (2, 2), vec![config(2, m)], 2))),
        "{effects:?}"
    );
    // With 4 voters, S0 and S1 holding entry 3 are not a majority: it waits for a third.
    deliver(&cfg, 0, &mut s0, 1, ack(2, 3));
    step(&cfg, 0, &mut s0, Input::Synced { log_through: 3 });
    assert_eq!(s0.commit_index, 2);
    deliver(&cfg, 0, &mut s0, 3, ack(2, 3));
    assert_eq!(s0.commit_index, 3);
}

/// One change at a time: a second waits until the first commits.
#[test]
fn a_second_change_waits_until_the_first_commits() {
    let cfg = cluster(3);
    let mut s0 = ready_leader(&cfg);
    deliver(&cfg, 0, &mut s0, 10, change(Change::AddLearner(id(3))));
    let effects = deliver(&cfg, 0, &mut s0, 10, change(Change::Promote(id(3))));
    let refused = Err(ChangeRefused::InProgress);
    assert_eq!(effects, vec![send(10, answer(refused, Some(0)))]);
}

/// Changes that make no sense are refused by name; anyone but the leader says who leads.
#[test]
fn impossible_changes_are_refused_with_the_reason() {
    let cfg = cluster(3);
    let mut s0 = ready_leader(&cfg);
    for (c, why) in [
        (Change::AddVoter(id(1)), ChangeRefused::AlreadyMember(id(1))),
        (Change::Promote(id(1)), ChangeRefused::NotALearner(id(1))),
        (Change::Remove(id(7)), ChangeRefused::UnknownServer(id(7))),
    ] {
        let effects = deliver(&cfg, 0, &mut s0, 10, change(c));
        assert_eq!(effects, vec![send(10, answer(Err(why), Some(0)))]);
    }
    let mut s1 = follower(2, log(&[1, 2]));
    s1.role = Role::Follower {
        leader: Some(id(0)),
    };
    let effects = deliver(&cfg, 1, &mut s1, 10, change(Change::Remove(id(2))));
    let not_leader = Err(ChangeRefused::NotLeader);
    assert_eq!(effects, vec![send(10, answer(not_leader, Some(0)))]);
}

/// §4.1: a server uses the latest configuration in its log, committed or not, and a truncated
/// configuration entry takes its configuration with it.
#[test]
fn a_follower_uses_the_latest_configuration_and_reverts_when_it_is_cut() {
    let cfg = cluster(3);
    let mut s1 = follower(1, log(&[1]));
    let added = members(&[0, 1, 2, 3], &[]);
    deliver(
        &cfg,
        1,
        &mut s1,
        0,
        append(1, 0, (1, 1), vec![config(1, added.clone())], 0),
    );
    assert_eq!(((*s1.membership).clone(), s1.membership_index), (added, 2));
    // A leader of term 2 replaces entry 2.
    deliver(&cfg, 1, &mut s1, 2, append(2, 2, (1, 1), vec![noop(2)], 0));
    assert_eq!(
        ((*s1.membership).clone(), s1.membership_index),
        (cfg.initial_membership(), 0)
    );
}

/// Only voters campaign: a learner, or a server outside its configuration, stays quiet; the
/// `removed-server-disrupts` mutant campaigns anyway.
#[test]
fn a_server_that_is_not_a_voter_does_not_campaign() {
    let cfg = cluster(3);
    let learner = members(&[0, 1, 2], &[3]);
    let mut s3 = follower(1, Log::from_entries([noop(1), config(1, learner)]));
    let (effects, changed) = step(&cfg, 3, &mut s3, Input::Timeout(Timer::Election));
    assert!(effects.is_empty() && !changed, "{effects:?}");
    assert_eq!(cfg.term_after_timeout(id(3), &s3, Timer::Election), 1);

    let broken = Config {
        mutant: Some(Mutant::RemovedServerDisrupts),
        ..cluster(3)
    };
    step(&broken, 3, &mut s3, Input::Timeout(Timer::Election));
    assert_eq!(s3.current_term(), 2, "the mutant campaigns");
}

/// A vote from a server outside the candidate's configuration does not count.
#[test]
fn votes_count_only_from_voters() {
    let cfg = cluster(3);
    let mut s0 = candidate(0, 2, log(&[1]));
    deliver(&cfg, 0, &mut s0, 3, vote(2, true));
    assert!(!s0.is_leader());
    deliver(&cfg, 0, &mut s0, 1, vote(2, true));
    assert!(s0.is_leader());
}

/// §4.2.2: a leader that removes itself does not count itself toward the new configuration's
/// majority, and steps down once that configuration commits.
#[test]
fn a_leader_that_removes_itself_steps_down_once_the_removal_commits() {
    let cfg = cluster(3);
    let mut s0 = ready_leader(&cfg);
    deliver(&cfg, 0, &mut s0, 10, change(Change::Remove(id(0))));
    assert_eq!(*s0.membership, members(&[1, 2], &[]));
    assert!(s0.progress.get(id(0)).is_none());
    step(&cfg, 0, &mut s0, Input::Synced { log_through: 3 });
    deliver(&cfg, 0, &mut s0, 1, ack(2, 3));
    assert!(s0.is_leader(), "S1 alone is no majority of {{S1, S2}}");
    assert_eq!(s0.commit_index, 2);
    deliver(&cfg, 0, &mut s0, 2, ack(2, 3));
    assert_eq!(s0.commit_index, 3);
    assert_eq!(s0.role, Role::Follower { leader: None });
    let (effects, _) = step(&cfg, 0, &mut s0, Input::Timeout(Timer::Election));
    assert!(effects.is_empty(), "a removed server does not campaign");
}

/// §7: compaction keeps the configuration in the snapshot.
#[test]
fn compaction_keeps_the_configuration() {
    let cfg = cluster(3);
    let m = members(&[0, 1, 2], &[3]);
    let mut s1 = follower(
        1,
        Log::from_entries([noop(1), config(1, m.clone()), noop(1)]),
    );
    s1.commit_index = 3;
    step(&cfg, 1, &mut s1, Input::Compact(3));
    assert!(s1.log().is_empty());
    assert_eq!(s1.log().snapshot().membership, Some(m.clone()));
    assert_eq!(*s1.membership, m);
    let (restarted, _) = cfg.start(Some(&s1.hard));
    assert_eq!(
        *restarted.membership, m,
        "a restart takes it from the snapshot"
    );
}

/// The 2015 single-server change bug (Ongaro, raft-dev), played out with the
/// `reconfig-before-own-term-commit` mutant on 4 servers: S0 (term 1) removes S3 and S2 (term
/// 2) removes S0, each before committing an entry of its term. {S0, S1} is a majority of S0's
/// configuration and {S2, S3} of S2's: the second commits, and the first then elects S0 in
/// term 3 without the committed entry. The correct protocol refuses the first change.
#[test]
fn two_changes_before_own_term_commits_elect_a_leader_without_a_committed_entry() {
    let cfg = Config {
        mutant: Some(Mutant::ReconfigBeforeOwnTermCommit),
        ..cluster(4)
    };
    let mut s0 = leader(&cfg, 0, 1, log(&[1]), at(2, 0));
    let refused = deliver(
        &cluster(4),
        0,
        &mut s0.clone(),
        10,
        change(Change::Remove(id(3))),
    );
    assert_eq!(
        refused,
        vec![send(
            10,
            answer(Err(ChangeRefused::LeaderNotReady), Some(0))
        )]
    );
    deliver(&cfg, 0, &mut s0, 10, change(Change::Remove(id(3))));
    assert_eq!(*s0.membership, members(&[0, 1, 2], &[]));

    // S2 leads term 2 (votes of S1, S2, S3, whose logs are empty) and removes S0.
    let mut s2 = leader(&cfg, 2, 2, log(&[2]), at(2, 0));
    deliver(&cfg, 2, &mut s2, 10, change(Change::Remove(id(0))));
    let removed_s0 = members(&[1, 2, 3], &[]);
    assert_eq!(*s2.membership, removed_s0);
    let mut s3 = follower(2, Log::new());
    let entries = s2.log().entries_from(1, 2);
    deliver(&cfg, 3, &mut s3, 2, append(2, 2, (0, 0), entries, 0));
    step(&cfg, 2, &mut s2, Input::Synced { log_through: 2 });
    deliver(&cfg, 2, &mut s2, 3, ack(2, 2));
    assert_eq!(
        s2.commit_index, 2,
        "S2 and S3 are a majority of {{S1, S2, S3}}"
    );
    let committed = s2.log().get(2).cloned().unwrap();

    // S0 campaigns in term 3; S1 (term 2, empty log) grants; S0 and S1 are a majority of
    // S0's configuration.
    let mut s1 = follower(2, Log::new());
    s1.hard.voted_for = Some(id(2));
    let mut s0 = follower(1, s0.hard.log.clone());
    step(&cfg, 0, &mut s0, Input::Timeout(Timer::Election));
    assert_eq!(s0.current_term(), 2);
    step(&cfg, 0, &mut s0, Input::Timeout(Timer::Election));
    assert_eq!(s0.current_term(), 3);
    let effects = deliver(&cfg, 1, &mut s1, 0, request_vote(3, 0, 2, 1));
    assert!(effects.contains(&send_when(0, vote(3, true), Durable::TERM_VOTE)));
    deliver(&cfg, 0, &mut s0, 1, vote(3, true));
    assert!(
        s0.is_leader(),
        "elected by a majority of its own configuration"
    );
    assert_ne!(
        s0.log().get(2),
        Some(&committed),
        "Leader Completeness is broken: the leader of term 3 lacks entry 2, committed in term 2"
    );
}

/// §4.2.1: a learner is replicated to but does not count toward commit; promoted (a change
/// like any, once the first has committed), it does.
#[test]
fn a_learner_counts_toward_commit_only_once_promoted() {
    let cfg = Config {
        servers: vec![id(0), id(1)],
        ..cluster(2)
    };
    let mut s0 = leader(&cfg, 0, 2, log(&[1, 2]), at(3, 2));
    s0.commit_index = 2;
    s0.log_synced = 2;
    let effects = deliver(&cfg, 0, &mut s0, 10, change(Change::AddLearner(id(2))));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Send(to, Msg::AppendEntries { .. }, _) if *to == id(2)))
    );
    step(&cfg, 0, &mut s0, Input::Synced { log_through: 3 });
    deliver(&cfg, 0, &mut s0, 2, ack(2, 3));
    assert_eq!(s0.commit_index, 2, "a learner's copy does not count");
    deliver(&cfg, 0, &mut s0, 1, ack(2, 3));
    assert_eq!(s0.commit_index, 3);
    deliver(&cfg, 0, &mut s0, 10, change(Change::Promote(id(2))));
    assert_eq!(*s0.membership, members(&[0, 1, 2], &[]));
    step(&cfg, 0, &mut s0, Input::Synced { log_through: 4 });
    deliver(&cfg, 0, &mut s0, 2, ack(2, 4));
    assert_eq!(
        s0.commit_index, 4,
        "S0 and S2 are a majority of {{S0, S1, S2}}"
    );
}
