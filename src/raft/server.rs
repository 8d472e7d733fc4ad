//! A Raft server as a stateright [`Actor`]: Figure 2 of the Raft paper, event by event.
//!
//! Every handler is a pure function of (state, input) to (state, commands). A [`Step`] collects
//! the commands while the handler runs and emits them in one place, `Save` first, so no message
//! that depends on new persistent state can leave before that state is saved (§5.1, "Persist
//! before you speak"). Time only enters as the timers this actor sets; the runtime picks the
//! random election timeout from the range, the model checker collapses it.

use super::log::Log;
use super::message::{Conflict, Msg, Reply, Status};
use super::mutant::Mutant;
use super::progress::{Progress, quorum_index};
use super::types::{ClientId, Command, Entry, Index, LogId, Op, OpResult, Term};
use crate::kv::{Applied, KvStore};
use serde::{Deserialize, Serialize};
use stateright::actor::{Actor, Id, Out};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

/// Static configuration shared by every server of a cluster; identity comes from the `Id`
/// each handler receives, so servers are interchangeable (symmetry).
#[derive(Clone, Debug)]
pub struct Server {
    /// Every member of the cluster, this server included.
    pub servers: Vec<Id>,
    /// A follower that hears no leader within a random time in this range starts an election.
    pub election_timeout: Range<Duration>,
    /// How often an idle leader sends AppendEntries to assert itself.
    pub heartbeat: Duration,
    /// At most this many entries in one AppendEntries (keeps datagrams small).
    pub max_append_entries: usize,
    /// A deliberately broken variant, for checking the checker.
    pub mutant: Option<Mutant>,
}

/// The timers of the system (the model's clients share this type).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Timer {
    /// Followers and candidates: no leader heard from, start an election (§5.2).
    Election,
    /// Leaders: time to send AppendEntries to every follower.
    Heartbeat,
    /// Model clients: no answer yet, try again.
    ClientRetry,
}

/// What survives a crash (Figure 2, "Persistent state on all servers").
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Storage {
    pub current_term: Term,
    pub voted_for: Option<Id>,
    pub log: Log,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Role {
    Follower {
        /// The leader of `current_term`, once heard from.
        leader: Option<Id>,
    },
    Candidate {
        /// Servers that granted their vote in `current_term` (this one included).
        votes: BTreeSet<Id>,
    },
    Leader {
        /// One entry per other server.
        progress: BTreeMap<Id, Progress>,
    },
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Follower { .. } => "Follower",
            Role::Candidate { .. } => "Candidate",
            Role::Leader { .. } => "Leader",
        }
    }
}

/// A server's whole state. Invariant: `commit_index <= log.last_index()`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ServerState {
    pub current_term: Term,
    pub voted_for: Option<Id>,
    pub log: Log,
    /// Highest index known committed; entries up to it are applied to `kv` as soon as known.
    pub commit_index: Index,
    pub role: Role,
    /// The state machine, holding exactly the entries `1..=commit_index`.
    pub kv: KvStore,
}

impl ServerState {
    pub fn storage(&self) -> Storage {
        Storage {
            current_term: self.current_term,
            voted_for: self.voted_for,
            log: self.log.clone(),
        }
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader { .. })
    }

    /// Who this server believes leads its current term.
    pub fn leader_hint(&self, id: Id) -> Option<Id> {
        match &self.role {
            Role::Follower { leader } => *leader,
            Role::Candidate { .. } => None,
            Role::Leader { .. } => Some(id),
        }
    }

    pub fn status(&self, id: Id) -> Status {
        Status {
            role: self.role.name().to_owned(),
            term: self.current_term,
            voted_for: self.voted_for,
            commit_index: self.commit_index,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            leader: self.leader_hint(id),
        }
    }

    /// Whether `(client_id, seq)` is already in the log, waiting to commit.
    fn has_pending(&self, client_id: ClientId, seq: u64) -> bool {
        (self.commit_index + 1..=self.log.last_index()).any(|i| {
            matches!(self.log.get(i), Some(Entry { command: Command::Client { client_id: c, seq: s, .. }, .. })
                if *c == client_id && *s == seq)
        })
    }
}

