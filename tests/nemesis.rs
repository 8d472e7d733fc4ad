//! The network nemesis: real node processes, one per network namespace, with faults made by
//! nftables (see `common/netns.rs`), while concurrent clients put and get a few keys.
//!
//! Every scenario checks, after healing:
//! - writes are served again (the time from heal to the first acknowledged put is printed;
//!   the target is 2 s, asserted with a generous bound so that a busy machine cannot fail it);
//! - the whole history, including a final read of every key, is linearizable per key, so no
//!   acknowledged put is lost;
//! - every node is still running.
//!
//! Some scenarios also check liveness that needs PreVote and CheckQuorum (a deaf leader
//! replaced quickly, a stable leader under a partial partition or a ring). Those checks are
//! asserted last, through [`assert_liveness`], after safety has been checked;
//! `RAFTRIGHT_NEMESIS_LIVENESS=report` prints them without failing (useful with
//! `RAFTRIGHT_NEMESIS_NODE_ARGS="--no-pre-vote --no-check-quorum"`, which runs the nodes
//! without the two).
//!
//! Measured figures go to stderr past the capture (`cargo test --test nemesis` shows them).
//! Needs root, iproute2 and nftables; without them, or with `RAFTRIGHT_SKIP_NEMESIS=1`, each
//! test prints a SKIPPED line and returns.

mod common;
#[path = "common/linearizable.rs"]
mod linearizable;
#[path = "common/netns.rs"]
mod netns;
#[path = "common/workload.rs"]
mod workload;

use linearizable::check_per_key;
use netns::{NetCluster, Options, say};
use raftright::raft::Status;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use workload::{ClientSpec, OP_TIMEOUT, Recorder, Workload};

const KEYS: &[&str] = &["k0", "k1", "k2"];
const CLIENTS: usize = 4;
const WARM_UP: Duration = Duration::from_secs(2);
/// How long most faults last.
const FAULT: Duration = Duration::from_secs(8);
/// How long faults that measure leadership stability last.
const LONG_FAULT: Duration = Duration::from_secs(12);
/// Clients keep going this long after the probe's first write after healing.
const AFTER_HEAL: Duration = Duration::from_secs(3);
/// The target for writes after healing is 2 s; this bound only catches a cluster that does
/// not recover.
const WRITES_AFTER_HEAL_BOUND: Duration = Duration::from_secs(10);
/// A new leader must serve writes within 2 election timeouts of the old one going deaf
/// (600-1200 ms at the default timeouts); asserted with slack.
const FAILOVER_BOUND: Duration = Duration::from_secs(3);
/// Under a partial partition or a ring, at most this many new terms per minute. The leader
/// reaches a majority, so the target is none; over a [`LONG_FAULT`] this allows one, for a
/// busy machine. One disruption by a partially connected node costs two (its candidacy and
/// the election that follows), so the bound catches even one.
const TERMS_PER_MINUTE_BOUND: u64 = 5;
/// How far one node's term may run ahead of another's (the target is none).
const TERM_INFLATION_BOUND: u64 = 1;
/// A stable leader: the same leader, in the same term, in every sample of this final stretch.
const STABLE_STRETCH: Duration = Duration::from_secs(3);

struct LivenessCheck {
    what: String,
    ok: bool,
}

/// One run of a scenario: a cluster, clients, the history they record, and what is measured.
struct Scenario {
    name: &'static str,
    started: Instant,
    // Clients stop (in drop order) before the cluster goes.
    workloads: Vec<Workload>,
    cluster: NetCluster,
    recorder: Arc<Recorder>,
    fault_started: Option<Instant>,
    fault_ended: Option<Instant>,
    figures: Vec<String>,
    liveness: Vec<LivenessCheck>,
}

