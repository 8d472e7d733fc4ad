---------------------------- MODULE RaftLiveness ----------------------------
(***************************************************************************)
(* Liveness of Raft.tla: after faults stop, a leader is elected, stays,    *)
(* and every server comes to hold and commit the leader's whole log.       *)
(*                                                                         *)
(* Raft is not live in an asynchronous system, so the assumptions are      *)
(* stated here as part of the specification:                               *)
(*                                                                         *)
(*  1. Faults are finite. A crash and restart, the loss of a message, and  *)
(*     an untimely election timeout are faults; a behavior has at most     *)
(*     MaxFaults of them. (Duplication and reordering stay unbounded: the  *)
(*     network is Raft.tla's duplicating set.)                             *)
(*  2. Timely elections. An election timer fires on time only when no     *)
(*     server is leader and no candidate's election can still succeed      *)
(*     with the votes it has and the requests and grants in flight (the    *)
(*     election timeout is longer than an election takes), and the server  *)
(*     whose timer fires first holds a log at least as up-to-date as a     *)
(*     majority's (randomized timeouts make some such server first         *)
(*     eventually; here it is first at once). Any other timeout is a fault.*)
(*  3. Fairness. Weak fairness on each server's timely timeout, on each    *)
(*     leader's heartbeat (which re-sends from matchIndex + 1), and on     *)
(*     delivery to each server of each kind of message.                    *)
(*                                                                         *)
(* Clients are not modelled (Value = {}): the entry that must commit is    *)
(* the no-op a new leader appends in its term, which a client command      *)
(* follows through the same path (ClientRequest broadcasts it as           *)
(* become_leader broadcasts the no-op).                                    *)
(***************************************************************************)
EXTENDS Raft

CONSTANTS
    MaxFaults,  \* crashes, losses and untimely timeouts in one behavior
    MaxTerm     \* a sanity bound: TermBound checks that the model never gets past it

VARIABLE faults   \* how many faults have happened so far

liveVars == <<vars, faults>>

MsgTypes == {"RequestVote", "RequestVoteResponse", "AppendEntries", "AppendEntriesResponse"}

\* Candidate c's election can still succeed: the votes it has, those granted in flight, and
\* those of peers that have its request in flight and would grant it, make a majority.
WouldGrant(j, c) ==
    LET t == currentTerm[c]
    IN  /\ \/ currentTerm[j] < t
           \/ currentTerm[j] = t /\ votedFor[j] \in {Nil, c} /\ state[j] /= Leader
        /\ UpToDate(LastTerm(log[c]), Len(log[c]), log[j])
ElectionLive(c) ==
    LET t == currentTerm[c]
        granted == {m.msource : m \in {m \in msgs : /\ m.mtype = "RequestVoteResponse"
                                                   /\ m.mdest = c /\ m.mterm = t
                                                   /\ m.mvoteGranted}}
        asked   == {m.mdest : m \in {m \in msgs : /\ m.mtype = "RequestVote"
                                                 /\ m.msource = c /\ m.mterm = t}}
    IN  /\ state[c] = Candidate
        /\ Quorum(votesGranted[c] \cup granted \cup {j \in asked : WouldGrant(j, c)})

\* Assumption 2: the timeout that may fire on time.
Timely(i) ==
    /\ \A j \in Server : state[j] /= Leader /\ ~ElectionLive(j)
    /\ Quorum({j \in Server : UpToDate(LastTerm(log[i]), Len(log[i]), log[j])})

TimelyTimeout(i) == Timely(i) /\ Timeout(i) /\ UNCHANGED faults

Fault(A) == faults < MaxFaults /\ A /\ faults' = faults + 1

DeliverTo(i, t) == \E m \in msgs : m.mdest = i /\ m.mtype = t /\ Receive(m) /\ UNCHANGED faults

LiveNext ==
    \/ \E i \in Server : \/ TimelyTimeout(i)
                         \/ ~Timely(i) /\ Fault(Timeout(i))
                         \/ Heartbeat(i) /\ UNCHANGED faults
                         \/ Fault(Restart(i))
    \/ \E m \in msgs : \/ Receive(m) /\ UNCHANGED faults
                       \/ Fault(DropMessage(m))

LiveInit == Init /\ faults = 0

\* Fairness (assumption 3) without the leaders' heartbeats, and with them.
FairnessNoHeartbeat ==
    /\ \A i \in Server : WF_liveVars(TimelyTimeout(i))
    /\ \A i \in Server, t \in MsgTypes : WF_liveVars(DeliverTo(i, t))
Fairness ==
    /\ FairnessNoHeartbeat
    /\ \A i \in Server : WF_liveVars(Heartbeat(i) /\ UNCHANGED faults)

LiveSpec == LiveInit /\ [][LiveNext]_liveVars /\ Fairness
\* Negative control: a leader's heartbeat may never fire, so nothing re-sends what was lost.
LiveSpecNoHeartbeat == LiveInit /\ [][LiveNext]_liveVars /\ FairnessNoHeartbeat

-----------------------------------------------------------------------------
(* Properties. *)

\* The state space is finite within MaxTerm (no constraint cuts it: liveness needs every
\* behavior whole).
TermBound == \A i \in Server : currentTerm[i] <= MaxTerm

LeaderExists == \E i \in Server : state[i] = Leader

\* Eventually there is a leader, for good.
EventuallyStableLeader == <>[]LeaderExists

\* Eventually the leader commits an entry of its own term (its no-op), for good.
LeaderCommitsOwnTerm ==
    <>[](\E l \in Server : /\ state[l] = Leader
                           /\ commitIndex[l] >= 1
                           /\ log[l][commitIndex[l]].term = currentTerm[l])

\* Eventually every server holds the leader's whole log and has committed all of it.
AllCommitLeaderLog ==
    <>[](\E l \in Server : /\ state[l] = Leader
                           /\ \A i \in Server : log[i] = log[l] /\ commitIndex[i] = Len(log[l]))
=============================================================================
