//! `cargo xtask chaos --kills N --seed S`: a pre-training killed with SIGKILL at random
//! moments N times, resumed each time with `--resume`, against the same run uninterrupted.
//!
//! 1. The uninterrupted run (`OUT/straight`) is timed: `W` seconds, its first step logged
//!    after `S` (start-up).
//! 2. The chaos run (`OUT/chaos`) starts; a seeded generator (SplitMix64 from `--seed`) draws
//!    each kill's moment uniformly in `[0, 2·(S + (W − S)/N)]` seconds after the process
//!    started (so a process lives on average its start-up and 1/N of the steps, and the
//!    kills spread over start-up, resuming, training steps, metrics appends and checkpoint
//!    writes), `SIGKILL` is sent, and the run is resumed with `electra pretrain --resume`. A
//!    process that exits before its moment has finished the run: fewer kills than N land.
//! 3. After the last kill the run is resumed to the end.
//! 4. Every `metrics.jsonl` record (timings aside) and the final checkpoint's
//!    `model.safetensors`, `optimizer.safetensors` (header as JSON, since burn orders its
//!    metadata keys differently in each process; every tensor byte for byte) and `state.json`
//!    must be the uninterrupted run's. Anything else fails the task.
//!
//! The report (`OUT/chaos.json`, and one line on stdout) gives the kills that landed, how many
//! of them hit a checkpoint write (a hidden `.step-N.tmp` was left), the steps redone (per
//! kill: the last step logged minus the step of the checkpoint resumed from) and whether the
//! results are identical. The release `electra` is built unless `--bin` names a binary (the
//! CI-sized test, `xtask/tests/chaos.rs`, passes the debug one).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// Options of `cargo xtask chaos`.
#[derive(Debug, clap::Args)]
pub struct ChaosArgs {
    /// SIGKILLs to send (each followed by `--resume`).
    #[arg(long, default_value_t = 50)]
    pub kills: u32,
    /// Seed of the kill moments.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Optimizer steps of the run.
    #[arg(long, default_value_t = 300)]
    pub steps: u64,
    /// Steps between checkpoints.
    #[arg(long, default_value_t = 10)]
    pub checkpoint_every: u64,
    /// More `electra pretrain --set KEY=VALUE` overrides (e.g. a smaller model).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// The `electra` binary to run (default: build the release binary).
    #[arg(long)]
    pub bin: Option<PathBuf>,
    /// Output directory (replaced): the two runs, their logs and chaos.json.
    #[arg(long, default_value = "target/chaos")]
    pub out: PathBuf,
}

/// SplitMix64: the kill moments, reproducible from the seed.
struct Moments(u64);

