//! Leader election (§5.2, §5.4.1): the election timer, RequestVote on both ends, vote counting.

use super::config::Timer;
use super::message::Msg;
use super::rules;
use super::state::Role;
use super::step::Step;
use super::types::{LogId, Term};
use stateright::actor::Id;

impl Step<'_, '_> {
    /// Followers and candidates: no leader heard from in time, so campaign (§5.2), first
    /// asking whether it could win when PreVote is on.
    pub(super) fn on_election_timeout(&mut self) {
        let st = self.st();
        let voter = st.is_voter(self.id);
        if st.is_leader() || !rules::campaigns(self.cfg, st.is_candidate(), voter) {
            return;
        }
        if rules::pre_votes(self.cfg) {
            self.become_pre_candidate();
        } else {
            self.become_candidate(false);
        }
    }

    /// CheckQuorum at a leader: step down unless a majority was heard from since the last
    /// count; then count afresh.
    pub(super) fn on_check_quorum(&mut self) {
        let st = self.st();
        if !st.is_leader() || !self.cfg.check_quorum {
            return;
        }
        let heard: Vec<Id> = st.progress.active_ids().collect();
        if !rules::keeps_leading(self.cfg, &st.membership, self.id, &heard) {
            let term = st.current_term();
            return self.become_follower(term, None);
        }
        if st.progress.active() > 0 {
            self.st_mut().progress.reset_active();
        }
        self.set_timer(Timer::CheckQuorum);
    }

    /// The minimum election timeout passed without word from the leader: its lease ends.
    pub(super) fn on_lease_expired(&mut self) {
        if self.st().lease {
            self.st_mut().lease = false;
        }
    }

    /// PreVote, the receiver (thesis §9.6). The term is settled: the request is of this term
    /// or a later one, and this server holds no lease. Answers without changing anything.
    pub(super) fn handle_pre_vote(&mut self, candidate: Id, term: Term, last: LogId) {
        let st = self.st();
        let up_to_date = rules::candidate_up_to_date(self.cfg, st.log().last_id(), last);
        let knows_leader = st.leader_hint(self.id).is_some();
        let current = st.current_term();
        let grant = rules::would_vote(
            current,
            term,
            st.hard.voted_for,
            knows_leader,
            candidate,
            up_to_date,
        );
        let term = if grant { term } else { current };
        self.send(
            candidate,
            Msg::PreVoteResponse {
                term,
                vote_granted: grant,
            },
        );
    }

    /// A pre-vote granted for the next term, while this server is still asking.
    pub(super) fn count_pre_vote(&mut self, voter: Id, term: Term) {
        let st = self.st();
        let Role::PreCandidate { votes } = &st.role else {
            return;
        };
        if votes.contains(&voter) || Some(term) != st.current_term().checked_add(1) {
            return;
        }
        if let Role::PreCandidate { votes } = &mut self.st_mut().role {
            votes.insert(voter);
        }
        self.maybe_win_pre_vote();
    }

    /// PreVote: a majority would vote for this server, so it stands for election.
    pub(super) fn maybe_win_pre_vote(&mut self) {
        let st = self.st();
        if let Role::PreCandidate { votes } = &st.role
            && rules::wins(self.cfg, &st.membership, votes)
        {
            self.become_candidate(false);
        }
    }

    /// RequestVote RPC, receiver implementation (Figure 2; §5.2, §5.4.1). The term is
    /// already settled: the request is of this server's current term.
    pub(super) fn handle_request_vote(&mut self, candidate: Id, last: LogId) {
        let st = self.st();
        let voted_for = st.hard.voted_for;
        let can_vote = rules::may_vote_for(self.cfg, voted_for, candidate);
        let up_to_date = rules::candidate_up_to_date(self.cfg, st.log().last_id(), last);
        let grant = can_vote && up_to_date && !st.is_leader();
        if grant {
            if voted_for != Some(candidate) {
                self.st_mut().hard.voted_for = Some(candidate);
                self.persist();
            }
            self.reset_election_timer();
        }
        let term = self.st().current_term();
        let reply = Msg::RequestVoteResponse {
            term,
            vote_granted: grant,
        };
        if grant {
            self.send_when(candidate, reply, rules::vote_needs(self.cfg));
        } else {
            self.send(candidate, reply);
        }
    }

    /// A vote granted to this server's candidacy (stale replies never get here).
    pub(super) fn count_vote(&mut self, voter: Id) {
        let Role::Candidate { votes } = &self.st().role else {
            return;
        };
        if votes.contains(&voter) {
            return;
        }
        if let Role::Candidate { votes } = &mut self.st_mut().role {
            votes.insert(voter);
        }
        self.maybe_win_election();
    }

    /// Figure 2, candidates: votes from a majority of servers make this server leader.
    pub(super) fn maybe_win_election(&mut self) {
        let st = self.st();
        if let Role::Candidate { votes } = &st.role
            && rules::wins(self.cfg, &st.membership, votes)
        {
            self.become_leader();
        }
    }
}
