//! Concurrent clients doing puts (each value unique) and gets on a few keys, and the history
//! they record: for each operation, who, what, when it was invoked, and when it returned with
//! what, or that it never returned (a timeout: the operation may still take effect).

#![allow(dead_code)]

use crate::linearizable::{Operation, RegisterOp};
use raftright::runtime::auth::Auth;
use raftright::runtime::client::Client;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Each operation gives up after this; short, so that a fault leaves indeterminate operations.
pub const OP_TIMEOUT: Duration = Duration::from_millis(1500);
/// One attempt at one server before the client tries the next.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(200);

pub fn client(peers: &[SocketAddrV4], auth: &Auth, timeout: Duration) -> Client {
    Client::new(peers.to_vec(), auth.clone(), timeout)
        .expect("client socket")
        .with_attempt_timeout(ATTEMPT_TIMEOUT)
}

#[derive(Clone, Debug)]
pub struct Record {
    pub key: String,
    pub op: Operation,
}

/// The shared history; times are measured from `start`.
pub struct Recorder {
    pub start: Instant,
    records: Mutex<Vec<Record>>,
    /// Makes every written value unique.
    written: AtomicU64,
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            records: Mutex::new(Vec::new()),
            written: AtomicU64::new(0),
        })
    }

    pub fn since_start(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.start)
    }

    fn record(&self, key: &str, name: &str, op: RegisterOp, invoked: Instant, ok: bool) {
        let returned = ok.then(|| self.since_start(Instant::now()));
        self.records.lock().unwrap().push(Record {
            key: key.to_string(),
            op: Operation {
                client: name.to_string(),
                op,
                invoked: self.since_start(invoked),
                returned,
            },
        });
    }

    /// A recorded put of a value never written before; whether it was acknowledged.
    pub fn put(&self, client: &mut Client, name: &str, key: &str) -> bool {
        let value = format!("{name}-{}", self.written.fetch_add(1, Ordering::SeqCst));
        let invoked = Instant::now();
        let ok = client.put(key, &value).is_ok();
        self.record(key, name, RegisterOp::Write(value), invoked, ok);
        ok
    }

    /// A recorded get; `Some(value)` if it was answered.
    pub fn get(&self, client: &mut Client, name: &str, key: &str) -> Option<Option<String>> {
        let invoked = Instant::now();
        let result = client.get(key).ok();
        let op = RegisterOp::Read(result.clone().flatten());
        self.record(key, name, op, invoked, result.is_some());
        result
    }

    pub fn history(&self) -> Vec<Record> {
        self.records.lock().unwrap().clone()
    }

    /// Reads every key once more through `reader` (retrying until answered), then returns the
    /// whole history, those reads included, as (key, operation) pairs for the checker.
    pub fn final_history(&self, reader: &mut Client, keys: &[&str]) -> Vec<(String, Operation)> {
        for key in keys {
            crate::common::eventually("a final read", || self.get(reader, "final-read", key));
        }
        self.history().into_iter().map(|r| (r.key, r.op)).collect()
    }
}

/// What the clients talk to: all nodes, or a chosen few (one side of a partition).
pub struct ClientSpec {
    pub name: String,
    pub peers: Vec<SocketAddrV4>,
    pub auth: Auth,
}

pub struct Workload {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Workload {
    /// One thread per client: a random key, a put or a get, a short random pause, again.
    pub fn start(recorder: &Arc<Recorder>, clients: Vec<ClientSpec>, keys: &[&str]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        let threads = clients
            .into_iter()
            .map(|spec| {
                let stop = stop.clone();
                let recorder = recorder.clone();
                let keys = keys.clone();
                std::thread::spawn(move || run_client(&recorder, &spec, &keys, &stop))
            })
            .collect();
        Self { stop, threads }
    }

    /// Stops the clients; each finishes its operation in progress first.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            if t.join().is_err() && !std::thread::panicking() {
                panic!("a client thread panicked");
            }
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn run_client(recorder: &Recorder, spec: &ClientSpec, keys: &[String], stop: &AtomicBool) {
    let mut client = client(&spec.peers, &spec.auth, OP_TIMEOUT);
    while !stop.load(Ordering::SeqCst) {
        let key = &keys[rand::random_range(0..keys.len())];
        if rand::random_bool(0.5) {
            recorder.put(&mut client, &spec.name, key);
        } else {
            recorder.get(&mut client, &spec.name, key);
        }
        // Paced, so that two scenarios at once leave the nodes some of the two cores.
        std::thread::sleep(Duration::from_millis(rand::random_range(2..12)));
    }
}
