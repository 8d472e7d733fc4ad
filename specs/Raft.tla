-------------------------------- MODULE Raft --------------------------------
(***************************************************************************)
(* Raft as raftright implements it (src/raft/server.rs).                   *)
(*                                                                         *)
(* Each action below is one handler run of the Rust actor, with all its   *)
(* effects at once, because that is how the stateright model steps:        *)
(*                                                                         *)
(*   Timeout(i)          on_timeout(Election): become_candidate            *)
(*   Heartbeat(i)        on_timeout(Heartbeat): re-send from matchIndex+1  *)
(*   ClientRequest(i,v)  a leader appends a client's command (on_msg of a  *)
(*                       ClientRequest; clients themselves are not here)   *)
(*   Receive(m)          on_msg of one of the four peer RPCs, term first   *)
(*   Restart(i)          Recover after a Crash: on_start from Storage      *)
(*   DropMessage(m)      the network loses m                               *)
(*                                                                         *)
(* The network is a set: delivering a message leaves it there, so it can   *)
(* be delivered again (duplication) until it is dropped (loss), and        *)
(* messages race one another (reordering). This is stateright's            *)
(* unordered_duplicating lossy network, the project's default.             *)
(*                                                                         *)
(* What is ours rather than the paper's (cf. Ongaro's raft.tla):           *)
(*  - a higher term is settled in the same step that handles the message  *)
(*    (no separate UpdateTerm step), and a stale request is answered with  *)
(*    our term;                                                            *)
(*  - a new leader appends a no-op of its term and sends it at once;       *)
(*  - nextIndex advances when entries are sent (pipelining); a heartbeat   *)
(*    re-sends from matchIndex + 1 and sets nextIndex after what it sent;  *)
(*    at most MaxAppend entries per message;                               *)
(*  - a rejection carries a conflict hint {term, index} and the leader     *)
(*    skips back over a whole term;                                        *)
(*  - appending never truncates entries that match (stale AppendEntries    *)
(*    are harmless);                                                       *)
(*  - a follower commits min(leaderCommit, last new index), never lower;   *)
(*  - a leader commits the highest index on a majority only if that entry  *)
(*    is of its current term (Figure 8);                                   *)
(*  - votesGranted exists only while a candidate, nextIndex/matchIndex     *)
(*    only while a leader (the Rust Role enum carries them);               *)
(*  - a restart keeps currentTerm, votedFor and log (Storage) and resets   *)
(*    everything else.                                                     *)
(*                                                                         *)
(* A crashed server does nothing until it restarts; the crash itself is    *)
(* invisible here (a stutter) and Restart is the Recover step.             *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets

CONSTANTS
    Server,     \* the cluster
    Value,      \* the commands clients may ask for (strings)
    Nil,        \* "none": no vote, no conflict hint, no conflict term
    MaxAppend,  \* entries per AppendEntries (Rust: max_append_entries)
    Mutant      \* "none", or a deliberately broken variant (see below)

ASSUME Cardinality(Server) >= 2   \* a one-server cluster wins elections alone; not modelled
ASSUME MaxAppend \in Nat \ {0}
ASSUME Mutant \in {"none", "commit-old-term", "forget-vote-on-restart"}

Follower  == "Follower"
Candidate == "Candidate"
Leader    == "Leader"
Noop      == "noop"     \* the command of a new leader's first entry

VARIABLES
    currentTerm,   \* Storage: current_term
    votedFor,      \* Storage: voted_for (Nil when none)
    log,           \* Storage: log, a sequence of [term, cmd]
    commitIndex,   \* volatile: commit_index
    state,         \* volatile: the Role's name
    votesGranted,  \* volatile: Role::Candidate { votes }, {} otherwise
    nextIndex,     \* volatile: Role::Leader { progress } next_index per peer, <<>> otherwise
    matchIndex,    \* volatile: Role::Leader { progress } match_index per peer, <<>> otherwise
    msgs           \* the network: the set of peer messages in flight

serverVars == <<currentTerm, votedFor, log, commitIndex, state, votesGranted,
                nextIndex, matchIndex>>
vars == <<serverVars, msgs>>

-----------------------------------------------------------------------------
(* Helpers: the Rust Log, Progress and quorum functions as plain values. *)

Min(S) == CHOOSE x \in S : \A y \in S : x <= y
Max(S) == CHOOSE x \in S : \A y \in S : x >= y
Min2(a, b) == IF a <= b THEN a ELSE b
Max2(a, b) == IF a >= b THEN a ELSE b

Peers(i) == Server \ {i}
Quorum(S) == 2 * Cardinality(S) > Cardinality(Server)

\* Log::term_at for 0 <= n <= Len(lg): 0 before the first entry.
TermAt(lg, n) == IF n = 0 THEN 0 ELSE lg[n].term
LastTerm(lg) == TermAt(lg, Len(lg))

\* Log::matches: lg holds an entry at n written in term t (n = 0 always matches).
Matches(lg, n, t) == n <= Len(lg) /\ TermAt(lg, n) = t

\* Log::is_up_to_date (§5.4.1): a log ending in (lastTerm, lastIndex) is at least as
\* up-to-date as lg.
UpToDate(lastTerm, lastIndex, lg) ==
    \/ lastTerm > LastTerm(lg)
    \/ lastTerm = LastTerm(lg) /\ lastIndex >= Len(lg)

\* Log::first_index_of_term_at, for 1 <= n <= Len(lg): where the run of lg[n].term starts.
FirstIndexOfTermAt(lg, n) ==
    CHOOSE k \in 1..n : /\ \A x \in k..n : lg[x].term = lg[n].term
                        /\ k = 1 \/ lg[k - 1].term /= lg[n].term

\* Log::append_after: put es after prev, keeping every entry that already agrees and
\* truncating only at the first real conflict.
AppendAfter(lg, prev, es) ==
    LET differ == {k \in 1..Len(es) : prev + k > Len(lg) \/ lg[prev + k].term /= es[k].term}
    IN  IF differ = {} THEN lg
        ELSE LET k == Min(differ)
             IN  SubSeq(lg, 1, prev + k - 1) \o SubSeq(es, k, Len(es))

\* progress::quorum_index: the highest index held by a majority, the leader counting its
\* own last index.
QuorumIndex(i, lg, mi) ==
    Max({n \in 0..Len(lg) : Quorum({i} \cup {j \in Peers(i) : mi[j] >= n})})

\* maybe_advance_commit: Figure 2 plus the Figure 8 restriction to the current term.
AdvanceCommit(i, term, lg, mi, commit) ==
    LET n == QuorumIndex(i, lg, mi)
    IN  IF n > commit /\ (lg[n].term = term \/ Mutant = "commit-old-term")
        THEN n ELSE commit

-----------------------------------------------------------------------------
(* Messages: one record type per RPC, with exactly the Rust fields. *)

RequestVoteMsg(i, j, term, lg) ==
    [mtype |-> "RequestVote", mterm |-> term, msource |-> i, mdest |-> j,
     mlastLogIndex |-> Len(lg), mlastLogTerm |-> LastTerm(lg)]

RequestVoteResponseMsg(i, j, term, granted) ==
    [mtype |-> "RequestVoteResponse", mterm |-> term, msource |-> i, mdest |-> j,
     mvoteGranted |-> granted]

\* mconflict is Nil, or [term |-> Nil or a term, index |-> an index] (message::Conflict).
AppendEntriesResponseMsg(i, j, term, success, matchIdx, conflict) ==
    [mtype |-> "AppendEntriesResponse", mterm |-> term, msource |-> i, mdest |-> j,
     msuccess |-> success, mmatchIndex |-> matchIdx, mconflict |-> conflict]

\* send_append_entries: where the message to a peer starts (its nextIndex, or
\* matchIndex + 1 when re-sending), never past the end of the log.
SendFrom(lg, ni, mi, resend) == Min2(IF resend THEN mi + 1 ELSE ni, Len(lg) + 1)
LastSent(lg, from) == Min2(Len(lg), from - 1 + MaxAppend)

AppendEntriesMsg(i, j, term, lg, commit, from) ==
    [mtype |-> "AppendEntries", mterm |-> term, msource |-> i, mdest |-> j,
     mprevLogIndex |-> from - 1, mprevLogTerm |-> TermAt(lg, from - 1),
     mentries |-> SubSeq(lg, from, LastSent(lg, from)), mcommitIndex |-> commit]

\* broadcast_append_entries: a message to every peer and the pipelined nextIndex
\* (Progress::on_sent: never backwards; Progress::on_resent: a heartbeat's re-send
\* continues after what it carried, what was sent past it presumed lost).
BroadcastMsgs(i, term, lg, commit, ni, mi, resend) ==
    {AppendEntriesMsg(i, j, term, lg, commit, SendFrom(lg, ni[j], mi[j], resend)) :
        j \in Peers(i)}
BroadcastNext(i, lg, ni, mi, resend) ==
    [j \in Peers(i) |->
        LET sent == LastSent(lg, SendFrom(lg, ni[j], mi[j], resend)) + 1
        IN  IF resend THEN sent ELSE Max2(ni[j], sent)]

-----------------------------------------------------------------------------
(* One server's new state, and the messages it sends, in a single step. *)

Update(i, term, vote, lg, commit, role, votes, ni, mi, out) ==
    /\ currentTerm'  = [currentTerm  EXCEPT ![i] = term]
    /\ votedFor'     = [votedFor     EXCEPT ![i] = vote]
    /\ log'          = [log          EXCEPT ![i] = lg]
    /\ commitIndex'  = [commitIndex  EXCEPT ![i] = commit]
    /\ state'        = [state        EXCEPT ![i] = role]
    /\ votesGranted' = [votesGranted EXCEPT ![i] = votes]
    /\ nextIndex'    = [nextIndex    EXCEPT ![i] = ni]
    /\ matchIndex'   = [matchIndex   EXCEPT ![i] = mi]
    /\ msgs'         = msgs \cup out

\* become_leader: fresh progress (nextIndex = last + 1, matchIndex = 0), a no-op of the
\* new term, and AppendEntries to every peer at once.
BecomeLeader(i, term, vote) ==
    LET lg  == Append(log[i], [term |-> term, cmd |-> Noop])
        ni0 == [j \in Peers(i) |-> Len(log[i]) + 1]
        mi0 == [j \in Peers(i) |-> 0]
    IN  Update(i, term, vote, lg, AdvanceCommit(i, term, lg, mi0, commitIndex[i]),
               Leader, {}, BroadcastNext(i, lg, ni0, mi0, FALSE), mi0,
               BroadcastMsgs(i, term, lg, commitIndex[i], ni0, mi0, FALSE))

-----------------------------------------------------------------------------
(* The actions. *)

\* §5.2: the election timer of a follower or candidate fires; it starts an election.
Timeout(i) ==
    /\ state[i] \in {Follower, Candidate}
    /\ LET term == currentTerm[i] + 1
       IN  Update(i, term, i, log[i], commitIndex[i], Candidate, {i}, <<>>, <<>>,
                  {RequestVoteMsg(i, j, term, log[i]) : j \in Peers(i)})

\* A leader's heartbeat timer: AppendEntries to every peer from its matchIndex + 1.
Heartbeat(i) ==
    /\ state[i] = Leader
    /\ Update(i, currentTerm[i], votedFor[i], log[i], commitIndex[i], Leader, {},
              BroadcastNext(i, log[i], nextIndex[i], matchIndex[i], TRUE), matchIndex[i],
              BroadcastMsgs(i, currentTerm[i], log[i], commitIndex[i],
                            nextIndex[i], matchIndex[i], TRUE))

\* A leader accepts a client's command v, appends it and sends it on at once. (The Rust
\* leader also de-duplicates retried requests; here any command may be appended.)
ClientRequest(i, v) ==
    /\ state[i] = Leader
    /\ LET lg == Append(log[i], [term |-> currentTerm[i], cmd |-> v])
       IN  Update(i, currentTerm[i], votedFor[i], lg,
                  AdvanceCommit(i, currentTerm[i], lg, matchIndex[i], commitIndex[i]),
                  Leader, {}, BroadcastNext(i, lg, nextIndex[i], matchIndex[i], FALSE),
                  matchIndex[i],
                  BroadcastMsgs(i, currentTerm[i], lg, commitIndex[i],
                                nextIndex[i], matchIndex[i], FALSE))

\* on_start after a crash: Storage survives, the rest starts afresh (§5.1).
Restart(i) ==
    Update(i, currentTerm[i],
           IF Mutant = "forget-vote-on-restart" THEN Nil ELSE votedFor[i],
           log[i], 0, Follower, {}, <<>>, <<>>, {})

DropMessage(m) ==
    /\ msgs' = msgs \ {m}
    /\ UNCHANGED serverVars

(* Receiving a peer message, once its term is settled: `term`, `vote` and `role` are     *)
(* the server's after check_term (a newer term makes it a follower of that term with no *)
(* vote), `votes`/`ni`/`mi` its role data.                                               *)

\* RequestVote receiver (Figure 2, §5.4.1).
HandleRequestVote(i, m, term, vote, role, votes, ni, mi) ==
    LET j     == m.msource
        grant == /\ vote \in {Nil, j}
                 /\ UpToDate(m.mlastLogTerm, m.mlastLogIndex, log[i])
                 /\ role /= Leader
    IN  Update(i, term, IF grant THEN j ELSE vote, log[i], commitIndex[i], role, votes,
               ni, mi, {RequestVoteResponseMsg(i, j, term, grant)})

\* count_vote: a candidate counts granted votes of its own term; a majority makes it leader.
HandleRequestVoteResponse(i, m, term, vote, role, votes, ni, mi) ==
    LET j == m.msource
    IN  IF m.mvoteGranted /\ role = Candidate /\ j \notin votes
        THEN IF Quorum(votes \cup {j})
             THEN BecomeLeader(i, term, vote)
             ELSE Update(i, term, vote, log[i], commitIndex[i], role, votes \cup {j},
                         ni, mi, {})
        ELSE Update(i, term, vote, log[i], commitIndex[i], role, votes, ni, mi, {})

\* AppendEntries receiver (Figure 2, §5.3). A leader ignores one of its own term; anyone
\* else follows the sender.
HandleAppendEntries(i, m, term, vote, role, votes, ni, mi) ==
    LET j    == m.msource
        lg   == log[i]
        prev == m.mprevLogIndex
    IN  IF role = Leader
        THEN Update(i, term, vote, lg, commitIndex[i], role, votes, ni, mi, {})
        ELSE IF ~Matches(lg, prev, m.mprevLogTerm)
        THEN LET conflict == IF prev > Len(lg)
                             THEN [term |-> Nil, index |-> Len(lg) + 1]
                             ELSE [term |-> TermAt(lg, prev),
                                   index |-> FirstIndexOfTermAt(lg, prev)]
             IN  Update(i, term, vote, lg, commitIndex[i], Follower, {}, <<>>, <<>>,
                        {AppendEntriesResponseMsg(i, j, term, FALSE, 0, conflict)})
        ELSE LET lastNew == prev + Len(m.mentries)
                 target  == Min2(m.mcommitIndex, lastNew)
             IN  Update(i, term, vote, AppendAfter(lg, prev, m.mentries),
                        Max2(commitIndex[i], target), Follower, {}, <<>>, <<>>,
                        {AppendEntriesResponseMsg(i, j, term, TRUE, lastNew, Nil)})

\* The leader's follow-up to a response: if the peer still lacks entries, send from its
\* nextIndex (pipelining).
FollowUp(i, j, term, vote, commit, ni, mi) ==
    LET lg == log[i]
    IN  IF ni[j] <= Len(lg)
        THEN Update(i, term, vote, lg, commit, Leader, {},
                    [ni EXCEPT ![j] = Max2(@, LastSent(lg, ni[j]) + 1)], mi,
                    {AppendEntriesMsg(i, j, term, lg, commit, ni[j])})
        ELSE Update(i, term, vote, lg, commit, Leader, {}, ni, mi, {})

\* AppendEntries response at a leader of the same term (Progress::on_ack / on_reject).
HandleAppendEntriesResponse(i, m, term, vote, role, votes, ni, mi) ==
    LET j  == m.msource
        lg == log[i]
    IN  IF role /= Leader
        THEN Update(i, term, vote, lg, commitIndex[i], role, votes, ni, mi, {})
        ELSE IF m.msuccess
        THEN LET mi2    == [mi EXCEPT ![j] = Max2(@, m.mmatchIndex)]
                 ni2    == [ni EXCEPT ![j] = Max2(@, mi2[j] + 1)]
                 commit == IF m.mmatchIndex > mi[j]
                           THEN AdvanceCommit(i, term, lg, mi2, commitIndex[i])
                           ELSE commitIndex[i]
             IN  FollowUp(i, j, term, vote, commit, ni2, mi2)
        ELSE IF m.mconflict /= Nil
        THEN LET c    == m.mconflict
                 ours == {k \in 1..Len(lg) : lg[k].term = c.term}
                 hint == IF c.term /= Nil /\ ours /= {} THEN Max(ours) + 1 ELSE c.index
             IN  FollowUp(i, j, term, vote, commitIndex[i],
                          [ni EXCEPT ![j] = Max2(Max2(hint, mi[j] + 1), 1)], mi)
        ELSE Update(i, term, vote, lg, commitIndex[i], role, votes, ni, mi, {})

\* A message from an earlier term: a stale candidate or leader is told our term; stale
\* responses are dropped.
HandleStale(i, m) ==
    LET j   == m.msource
        out == CASE m.mtype = "RequestVote" ->
                        {RequestVoteResponseMsg(i, j, currentTerm[i], FALSE)}
                 [] m.mtype = "AppendEntries" ->
                        {AppendEntriesResponseMsg(i, j, currentTerm[i], FALSE, 0, Nil)}
                 [] OTHER -> {}
    IN  /\ msgs' = msgs \cup out
        /\ UNCHANGED serverVars

\* Server::on_msg for a peer message m in the network: term first, role second.
Receive(m) ==
    LET i     == m.mdest
        newer == m.mterm > currentTerm[i]
        term  == IF newer THEN m.mterm ELSE currentTerm[i]
        vote  == IF newer THEN Nil ELSE votedFor[i]
        role  == IF newer THEN Follower ELSE state[i]
        votes == IF newer THEN {} ELSE votesGranted[i]
        ni    == IF newer THEN <<>> ELSE nextIndex[i]
        mi    == IF newer THEN <<>> ELSE matchIndex[i]
    IN  IF m.mterm < currentTerm[i] THEN HandleStale(i, m)
        ELSE CASE m.mtype = "RequestVote" ->
                      HandleRequestVote(i, m, term, vote, role, votes, ni, mi)
               [] m.mtype = "RequestVoteResponse" ->
                      HandleRequestVoteResponse(i, m, term, vote, role, votes, ni, mi)
               [] m.mtype = "AppendEntries" ->
                      HandleAppendEntries(i, m, term, vote, role, votes, ni, mi)
               [] m.mtype = "AppendEntriesResponse" ->
                      HandleAppendEntriesResponse(i, m, term, vote, role, votes, ni, mi)

-----------------------------------------------------------------------------

Init ==
    /\ currentTerm  = [i \in Server |-> 0]
    /\ votedFor     = [i \in Server |-> Nil]
    /\ log          = [i \in Server |-> <<>>]
    /\ commitIndex  = [i \in Server |-> 0]
    /\ state        = [i \in Server |-> Follower]
    /\ votesGranted = [i \in Server |-> {}]
    /\ nextIndex    = [i \in Server |-> <<>>]
    /\ matchIndex   = [i \in Server |-> <<>>]
    /\ msgs         = {}

Next ==
    \/ \E i \in Server : Timeout(i) \/ Heartbeat(i) \/ Restart(i)
    \/ \E i \in Server, v \in Value : ClientRequest(i, v)
    \/ \E m \in msgs : Receive(m) \/ DropMessage(m)

Spec == Init /\ [][Next]_vars

-----------------------------------------------------------------------------
(* Properties: the ones src/model/properties.rs checks, in the same words. *)

Entry == [term : Nat, cmd : Value \cup {Noop}]

TypeOK ==
    /\ currentTerm \in [Server -> Nat]
    /\ votedFor \in [Server -> Server \cup {Nil}]
    /\ \A i \in Server : log[i] \in Seq(Entry)
    /\ commitIndex \in [Server -> Nat]
    /\ state \in [Server -> {Follower, Candidate, Leader}]
    /\ \A i \in Server :
        /\ votesGranted[i] \subseteq Server
        /\ state[i] /= Candidate => votesGranted[i] = {}
        /\ state[i] = Leader => /\ nextIndex[i] \in [Peers(i) -> Nat \ {0}]
                                /\ matchIndex[i] \in [Peers(i) -> Nat]
                                /\ \A j \in Peers(i) : matchIndex[i][j] < nextIndex[i][j]
        /\ state[i] /= Leader => nextIndex[i] = <<>> /\ matchIndex[i] = <<>>

\* Whether a and b hold the same entries at 1..n (both must have them).
SamePrefix(a, b, n) == n <= Len(a) /\ n <= Len(b) /\ SubSeq(a, 1, n) = SubSeq(b, 1, n)

\* Election Safety: at most one leader can be elected in a given term (§5.2).
ElectionSafety ==
    \A i, j \in Server :
        state[i] = Leader /\ state[j] = Leader /\ currentTerm[i] = currentTerm[j] => i = j

\* Log Matching: two logs with an entry of the same index and term agree up to it (§5.3).
LogMatching ==
    \A i, j \in Server : \A n \in 1..Min2(Len(log[i]), Len(log[j])) :
        log[i][n].term = log[j][n].term => SamePrefix(log[i], log[j], n)

\* Log Terms Never Decrease: along every log, each entry's term is at least the one before
\* it; the up-to-date check reads only the last term, so it relies on this.
LogTermsNeverDecrease ==
    \A i \in Server : \A n \in 2..Len(log[i]) : log[i][n - 1].term <= log[i][n].term

\* Leader Completeness: a server that has committed up to c in term t committed those
\* entries in a term no later than t, so every leader of a later term holds them (§5.4).
LeaderCompleteness ==
    \A l \in Server : state[l] = Leader =>
        \A s \in Server : currentTerm[s] < currentTerm[l] =>
            SamePrefix(log[s], log[l], commitIndex[s])

\* State Machine Safety: no two servers apply different entries at one index (§5.4.3);
\* and what a server has applied is in its log.
StateMachineSafety ==
    \A i, j \in Server :
        /\ commitIndex[i] <= Len(log[i])
        /\ SamePrefix(log[i], log[j], Min2(commitIndex[i], commitIndex[j]))

\* Leader Append-Only: a leader never overwrites or deletes entries of its log within its
\* term; it only appends (§5.3).
LeaderAppendOnly ==
    [][\/ log' = log
       \/ \A i \in Server :
            (state[i] = Leader /\ state'[i] = Leader /\ currentTerm'[i] = currentTerm[i])
                => SamePrefix(log[i], log'[i], Len(log[i]))]_vars

\* commitIndex never decreases, except that a restart forgets it.
CommitIndexMonotonic ==
    [][\/ commitIndex' = commitIndex
       \/ \A i \in Server : commitIndex'[i] < commitIndex[i] => Restart(i)]_vars

=============================================================================
