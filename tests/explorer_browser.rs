//! The Explorer, end to end: `raftright explore` serves it, its JSON API answers with Raft's
//! words, and a real browser (headless Chromium) renders the page: the property names, the
//! servers' roles and terms, an election and a replication step, and, from the link that
//! `raftright check --mutant` prints, the failing step of a counterexample.
//!
//! The browser is Debian's `chromium` (`apt-get install chromium`), or the one named by the
//! `CHROMIUM` variable. Without one, the browser half is skipped with a loud message; under CI
//! (`CI` set) a missing browser fails the test instead.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_raftright");

/// One Explorer and one browser at a time: the machines running this have few cores.
static SERIAL: Mutex<()> = Mutex::new(());

const PROPERTY_NAMES: [&str; 8] = [
    "Election Safety",
    "Leader Append-Only",
    "Log Matching",
    "Leader Completeness",
    "State Machine Safety",
    "commitIndex monotonic",
    "Linearizable",
    "a leader is elected",
];

/// A running `raftright explore`, killed when dropped.
struct Explorer {
    child: Child,
    addr: String,
}

impl Explorer {
    fn start(options: &[&str]) -> Explorer {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut child = Command::new(BIN)
            .arg("explore")
            .args(options)
            .args(["--addr", &addr, "--threads", "1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start raftright explore");
        let stdout = child.stdout.take().expect("piped stdout");
        let explorer = Explorer { child, addr };
        // Read stdout on a thread (so that it never fills) and wait for the printed link.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let want = format!("explore: http://{}/", explorer.addr);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with(&want) => break,
                Ok(_) => {}
                Err(e) => panic!("raftright explore did not print {want}: {e}"),
            }
        }
        // The link is printed just before stateright starts listening.
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(&explorer.addr, "/.status").is_err() {
            assert!(Instant::now() < deadline, "the Explorer never answered");
            std::thread::sleep(Duration::from_millis(50));
        }
        explorer
    }

    fn json(&self, path: &str) -> serde_json::Value {
        let body = http_get(&self.addr, path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// The steps possible after `indices` (`/.states/0/4/2`).
    fn steps_after(&self, indices: &[u64]) -> Vec<serde_json::Value> {
        let path: String = indices.iter().map(|i| format!("/{i}")).collect();
        match self.json(&format!("/.states{path}")) {
            serde_json::Value::Array(steps) => steps,
            other => panic!("not a list of steps: {other}"),
        }
    }

    /// Follows actions by their labels from the initial state; returns the action indices and
    /// the last step taken.
    fn follow(&self, labels: &[&str]) -> (Vec<u64>, serde_json::Value) {
        let mut indices = vec![0];
        let mut last = self.steps_after(&[]).remove(0);
        for label in labels {
            let steps = self.steps_after(&indices);
            let step = steps
                .iter()
                .find(|s| s["action"] == *label)
                .unwrap_or_else(|| {
                    let have: Vec<_> = steps.iter().map(|s| s["action"].to_string()).collect();
                    panic!("no action {label:?} after {indices:?}; have {have:#?}")
                });
            indices.push(step["actionIndex"].as_u64().expect("an action index"));
            last = step.clone();
        }
        (indices, last)
    }

    fn url(&self, indices: &[u64]) -> String {
        let path: Vec<String> = indices.iter().map(u64::to_string).collect();
        format!("http://{}/#/steps/{}", self.addr, path.join("/"))
    }
}

impl Drop for Explorer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().unwrap().port()
}

/// A plain HTTP/1.0 GET; the body of a 200 answer.
fn http_get(addr: &str, path: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP answer: {answer:?}"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("{path}: {head}"));
    }
    Ok(body.to_string())
}