impl Moments {
    fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What the chaos run went through.
#[derive(Debug, Default)]
struct Tally {
    kills: u32,
    in_checkpoint_write: u32,
    steps_redone: u64,
    restarts: u32,
}

/// Runs the chaos soak (see the module docs); fails unless the runs are identical.
pub fn run(root: &Path, args: &ChaosArgs) -> anyhow::Result<()> {
    if args.kills == 0 || args.steps == 0 || args.checkpoint_every == 0 {
        bail!("--kills, --steps and --checkpoint-every must be at least 1");
    }
    let bin = match &args.bin {
        Some(bin) => bin.clone(),
        None => release_binary(root)?,
    };
    let out = if args.out.is_absolute() {
        args.out.clone()
    } else {
        root.join(&args.out)
    };
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("cannot clear {}", out.display()))?;
    }
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let started = Instant::now();

    let straight = out.join("straight");
    let (w, s) = timed_run(&bin, args, &straight, &out.join("straight.log"))?;
    eprintln!(
        "uninterrupted run: {} steps in {w:.1} s, the first after {s:.1} s",
        args.steps
    );
    // Kill moments uniform in [0, window]: on average a process lives its start-up and 1/N of
    // the steps, so the N kills spread over the whole run, about half of them in start-up.
    let window = 2.0 * (s + (w - s).max(0.0) / f64::from(args.kills));

    let chaos = out.join("chaos");
    let log = out.join("chaos.log");
    let mut moments = Moments(args.seed);
    let mut tally = Tally::default();
    let mut command = pretrain_args(args, &chaos);
    let mut done = false;
    while tally.kills < args.kills {
        let delay = Duration::from_secs_f64(moments.next_unit() * window);
        let mut child = spawn(&bin, &command, &log)?;
        if !kill_at(&mut child, delay)? {
            finished_ok(&mut child, &log)?;
            done = true;
            break;
        }
        tally.kills += 1;
        let (logged, resumed_from, in_write) = left_behind(&chaos)?;
        tally.steps_redone += logged.saturating_sub(resumed_from);
        tally.in_checkpoint_write += u32::from(in_write);
        if tally.kills % 10 == 0 {
            eprintln!(
                "{} kills, {} steps redone so far, {:.0} s",
                tally.kills,
                tally.steps_redone,
                started.elapsed().as_secs_f64()
            );
        }
        // Killed before it wrote config.toml, the first run starts again with `--out`.
        if chaos.join("config.toml").is_file() {
            command = vec![
                "pretrain".into(),
                "--resume".into(),
                chaos.display().to_string(),
            ];
        }
        tally.restarts += 1;
    }
    if !done {
        let mut child = spawn(&bin, &command, &log)?;
        finished_ok(&mut child, &log)?;
    }

    let differences = compare(&straight, &chaos, args.steps)?;
    let identical = differences.is_empty();
    let wall = started.elapsed().as_secs_f64();
    let report = json!({
        "kills_requested": args.kills,
        "kills_survived": tally.kills,
        "kills_inside_a_checkpoint_write": tally.in_checkpoint_write,
        "steps_redone": tally.steps_redone,
        "steps": args.steps,
        "checkpoint_every": args.checkpoint_every,
        "seed": args.seed,
        "uninterrupted_seconds": w,
        "start_up_seconds": s,
        "kill_window_seconds": window,
        "wall_seconds": wall,
        "identical": identical,
        "differences": differences,
        "binary": bin.display().to_string(),
    });
    std::fs::write(
        out.join("chaos.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    println!(
        "chaos: {} of {} kills survived ({} inside a checkpoint write), {} steps redone, \
         losses and final weights {} the uninterrupted run's; {wall:.0} s (report: {})",
        tally.kills,
        args.kills,
        tally.in_checkpoint_write,
        tally.steps_redone,
        if identical {
            "bit-identical to"
        } else {
            "DIFFERENT from"
        },
        out.join("chaos.json").display()
    );
    if !identical {
        bail!("the chaos run differs: {}", differences.join("; "));
    }
    Ok(())
}

fn release_binary(root: &Path) -> anyhow::Result<PathBuf> {
    eprintln!("building the release `electra` binary ...");
    crate::run(
        Command::new(crate::cargo())
            .args(["build", "--release", "--quiet", "-p", "electra-cli"])
            .args(["--bin", "electra"])
            .current_dir(root),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target
        .join("release")
        .join(format!("electra{}", std::env::consts::EXE_SUFFIX)))
}

/// `electra pretrain` of the run into `dir`.
fn pretrain_args(args: &ChaosArgs, dir: &Path) -> Vec<String> {
    let mut command: Vec<String> = vec![
        "pretrain".into(),
        "--out".into(),
        dir.display().to_string(),
        "--steps".into(),
        args.steps.to_string(),
    ];
    let fixed = [
        "train.log_every=1".to_string(),
        format!("train.checkpoint_every={}", args.checkpoint_every),
        "train.keep_checkpoints=2".into(),
        "train.eval_every=0".into(),
    ];
    for set in fixed.iter().chain(&args.set) {
        command.push("--set".into());
        command.push(set.clone());
    }
    command
}

fn spawn(bin: &Path, args: &[String], log: &Path) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    Command::new(bin)
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot run {}", bin.display()))
}

