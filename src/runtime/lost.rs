//! A follower that lost what it acknowledged: its disk was wiped, or its log's tail was cut on
//! recovery. Its acknowledgements helped commit entries it no longer holds, so its vote could
//! now elect a leader without them. The leader finds it by its answers (every heartbeat
//! rejected below the index it acknowledged), says so loudly, and tells it; the follower then
//! takes no part, neither voting nor acknowledging, until an operator replaces it (remove it,
//! wipe its data directory, add it back as a new server).

use super::wal;
use crate::raft::Index;
use serde::{Deserialize, Serialize};
use stateright::actor::Id;
use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::path::Path;

/// In the data directory of a node told it lost its log; it survives restarts.
pub const MARKER_FILE: &str = "lost-log";

/// Heartbeats answered below the acknowledged index, in a row, before the leader calls it a
/// lost disk: one such answer alone may be a stale one, reordered.
pub const LOST_AFTER: u32 = 3;

/// What the marker file holds.
#[derive(Serialize, Deserialize)]
struct Marker {
    acknowledged: Index,
    told_by: SocketAddrV4,
}

#[derive(Debug, Default)]
pub struct LostLogs {
    /// As a leader: per follower, heartbeats answered in a row below what it acknowledged.
    behind: BTreeMap<Id, u32>,
    /// As a leader: the followers found to have lost their log, with what they acknowledged.
    pub followers: BTreeMap<Id, Index>,
    /// This node lost its log: it had acknowledged through this index.
    pub own: Option<Index>,
}

impl LostLogs {
    /// The record in `dir`: a node told before it restarted stays out. A marker that cannot
    /// be read counts as one (the node stays out rather than vote with a lost log).
    pub fn open(dir: &Path) -> Self {
        let own = match std::fs::read(dir.join(MARKER_FILE)) {
            Ok(bytes) => {
                Some(serde_json::from_slice::<Marker>(&bytes).map_or(0, |m| m.acknowledged))
            }
            Err(_) => None,
        };
        Self {
            own,
            ..Self::default()
        }
    }

    /// As a leader: `follower` answered a heartbeat holding fewer entries than it
    /// acknowledged. Returns whether it is now judged to have lost its log (tell it).
    pub fn answered_behind(&mut self, follower: Id, acknowledged: Index) -> bool {
        let count = self.behind.entry(follower).or_default();
        *count += 1;
        if *count < LOST_AFTER {
            return false;
        }
        self.followers.insert(follower, acknowledged);
        true
    }

    /// As a leader: `follower` acknowledged entries, so it holds its log again (after it was
    /// replaced, or the answers below were stale).
    pub fn answered(&mut self, follower: Id) {
        self.behind.remove(&follower);
        self.followers.remove(&follower);
    }

    /// This node was told it lost its log. Records it durably; returns whether that is news.
    pub fn mark_own(
        &mut self,
        dir: &Path,
        acknowledged: Index,
        told_by: SocketAddrV4,
    ) -> std::io::Result<bool> {
        if self.own.is_some() {
            return Ok(false);
        }
        let marker = Marker {
            acknowledged,
            told_by,
        };
        let bytes = serde_json::to_vec(&marker).map_err(std::io::Error::other)?;
        wal::replace_file(dir, MARKER_FILE, &bytes)?;
        self.own = Some(acknowledged);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn id(port: u16) -> Id {
        Id::from(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
    }

    #[test]
    fn a_follower_is_lost_after_heartbeats_in_a_row_and_found_again_by_an_ack() {
        let mut lost = LostLogs::default();
        for _ in 1..LOST_AFTER {
            assert!(
                !lost.answered_behind(id(2), 7),
                "one stale answer is no proof"
            );
        }
        lost.answered(id(2));
        for _ in 1..LOST_AFTER {
            assert!(
                !lost.answered_behind(id(2), 7),
                "an ack in between starts over"
            );
        }
        assert!(lost.answered_behind(id(2), 7));
        assert_eq!(lost.followers.get(&id(2)), Some(&7));
        lost.answered(id(2));
        assert!(lost.followers.is_empty());
    }

    #[test]
    fn the_mark_survives_a_restart_and_a_damaged_mark_still_keeps_the_node_out() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(LostLogs::open(dir.path()).own, None);
        let mut lost = LostLogs::open(dir.path());
        let leader = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1);
        assert!(lost.mark_own(dir.path(), 9, leader).unwrap());
        assert!(!lost.mark_own(dir.path(), 9, leader).unwrap());
        assert_eq!(LostLogs::open(dir.path()).own, Some(9));
        std::fs::write(dir.path().join(MARKER_FILE), b"{not json").unwrap();
        assert_eq!(LostLogs::open(dir.path()).own, Some(0));
    }
}