impl Scenario {
    /// Starts `nodes` nodes, waits for a leader, starts the clients and lets them warm up;
    /// `None` (after a SKIPPED line) where the nemesis cannot run.
    fn start(name: &'static str, nodes: usize) -> Option<Self> {
        if netns::skip(name) {
            return None;
        }
        let started = Instant::now();
        let cluster = NetCluster::start(Options::new(nodes));
        cluster.wait_for_leader();
        let recorder = Recorder::new();
        let clients = (0..CLIENTS)
            .map(|c| ClientSpec {
                name: format!("c{c}"),
                peers: cluster.peers.clone(),
                auth: cluster.auth.clone(),
            })
            .collect();
        let workload = Workload::start(&recorder, clients, KEYS);
        std::thread::sleep(WARM_UP);
        Some(Self {
            name,
            started,
            workloads: vec![workload],
            cluster,
            recorder,
            fault_started: None,
            fault_ended: None,
            figures: Vec::new(),
            liveness: Vec::new(),
        })
    }

    /// More clients, talking only to `nodes`.
    fn add_client(&mut self, name: &str, nodes: &[usize]) {
        let spec = ClientSpec {
            name: name.to_string(),
            peers: self.cluster.addrs(nodes),
            auth: self.cluster.auth.clone(),
        };
        self.workloads
            .push(Workload::start(&self.recorder, vec![spec], KEYS));
    }

    fn figure(&mut self, text: String) {
        self.figures.push(text);
    }

    fn liveness(&mut self, what: String, ok: bool) {
        self.liveness.push(LivenessCheck { what, ok });
    }

    /// Marks the start of the fault; the caller applies it right after.
    fn fault_begins(&mut self, what: String) {
        self.figure(format!("fault: {what}"));
        self.fault_started = Some(Instant::now());
    }

    fn fault_elapsed(&self) -> Duration {
        self.fault_started.expect("the fault began").elapsed()
    }

    fn wait_out_fault(&self, length: Duration) {
        std::thread::sleep(length.saturating_sub(self.fault_elapsed()));
    }

    /// Puts through a client of `nodes` only, until one is acknowledged or `until` passes;
    /// the time from `since` to that acknowledgement.
    fn first_write_via(
        &self,
        name: &str,
        nodes: &[usize],
        since: Instant,
        until: Instant,
    ) -> Option<Duration> {
        let mut client =
            workload::client(&self.cluster.addrs(nodes), &self.cluster.auth, OP_TIMEOUT);
        while Instant::now() < until {
            if self.recorder.put(&mut client, name, KEYS[0]) {
                return Some(since.elapsed());
            }
        }
        None
    }

    /// Time from the fault's start to the first write acknowledged by a leader other than
    /// `old` (the client does not know `old`, so only another leader can answer it).
    fn failover_from(&mut self, old: usize, limit: Duration) -> Option<Duration> {
        let since = self.fault_started.expect("the fault began");
        let nodes = self.cluster.others(old);
        let failover = self.first_write_via("failover-probe", &nodes, since, since + limit);
        self.figure(format!(
            "first write acknowledged by a new leader: {}",
            secs_or(
                failover,
                &format!("none within the {:.0} s fault", limit.as_secs_f64())
            )
        ));
        failover
    }

    /// Every node's status every 200 ms, for `length` from now.
    fn sample(&self, length: Duration) -> Vec<Sample> {
        let end = Instant::now() + length;
        let mut samples = Vec::new();
        while Instant::now() < end {
            samples.push(Sample {
                at: Instant::now(),
                status: self.cluster.status(),
            });
            std::thread::sleep(Duration::from_millis(200));
        }
        samples
    }

