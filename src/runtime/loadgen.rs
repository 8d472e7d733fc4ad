//! A load generator: `clients` concurrent logical clients, each with one put (or, a fraction
//! `reads` of the time, a get of a key written before) in flight at a time, multiplexed over
//! one UDP socket and one thread (so the generator itself stays cheap).
//!
//! Client `k` uses its own client id and the sequence numbers `k + 1, k + 1 + C, k + 1 + 2C,
//! ...`: increasing per client, as the sessions require, and disjoint across clients, so an
//! answer's sequence number alone tells whose it is. A put counts once its committed answer
//! arrives; its latency runs from its first send to that answer, retries included.

use super::auth::Auth;
use super::client::{Client, is_timeout, socket_towards};
use super::wire;
use crate::raft::{ClientId, Msg, Op, Reply};
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct LoadConfig {
    pub peers: Vec<SocketAddrV4>,
    /// The cluster key (or `Auth::Insecure`).
    pub auth: Auth,
    pub clients: usize,
    /// Untimed load before the measurement starts.
    pub warmup: Duration,
    pub duration: Duration,
    pub key_size: usize,
    pub value_size: usize,
    /// A put without an answer for this long is sent again (to the next server).
    pub request_timeout: Duration,
    /// The fraction of operations that are gets (0.0 ..= 1.0).
    pub reads: f64,
    /// Puts cycle through this many keys (default: all that `key_size` digits can name).
    pub keys: Option<u64>,
}

#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// Puts committed within the measured window.
    pub puts: u64,
    pub elapsed: Duration,
    /// Latencies of those puts, sorted.
    pub latencies: Vec<Duration>,
    /// Requests sent again after a timeout or a "not leader".
    pub resent: u64,
    /// Gets answered within the measured window.
    pub gets: u64,
    /// Latencies of those gets, sorted.
    pub get_latencies: Vec<Duration>,
}

impl LoadReport {
    pub fn puts_per_sec(&self) -> f64 {
        self.puts as f64 / self.elapsed.as_secs_f64()
    }

    pub fn gets_per_sec(&self) -> f64 {
        self.gets as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p`-th percentile latency of puts (0.0 ..= 1.0).
    pub fn percentile(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }

    /// The `p`-th percentile latency of gets.
    pub fn get_percentile(&self, p: f64) -> Duration {
        percentile(&self.get_latencies, p)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

struct Slot {
    client_id: ClientId,
    round: u64,
    seq: u64,
    started: Instant,
    sent: Instant,
    /// The request's JSON; each send authenticates it for its destination.
    payload: Vec<u8>,
    is_get: bool,
}

/// Runs the load and reports on the measured window.
pub fn run(cfg: &LoadConfig) -> io::Result<LoadReport> {
    let n = cfg.peers.len();
    let c = cfg.clients.max(1) as u64;
    let mut leader = find_leader(&cfg.peers, &cfg.auth)?.unwrap_or(0);
    let (socket, me) = socket_towards(&cfg.peers)?;
    let send =
        |payload: &[u8], to: SocketAddrV4| socket.send_to(&cfg.auth.seal(me, to, payload), to);
    let base: ClientId = rand::random::<ClientId>() >> 16 << 16;
    let value = "v".repeat(cfg.value_size);
    let modulus = 10u64.saturating_pow(cfg.key_size.min(18) as u32);
    let modulus = cfg.keys.map_or(modulus, |k| k.clamp(1, modulus));
    let mut issued = 0u64;
    // Returns the request's JSON and whether it is a get (of a key already written).
    let mut request = |client_id, seq| {
        let is_get = issued > 0 && rand::random::<f64>() < cfg.reads;
        let op = if is_get {
            let key = rand::random::<u64>() % issued.min(modulus);
            Op::Get {
                key: format!("{key:0width$}", width = cfg.key_size),
            }
        } else {
            issued += 1;
            Op::Put {
                key: format!("{:0width$}", issued % modulus, width = cfg.key_size),
                value: value.clone(),
            }
        };
        let payload =
            serde_json::to_vec(&Msg::ClientRequest { client_id, seq, op }).expect("encodes");
        (payload, is_get)
    };

    let start = Instant::now();
    let measure_from = start + cfg.warmup;
    let end = measure_from + cfg.duration;
    let mut slots: Vec<Slot> = (0..c)
        .map(|k| {
            let seq = k + 1;
            let (payload, is_get) = request(base + k, seq);
            Slot {
                client_id: base + k,
                round: 0,
                seq,
                started: start,
                sent: start,
                payload,
                is_get,
            }
        })
        .collect();
    for s in &mut slots {
        s.started = Instant::now();
        s.sent = s.started;
        send(&s.payload, cfg.peers[leader])?;
    }

    let mut report = LoadReport::default();
    let mut buf = vec![0u8; 65_536];
    let mut next_check = Instant::now();
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if now >= next_check {
            for s in slots.iter_mut() {
                if now.duration_since(s.sent) >= cfg.request_timeout {
                    leader = (leader + 1) % n;
                    s.sent = now;
                    report.resent += 1;
                    send(&s.payload, cfg.peers[leader])?;
                }
            }
            next_check = now + Duration::from_millis(20);
        }
        socket.set_read_timeout(Some((end - now).min(Duration::from_millis(20))))?;
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok((len, SocketAddr::V4(from))) => (len, from),
            Ok(_) => continue,
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) => return Err(e),
        };
        let Ok(Msg::ClientResponse { seq, reply }) = wire::open(&cfg.auth, from, me, &buf[..len])
        else {
            continue;
        };
        let k = ((seq.wrapping_sub(1)) % c) as usize;
        let s = &mut slots[k];
        if s.seq != seq {
            continue; // a duplicate answer to an earlier put
        }
        let done = Instant::now();
        match reply {
            Reply::Ok { .. } => {
                if done >= measure_from && s.is_get {
                    report.gets += 1;
                    report.get_latencies.push(done - s.started);
                } else if done >= measure_from {
                    report.puts += 1;
                    report.latencies.push(done - s.started);
                }
                s.round += 1;
                s.seq = s.round * c + k as u64 + 1;
                (s.payload, s.is_get) = request(s.client_id, s.seq);
                s.started = done;
            }
            Reply::NotLeader { leader_hint } => {
                let hinted = leader_hint
                    .map(SocketAddrV4::from)
                    .and_then(|h| cfg.peers.iter().position(|&p| p == h));
                leader = hinted.unwrap_or((leader + 1) % n);
                report.resent += 1;
            }
        }
        s.sent = done;
        send(&s.payload, cfg.peers[leader])?;
    }
    report.elapsed = end.saturating_duration_since(measure_from);
    report.latencies.sort_unstable();
    report.get_latencies.sort_unstable();
    Ok(report)
}

/// The index of the server that says it leads, if any answers so.
pub fn find_leader(peers: &[SocketAddrV4], auth: &Auth) -> io::Result<Option<usize>> {
    let mut client = Client::new(peers.to_vec(), auth.clone(), Duration::from_secs(1))?;
    let answers = client.status(Duration::from_millis(500))?;
    Ok(answers
        .iter()
        .position(|a| a.as_ref().is_some_and(|s| s.status.role == "Leader")))
}