impl Server {
    fn has(&self, mutant: Mutant) -> bool {
        self.mutant == Some(mutant)
    }

    fn majority(&self) -> usize {
        self.servers.len() / 2 + 1
    }

    fn peers(&self, id: Id) -> impl Iterator<Item = Id> + '_ {
        self.servers.iter().copied().filter(move |&s| s != id)
    }
}

/// One handler invocation: the state it may change and the commands it produces.
struct Step<'s, 'c> {
    server: &'s Server,
    id: Id,
    state: &'s mut Cow<'c, ServerState>,
    /// Persistent state changed: a `Save` goes out before anything else.
    persist: bool,
    commands: Vec<Effect>,
}

enum Effect {
    Send(Id, Msg),
    SetTimer(Timer, Range<Duration>),
    CancelTimer(Timer),
}

impl<'s, 'c> Step<'s, 'c> {
    fn new(server: &'s Server, id: Id, state: &'s mut Cow<'c, ServerState>) -> Self {
        Self {
            server,
            id,
            state,
            persist: false,
            commands: Vec::new(),
        }
    }

    /// Read-only view of the state.
    fn st(&self) -> &ServerState {
        self.state
    }

    /// Mutable view; call only on a path that really changes something, so that a stale or
    /// duplicated message stays a no-op the model checker can prune.
    fn st_mut(&mut self) -> &mut ServerState {
        self.state.to_mut()
    }

    fn send(&mut self, to: Id, msg: Msg) {
        self.commands.push(Effect::Send(to, msg));
    }

    fn reset_election_timer(&mut self) {
        let range = self.server.election_timeout.clone();
        self.commands.push(Effect::SetTimer(Timer::Election, range));
    }

    fn set_heartbeat_timer(&mut self) {
        let d = self.server.heartbeat;
        self.commands.push(Effect::SetTimer(Timer::Heartbeat, d..d));
    }

    /// Emits the commands: the `Save` first, then everything in the order it was produced.
    fn finish(self, o: &mut Out<Server>) {
        if self.persist {
            o.save(self.state.storage());
        }
        for c in self.commands {
            match c {
                Effect::Send(to, msg) => o.send(to, msg),
                Effect::SetTimer(t, range) => o.set_timer(t, range),
                Effect::CancelTimer(t) => o.cancel_timer(t),
            }
        }
    }

    // ---- roles ---------------------------------------------------------------------------

    /// Adopts `term` (if newer, forgetting the vote) and follows `leader`.
    fn become_follower(&mut self, term: Term, leader: Option<Id>) {
        let was_leader = self.st().is_leader();
        if term > self.st().current_term {
            let st = self.st_mut();
            st.current_term = term;
            st.voted_for = None;
            self.persist = true;
        }
        if self.st().role != (Role::Follower { leader }) {
            self.st_mut().role = Role::Follower { leader };
        }
        if was_leader {
            self.commands.push(Effect::CancelTimer(Timer::Heartbeat));
            self.reset_election_timer();
        }
    }

    /// §5.2: increment the term, vote for self, ask everyone else.
    fn become_candidate(&mut self) {
        let id = self.id;
        let st = self.st_mut();
        st.current_term += 1;
        st.voted_for = Some(id);
        st.role = Role::Candidate {
            votes: BTreeSet::from([id]),
        };
        self.persist = true;
        self.reset_election_timer();
        let st = self.st();
        let request = Msg::RequestVote {
            term: st.current_term,
            candidate_id: id,
            last_log_index: st.log.last_index(),
            last_log_term: st.log.last_term(),
        };
        for peer in self.server.peers(id).collect::<Vec<_>>() {
            self.send(peer, request.clone());
        }
        self.maybe_win_election();
    }

    fn maybe_win_election(&mut self) {
        if let Role::Candidate { votes } = &self.st().role
            && votes.len() >= self.server.majority()
        {
            self.become_leader();
        }
    }

