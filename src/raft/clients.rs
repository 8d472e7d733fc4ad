//! The client interface (§8): only the leader accepts a command, and answers it once the
//! command's entry is committed and applied; anyone else says "not leader" and names the
//! leader it knows.

use super::message::{Msg, Reply};
use super::rules;
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
        if st.has_pending(client_id, seq) {
            return; // a retry of an entry already in the log: its answer comes on apply
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
}
