//! Progress of a long check: a live line on a terminal, a plain line every few seconds
//! otherwise (logs and pipes stay readable).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often a plain progress line is printed when the output is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    live: Option<ProgressBar>,
    start: Instant,
    last_plain: Instant,
}

impl Progress {
    pub fn start() -> Self {
        let live = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("  {spinner} {msg}").expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Self {
            live,
            start: now,
            last_plain: now,
        }
    }

    /// Shows the checker's counts so far.
    pub fn update(&mut self, states: usize, unique: usize, depth: usize) {
        let secs = self.start.elapsed().as_secs_f64();
        let line = format!(
            "states={states} unique={unique} ({:.0} unique/s) depth={depth} {secs:.0}s",
            unique as f64 / secs.max(1e-3)
        );
        match &self.live {
            Some(bar) => bar.set_message(line),
            None if self.last_plain.elapsed() >= PLAIN_EVERY => {
                self.last_plain = Instant::now();
                println!("  ... {line}");
            }
            None => {}
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.live {
            bar.finish_and_clear();
        }
    }
}