    /// Heals, measures how soon writes are served again, lets the clients run a little
    /// longer, reads every key once more, then checks the history and the liveness.
    fn heal_and_check(mut self) {
        let healed = Instant::now();
        self.fault_ended = Some(healed);
        self.cluster.heal();
        let all = self.cluster.all();
        let writes_again =
            self.first_write_via("heal-probe", &all, healed, healed + WRITES_AFTER_HEAL_BOUND);
        self.figure(format!(
            "writes served again after heal: {} (target 2 s)",
            secs_or(writes_again, "not within the bound")
        ));
        std::thread::sleep(AFTER_HEAL);
        for w in self.workloads.drain(..) {
            w.stop();
        }
        let mut reader = workload::client(
            &self.cluster.peers,
            &self.cluster.auth,
            Duration::from_secs(5),
        );
        let history = self.recorder.final_history(&mut reader, KEYS);
        let check_started = Instant::now();
        let verdict = check_per_key(&history);
        let check_time = check_started.elapsed();
        let crashed: Vec<usize> = self
            .cluster
            .all()
            .into_iter()
            .filter(|&i| !self.cluster.is_running(i))
            .collect();

        self.report(&history, &verdict, check_time);
        if let Err(violation) = &verdict {
            let path = self.dump_history(&history);
            panic!(
                "{}: the history is not linearizable: {violation}\nfull history: {}",
                self.name,
                path.display()
            );
        }
        assert!(crashed.is_empty(), "nodes {crashed:?} stopped running");
        let writes_again = writes_again.unwrap_or_else(|| {
            panic!(
                "{}: no write acknowledged within {WRITES_AFTER_HEAL_BOUND:?} of healing",
                self.name
            )
        });
        assert!(writes_again <= WRITES_AFTER_HEAL_BOUND);
        assert_liveness(self.name, &self.liveness);
    }

    /// Prints the scenario's figures in one block.
    fn report(
        &self,
        history: &[(String, linearizable::Operation)],
        verdict: &Result<linearizable::CheckStats, linearizable::Violation>,
        check_time: Duration,
    ) {
        use linearizable::RegisterOp::{Read, Write};
        let count = |f: &dyn Fn(&linearizable::Operation) -> bool| {
            history.iter().filter(|(_, o)| f(o)).count()
        };
        let acked_puts = count(&|o| matches!(o.op, Write(_)) && o.returned.is_some());
        let lost_puts = count(&|o| matches!(o.op, Write(_)) && o.returned.is_none());
        let reads = count(&|o| matches!(o.op, Read(_)) && o.returned.is_some());
        let failed_reads = count(&|o| matches!(o.op, Read(_)) && o.returned.is_none());
        let mut text = format!(
            "nemesis {} ({} nodes, {:.1} s):",
            self.name,
            self.cluster.len(),
            self.started.elapsed().as_secs_f64()
        );
        for f in &self.figures {
            let _ = write!(text, "\n  {f}");
        }
        if let (Some(start), Some(end)) = (self.fault_started, self.fault_ended) {
            let (from, to) = (
                self.recorder.since_start(start),
                self.recorder.since_start(end),
            );
            let during = history
                .iter()
                .filter(|(_, o)| matches!(o.op, Write(_)))
                .filter(|(_, o)| o.returned.is_some_and(|r| r >= from && r <= to))
                .count();
            let _ = write!(
                text,
                "\n  puts acknowledged during the {:.1} s fault: {during}",
                (to - from).as_secs_f64()
            );
        }
        let _ = write!(
            text,
            "\n  history: {acked_puts} acknowledged puts, {lost_puts} timed out (indeterminate), \
             {reads} reads, {failed_reads} reads timed out"
        );
        match verdict {
            Ok(stats) => {
                let _ = write!(
                    text,
                    "\n  linearizable: {} keys, up to {} operations per key, {} search steps, {:.2} s",
                    stats.keys,
                    stats.ops,
                    stats.steps,
                    check_time.as_secs_f64()
                );
            }
            Err(v) => {
                let _ = write!(text, "\n  NOT LINEARIZABLE: {v}");
            }
        }
        say(&text);
    }

