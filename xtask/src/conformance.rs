//! `cargo xtask conformance --device D [--release] [ARGS...]`: builds the `electra` binary
//! with the cargo feature of D's backend and runs its hidden `conformance` command, which
//! compares D with flex and the PyTorch fixtures, prints the table and fails on a mismatch.
//! The JSON report goes to `target/conformance/<D>.json` unless ARGS name `--json`.

use std::path::Path;
use std::process::Command;

use anyhow::bail;

/// The `electra` feature that compiles in the backend of `device` (`None` for flex, the
/// default feature).
fn feature(device: &str) -> anyhow::Result<Option<&'static str>> {
    let kind = device.split(':').next().unwrap_or(device);
    Ok(match kind {
        "flex" => None,
        "ndarray" => Some("ndarray"),
        "wgpu" => Some("wgpu"),
        "cuda" => Some("cuda"),
        other => bail!("unknown device `{other}`: expected flex, ndarray, wgpu[:N|:cpu], cuda[:N]"),
    })
}

/// Runs the conformance for the `--device` in `args`; `--release` builds optimised.
pub fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let device = args
        .iter()
        .position(|a| a == "--device")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
        .or_else(|| args.iter().find_map(|a| a.strip_prefix("--device=")));
    let Some(device) = device else {
        bail!("usage: cargo xtask conformance --device D [--release] [ARGS...]");
    };
    let mut command = Command::new(super::cargo());
    command.args(["run", "--package", "electra-cli", "--bin", "electra"]);
    if args.iter().any(|a| a == "--release") {
        command.arg("--release");
    }
    if let Some(feature) = feature(device)? {
        command.args(["--features", feature]);
    }
    command.args(["--", "conformance"]);
    command.args(args.iter().filter(|a| *a != "--release"));
    if !args
        .iter()
        .any(|a| a == "--json" || a.starts_with("--json="))
    {
        let name = device.replace(':', "-");
        command
            .arg("--json")
            .arg(root.join("target/conformance").join(format!("{name}.json")));
    }
    super::run(command.current_dir(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_device_builds_with_its_backend_feature() {
        assert_eq!(feature("flex").unwrap(), None);
        assert_eq!(feature("wgpu:cpu").unwrap(), Some("wgpu"));
        assert_eq!(feature("wgpu").unwrap(), Some("wgpu"));
        assert_eq!(feature("cuda:1").unwrap(), Some("cuda"));
        assert!(feature("tpu").is_err());
    }
}
