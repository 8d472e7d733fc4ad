//! This process's memory, from Linux's /proc (elsewhere the figures are simply absent).

/// Resident set size now, in bytes.
pub fn rss_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|k| k * 1024)
}

/// Peak resident set size since start or the last [`reset_peak`], in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|k| k * 1024)
}

/// Starts a new peak, so that one check in a suite is measured on its own.
pub fn reset_peak() {
    // "5" resets the peak RSS (Linux 4.0+); without it the peak only covers more.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Resident set size of process `pid` now, in bytes.
pub fn rss_bytes_of(pid: u32) -> Option<u64> {
    kib_in(&format!("/proc/{pid}/status"), "VmRSS:").map(|k| k * 1024)
}

fn status_kib(field: &str) -> Option<u64> {
    kib_in("/proc/self/status", field)
}

fn kib_in(path: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
