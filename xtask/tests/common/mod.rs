//! What the xtask integration tests share: the debug binaries they drive.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Builds the two binaries the experiment drives; returns their directory. `cargo test
/// --no-run` of their two packages resolves features exactly as `cargo test --workspace` does
/// (a plain `cargo build` would not: dev-dependencies turn on `fastrand/default` under burn,
/// which would rebuild burn), so after a workspace test build this is a no-op. The binaries
/// land in target/debug because each package has integration tests that run them.
pub fn debug_binaries() -> PathBuf {
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "test",
            "--no-run",
            "--quiet",
            "-p",
            "electra-cli",
            "-p",
            "electra-benches",
        ])
        .current_dir(&root)
        .status()
        .expect("run cargo test --no-run");
    assert!(status.success(), "building electra and flops failed");
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("debug")
}