    /// Figure 2: reinitialise nextIndex/matchIndex, append a no-op of the new term (§8) and
    /// announce it to everyone at once.
    fn become_leader(&mut self) {
        let id = self.id;
        let last = self.st().log.last_index();
        let progress = self
            .server
            .peers(id)
            .map(|p| (p, Progress::new(last)))
            .collect();
        let st = self.st_mut();
        st.role = Role::Leader { progress };
        let term = st.current_term;
        st.log.push(Entry {
            term,
            command: Command::Noop,
        });
        self.persist = true;
        self.commands.push(Effect::CancelTimer(Timer::Election));
        self.set_heartbeat_timer();
        self.broadcast_append_entries(false);
        // A single-server cluster commits on its own.
        self.maybe_advance_commit();
    }

    // ---- leader: replication -----------------------------------------------------------------

    fn broadcast_append_entries(&mut self, resend: bool) {
        for peer in self.server.peers(self.id).collect::<Vec<_>>() {
            self.send_append_entries(peer, resend);
        }
    }

    /// Sends `peer` the entries from its nextIndex (§5.3) and pipelines: the next send starts
    /// after them without waiting for the answer; a rejection rewinds. With `resend` (the
    /// heartbeat) it starts after matchIndex instead, re-sending whatever is unacknowledged.
    fn send_append_entries(&mut self, peer: Id, resend: bool) {
        let st = self.st();
        let Role::Leader { progress } = &st.role else {
            return;
        };
        let Some(p) = progress.get(&peer) else { return };
        let from = if resend {
            p.match_index + 1
        } else {
            p.next_index
        };
        let next = from.min(st.log.last_index() + 1);
        let prev_log_index = next - 1;
        let entries = st.log.entries_from(next, self.server.max_append_entries);
        let last_sent = prev_log_index + entries.len() as Index;
        let msg = Msg::AppendEntries {
            term: st.current_term,
            leader_id: self.id,
            prev_log_index,
            prev_log_term: st.log.term_at(prev_log_index).unwrap_or(0),
            entries,
            leader_commit: st.commit_index,
        };
        if last_sent + 1 > p.next_index
            && let Role::Leader { progress } = &mut self.st_mut().role
        {
            progress
                .get_mut(&peer)
                .expect("peer has progress")
                .on_sent(last_sent);
        }
        self.send(peer, msg);
    }

    /// Figure 2, "Rules for Servers, Leaders": commit the highest N held by a majority whose
    /// entry is of the current term (Figure 8: earlier terms commit only indirectly).
    fn maybe_advance_commit(&mut self) {
        let st = self.st();
        let Role::Leader { progress } = &st.role else {
            return;
        };
        let mut matches: Vec<Index> = progress.values().map(|p| p.match_index).collect();
        matches.push(st.log.last_index());
        let n = quorum_index(matches);
        let current_term_entry = st.log.term_at(n) == Some(st.current_term);
        if n > st.commit_index && (current_term_entry || self.server.has(Mutant::CommitOldTerm)) {
            self.commit_to(n);
        }
    }

    /// Advances commitIndex and applies what became committed; a leader answers the clients.
    fn commit_to(&mut self, new_commit: Index) {
        let old = self.st().commit_index;
        if new_commit == old {
            return;
        }
        self.st_mut().commit_index = new_commit;
        let last = self.st().log.last_index();
        for index in old + 1..=new_commit.min(last) {
            let entry = self.st().log.get(index).cloned().expect("index within log");
            let Command::Client {
                client_id,
                seq,
                op,
                reply_to,
            } = entry.command
            else {
                continue;
            };
            let applied = self.st_mut().kv.apply(client_id, seq, &op);
            if self.st().is_leader()
                && let Applied::Fresh(result) | Applied::Duplicate(result) = applied
            {
                self.send(
                    reply_to,
                    Msg::ClientResponse {
                        seq,
                        reply: Reply::Ok { result },
                    },
                );
            }
        }
    }

    // ---- handlers ------------------------------------------------------------------------

    fn on_election_timeout(&mut self) {
        if !self.st().is_leader() {
            self.become_candidate();
        }
    }

    fn on_heartbeat(&mut self) {
        if self.st().is_leader() {
            self.broadcast_append_entries(true);
            self.set_heartbeat_timer();
        }
    }