    /// Writes the history, by key and invocation time, where it outlives the test.
    fn dump_history(&self, history: &[(String, linearizable::Operation)]) -> std::path::PathBuf {
        let mut sorted: Vec<_> = history.iter().collect();
        sorted.sort_by_key(|(k, o)| (k.clone(), o.invoked));
        let text: String = sorted.iter().map(|(k, o)| format!("{k} {o}\n")).collect();
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("nemesis-{}-history.txt", self.name));
        std::fs::write(&path, text).expect("write the history");
        path
    }

    /// Prints term and leadership figures of a fault; the liveness checks are the caller's.
    fn leadership_figures(&mut self, samples: &[Sample]) -> Leadership {
        let l = Leadership::of(samples);
        self.figure(format!(
            "terms: {} -> {} in {:.1} s = {:.0} new terms per minute; {} terms with a leader seen",
            l.first_term,
            l.last_term,
            l.seconds,
            l.new_terms() as f64 / l.seconds.max(1.0) * 60.0,
            l.leader_terms
        ));
        self.figure(format!(
            "leader for the last {:.0} s of the fault: {}",
            STABLE_STRETCH.as_secs_f64(),
            match l.stable_leader {
                Some((i, t)) => format!("node {i} in term {t}, throughout"),
                None => "none stable".to_string(),
            }
        ));
        l
    }
}

/// Liveness that needs PreVote and CheckQuorum. Printed always; a failure fails the test
/// unless `RAFTRIGHT_NEMESIS_LIVENESS=report`. Called after every safety check passed.
fn assert_liveness(scenario: &str, checks: &[LivenessCheck]) {
    for c in checks {
        let verdict = if c.ok { "ok" } else { "FAILED" };
        say(&format!(
            "nemesis {scenario}: liveness {verdict}: {}",
            c.what
        ));
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.what.as_str())
        .collect();
    let report_only = std::env::var("RAFTRIGHT_NEMESIS_LIVENESS").is_ok_and(|v| v == "report");
    if !failed.is_empty() && !report_only {
        panic!(
            "{scenario}: liveness failed (safety held):\n  {}",
            failed.join("\n  ")
        );
    }
}

struct Sample {
    at: Instant,
    status: Vec<Option<Status>>,
}

impl Sample {
    fn terms(&self) -> impl Iterator<Item = u64> + '_ {
        self.status.iter().flatten().map(|s| s.term)
    }

    fn max_term(&self) -> u64 {
        self.terms().max().unwrap_or(0)
    }

    /// The node claiming leadership in the highest term, if any.
    fn leader(&self) -> Option<(usize, u64)> {
        self.status
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref()
                    .filter(|s| s.role == "Leader")
                    .map(|s| (i, s.term))
            })
            .max_by_key(|&(_, term)| term)
    }

    /// How far node `i`'s term is ahead of every other node's.
    fn inflation(&self, i: usize) -> u64 {
        let Some(own) = self.status[i].as_ref().map(|s| s.term) else {
            return 0;
        };
        let others = self
            .status
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .filter_map(|(_, s)| s.as_ref().map(|s| s.term))
            .max()
            .unwrap_or(own);
        own.saturating_sub(others)
    }

    /// The highest term minus the lowest.
    fn spread(&self) -> u64 {
        let max = self.terms().max().unwrap_or(0);
        let min = self.terms().min().unwrap_or(0);
        max - min
    }
}

/// Terms and leaders over a fault.
struct Leadership {
    first_term: u64,
    last_term: u64,
    seconds: f64,
    /// Distinct terms in which some node claimed leadership.
    leader_terms: usize,
    /// One leader, in one term, in every sample of the last [`STABLE_STRETCH`].
    stable_leader: Option<(usize, u64)>,
}

impl Leadership {
    fn of(samples: &[Sample]) -> Self {
        let (first, last) = (samples.first().expect("samples"), samples.last().unwrap());
        let seconds = (last.at - first.at).as_secs_f64();
        let (first_term, last_term) = (first.max_term(), last.max_term());
        let leader_terms: BTreeSet<u64> = samples
            .iter()
            .flat_map(|s| {
                s.status
                    .iter()
                    .flatten()
                    .filter(|s| s.role == "Leader")
                    .map(|s| s.term)
                    .collect::<Vec<_>>()
            })
            .collect();
        let tail: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at + STABLE_STRETCH >= last.at)
            .collect();
        let leaders: BTreeSet<Option<(usize, u64)>> = tail.iter().map(|s| s.leader()).collect();
        let stable_leader = match leaders.into_iter().collect::<Vec<_>>().as_slice() {
            [Some(l)] => Some(*l),
            _ => None,
        };
        Self {
            first_term,
            last_term,
            seconds,
            leader_terms: leader_terms.len(),
            stable_leader,
        }
    }
}

