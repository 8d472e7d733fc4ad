//! The README's cluster walkthrough, run as `scripts/walkthrough.sh`: three node processes,
//! kill -9 of whichever node leads, a restart of exactly that node, every acknowledged write
//! read back, and a fourth server added and removed.

mod common;

use common::{BIN, free_ports, peers_arg};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_walkthrough_survives_killing_whichever_node_leads() {
    let work = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/walkthrough.sh");
    // Output to files, not pipes: a node left running must not keep the test waiting.
    let (out_path, err_path) = (work.path().join("out.txt"), work.path().join("err.txt"));
    let mut child = Command::new("bash")
        .arg(script)
        .env("RAFTRIGHT", BIN)
        .env("P", peers_arg(&free_ports(3)))
        .env("N", free_ports(1)[0].to_string())
        .env("WORK", work.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("run bash");
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let pids = node_pids(work.path());
    if status.is_none() {
        for &pid in &pids {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let status =
        status.unwrap_or_else(|| panic!("the walkthrough took over 3 minutes\n{stdout}\n{stderr}"));
    assert!(
        status.success(),
        "the walkthrough failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(
        stdout.contains("every acknowledged write survived"),
        "{stdout}"
    );
    assert!(
        stdout.contains("grew to 4 servers and shrank back to 3"),
        "{stdout}"
    );
    // Every node wrote its pid (the restarted one too), and the script stopped them all.
    assert_eq!(pids.len(), 3, "pid files: {pids:?}");
    for pid in pids {
        let stopped = (0..50).any(|_| {
            // Signal 0 probes for the process; a zombie counts as stopped.
            let alive = unsafe { libc::kill(pid, 0) } == 0
                && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z "));
            if alive {
                std::thread::sleep(Duration::from_millis(100));
            }
            !alive
        });
        if !stopped {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        assert!(
            stopped,
            "a node (pid {pid}) still ran after the walkthrough"
        );
    }
}

/// The pids the nodes wrote to `WORK/data/ID/raftright.pid`.
fn node_pids(work: &std::path::Path) -> Vec<i32> {
    (0..3)
        .filter_map(|id| {
            let file = work.join(format!("data/{id}/raftright.pid"));
            std::fs::read_to_string(file).ok()?.trim().parse().ok()
        })
        .collect()
}

/// The README's cluster sections show the script's steps: every command of them, quotes and
/// comments aside, is in the script (the addresses come from `P`, which the script lets a
/// caller choose).
#[test]
fn the_readme_shows_the_steps_the_script_runs() {
    let readme = include_str!("../README.md");
    let script = include_str!("../scripts/walkthrough.sh");
    let plain = |s: &str| {
        s.replace('"', "")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let start = readme
        .find("### One process per server")
        .expect("the README's cluster section");
    let end = start + readme[start..].find("### Authentication").expect("its end");
    let script = plain(script);
    let mut commands = 0;
    for line in readme[start..end].lines() {
        let Some(command) = line.strip_prefix("    ") else {
            continue;
        };
        let command = command.split("   #").next().unwrap_or(command).trim();
        let assigns = |c: &str| {
            c.split_once('=').is_some_and(|(name, _)| {
                !name.is_empty() && name.chars().all(|ch| ch.is_ascii_uppercase())
            })
        };
        if assigns(command) {
            continue; // addresses and numbers, which the script lets a caller choose
        }
        commands += 1;
        assert!(
            script.contains(&plain(command)),
            "scripts/walkthrough.sh does not run the README's {command:?}"
        );
    }
    assert!(
        commands >= 15,
        "only {commands} commands found in the README"
    );
}