    /// "Term first, role second": settle the term of a peer message once. Returns false when
    /// the message is from an earlier term and has been answered or dropped.
    fn check_term(&mut self, src: Id, msg: &Msg) -> bool {
        let Some(term) = msg.term() else { return true };
        let current = self.st().current_term;
        if term > current {
            let leader = matches!(msg, Msg::AppendEntries { .. }).then_some(src);
            self.become_follower(term, leader);
            return true;
        }
        if term == current {
            return true;
        }
        // An earlier term: tell a stale candidate or leader our term so it steps down;
        // replies to our own old requests are ignored.
        match msg {
            Msg::RequestVote { .. } => self.send(
                src,
                Msg::RequestVoteResponse {
                    term: current,
                    vote_granted: false,
                },
            ),
            Msg::AppendEntries { .. } => self.send(
                src,
                Msg::AppendEntriesResponse {
                    term: current,
                    success: false,
                    match_index: 0,
                    conflict: None,
                },
            ),
            Msg::RequestVoteResponse {
                vote_granted: true, ..
            } if self.server.has(Mutant::CountStaleVotes) => {
                self.count_vote(src);
            }
            _ => {}
        }
        false
    }

    /// RequestVote RPC, receiver implementation (Figure 2; §5.2, §5.4.1).
    fn handle_request_vote(&mut self, candidate: Id, last: LogId) {
        let st = self.st();
        let can_vote = st.voted_for.is_none() || st.voted_for == Some(candidate);
        let up_to_date = st.log.is_up_to_date(last) || self.server.has(Mutant::VoteWithoutLogCheck);
        let grant = can_vote && up_to_date && !st.is_leader();
        if grant {
            if st.voted_for != Some(candidate) {
                self.st_mut().voted_for = Some(candidate);
                self.persist = true;
            }
            self.reset_election_timer();
        }
        let term = self.st().current_term;
        self.send(
            candidate,
            Msg::RequestVoteResponse {
                term,
                vote_granted: grant,
            },
        );
    }

    fn count_vote(&mut self, voter: Id) {
        if let Role::Candidate { votes } = &self.st().role {
            if votes.contains(&voter) {
                return;
            }
            if let Role::Candidate { votes } = &mut self.st_mut().role {
                votes.insert(voter);
            }
            self.maybe_win_election();
        }
    }

    /// AppendEntries RPC, receiver implementation (Figure 2; §5.3).
    #[allow(clippy::too_many_arguments)]
    fn handle_append_entries(
        &mut self,
        leader: Id,
        prev: LogId,
        entries: Vec<Entry>,
        leader_commit: Index,
    ) {
        if self.st().is_leader() {
            return; // Two leaders in one term: only a broken variant gets here.
        }
        if self.st().role
            != (Role::Follower {
                leader: Some(leader),
            })
        {
            self.st_mut().role = Role::Follower {
                leader: Some(leader),
            };
        }
        self.reset_election_timer();
        let term = self.st().current_term;

        let log = &self.st().log;
        let consistent = if self.server.has(Mutant::SkipPrevLogTermCheck) {
            prev.index <= log.last_index()
        } else {
            log.matches(prev.index, prev.term)
        };
        if !consistent {
            let conflict = match log.term_at(prev.index) {
                None => Conflict {
                    term: None,
                    index: log.last_index() + 1,
                },
                Some(t) => Conflict {
                    term: Some(t),
                    index: log.first_index_of_term_at(prev.index),
                },
            };
            let reply = Msg::AppendEntriesResponse {
                term,
                success: false,
                match_index: 0,
                conflict: Some(conflict),
            };
            self.send(leader, reply);
            return;
        }

        let last_new = prev.index + entries.len() as Index;
        if self.server.has(Mutant::TruncateOnStaleAppend) {
            let mut log = self.st().log.clone();
            log.truncate_after(prev.index);
            log.append_after(prev.index, &entries);
            if log != self.st().log {
                self.st_mut().log = log;
                self.persist = true;
            }
        } else if self.would_change_log(prev.index, &entries) {
            self.st_mut().log.append_after(prev.index, &entries);
            self.persist = true;
        }

        let commit = self.st().commit_index;
        let target = if self.server.has(Mutant::LeaderCommitWithoutMin) {
            leader_commit
        } else {
            leader_commit.min(last_new)
        };
        if target > commit || (target < commit && self.server.has(Mutant::CommitIndexRegresses)) {
            self.commit_to(target);
        }
        let reply = Msg::AppendEntriesResponse {
            term,
            success: true,
            match_index: last_new,
            conflict: None,
        };
        self.send(leader, reply);
    }