impl Leadership {
    fn new_terms(&self) -> u64 {
        self.last_term - self.first_term
    }
}

fn secs_or(d: Option<Duration>, otherwise: &str) -> String {
    match d {
        Some(d) => format!("{:.2} s", d.as_secs_f64()),
        None => otherwise.to_string(),
    }
}

/// Node `i`'s term at the first and last sample.
fn term_growth(samples: &[Sample], i: usize) -> String {
    let term = |s: &Sample| s.status[i].as_ref().map(|s| s.term);
    match (
        samples.first().and_then(term),
        samples.last().and_then(term),
    ) {
        (Some(a), Some(b)) => format!("{a} -> {b}"),
        _ => "unknown (no answer)".to_string(),
    }
}

fn describe(status: &Option<Status>) -> String {
    match status {
        Some(s) => format!("{} in term {}", s.role, s.term),
        None => "no answer".to_string(),
    }
}

/// The nemesis itself: every fault cuts exactly the links it names, random loss drops peer
/// traffic, clients in the root namespace reach every node whatever the fault, heal restores all.
#[test]
fn faults_cut_exactly_the_links_they_name() {
    if netns::skip("faults_cut_exactly_the_links_they_name") {
        return;
    }
    let mut cluster = NetCluster::start(Options::new(5));
    type Fault = fn(&mut NetCluster);
    let faults: [(&str, Fault); 8] = [
        ("none", |_| {}),
        ("isolate(1)", |c| c.isolate(1)),
        ("partition([0, 1], [2, 3, 4])", |c| {
            c.partition(&[&[0, 1], &[2, 3, 4]])
        }),
        ("one_way_deaf(2)", |c| c.one_way_deaf(2)),
        ("one_way_mute(3)", |c| c.one_way_mute(3)),
        ("cut(0, 4) and drop_link(1, 2)", |c| {
            c.cut(0, 4);
            c.drop_link(1, 2);
        }),
        ("reach_only(0, [1, 2])", |c| c.reach_only(0, &[1, 2])),
        ("ring()", |c| c.ring()),
    ];
    for (name, fault) in faults {
        cluster.heal();
        fault(&mut cluster);
        let n = cluster.len();
        let expected: Vec<Vec<bool>> = (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| i == j || (cluster.link_up(i, j) && cluster.link_up(j, i)))
                    .collect()
            })
            .collect();
        assert_eq!(cluster.round_trips(), expected, "round trips under {name}");
        let answered = cluster.status().iter().filter(|s| s.is_some()).count();
        assert_eq!(answered, n, "clients reach every node under {name}");
    }
    cluster.heal();
    cluster.loss(100);
    let nobody: Vec<Vec<bool>> = (0..5).map(|i| (0..5).map(|j| i == j).collect()).collect();
    assert_eq!(cluster.round_trips(), nobody, "round trips under loss(100)");
    assert!(
        cluster.status().iter().all(Option::is_some),
        "clients under loss(100)"
    );
    cluster.heal();
    let everybody = vec![vec![true; 5]; 5];
    assert_eq!(cluster.round_trips(), everybody, "round trips after heal");
}

#[test]
fn isolated_leader() {
    let Some(mut s) = Scenario::start("isolated_leader", 3) else {
        return;
    };
    let (leader, term) = s.cluster.wait_for_leader();
    s.fault_begins(format!(
        "node {leader}, the leader in term {term}, isolated from its peers"
    ));
    s.cluster.isolate(leader);
    s.failover_from(leader, FAULT);
    s.wait_out_fault(FAULT);
    let old = describe(&s.cluster.status()[leader]);
    s.figure(format!(
        "the isolated old leader at the end of the fault: {old}"
    ));
    s.heal_and_check();
}

