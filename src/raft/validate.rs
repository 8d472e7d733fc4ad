//! What a server checks of a peer's message before it lets the message near its state. The
//! cluster's datagrams are authenticated at the edge (`runtime::auth`); these checks keep an
//! authentic but broken peer from doing harm with what can be checked cheaply: a refused
//! message changes nothing and is reported as an [`Effect::Refused`](super::Effect).

use super::message::Msg;
use super::types::{Index, Term};
use stateright::actor::Id;

/// Why a server refused a message or a step. It changed nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Refusal {
    #[error("a RequestVote names candidate {}, but came from {}", addr(*named), addr(*sender))]
    CandidateIsNotSender { named: Id, sender: Id },
    #[error("a leader's message names leader {}, but came from {}", addr(*named), addr(*sender))]
    LeaderIsNotSender { named: Id, sender: Id },
    #[error("a RequestVote of term {term} claims a last log term {last_log_term}, which is later")]
    LastLogTermAfterTerm { term: Term, last_log_term: Term },
    #[error("an AppendEntries of term {term} claims prevLogTerm {prev_log_term}, which is later")]
    PrevLogTermAfterTerm { term: Term, prev_log_term: Term },
    #[error(
        "an AppendEntries of term {term} carries an entry of later term {entry_term} at index {index}"
    )]
    EntryAfterTerm {
        term: Term,
        entry_term: Term,
        index: Index,
    },
    #[error(
        "an AppendEntries carries entry {index} of term {entry_term} after one of term {before}"
    )]
    EntryTermDecreases {
        index: Index,
        entry_term: Term,
        before: Term,
    },
    #[error("an InstallSnapshot of term {term} covers an entry of later term {snapshot_term}")]
    SnapshotTermAfterTerm { term: Term, snapshot_term: Term },
    #[error("an InstallSnapshot covers nothing")]
    EmptySnapshot,
    #[error(
        "asked to compact through index {through}, outside {first}..={commit} (past the snapshot, applied)"
    )]
    CompactionOutOfRange {
        through: Index,
        first: Index,
        commit: Index,
    },
    #[error("an AppendEntries reaches past the largest index")]
    IndexOverflow,
    #[error(
        "an AppendEntriesResponse of term {term} has a conflict hint of term {hint_term} at index {hint_index}"
    )]
    BadConflictHint {
        term: Term,
        hint_term: Term,
        hint_index: Index,
    },
    #[error(
        "a follower acknowledged index {match_index}, past this leader's last index {last_index}"
    )]
    AckBeyondLog {
        match_index: Index,
        last_index: Index,
    },
    #[error(
        "{} acknowledged the log through index {acknowledged} but now holds only {holds} entries: it lost its disk, or this answer is stale",
        addr(*follower)
    )]
    FollowerLostEntries {
        follower: Id,
        holds: Index,
        acknowledged: Index,
    },
    #[error("a TimeoutNow of term 0, which no leader has")]
    TimeoutNowOfTermZero,
    #[error("a leadership transfer to {}, which is not a member", addr(*target))]
    TransferToNonMember { target: Id },
    #[error("the term cannot grow past {}: refusing to campaign", Term::MAX)]
    TermExhausted,
}

/// An id as the address it stands for on a real network.
fn addr(id: Id) -> std::net::SocketAddrV4 {
    id.into()
}