/// The browser to use, if any.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let names = [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
        "chrome-headless-shell",
    ];
    let dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    names
        .iter()
        .flat_map(|n| dirs.iter().map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// The browser, or `None` after saying loudly that the browser checks are skipped.
fn browser_or_skip() -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        let msg = "no Chromium found (install Debian's `chromium`, or set CHROMIUM=/path/to/it)";
        if std::env::var_os("CI").is_some() {
            panic!("{msg}: CI must install a browser for the Explorer test");
        }
        // Straight to stderr: the test harness would swallow `eprintln!` of a passing test.
        let bar = "!".repeat(78);
        let _ = writeln!(
            std::io::stderr(),
            "\n{bar}\nSKIPPED: the Explorer's browser checks: {msg}\n{bar}\n"
        );
    }
    found
}

/// Kills the browser if a dump takes too long or the test fails.
struct Browser(Child);

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Loads `url` in headless Chromium, lets its scripts run, and returns the page's DOM.
fn dump_dom(chromium: &Path, url: &str) -> String {
    let profile = tempfile::tempdir().expect("a browser profile directory");
    let mut browser = Browser(
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=10000",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromium.display())),
    );
    let mut stdout = browser.0.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut dom = String::new();
        let _ = stdout.read_to_string(&mut dom);
        let _ = tx.send(dom);
    });
    let dom = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("the browser took over a minute on {url}"));
    assert!(dom.contains("</html>"), "no page from the browser: {dom}");
    dom
}