    fn would_change_log(&self, prev_index: Index, entries: &[Entry]) -> bool {
        let log = &self.st().log;
        entries
            .iter()
            .enumerate()
            .any(|(k, e)| log.term_at(prev_index + 1 + k as Index) != Some(e.term))
    }

    /// AppendEntries reply at the leader: advance or rewind the follower's progress.
    fn handle_append_entries_response(
        &mut self,
        follower: Id,
        success: bool,
        match_index: Index,
        conflict: Option<Conflict>,
    ) {
        let st = self.st();
        let Role::Leader { progress } = &st.role else {
            return;
        };
        let Some(&before) = progress.get(&follower) else {
            return;
        };
        let mut after = before;
        if success {
            let grew = after.on_ack(match_index);
            if after != before {
                self.set_progress(follower, after);
            }
            if grew {
                self.maybe_advance_commit();
            }
        } else if let Some(conflict) = conflict {
            // Skip back over the follower's whole conflicting term, or to the end of its log.
            let hint = match conflict.term {
                Some(t) => st
                    .log
                    .last_index_of_term(t)
                    .map_or(conflict.index, |i| i + 1),
                None => conflict.index,
            };
            if self.server.has(Mutant::LeaderTruncatesOnReject) && hint <= st.log.last_index() {
                self.st_mut().log.truncate_after(hint.saturating_sub(1));
                self.persist = true;
            }
            after.on_reject(hint);
            if after != before {
                self.set_progress(follower, after);
            }
        } else {
            return;
        }
        let st = self.st();
        if let Role::Leader { progress } = &st.role
            && progress[&follower].next_index <= st.log.last_index()
        {
            self.send_append_entries(follower, false);
        }
    }

    fn set_progress(&mut self, follower: Id, p: Progress) {
        if let Role::Leader { progress } = &mut self.st_mut().role {
            progress.insert(follower, p);
        }
    }

    /// `Start()` in the seed notes: only the leader accepts a command; anyone else says
    /// "not leader" and names the leader it knows.
    fn handle_client_request(&mut self, src: Id, client_id: ClientId, seq: u64, op: Op) {
        let st = self.st();
        if !st.is_leader() {
            let leader_hint = st.leader_hint(self.id);
            self.send(
                src,
                Msg::ClientResponse {
                    seq,
                    reply: Reply::NotLeader { leader_hint },
                },
            );
            return;
        }
        match st.kv.lookup(client_id, seq) {
            Some(Applied::Duplicate(result)) => {
                self.send(
                    src,
                    Msg::ClientResponse {
                        seq,
                        reply: Reply::Ok { result },
                    },
                );
                return;
            }
            Some(_) => return,
            None => {}
        }
        if let (Op::Get { key }, true) = (&op, self.server.has(Mutant::StaleRead)) {
            let result = OpResult::Value(st.kv.data.get(key).cloned());
            self.send(
                src,
                Msg::ClientResponse {
                    seq,
                    reply: Reply::Ok { result },
                },
            );
            return;
        }
        if st.has_pending(client_id, seq) {
            return;
        }
        let st = self.st_mut();
        let term = st.current_term;
        st.log.push(Entry {
            term,
            command: Command::Client {
                client_id,
                seq,
                op,
                reply_to: src,
            },
        });
        self.persist = true;
        self.broadcast_append_entries(false);
        self.maybe_advance_commit();
    }