#[test]
fn majority_minority_split() {
    let Some(mut s) = Scenario::start("majority_minority_split", 5) else {
        return;
    };
    let (leader, term) = s.cluster.wait_for_leader();
    let minority = [leader, (leader + 1) % 5];
    let majority: Vec<usize> = s
        .cluster
        .all()
        .into_iter()
        .filter(|i| !minority.contains(i))
        .collect();
    s.fault_begins(format!(
        "minority {minority:?} (with the leader of term {term}) split from majority {majority:?}"
    ));
    s.cluster.partition(&[&minority, &majority]);
    s.add_client("minority-client", &minority);
    s.failover_from(leader, FAULT);
    s.wait_out_fault(FAULT);
    s.heal_and_check();
}

#[test]
fn deaf_leader() {
    let Some(mut s) = Scenario::start("deaf_leader", 3) else {
        return;
    };
    let (leader, term) = s.cluster.wait_for_leader();
    s.fault_begins(format!(
        "node {leader}, the leader in term {term}, receives nothing from its peers (it still sends)"
    ));
    s.cluster.one_way_deaf(leader);
    let failover = s.failover_from(leader, FAULT);
    s.wait_out_fault(FAULT);
    let old = describe(&s.cluster.status()[leader]);
    s.figure(format!(
        "the deaf old leader at the end of the fault: {old}"
    ));
    s.liveness(
        format!(
            "a new leader serves writes within {:.0} s of the leader going deaf \
             (target: 2 election timeouts); measured: {}",
            FAILOVER_BOUND.as_secs_f64(),
            secs_or(failover, "none during the fault")
        ),
        failover.is_some_and(|d| d <= FAILOVER_BOUND),
    );
    s.heal_and_check();
}

#[test]
fn mute_leader() {
    let Some(mut s) = Scenario::start("mute_leader", 3) else {
        return;
    };
    let (leader, term) = s.cluster.wait_for_leader();
    s.fault_begins(format!(
        "node {leader}, the leader in term {term}, cannot send to its peers (it still receives)"
    ));
    s.cluster.one_way_mute(leader);
    s.failover_from(leader, FAULT);
    s.wait_out_fault(FAULT);
    let old = describe(&s.cluster.status()[leader]);
    s.figure(format!(
        "the mute old leader at the end of the fault: {old}"
    ));
    s.heal_and_check();
}

#[test]
fn flapping_partitions() {
    let Some(mut s) = Scenario::start("flapping_partitions", 3) else {
        return;
    };
    let n = s.cluster.len();
    s.fault_begins("every 500 ms: heal, then isolate a random node, for 10 s".to_string());
    let mut isolated = Vec::new();
    while s.fault_elapsed() < Duration::from_secs(10) {
        let i = rand::random_range(0..n);
        s.cluster.heal();
        s.cluster.isolate(i);
        isolated.push(i);
        std::thread::sleep(Duration::from_millis(500));
    }
    s.figure(format!("nodes isolated in turn: {isolated:?}"));
    s.heal_and_check();
}

#[test]
fn random_loss() {
    let Some(mut s) = Scenario::start("random_loss", 3) else {
        return;
    };
    s.fault_begins("random loss on every peer link, 5-30%, redrawn every 2 s, for 10 s".into());
    let mut percents = Vec::new();
    while s.fault_elapsed() < Duration::from_secs(10) {
        let p = rand::random_range(5..=30);
        s.cluster.loss(p);
        percents.push(p);
        std::thread::sleep(Duration::from_secs(2));
    }
    s.figure(format!("loss percentages in turn: {percents:?}"));
    s.heal_and_check();
}

