//! `cargo xtask profile [OPTIONS]`: where the time of a training step (or of inference) goes,
//! by kind of work.
//!
//! Builds the `throughput` binary and samples it with `perf record --call-graph dwarf` (the
//! release build keeps its unwind tables, so no special build is needed). Every sample's stack
//! is sorted into one kind: samples under the model's construction are setup and left out;
//! then, looking at the whole stack, random numbers (any sampler or mask generator), matrix
//! products (gemm) and our fused kernels (`electra_model::kernels::cpu`); otherwise the leaf
//! decides: copies and layout changes (strided iteration, contiguous copies, memmove),
//! allocation (malloc, free, page zeroing), element-wise work (burn-flex's kernels, libm),
//! autodiff bookkeeping, thread-pool waiting, the OS. Prints one markdown table by kind and the
//! heaviest leaf symbols, the form docs/benchmarks.md keeps before and after each optimisation.
//! Warm-up steps are sampled too; use enough timed steps (`--steps`, default 6).
//!
//! Options: `--preset small`, `--batch N` (default: the preset's benchmark batch), `--seq 128`,
//! `--mode step|forward|finetune`, `--threads 1`, `--steps 6`, `--top 15`, `--binary PATH` (profile
//! another build of `throughput`, e.g. an older revision's, instead of building this one). Needs Linux `perf`
//! (`apt-get install linux-perf`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::throughput::{self, DEFAULTS, Defaults, ThroughputArgs};

/// Frames that mark a sample as setup (model construction), not part of a step.
const SETUP: &[&str] = &["ElectraPretrainingModel<B>::new", "ElectraModel<B>::new"];

/// Kinds decided by any frame of the stack, in order.
const STACK_KINDS: &[(&str, &[&str])] = &[
    (
        "random numbers",
        &[
            "keep_multipliers",
            "rand::",
            "rand_chacha",
            "chacha",
            "DistributionSampler",
            "float_random",
            "int_random",
        ],
    ),
    ("matmul (gemm)", &["gemm"]),
    // Our kernels run their bodies inside pulp's AVX2 dispatch (`kernels::simd`); perf often
    // cannot unwind past it, so pulp's frames count as ours (gemm dispatches through
    // `gemm_common`, burn-flex through `macerator`: nothing else in the binary uses pulp's).
    (
        "fused kernels (ours)",
        &["electra_model::kernels::cpu", "pulp::x86"],
    ),
];

/// Kinds decided by the leaf frame, in order.
const LEAF_KINDS: &[(&str, &[&str])] = &[
    (
        "copies / layout",
        &[
            "StridedIter",
            "strided",
            "to_contiguous",
            "copy_contiguous",
            "memcpy",
            "memmove",
            "gather",
            "select",
            "slice",
            "cat::",
            "repeat",
            "expand",
            "scatter",
        ],
    ),
    (
        "allocation",
        &[
            "malloc",
            "free",
            "realloc",
            "alloc::",
            "memset",
            "_int_",
            "calloc",
            "mmap",
            "munmap",
            "clear_page",
            "page_fault",
            "do_anonymous_page",
        ],
    ),
    (
        "autodiff bookkeeping",
        &[
            "burn_autodiff",
            "hashbrown",
            "drop_in_place",
            "btree",
            "HashMap",
        ],
    ),
    (
        "element-wise / reductions",
        &[
            "burn_flex",
            "macerator",
            "erf",
            "exp",
            "log",
            "tanh",
            "sqrt",
            "libm",
        ],
    ),
    (
        "thread pool",
        &[
            "rayon",
            "crossbeam",
            "futex",
            "sched_yield",
            "std::thread",
            "park",
            "schedule",
        ],
    ),
];

/// `cargo xtask profile`: where a step's time goes, by kind (perf).
#[derive(Debug, clap::Args)]
pub struct ProfileArgs {
    /// Run preset to profile.
    #[arg(long, default_value = "small")]
    pub preset: String,
    /// What to profile.
    #[arg(long, default_value = "step", value_parser = ["step", "forward", "finetune"])]
    pub mode: String,
    /// Heaviest leaf symbols to list.
    #[arg(long, default_value_t = 15)]
    pub top: usize,
    /// Profile this `throughput` binary (e.g. an older revision's) instead of building one.
    #[arg(long)]
    pub binary: Option<PathBuf>,
    /// Shapes, threads and device, as for `bench throughput` (here 1 thread and 6 steps by
    /// default).
    #[command(flatten)]
    pub options: ThroughputArgs,
}

/// Defaults of `profile`: one thread, six timed steps.
const PROFILE: Defaults = Defaults {
    steps: 6,
    threads: 1,
    ..DEFAULTS
};

