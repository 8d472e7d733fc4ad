//! Leader election (§5.2, §5.4.1): the election timer, RequestVote on both ends, vote counting.

use super::message::Msg;
use super::rules;
use super::state::Role;
use super::step::Step;
use super::types::LogId;
use stateright::actor::Id;

impl Step<'_, '_> {
    /// Followers and candidates: no leader heard from in time, so campaign (§5.2).
    pub(super) fn on_election_timeout(&mut self) {
        let st = self.st();
        let is_candidate = matches!(st.role, Role::Candidate { .. });
        if !st.is_leader() && rules::campaigns(self.cfg, is_candidate) {
            self.become_candidate();
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
        if let Role::Candidate { votes } = &self.st().role
            && rules::wins(self.cfg, votes.len())
        {
            self.become_leader();
        }
    }
}
