//! `raftright bench-check`: how fast and how small the model checker is, per model.
//!
//! Runs `raftright check MODEL --json` in a fresh process per run (so each peak RSS is its
//! own) and prints, per model, the medians of seconds, unique states per second and bytes per
//! unique state, as a Markdown table.

use std::path::PathBuf;
use std::process::Command;

#[derive(clap::Args, Debug)]
pub struct BenchCheckArgs {
    /// Model files (default: every models/*.toml that records an exhaustive count).
    pub models: Vec<PathBuf>,
    /// Runs per model; the table shows medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Search strategy, as for `check`.
    #[arg(long, default_value = "dfs")]
    pub strategy: String,
    /// Worker threads per check (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

struct Run {
    unique: f64,
    seconds: f64,
    bytes_per_state: Option<f64>,
    peak_rss: Option<f64>,
}

pub fn run(args: BenchCheckArgs) -> Result<i32, super::CliError> {
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    if !matches!(args.strategy.as_str(), "dfs" | "bfs") {
        return Err("--strategy must be dfs or bfs (simulation has no unique states)".into());
    }
    let models = if args.models.is_empty() {
        exhaustive_models(&args.strategy)?
    } else {
        args.models.clone()
    };
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    println!(
        "strategy {}, {} runs per model, medians:",
        args.strategy, args.runs
    );
    println!();
    println!("| model | unique states | seconds | unique states/s | bytes/state | peak RSS MB |");
    println!("|---|---:|---:|---:|---:|---:|");
    for model in &models {
        let mut runs = Vec::new();
        for _ in 0..args.runs {
            runs.push(run_once(&exe, model, &args)?);
        }
        let unique = runs[0].unique;
        if runs.iter().any(|r| r.unique != unique) {
            return Err(format!("{}: unique states differ between runs", model.display()).into());
        }
        let seconds = median(runs.iter().map(|r| r.seconds));
        let rate = median(runs.iter().map(|r| r.unique / r.seconds.max(1e-3)));
        let per_state = median_opt(runs.iter().map(|r| r.bytes_per_state));
        let peak = median_opt(runs.iter().map(|r| r.peak_rss.map(|b| b / 1e6)));
        println!(
            "| `{}` | {unique:.0} | {seconds:.1} | {rate:.0} | {} | {} |",
            model.display(),
            per_state.map_or("-".into(), |b| format!("{b:.0}")),
            peak.map_or("-".into(), |b| format!("{b:.0}")),
        );
    }
    Ok(0)
}

fn run_once(exe: &PathBuf, model: &PathBuf, args: &BenchCheckArgs) -> Result<Run, String> {
    let mut cmd = Command::new(exe);
    cmd.arg("check")
        .arg(model)
        .args(["--json", "--strategy", &args.strategy]);
    if let Some(t) = args.threads {
        cmd.args(["--threads", &t.to_string()]);
    }
    let out = cmd.output().map_err(|e| format!("cannot run check: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let summary: serde_json::Value = serde_json::from_str(last)
        .map_err(|_| format!("{}: check printed no summary:\n{stdout}", model.display()))?;
    if summary["exit_code"] != 0 {
        return Err(format!("{}: the check failed:\n{stdout}", model.display()));
    }
    let counts = &summary["counts"];
    Ok(Run {
        unique: counts["unique_states"].as_f64().unwrap_or(0.0),
        seconds: summary["seconds"].as_f64().unwrap_or(0.0),
        bytes_per_state: counts["bytes_per_state"].as_f64(),
        peak_rss: counts["peak_rss_bytes"].as_f64(),
    })
}

/// The model files in models/ that record an exhaustive count for `strategy`.
fn exhaustive_models(strategy: &str) -> Result<Vec<PathBuf>, String> {
    let dir = std::fs::read_dir("models").map_err(|e| format!("cannot read models/: {e}"))?;
    let mut models: Vec<PathBuf> = dir
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            raftright::model::file::parse("", &text).is_ok_and(|f| match strategy {
                "bfs" => f.expected.bfs.is_some(),
                _ => f.expected.dfs.is_some(),
            })
        })
        .collect();
    models.sort();
    Ok(models)
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn median_opt(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Option<Vec<f64>> = values.collect();
    v.map(|v| median(v.into_iter()))
}