#[test]
fn partial_partition_of_three() {
    let Some(mut s) = Scenario::start("partial_partition_of_three", 3) else {
        return;
    };
    let (leader, term) = s.cluster.wait_for_leader();
    let follower = (leader + 1) % 3;
    let bridge = (leader + 2) % 3;
    s.fault_begins(format!(
        "the link between the leader (node {leader}, term {term}) and node {follower} is cut; \
         node {bridge} reaches both"
    ));
    s.cluster.cut(leader, follower);
    let samples = s.sample(LONG_FAULT);
    let l = s.leadership_figures(&samples);
    let inflation = samples.iter().map(|x| x.inflation(follower)).max().unwrap();
    s.figure(format!(
        "node {follower}'s term: {}, ahead of every other node's by at most {inflation}",
        term_growth(&samples, follower)
    ));
    stability_checks(&mut s, &l);
    s.liveness(
        format!(
            "node {follower}'s term runs at most {TERM_INFLATION_BOUND} ahead of the others'; \
             measured: {inflation}"
        ),
        inflation <= TERM_INFLATION_BOUND,
    );
    s.heal_and_check();
}

#[test]
fn partial_partition_of_five() {
    let Some(mut s) = Scenario::start("partial_partition_of_five", 5) else {
        return;
    };
    let (leader, term) = s.cluster.wait_for_leader();
    let followers = s.cluster.others(leader);
    let (partial, reachable) = (followers[0], [followers[1], followers[2]]);
    s.fault_begins(format!(
        "node {partial} reaches only nodes {reachable:?}, not the leader (node {leader}, term {term})"
    ));
    s.cluster.reach_only(partial, &reachable);
    let samples = s.sample(LONG_FAULT);
    let l = s.leadership_figures(&samples);
    let inflation = samples.iter().map(|x| x.inflation(partial)).max().unwrap();
    s.figure(format!(
        "node {partial}'s term: {}, ahead of every other node's by at most {inflation}",
        term_growth(&samples, partial)
    ));
    stability_checks(&mut s, &l);
    s.liveness(
        format!(
            "node {partial}'s term runs at most {TERM_INFLATION_BOUND} ahead of the others'; \
             measured: {inflation}"
        ),
        inflation <= TERM_INFLATION_BOUND,
    );
    s.heal_and_check();
}

#[test]
fn ring_of_majorities() {
    let Some(mut s) = Scenario::start("ring_of_majorities", 5) else {
        return;
    };
    let (leader, term) = s.cluster.wait_for_leader();
    s.fault_begins(format!(
        "a ring: node k reaches only k-1 and k+1 (mod 5); the leader was node {leader} in term {term}"
    ));
    s.cluster.ring();
    let samples = s.sample(LONG_FAULT);
    let l = s.leadership_figures(&samples);
    let spread = samples.iter().map(Sample::spread).max().unwrap();
    s.figure(format!("highest term minus lowest: at most {spread}"));
    stability_checks(&mut s, &l);
    s.liveness(
        format!(
            "no node's term runs more than {TERM_INFLATION_BOUND} ahead of another's; \
             measured: {spread}"
        ),
        spread <= TERM_INFLATION_BOUND,
    );
    s.heal_and_check();
}

/// A stable leader under a partial partition: few new terms, one leader throughout the end.
fn stability_checks(s: &mut Scenario, l: &Leadership) {
    // Counted against the fault's nominal length, so that sampling jitter cannot tip it.
    let allowed = TERMS_PER_MINUTE_BOUND * LONG_FAULT.as_secs() / 60;
    s.liveness(
        format!(
            "at most {TERMS_PER_MINUTE_BOUND} new terms per minute ({allowed} in {:.0} s); \
             measured: {} new terms",
            LONG_FAULT.as_secs_f64(),
            l.new_terms()
        ),
        l.new_terms() <= allowed,
    );
    s.liveness(
        format!(
            "one leader, in one term, for the last {:.0} s of the fault; measured: {}",
            STABLE_STRETCH.as_secs_f64(),
            match l.stable_leader {
                Some((i, t)) => format!("node {i} in term {t}"),
                None => "none".to_string(),
            }
        ),
        l.stable_leader.is_some(),
    );
}
