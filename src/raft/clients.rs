//! The client interface (§8): only the leader accepts a command, and answers it once the
//! command's entry is committed and applied; anyone else says "not leader" and names the
//! leader it knows.

use super::message::{Msg, Reply};
use super::progress::quorum_index;
use super::rules;
use super::state::PendingRead;
use super::step::Step;
use super::types::{ClientId, Command, Entry, Op, OpResult};
use crate::kv::Applied;
use stateright::actor::Id;

impl Step<'_, '_> {
    pub(super) fn handle_client_request(&mut self, src: Id, client_id: ClientId, seq: u64, op: Op) {
        let st = self.st();
        if !st.is_leader() {
            let leader_hint = st.leader_hint(self.id);
            let reply = Reply::NotLeader { leader_hint };
            return self.send(src, Msg::ClientResponse { seq, reply });
        }
        match st.kv.lookup(client_id, seq) {
            // Applied before: the same answer again.
            Some(Applied::Duplicate(result)) => {
                let reply = Reply::Ok { result };
                return self.send(src, Msg::ClientResponse { seq, reply });
            }
            // The client has moved on; nobody waits for this answer.
            Some(_) => return,
            None => {}
        }
        if rules::reads_locally(self.cfg, &op) {
            let Op::Get { key } = &op else {
                unreachable!("only reads are answered locally")
            };
            let result = OpResult::Value(st.kv.data.get(key).cloned());
            let reply = Reply::Ok { result };
            return self.send(src, Msg::ClientResponse { seq, reply });
        }
        if rules::reads_by_index(self.cfg, &op, st.log(), st.current_term(), st.commit_index) {
            let Op::Get { key } = op else {
                unreachable!("only reads are answered by index")
            };
            return self.start_read(src, client_id, seq, key);
        }
        if st.has_pending(client_id, seq) {
            return; // a retry of an entry already in the log: its answer comes on apply
        }
        if !rules::takes_writes(st.transfer.is_some()) {
            let reply = Reply::NotLeader { leader_hint: None };
            return self.send(src, Msg::ClientResponse { seq, reply });
        }
        let early_answer = rules::answers_on_append(self.cfg).then(|| st.kv.clone().execute(&op));
        let st = self.st_mut();
        let term = st.hard.current_term;
        st.hard.log.push(Entry {
            term,
            command: Command::Client {
                client_id,
                seq,
                op,
                reply_to: src,
            },
        });
        self.persist();
        if let Some(result) = early_answer {
            let reply = Reply::Ok { result };
            self.send(src, Msg::ClientResponse { seq, reply });
        }
        self.broadcast_append_entries(false);
        self.maybe_advance_commit();
    }

    /// ReadIndex (thesis §6.4): record the commit index as the read's index; the read waits for
    /// the next round of heartbeats, and is answered when a majority has echoed that round and
    /// the leader has applied through its index. Reads that arrive while a round is out share
    /// the next one, so a burst of reads costs one round, not one each. A retry of a waiting
    /// read changes nothing.
    fn start_read(&mut self, src: Id, client_id: ClientId, seq: u64, key: String) {
        let st = self.st();
        if st
            .reads
            .iter()
            .any(|r| r.client_id == client_id && r.seq == seq)
        {
            return;
        }
        let read = PendingRead {
            client_id,
            seq,
            key,
            reply_to: src,
            index: st.commit_index,
            round: st.read_round + 1,
        };
        self.st_mut().reads.push(read);
        self.answer_reads();
    }

    /// ReadIndex: echoes of the rounds sent so far, the leader's own counted.
    fn confirmed_round(&self) -> u64 {
        let st = self.st();
        let members = &st.membership;
        let mut echoed: Vec<u64> = st
            .progress
            .iter()
            .filter(|(id, _)| members.is_voter(*id))
            .map(|(_, p)| p.read_ack)
            .collect();
        if members.is_voter(self.id) {
            echoed.push(st.read_round);
        }
        if echoed.is_empty() {
            return 0;
        }
        quorum_index(echoed, members.majority())
    }

    /// ReadIndex: answer every waiting read whose round a majority has echoed and whose index
    /// is applied, from the state machine as it is now; then, if reads wait for a round not
    /// yet sent and none is out, send it.
    pub(super) fn answer_reads(&mut self) {
        if self.st().reads.is_empty() {
            return;
        }
        let confirmed = self.confirmed_round();
        let st = self.st();
        let commit = st.commit_index;
        let ready = |r: &PendingRead| {
            rules::read_confirmed(self.cfg, r.round, confirmed) && r.index <= commit
        };
        if !st.reads.iter().any(ready) {
            return self.start_read_round(confirmed);
        }
        let (done, waiting): (Vec<PendingRead>, Vec<PendingRead>) =
            st.reads.iter().cloned().partition(ready);
        for read in done {
            let value = self.st().kv.data.get(&read.key).cloned();
            let reply = Reply::Ok {
                result: OpResult::Value(value),
            };
            self.send(
                read.reply_to,
                Msg::ClientResponse {
                    seq: read.seq,
                    reply,
                },
            );
        }
        self.st_mut().reads = waiting;
        self.start_read_round(confirmed);
    }

    /// ReadIndex: sends the next round of heartbeats when reads wait for it and the last round
    /// sent is confirmed.
    fn start_read_round(&mut self, confirmed: u64) {
        let st = self.st();
        let next = st.read_round + 1;
        if confirmed < st.read_round || !st.reads.iter().any(|r| r.round == next) {
            return;
        }
        self.st_mut().read_round = next;
        for peer in self.st().membership.peers(self.id).collect::<Vec<_>>() {
            self.send_read_round(peer);
        }
        if self.st().membership.majority() == 1 {
            self.answer_reads(); // a cluster of one confirms its own round
        }
    }
}