/// Checks what a peer message says about itself: who sent it, and that its terms and indexes
/// are ordered as the protocol orders them.
pub fn validate(src: Id, msg: &Msg) -> Result<(), Refusal> {
    let sender = src;
    match msg {
        Msg::RequestVote {
            term,
            candidate_id,
            last_log_term,
            ..
        } => {
            if *candidate_id != src {
                return Err(Refusal::CandidateIsNotSender {
                    named: *candidate_id,
                    sender,
                });
            }
            if last_log_term > term {
                return Err(Refusal::LastLogTermAfterTerm {
                    term: *term,
                    last_log_term: *last_log_term,
                });
            }
        }
        Msg::AppendEntries {
            term,
            leader_id,
            prev_log_index,
            prev_log_term,
            entries,
            ..
        } => {
            if *leader_id != src {
                return Err(Refusal::LeaderIsNotSender {
                    named: *leader_id,
                    sender,
                });
            }
            if prev_log_term > term {
                return Err(Refusal::PrevLogTermAfterTerm {
                    term: *term,
                    prev_log_term: *prev_log_term,
                });
            }
            if prev_log_index.checked_add(entries.len() as Index).is_none() {
                return Err(Refusal::IndexOverflow);
            }
            let mut before = *prev_log_term;
            for (k, entry) in entries.iter().enumerate() {
                let index = prev_log_index + 1 + k as Index;
                if entry.term > *term {
                    return Err(Refusal::EntryAfterTerm {
                        term: *term,
                        entry_term: entry.term,
                        index,
                    });
                }
                if entry.term < before {
                    return Err(Refusal::EntryTermDecreases {
                        index,
                        entry_term: entry.term,
                        before,
                    });
                }
                before = entry.term;
            }
        }
        Msg::InstallSnapshot {
            term,
            leader_id,
            snapshot,
        } => {
            if *leader_id != src {
                return Err(Refusal::LeaderIsNotSender {
                    named: *leader_id,
                    sender,
                });
            }
            if snapshot.last.term > *term {
                return Err(Refusal::SnapshotTermAfterTerm {
                    term: *term,
                    snapshot_term: snapshot.last.term,
                });
            }
            if snapshot.last.index == 0 {
                return Err(Refusal::EmptySnapshot);
            }
        }
        Msg::AppendEntriesResponse {
            term,
            conflict: Some(hint),
            ..
        } => {
            let hint_term = hint.term.unwrap_or(0);
            if hint.index == 0 || hint_term > *term {
                return Err(Refusal::BadConflictHint {
                    term: *term,
                    hint_term,
                    hint_index: hint.index,
                });
            }
        }
        Msg::TimeoutNow { term: 0 } => return Err(Refusal::TimeoutNowOfTermZero),
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::{Command, Conflict, Entry};

    fn append(term: Term, prev: (Index, Term), terms: &[Term]) -> Msg {
        Msg::AppendEntries {
            term,
            leader_id: Id::from(0),
            prev_log_index: prev.0,
            prev_log_term: prev.1,
            entries: terms
                .iter()
                .map(|&term| Entry {
                    term,
                    command: Command::Noop,
                })
                .collect(),
            leader_commit: 0,
            read_round: 0,
        }
    }

    #[test]
    fn well_formed_messages_pass() {
        let s0 = Id::from(0);
        assert_eq!(validate(s0, &append(3, (2, 1), &[1, 2, 3, 3])), Ok(()));
        let hint = Conflict {
            term: Some(2),
            index: 1,
        };
        let reject = Msg::AppendEntriesResponse {
            term: 2,
            success: false,
            match_index: 0,
            conflict: Some(hint),
            read_round: 0,
        };
        assert_eq!(validate(s0, &reject), Ok(()));
    }

    #[test]
    fn impossible_entries_and_senders_are_refused() {
        let (s0, s1) = (Id::from(0), Id::from(1));
        assert!(matches!(
            validate(s0, &append(2, (0, 0), &[1000])),
            Err(Refusal::EntryAfterTerm { .. })
        ));
        assert!(matches!(
            validate(s0, &append(3, (1, 2), &[1])),
            Err(Refusal::EntryTermDecreases { .. })
        ));
        assert!(matches!(
            validate(s0, &append(3, (u64::MAX, 2), &[3])),
            Err(Refusal::IndexOverflow)
        ));
        assert!(matches!(
            validate(s1, &append(3, (0, 0), &[])),
            Err(Refusal::LeaderIsNotSender { .. })
        ));
        let vote = Msg::RequestVote {
            term: 2,
            candidate_id: s0,
            last_log_index: 1,
            last_log_term: 3,
            transfer: false,
        };
        assert!(matches!(
            validate(s0, &vote),
            Err(Refusal::LastLogTermAfterTerm { .. })
        ));
        assert_eq!(
            validate(s0, &Msg::TimeoutNow { term: 0 }),
            Err(Refusal::TimeoutNowOfTermZero)
        );
        assert_eq!(validate(s0, &Msg::TimeoutNow { term: 1 }), Ok(()));
    }
}