    fn on_msg(&mut self, src: Id, msg: Msg) {
        match msg {
            Msg::ClientRequest { client_id, seq, op } => {
                return self.handle_client_request(src, client_id, seq, op);
            }
            Msg::StatusRequest => {
                let status = self.st().status(self.id);
                return self.send(src, Msg::StatusResponse(status));
            }
            Msg::ClientResponse { .. } | Msg::StatusResponse(_) => return,
            _ => {}
        }
        if !self.server.servers.contains(&src) || !self.check_term(src, &msg) {
            return;
        }
        match msg {
            Msg::RequestVote {
                candidate_id,
                last_log_index,
                last_log_term,
                ..
            } => {
                let last = LogId {
                    term: last_log_term,
                    index: last_log_index,
                };
                self.handle_request_vote(candidate_id, last);
            }
            Msg::RequestVoteResponse {
                vote_granted: true, ..
            } => self.count_vote(src),
            Msg::AppendEntries {
                leader_id,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                ..
            } => {
                let prev = LogId {
                    term: prev_log_term,
                    index: prev_log_index,
                };
                self.handle_append_entries(leader_id, prev, entries, leader_commit);
            }
            Msg::AppendEntriesResponse {
                success,
                match_index,
                conflict,
                ..
            } => {
                self.handle_append_entries_response(src, success, match_index, conflict);
            }
            _ => {}
        }
    }
}

impl Server {
    /// The term `state` is in after `timer` fires (see `Step::on_election_timeout`): lets the
    /// model checker skip, unbuilt, the steps that would leave its term bound.
    pub fn term_after_timeout(&self, state: &ServerState, timer: &Timer) -> Term {
        match timer {
            Timer::Election if !state.is_leader() => state.current_term + 1,
            _ => state.current_term,
        }
    }
}

impl Actor for Server {
    type Msg = Msg;
    type State = ServerState;
    type Timer = Timer;
    type Random = ();
    type Storage = Storage;

    fn name(&self) -> String {
        "Server".to_owned()
    }

    /// Starts (or restarts after a crash) from the last saved storage (§5.1).
    fn on_start(&self, _id: Id, storage: &Option<Storage>, o: &mut Out<Self>) -> ServerState {
        let saved = storage.clone().unwrap_or_default();
        let voted_for = if self.has(Mutant::ForgetVoteOnRestart) {
            None
        } else {
            saved.voted_for
        };
        o.set_timer(Timer::Election, self.election_timeout.clone());
        ServerState {
            current_term: saved.current_term,
            voted_for,
            log: saved.log,
            commit_index: 0,
            role: Role::Follower { leader: None },
            kv: KvStore::default(),
        }
    }

    fn on_msg(&self, id: Id, state: &mut Cow<ServerState>, src: Id, msg: Msg, o: &mut Out<Self>) {
        let mut step = Step::new(self, id, state);
        step.on_msg(src, msg);
        step.finish(o);
    }

    fn on_timeout(&self, id: Id, state: &mut Cow<ServerState>, timer: &Timer, o: &mut Out<Self>) {
        let mut step = Step::new(self, id, state);
        match timer {
            Timer::Election => step.on_election_timeout(),
            Timer::Heartbeat => step.on_heartbeat(),
            Timer::ClientRetry => {}
        }
        step.finish(o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_after_timeout_predicts_the_handler() {
        let server = Server {
            servers: (0..3).map(Id::from).collect(),
            election_timeout: Duration::ZERO..Duration::ZERO,
            heartbeat: Duration::ZERO,
            max_append_entries: 1,
            mutant: None,
        };
        let id = Id::from(0);
        let follower = server.on_start(id, &None, &mut Out::new());
        let mut leader = follower.clone();
        leader.role = Role::Leader {
            progress: BTreeMap::new(),
        };
        for state in [follower, leader] {
            for timer in [Timer::Election, Timer::Heartbeat, Timer::ClientRetry] {
                let mut next = Cow::Borrowed(&state);
                server.on_timeout(id, &mut next, &timer, &mut Out::new());
                assert_eq!(
                    server.term_after_timeout(&state, &timer),
                    next.current_term,
                    "{timer:?} on a {}",
                    state.role.name()
                );
            }
        }
    }
}
