//! `cargo xtask conformance --device D [--release] [ARGS...]`: builds the conformance tool
//! (crate `electra-conformance`) with the cargo feature of D's backend and runs it: D against
//! flex and the PyTorch fixtures; it prints the table and fails on a mismatch. The JSON report
//! goes to `target/conformance/<D>.json` unless `--json` names another file. ARGS go to the
//! tool (`--require-adapter llvmpipe`, `--steps`, `--batch-size`, `--seq-len`,
//! `--hf-fixtures`, `--objective-fixture`).

use std::path::{Path, PathBuf};
use std::process::Command;

use electra_backend::DeviceSpec;

/// `cargo xtask conformance`.
#[derive(Debug, clap::Args)]
pub struct ConformanceArgs {
    /// Device to check against flex (flex, ndarray, wgpu, wgpu:N, wgpu:cpu, cuda, cuda:N).
    #[arg(long)]
    pub device: DeviceSpec,
    /// Build the tool optimised.
    #[arg(long)]
    pub release: bool,
    /// Where to write the JSON report [default: target/conformance/<device>.json].
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Options of the tool: --require-adapter TEXT, --steps N, --batch-size N, --seq-len N,
    /// --hf-fixtures DIR, --objective-fixture DIR.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// The cargo command that runs the conformance of `args` from `root`.
fn command(root: &Path, args: &ConformanceArgs) -> Command {
    let mut command = Command::new(super::cargo());
    command.args([
        "run",
        "--package",
        "electra-conformance",
        "--bin",
        "electra-conformance",
    ]);
    // `--release` after the tool's options lands among them; it is still ours.
    if args.release || args.args.iter().any(|a| a == "--release") {
        command.arg("--release");
    }
    // flex, the reference, is always built in.
    if args.device != DeviceSpec::Flex {
        command.args(["--features", args.device.feature()]);
    }
    command.args(["--", "--device", &args.device.to_string()]);
    command.args(args.args.iter().filter(|a| *a != "--release"));
    let json = args.json.clone().unwrap_or_else(|| {
        root.join("target/conformance")
            .join(format!("{}.json", args.device.file_stem()))
    });
    if !args
        .args
        .iter()
        .any(|a| a == "--json" || a.starts_with("--json="))
    {
        command.arg("--json").arg(json);
    }
    command.current_dir(root);
    command
}

/// Runs the conformance.
pub fn run(root: &Path, args: &ConformanceArgs) -> anyhow::Result<()> {
    super::run(&mut command(root, args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cli, Task};
    use clap::Parser;

    fn cargo_args(line: &[&str]) -> Vec<String> {
        let cli = Cli::try_parse_from(["xtask", "conformance"].iter().chain(line)).expect("parses");
        let Some(Task::Conformance(args)) = cli.task else {
            panic!("not conformance");
        };
        command(Path::new("/repo"), &args)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn each_device_builds_with_its_backend_feature_and_passes_options_on() {
        let flex = cargo_args(&["--device", "flex"]);
        assert!(!flex.contains(&"--features".to_string()), "{flex:?}");
        assert!(flex.ends_with(&[
            "--device".into(),
            "flex".into(),
            "--json".into(),
            "/repo/target/conformance/flex.json".into()
        ]));
        let wgpu = cargo_args(&[
            "--device",
            "wgpu:cpu",
            "--require-adapter",
            "llvmpipe",
            "--release",
        ]);
        let line = wgpu.join(" ");
        assert!(line.contains("--release --features wgpu -- --device wgpu:cpu --require-adapter llvmpipe --json /repo/target/conformance/wgpu-cpu.json"), "{line}");
        let cuda = cargo_args(&["--device", "cuda:1", "--release", "--json", "x.json"]).join(" ");
        assert!(
            cuda.contains("--release --features cuda -- --device cuda:1 --json x.json"),
            "{cuda}"
        );
        assert!(Cli::try_parse_from(["xtask", "conformance", "--device", "tpu"]).is_err());
        assert!(Cli::try_parse_from(["xtask", "conformance"]).is_err());
    }
}