/// Runs the pre-training into `run` to the end; returns its wall time and the time until its
/// first step was logged (start-up: loading the data, building the model).
fn timed_run(bin: &Path, args: &ChaosArgs, run: &Path, log: &Path) -> anyhow::Result<(f64, f64)> {
    let started = Instant::now();
    let mut child = spawn(bin, &pretrain_args(args, run), log)?;
    let metrics = run.join("metrics.jsonl");
    let mut first = None;
    while child.try_wait()?.is_none() {
        if first.is_none() && std::fs::metadata(&metrics).is_ok_and(|m| m.len() > 0) {
            first = Some(started.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    finished_ok(&mut child, log)?;
    let wall = started.elapsed().as_secs_f64();
    Ok((wall, first.unwrap_or(wall)))
}

/// Sends SIGKILL to `child` `delay` after now; `false` if it exited first.
fn kill_at(child: &mut Child, delay: Duration) -> anyhow::Result<bool> {
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(2).min(deadline - Instant::now()));
    }
    if child.try_wait()?.is_some() {
        return Ok(false);
    }
    child.kill()?;
    child.wait()?;
    Ok(true)
}

fn finished_ok(child: &mut Child, log: &Path) -> anyhow::Result<()> {
    let status = child.wait()?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        bail!(
            "electra pretrain failed ({status}); the end of {}:\n{}",
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(())
}

/// After a kill: the last step logged in `metrics.jsonl`, the step of the newest complete
/// checkpoint (what `--resume` starts from), and whether a checkpoint write was cut short.
fn left_behind(run: &Path) -> anyhow::Result<(u64, u64, bool)> {
    let logged = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["step"].as_f64())
        .fold(0.0f64, f64::max) as u64;
    let mut newest = 0;
    let mut in_write = false;
    if let Ok(entries) = std::fs::read_dir(run.join("checkpoints")) {
        for entry in entries {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(step) = name.strip_prefix("step-").and_then(|s| s.parse().ok()) {
                newest = newest.max(step);
            } else if name.starts_with(".step-") {
                in_write = true;
            }
        }
    }
    Ok((logged, newest, in_write))
}

/// The records of a `metrics.jsonl` without their timings.
fn records(run: &Path) -> anyhow::Result<Vec<Value>> {
    let path = run.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .map(|line| {
            let mut v: Value = serde_json::from_str(line)
                .with_context(|| format!("{}: a malformed line", path.display()))?;
            if let Some(map) = v.as_object_mut() {
                map.retain(|k, _| !k.ends_with("seconds") && !k.ends_with("per_sec"));
            }
            Ok(v)
        })
        .collect()
}

/// What differs between the two runs (empty: identical).
fn compare(straight: &Path, chaos: &Path, steps: u64) -> anyhow::Result<Vec<String>> {
    let mut differences = Vec::new();
    let (a, b) = (records(straight)?, records(chaos)?);
    if a.len() != b.len() {
        differences.push(format!(
            "metrics.jsonl: {} records uninterrupted, {} after the kills",
            a.len(),
            b.len()
        ));
    }
    if let Some((i, (x, y))) = a.iter().zip(&b).enumerate().find(|(_, (x, y))| x != y) {
        differences.push(format!("metrics.jsonl record {}: {x} vs {y}", i + 1));
    }
    let last = format!("checkpoints/step-{steps:08}");
    for file in ["model.safetensors", "optimizer.safetensors", "state.json"] {
        let (x, y) = (
            straight.join(&last).join(file),
            chaos.join(&last).join(file),
        );
        let read =
            |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
        let (x, y) = (read(&x)?, read(&y)?);
        // The header as JSON (burn's metadata keys come in any order), every tensor byte for byte.
        let same = if file.ends_with(".safetensors") {
            crate::safetensors::split(&x)? == crate::safetensors::split(&y)?
        } else {
            x == y
        };
        if !same {
            differences.push(format!("{last}/{file} differs"));
        }
    }
    Ok(differences)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kill_moments_follow_the_seed() {
        let draw = |seed| {
            let mut m = Moments(seed);
            (0..5).map(|_| m.next_unit()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        assert!(draw(1).iter().all(|u| (0.0..1.0).contains(u)));
    }
}