/// What a reader sees of a DOM: its text, without tags, styles, scripts or the pictures'
/// descriptions (which repeat the state as text for the page's script).
fn visible_text(dom: &str) -> String {
    let mut text = String::new();
    let mut rest = dom;
    while let Some(start) = rest.find('<') {
        text.push_str(&rest[..start]);
        rest = &rest[start..];
        let skip_to = ["<style", "<script", "<desc"]
            .iter()
            .zip(["</style>", "</script>", "</desc>"])
            .find(|(open, _)| rest.starts_with(**open))
            .map(|(_, close)| close);
        let end = match skip_to {
            Some(close) => rest.find(close).map(|i| i + close.len()),
            None => rest.find('>').map(|i| i + 1),
        };
        let end = end.unwrap_or(rest.len());
        // A tspan continues its line of SVG text; other tags may break it.
        if !rest.starts_with("<tspan") && !rest.starts_with("</tspan") {
            text.push(' ');
        }
        rest = &rest[end..];
    }
    text.push_str(rest);
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn assert_shows(text: &str, wanted: &[&str]) {
    for w in wanted {
        assert!(text.contains(w), "the page does not show {w:?}:\n{text}");
    }
}

/// Readable everywhere: no Rust `Debug` dump of the state anywhere in the page (it is shown
/// only when asked for).
fn assert_no_debug_dump(dom: &str) {
    for raw in ["ActorModelState", "Envelope {", "actor_states"] {
        assert!(!dom.contains(raw), "the page holds {raw:?}:\n{dom}");
    }
}

/// The properties sidebar agrees with the state's own verdict (the red "VIOLATED in this
/// state: ..." line, or "all N always-properties hold in this state"): no property the state
/// violates is listed as holding or unchecked, and none it satisfies as violated here.
fn assert_sidebar_agrees(dom: &str, text: &str) {
    let violated: Vec<&str> = match text.split_once("VIOLATED in this state: ") {
        Some((_, rest)) => {
            let line = rest.split(" examples reached here").next().unwrap_or(rest);
            PROPERTY_NAMES
                .iter()
                .copied()
                .filter(|p| line.contains(p))
                .collect()
        }
        None => {
            assert!(
                text.contains("always-properties hold in this state"),
                "{text}"
            );
            Vec::new()
        }
    };
    let mut listed = 0;
    for item in dom.split("<li class=\"property\"").skip(1) {
        let item = visible_text(&format!("<li{}", item.split("</li>").next().unwrap_or("")));
        listed += 1;
        let Some(name) = PROPERTY_NAMES
            .iter()
            .find(|p| item.contains(&format!(" {p}: ")))
        else {
            continue;
        };
        if !item.contains(&format!("always {name}:")) {
            continue;
        }
        if violated.contains(name) {
            assert!(
                item.ends_with("VIOLATED in this state") || item.ends_with("counterexample"),
                "the state violates {name}, the sidebar says: {item}"
            );
        } else {
            assert!(
                !item.contains("VIOLATED"),
                "the state satisfies {name}, the sidebar says: {item}"
            );
        }
    }
    assert!(
        listed >= PROPERTY_NAMES.len(),
        "no properties listed:\n{dom}"
    );
}

#[test]
fn explorer_shows_an_election_and_a_replication_step_in_a_browser() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let explorer = Explorer::start(&["--clients", "1", "--max-term", "2", "--max-log", "2"]);

    // The JSON API, in Raft's words.
    let status = explorer.json("/.status");
    assert_eq!(status["model"], "raftright::model::RaftModel");
    let names: Vec<&str> = status["properties"]
        .as_array()
        .expect("properties")
        .iter()
        .map(|p| p[1].as_str().expect("a property name"))
        .collect();
    for name in PROPERTY_NAMES {
        assert!(names.contains(&name), "no property {name:?} in {names:?}");
    }
    let init = explorer.steps_after(&[]);
    assert_eq!(init.len(), 1, "one initial state");
    let svg = init[0]["svg"]
        .as_str()
        .expect("a picture of the initial state");
    assert!(svg.contains(">Follower</text>") && svg.contains("term 0"));
    let (election, elected) = explorer.follow(&[
        "S0 election timeout",
        "S0 -> S1 RequestVote(term 1, last 0:0)",
        "S1 -> S0 Vote(term 1, granted)",
    ]);
    let outcome = elected["outcome"].as_str().expect("a state as text");
    assert!(
        outcome.contains("S0 Leader | term 1 | voted S0 | commit 0 | log [1:1:noop]"),
        "{outcome}"
    );
    let (replication, replicated) = explorer.follow(&[
        "S0 election timeout",
        "S0 -> S1 RequestVote(term 1, last 0:0)",
        "S1 -> S0 Vote(term 1, granted)",
        "S0 -> S1 AppendEntries(term 1, prev 0:0, 1 entry, commit 0)",
        "S1 -> S0 AppendOk(term 1, match 1)",
    ]);
    let outcome = replicated["outcome"].as_str().expect("a state as text");
    assert!(
        outcome.contains("S0 Leader | term 1 | voted S0 | commit 1 | log [1:1:noop]")
            && outcome
                .contains("S1 Follower of S0 | term 1 | voted S0 | commit 0 | log [1:1:noop]"),
        "{outcome}"
    );

    let Some(chromium) = browser_or_skip() else {
        return;
    };
    // The landing page selects the initial state.
    let dom = dump_dom(&chromium, &format!("http://{}/", explorer.addr));
    let text = visible_text(&dom);
    assert_shows(&text, &PROPERTY_NAMES);
    assert_shows(
        &text,
        &[
            "Initial state",
            "S0 Follower | term 0 | voted - | commit 0 | log []",
            "C0 waiting for #1 (Put x=a) at S0",
            "S0 election timeout",
            // "Run to completion" is not check's search, and the page says which command is.
            "breadth-first and without server symmetry",
            "raftright check models/clients.toml --clients 1 --max-term 2 --max-log 2",
        ],
    );
    assert_sidebar_agrees(&dom, &text);
    assert_no_debug_dump(&dom);

    let dom = dump_dom(&chromium, &explorer.url(&election));
    let text = visible_text(&dom);
    assert_shows(
        &text,
        &[
            "Step 3: S1 -> S0 Vote(term 1, granted)",
            "Leader",
            "term 1",
            "S0 Leader | term 1 | voted S0 | commit 0 | log [1:1:noop]",
            "3. S1 -> S0 Vote(term 1, granted): becomes leader in term 1",
            "examples reached here: a leader is elected",
        ],
    );
    assert_sidebar_agrees(&dom, &text);
    assert!(
        text.contains("sometimes a leader is elected: reached in this state")
            || text.contains("sometimes a leader is elected: example"),
        "the sidebar does not say that a leader is elected here:\n{text}"
    );
    assert_no_debug_dump(&dom);

    let dom = dump_dom(&chromium, &explorer.url(&replication));
    let text = visible_text(&dom);
    assert_shows(&text, &PROPERTY_NAMES);
    assert_shows(
        &text,
        &[
            "Step 5: S1 -> S0 AppendOk(term 1, match 1)",
            "4. S0 -> S1 AppendEntries(term 1, prev 0:0, 1 entry, commit 0): log [1:1:noop]",
            "5. S1 -> S0 AppendOk(term 1, match 1): commit 1",
            "S0 Leader | term 1 | voted S0 | commit 1 | log [1:1:noop]",
            "all 14 always-properties hold in this state",
        ],
    );
    assert_no_debug_dump(&dom);
    eprintln!(
        "explorer browser test: {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_mutant_counterexample_link_opens_the_failing_step() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let check = Command::new(BIN)
        .args(["check", "--mutant", "forget-vote-on-restart"])
        .args([
            "--clients",
            "0",
            "--max-term",
            "1",
            "--max-log",
            "1",
            "--max-in-flight",
            "0",
            "--crashes",
            "1",
            "--crash-events",
            "1",
            "--threads",
            "1",
        ])
        .output()
        .expect("run raftright check");
    let out = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "the mutant is caught:\n{out}");
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("explore: "))
        .unwrap_or_else(|| panic!("no Explorer link in:\n{out}"));
    let link = &lines[at]["explore: ".len()..];
    let (_, steps) = link
        .split_once("#/steps/")
        .unwrap_or_else(|| panic!("not a path link: {link}"));
    let indices: Vec<u64> = steps
        .split('/')
        .map(|i| i.parse().expect("an index"))
        .collect();
    let options: Vec<&str> = lines[at + 1]
        .strip_prefix("(start the Explorer first: raftright explore ")
        .and_then(|l| l.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no hint how to start the Explorer in:\n{out}"))
        .split_whitespace()
        .collect();
    assert!(options.contains(&"forget-vote-on-restart"), "{options:?}");
    // The story's last step, as `check` printed it above the link.
    let last_story = lines[..at]
        .iter()
        .rev()
        .find_map(|l| {
            let (n, step) = l.split_once(". ")?;
            n.parse::<usize>().ok().map(|_| step)
        })
        .expect("a numbered step");

    let explorer = Explorer::start(&options);
    let (before, last) = indices.split_at(indices.len() - 1);
    let step = explorer
        .steps_after(before)
        .into_iter()
        .find(|s| s["actionIndex"] == last[0])
        .expect("the link's last step");
    let action = step["action"].as_str().expect("an action label");
    assert!(
        last_story.starts_with(action),
        "the Explorer's last step {action:?} is not check's {last_story:?}"
    );
    let outcome = step["outcome"].as_str().expect("a state as text");
    assert_eq!(outcome.matches("Leader | term 1 |").count(), 2, "{outcome}");

    let Some(chromium) = browser_or_skip() else {
        return;
    };
    let url = format!("http://{}/#/steps/{steps}", explorer.addr);
    let dom = dump_dom(&chromium, &url);
    let text = visible_text(&dom);
    assert_shows(&text, &PROPERTY_NAMES);
    assert_shows(
        &text,
        &[
            &format!("Step {}: {action}", indices.len() - 1),
            "VIOLATED in this state: Election Safety",
            "mutant=forget-vote-on-restart",
        ],
    );
    assert_eq!(
        text.matches("Leader | term 1 |").count(),
        2,
        "two leaders of term 1:\n{text}"
    );
    assert!(!text.contains("Cannot show this path"), "{text}");
    assert_sidebar_agrees(&dom, &text);
    assert!(
        text.contains("always Election Safety: VIOLATED in this state")
            || text.contains("always Election Safety: counterexample"),
        "the sidebar does not say that Election Safety fails:\n{text}"
    );
    assert_no_debug_dump(&dom);
    eprintln!(
        "mutant link browser test: {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
