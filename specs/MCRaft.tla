------------------------------- MODULE MCRaft -------------------------------
(* Raft.tla under the bounds of a finite model check (see MCRaft.cfg and README.md). *)
EXTENDS Raft, TLC

CONSTANTS
    MaxTerm,     \* no server's term goes past this (Rust: max_term)
    MaxLogLen,   \* no server's log grows past this (Rust: max_log_len)
    MaxMsgs      \* at most this many messages in flight (Rust: max_in_flight)

\* Like RaftModel::within_boundary: states outside are not explored further.
StateConstraint ==
    /\ \A i \in Server : currentTerm[i] <= MaxTerm /\ Len(log[i]) <= MaxLogLen
    /\ Cardinality(msgs) <= MaxMsgs

\* Servers are interchangeable (src/model/symmetry.rs).
Symmetry == Permutations(Server)
\* Witnesses, like the Rust model's "sometimes" properties: specs/check expects TLC to find each
\* of these violated, or the bounds would let the properties hold for want of anything happening.
NoLeader == \A i \in Server : state[i] /= Leader
NoCommit == \A i \in Server : commitIndex[i] = 0
\* A leader of term 2 commits its no-op, and with it the entry of term 1 before it (§5.4.2).
NoIndirectCommit ==
    ~\E i \in Server : /\ commitIndex[i] = 2
                      /\ log[i][1].term = 1
                      /\ log[i][2].term = 2

\* Next without its stuttering steps (a delivery that changes nothing, the restart of a follower
\* that has nothing to forget): the same behaviors up to stuttering, and far fewer successor
\* states for TLC to fingerprint.
MCNext == Next /\ vars' /= vars
=============================================================================