/// Runs the task.
pub fn profile(root: &Path, args: &ProfileArgs) -> anyhow::Result<()> {
    let (preset, mode, top) = (&args.preset, &args.mode, args.top);
    let options = args.options.options(PROFILE)?;
    let given_binary = args.binary.clone();
    let binary = match given_binary {
        Some(path) => path,
        None => throughput::build(root, &options)?,
    };
    let dir = root.join("target/profile");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let data = dir.join(format!("{preset}-{mode}.perf"));
    let mut record = Command::new("perf");
    record
        .args(["record", "-F", "199", "--call-graph", "dwarf,16384", "-o"])
        .arg(&data)
        .arg("--")
        .arg(&binary)
        .env("RAYON_NUM_THREADS", options.threads.to_string())
        .args(["--preset", preset, "--mode", mode])
        .args(["--batch", &options.batch_for(preset).to_string()])
        .args(["--seq", &options.seq.to_string()])
        .args(["--warmup", &options.warmup.to_string()])
        .args(["--steps", &options.steps.to_string()]);
    let out = record
        .output()
        .context("cannot run `perf` (Debian: apt-get install linux-perf)")?;
    if !out.status.success() {
        bail!(
            "perf record failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let script = Command::new("perf")
        .args(["script", "-F", "ip,sym", "-i"])
        .arg(&data)
        .output()
        .context("cannot run perf script")?;
    if !script.status.success() {
        bail!(
            "perf script failed:\n{}",
            String::from_utf8_lossy(&script.stderr)
        );
    }
    let stacks = parse_stacks(&String::from_utf8_lossy(&script.stdout));
    let title = format!(
        "{preset} {mode}, batch {} x {}, {} thread(s)",
        options.batch_for(preset),
        options.seq,
        options.threads
    );
    print!("{}", render(&stacks, &title, top));
    Ok(())
}

/// The stacks of `perf script -F ip,sym` output, leaf first; kernel frames (no symbol, or
/// `[unknown]`) are kept as `[kernel]`.
fn parse_stacks(text: &str) -> Vec<Vec<String>> {
    let mut stacks = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            if !current.is_empty() {
                stacks.push(std::mem::take(&mut current));
            }
            continue;
        }
        // "ADDRESS SYMBOL+0xOFF"
        let symbol = line.split_once(' ').map_or("[unknown]", |(_, s)| s);
        let symbol = symbol.rsplit_once("+0x").map_or(symbol, |(s, _)| s);
        current.push(symbol.to_string());
    }
    if !current.is_empty() {
        stacks.push(current);
    }
    stacks
}

fn matches(kinds: &[(&'static str, &[&str])], frame: &str) -> Option<&'static str> {
    kinds
        .iter()
        .find(|(_, patterns)| patterns.iter().any(|p| frame.contains(p)))
        .map(|(name, _)| *name)
}

/// The kind of one stack (leaf first); `None` for setup.
fn kind(stack: &[String]) -> Option<&'static str> {
    if stack.iter().any(|f| SETUP.iter().any(|s| f.contains(s))) {
        return None;
    }
    for (name, patterns) in STACK_KINDS {
        if stack.iter().any(|f| patterns.iter().any(|p| f.contains(p))) {
            return Some(name);
        }
    }
    let leaf = stack.first().map_or("", String::as_str);
    Some(
        matches(LEAF_KINDS, leaf).unwrap_or(if leaf.starts_with('[') || leaf.is_empty() {
            "operating system"
        } else {
            "other"
        }),
    )
}

/// The table by kind and the `top` heaviest leaf symbols, as markdown.
fn render(stacks: &[Vec<String>], title: &str, top: usize) -> String {
    let mut by_kind: Vec<(&str, usize)> = Vec::new();
    let mut by_leaf: Vec<(String, &str, usize)> = Vec::new();
    let mut counted = 0usize;
    for stack in stacks {
        let Some(k) = kind(stack) else { continue };
        counted += 1;
        match by_kind.iter_mut().find(|(name, _)| *name == k) {
            Some((_, n)) => *n += 1,
            None => by_kind.push((k, 1)),
        }
        let leaf = stack.first().cloned().unwrap_or_default();
        match by_leaf.iter_mut().find(|(s, _, _)| *s == leaf) {
            Some((_, _, n)) => *n += 1,
            None => by_leaf.push((leaf, k, 1)),
        }
    }
    by_kind.sort_by_key(|k| std::cmp::Reverse(k.1));
    by_leaf.sort_by_key(|l| std::cmp::Reverse(l.2));
    let pct = |n: usize| 100.0 * n as f64 / counted.max(1) as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Profile: {title}; {counted} samples in the steps ({} of setup left out)\n",
        stacks.len() - counted
    );
    let _ = writeln!(out, "| kind | share |\n|---|---:|");
    for (name, n) in &by_kind {
        let _ = writeln!(out, "| {name} | {:.1} % |", pct(*n));
    }
    let _ = writeln!(out, "\n| leaf symbol | kind | share |\n|---|---|---:|");
    for (symbol, k, n) in by_leaf.iter().take(top) {
        let short: String = symbol.chars().take(90).collect();
        let _ = writeln!(
            out,
            "| `{}` | {k} | {:.1} % |",
            short.replace('|', "/"),
            pct(*n)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_stacks_into_kinds_and_leaves_setup_out() {
        let text = "\
            \t  1 gemm_f32::microkernel::x86+0x10\n\t  2 burn_flex::ops::matmul::matmul+0x4\n\n\
            \t  3 burn_flex::strided_index::StridedIter::next+0x1\n\n\
            \t  4 rayon::iter::plumbing::helper+0x1\n\t  5 electra_model::kernels::cpu::layer_norm+0x2\n\n\
            \t  6 [unknown]\n\n\
            \t  7 rand_chacha::guts::refill_wide+0x3\n\t  8 electra_model::electra::truncated_normal+0x1\n\t  9 electra_objective::model::ElectraPretrainingModel<B>::new+0x2\n";
        let stacks = parse_stacks(text);
        assert_eq!(stacks.len(), 5);
        assert_eq!(stacks[0][0], "gemm_f32::microkernel::x86");
        let kinds: Vec<_> = stacks.iter().map(|s| kind(s)).collect();
        assert_eq!(
            kinds,
            [
                Some("matmul (gemm)"),
                Some("copies / layout"),
                Some("fused kernels (ours)"),
                Some("operating system"),
                None
            ]
        );
        let table = render(&stacks, "t", 2);
        assert!(
            table.contains("4 samples in the steps (1 of setup left out)"),
            "{table}"
        );
        assert!(table.contains("| matmul (gemm) | 25.0 % |"), "{table}");
    }
}
