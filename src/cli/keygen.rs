//! `raftright keygen FILE`: a fresh random cluster key, written with mode 0600.

use raftright::runtime::auth::ClusterKey;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct KeygenArgs {
    /// Where to write the key (64 hex digits and a newline).
    pub file: PathBuf,
    /// Replace the file if it exists (every node and client must then get the new key).
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: KeygenArgs) -> Result<i32, super::CliError> {
    let key = ClusterKey::generate()?;
    key.write_new(&args.file, args.force)?;
    eprintln!(
        "wrote a new cluster key to {} (mode 0600); give every node and client \
         --cluster-key-file {}",
        args.file.display(),
        args.file.display()
    );
    Ok(0)
}
