----------------------------- MODULE TraceRaft -----------------------------
(***************************************************************************)
(* Trace validation: every behavior recorded from the Rust model (see      *)
(* `raftright traces` and specs/check) must be a behavior of Raft.tla.    *)
(*                                                                         *)
(* TraceData.tla (generated) holds the traces: per state, each server's   *)
(* term, vote, log, commitIndex, role, votes and progress (servers are     *)
(* 0 .. n-1, so server i is at position i + 1), and the peer messages in   *)
(* flight, with the field names of Raft.tla.                               *)
(*                                                                         *)
(* The behaviors of this module walk one trace each: the state at step k  *)
(* is the trace's state k, and each step must be a step of Raft's Next, or *)
(* a stutter (a Rust step the specification does not see: a crash, a      *)
(* client's retry, a leader hint). When no step of Next leads from state k *)
(* to state k + 1, TLC stops with a deadlock at state k: the trace is not  *)
(* a behavior of the specification.                                       *)
(***************************************************************************)
EXTENDS Raft

INSTANCE TraceData   \* Traces, TraceServers, TraceValues, TraceMaxAppend

VARIABLES
    t,   \* which trace
    k    \* which state of it

\* A leader's progress: in the trace, a set of [peer, next, match] records.
Progress(P, field) ==
    IF P = {} THEN <<>>
    ELSE [j \in {p.peer : p \in P} |-> (CHOOSE p \in P : p.peer = j)[field]]

TraceInit ==
    /\ t \in 1..Len(Traces)
    /\ k = 1
    /\ Init
    /\ LET s == Traces[t][1].servers
       IN  /\ currentTerm  = [i \in Server |-> s[i + 1].term]
           /\ votedFor     = [i \in Server |-> s[i + 1].vote]
           /\ log          = [i \in Server |-> s[i + 1].log]
           /\ commitIndex  = [i \in Server |-> s[i + 1].commit]
           /\ state        = [i \in Server |-> s[i + 1].role]
           /\ votesGranted = [i \in Server |-> s[i + 1].votes]
           /\ nextIndex    = [i \in Server |-> Progress(s[i + 1].progress, "next")]
           /\ matchIndex   = [i \in Server |-> Progress(s[i + 1].progress, "match")]
    /\ msgs = Traces[t][1].msgs

\* The next state is the trace's (assigned first, so that Next is only evaluated, never
\* enumerated), and it must follow by a step of Raft.
TraceStep ==
    /\ k < Len(Traces[t])
    /\ t' = t
    /\ k' = k + 1
    /\ LET s == Traces[t][k + 1].servers
       IN  /\ currentTerm'  = [i \in Server |-> s[i + 1].term]
           /\ votedFor'     = [i \in Server |-> s[i + 1].vote]
           /\ log'          = [i \in Server |-> s[i + 1].log]
           /\ commitIndex'  = [i \in Server |-> s[i + 1].commit]
           /\ state'        = [i \in Server |-> s[i + 1].role]
           /\ votesGranted' = [i \in Server |-> s[i + 1].votes]
           /\ nextIndex'    = [i \in Server |-> Progress(s[i + 1].progress, "next")]
           /\ matchIndex'   = [i \in Server |-> Progress(s[i + 1].progress, "match")]
    /\ msgs' = Traces[t][k + 1].msgs
    /\ Next \/ UNCHANGED vars

\* The end of a trace: stay there (not a deadlock).
TraceDone ==
    /\ k = Len(Traces[t])
    /\ UNCHANGED <<vars, t, k>>

TraceNext == TraceStep \/ TraceDone
=============================================================================
