//! Real faults on a shared machine, provoked for real (issue 30; docs/what-happens-when.md):
//! two writers of one directory, a full disk (a small tmpfs, mounted when the tests run as
//! root), a model too large for the machine's memory, and shard directories whose reads
//! would block or fail part-way. Every run of the binary here has a time limit: a hang is a
//! failure, not a stuck test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use electra_fs::testing::{SmallFs, is_root};

mod common;
use common::{QUICK_RUN, TINY_MODEL, electra_ok};

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `electra ARGS`, killed and failing the test if it runs longer than `limit`.
fn electra_within(limit: Duration, args: &[&str], env: &[(&str, &str)]) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_electra"))
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run electra");
    wait_within(child, limit, args)
}

fn wait_within(mut child: Child, limit: Duration, what: &[&str]) -> Output {
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "electra {what:?} hung: still running after {limit:?}\n{}",
                stderr(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

const MINUTE: Duration = Duration::from_secs(60);

/// `pretrain` flags of a shrunken run with a checkpoint every 2 steps, each step logged.
fn run_flags<'a>(out: &'a Path, steps: &'a str) -> Vec<&'a str> {
    let mut args = vec!["pretrain", "--out", s(out), "--steps", steps];
    args.extend_from_slice(&TINY_MODEL);
    args.extend_from_slice(QUICK_RUN);
    args.extend_from_slice(&["--set", "train.log_every=1"]);
    args
}

/// `step loss` of each training record of a run.
fn losses(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .expect("metrics")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            format!("{} {}", v["step"], v["loss"])
        })
        .collect()
}

/// Waits until `run/metrics.jsonl` has `lines` lines (training under way).
fn wait_for_steps(run: &Path, lines: usize, child: &mut Child) {
    let started = Instant::now();
    while std::fs::read_to_string(run.join("metrics.jsonl")).map_or(0, |t| t.lines().count())
        < lines
    {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the run ended before training"
        );
        assert!(started.elapsed() < 5 * MINUTE, "training did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spawn_electra(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_electra"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn electra")
}

/// The names in `dir` (sorted), hidden ones included.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Hidden temporary files (`.NAME.tmp`) anywhere under `dir`: half-written outputs.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for name in names(dir) {
        let path = dir.join(&name);
        if name.starts_with('.') && name.ends_with(".tmp") {
            found.push(path);
        } else if path.is_dir() {
            found.extend(temporaries(&path));
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Two writers

/// A second `pretrain` on a run directory in use is refused at once, naming the process that
/// holds it; after that process is killed with -9 its lock (an OS lock, not a PID file) does
/// not block the next run.
#[test]
fn a_second_pretrain_on_a_run_directory_is_refused_naming_the_first_and_a_killed_one_does_not_block()
 {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = tmp.path().join("run");
    let mut first = spawn_electra(&run_flags(&run, "100000"));
    wait_for_steps(&run, 3, &mut first);

    let second = electra_within(MINUTE, &["pretrain", "--resume", s(&run)], &[]);
    let err = stderr(&second);
    assert!(!second.status.success(), "{err}");
    assert!(
        err.contains(&format!("in use by process {}", first.id())) && err.contains(s(&run)),
        "the refusal does not name the holder: {err}"
    );

    let killed = Command::new("kill")
        .args(["-KILL", &first.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    first.wait().expect("wait");
    // The lock file still names the dead process; it does not matter.
    let lock = std::fs::read_to_string(run.join(electra_fs::LOCK_FILE)).expect("lock file");
    assert!(lock.contains(&first.id().to_string()), "{lock}");

    let newest = names(&run.join("checkpoints"))
        .iter()
        .filter_map(|n| n.strip_prefix("step-").and_then(|s| s.parse::<u64>().ok()))
        .max()
        .expect("a checkpoint before the kill");
    let stop = (newest + 1).to_string();
    let resumed = electra_within(
        5 * MINUTE,
        &["pretrain", "--resume", s(&run), "--stop-after", &stop],
        &[],
    );
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(
        String::from_utf8_lossy(&resumed.stdout).contains(&format!("steps {newest}..{stop}")),
        "{}",
        String::from_utf8_lossy(&resumed.stdout)
    );
}

/// A `data build` into a directory another process is building into is refused naming it;
/// the slices of a cluster build share the directory, but one slice cannot be built twice
/// at once, and a whole build excludes the slices.
#[test]
fn a_second_data_build_into_one_directory_is_refused_but_slices_share_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("shards");
    let build = |extra: &[&str]| {
        let mut args = vec![
            "data",
            "build",
            "--out",
            s(&out),
            "--demo-documents",
            "20",
            "--max-seq-len",
            "32",
        ];
        args.extend_from_slice(extra);
        electra_within(MINUTE, &args, &[])
    };
    let me = format!("in use by process {}", std::process::id());

    // This test process holds the directory as a whole build would.
    let whole =
        electra_fs::DirLock::acquire(&out, "a test standing in for a data build").expect("lock");
    let refused = build(&["--shards", "2"]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains(&me), "{}", stderr(&refused));
    assert!(
        names(&out).iter().all(|n| n.starts_with('.')),
        "{:?}",
        names(&out)
    );
    drop(whole);

    // Slice 0 of 2 in progress (its locks, as `data build --shard-index 0` takes them).
    let slice0 = electra_data::build::lock_output(
        &out,
        Some(electra_data::manifest::Slice { index: 0, count: 2 }),
    )
    .expect("slice 0");
    let slices = ["--shards", "2", "--num-shards", "2"];
    let same = build(&[&slices[..], &["--shard-index", "0"]].concat());
    assert!(stderr(&same).contains(&me), "{}", stderr(&same));
    let other = build(&[&slices[..], &["--shard-index", "1"]].concat());
    assert!(other.status.success(), "{}", stderr(&other));
    let whole_build = build(&["--shards", "2", "--overwrite"]);
    assert!(
        stderr(&whole_build).contains(&me),
        "{}",
        stderr(&whole_build)
    );
    drop(slice0);
    let after = build(&["--shards", "2", "--overwrite"]);
    assert!(after.status.success(), "{}", stderr(&after));
}

// ---------------------------------------------------------------------------------------------
// A full disk

fn assert_full_disk_error(err: &str, under: &Path) {
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        err.contains("free on its filesystem"),
        "no free space named: {err}"
    );
    assert!(
        err.contains(s(under)),
        "no path under {}: {err}",
        under.display()
    );
}

/// Pre-training onto a filesystem that fills up: an error naming the file and the space
/// (free, and needed where the writer knows), the newest complete checkpoint intact, no
/// half-written file visible, and `--resume` once space is freed ends with the uninterrupted
/// run's losses.
#[test]
fn a_full_disk_stops_pretraining_naming_the_path_and_space_and_resume_finishes() {
    let Some(fs) = SmallFs::mount(64 << 20) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let straight = tmp.path().join("straight");
    electra_ok(&run_flags(&straight, "6"));

    let run = fs.path().join("run");
    let mut first = run_flags(&run, "6");
    first.extend_from_slice(&["--stop-after", "2"]);
    electra_ok(&first);
    let checkpoint = run.join("checkpoints/step-00000002");
    let weights = std::fs::read(checkpoint.join("model.safetensors")).expect("weights");

    let filler = fs.fill_leaving(16 << 10);
    let full = electra_within(5 * MINUTE, &["pretrain", "--resume", s(&run)], &[]);
    let err = stderr(&full);
    assert!(!full.status.success(), "{err}");
    assert_full_disk_error(&err, &run);
    assert!(err.contains("needed"), "no need named: {err}");
    assert_eq!(names(&run.join("checkpoints")), ["step-00000002"]);
    assert_eq!(
        std::fs::read(checkpoint.join("model.safetensors")).expect("weights"),
        weights,
        "the newest complete checkpoint changed"
    );
    assert!(temporaries(&run).is_empty(), "{:?}", temporaries(&run));

    std::fs::remove_file(filler).expect("free the space");
    electra_ok(&["pretrain", "--resume", s(&run)]);
    assert_eq!(losses(&run), losses(&straight));
}

/// `data build` and `export` onto a full filesystem: an error naming the path and the free
/// space; the earlier shard set and export stay as they were (byte for byte); nothing
/// half-written under a final name; the same commands work once space is freed.
#[test]
fn a_full_disk_fails_data_build_and_export_and_keeps_the_earlier_outputs() {
    let Some(fs) = SmallFs::mount(32 << 20) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let shards = fs.path().join("shards");
    let build = |documents: &str, extra: &[&str]| {
        let mut args = vec!["data", "build", "--out", s(&shards), "--shards", "2"];
        args.extend_from_slice(&["--demo-documents", documents, "--max-seq-len", "64"]);
        args.extend_from_slice(extra);
        electra_within(5 * MINUTE, &args, &[])
    };
    assert!(build("20", &[]).status.success());
    let manifest = std::fs::read(shards.join("manifest.json")).expect("manifest");

    let run = tmp.path().join("run");
    electra_ok(&run_flags(&run, "2"));
    let hf = fs.path().join("hf");
    electra_ok(&["export", s(&run), "--out", s(&hf)]);
    let exported = std::fs::read(hf.join("discriminator/model.safetensors")).expect("export");

    let filler = fs.fill_leaving(8 << 10);
    let failed = build("400", &["--overwrite"]);
    assert!(!failed.status.success());
    assert_full_disk_error(&stderr(&failed), &shards);
    assert_eq!(
        std::fs::read(shards.join("manifest.json")).expect("manifest"),
        manifest
    );
    assert!(temporaries(&shards).is_empty(), "{:?}", names(&shards));
    let inspect = electra_within(MINUTE, &["data", "inspect", s(&shards)], &[]);
    assert!(inspect.status.success(), "{}", stderr(&inspect));

    let failed = electra_within(
        5 * MINUTE,
        &["export", s(&run), "--out", s(&hf), "--overwrite"],
        &[],
    );
    assert!(!failed.status.success());
    assert_full_disk_error(&stderr(&failed), &hf);
    assert!(stderr(&failed).contains("needed"), "{}", stderr(&failed));
    assert_eq!(
        std::fs::read(hf.join("discriminator/model.safetensors")).expect("export"),
        exported
    );
    assert_eq!(names(&hf), ["discriminator", "generator"]);

    std::fs::remove_file(filler).expect("free the space");
    assert!(build("400", &["--overwrite"]).status.success());
    electra_ok(&["export", s(&run), "--out", s(&hf), "--overwrite"]);
}

/// `electra glue` writing onto a full filesystem: an error naming the path and the space, and
/// no results file visible under its final name.
#[test]
fn a_full_disk_fails_glue_naming_the_path_without_half_written_results() {
    let Some(fs) = SmallFs::mount(8 << 20) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let words = ["the", "cat", "dog", "sat", "ran", "on", "mat", "a"];
    let glue = tmp.path().join("glue");
    let rte = glue.join("RTE");
    std::fs::create_dir_all(&rte).expect("mkdir");
    let mut train = String::from("index\tsentence1\tsentence2\tlabel\n");
    for i in 0..24 {
        let label = ["entailment", "not_entailment"][i % 2];
        let a = words[i % words.len()];
        let b = words[(i * 3 + 1) % words.len()];
        train += &format!("{i}\t{a} {b} {a}\t{b} {a}\t{label}\n");
    }
    std::fs::write(rte.join("train.tsv"), train).expect("train");
    let vocab = tmp.path().join("vocab.txt");
    common::write_vocab(&vocab, &words);
    let checkpoint = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../electra-model/tests/fixtures/hf-tiny/discriminator");
    let out = fs.path().join("glue-out");

    let filler = fs.fill_leaving(0);
    let failed = electra_within(
        5 * MINUTE,
        &[
            "glue",
            "--tasks",
            "rte",
            "--glue-dir",
            s(&glue),
            "--checkpoint",
            s(&checkpoint),
            "--tokenizer",
            s(&vocab),
            "--seeds",
            "1",
            "--epochs",
            "1",
            "--max-seq-len",
            "32",
            "--out",
            s(&out),
        ],
        &[],
    );
    assert!(!failed.status.success());
    assert_full_disk_error(&stderr(&failed), &out);
    for name in ["results.md", "results.json"] {
        assert!(!out.join(name).exists(), "{name} exists after the failure");
    }
    assert!(temporaries(&out).is_empty(), "{:?}", names(&out));
    drop(filler);
}

// ---------------------------------------------------------------------------------------------
// Too little memory

/// A config that cannot fit (`hidden_size` 10⁹) is refused before anything is allocated,
/// naming what it needs and what the machine has (without the check the allocator aborts
/// the process); an HF checkpoint whose config.json asks for it is refused the same way.
#[test]
fn a_model_that_cannot_fit_is_refused_before_allocating() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = tmp.path().join("huge");
    let mut args = run_flags(&run, "2");
    args.extend_from_slice(&["--set", "model.hidden_size=1000000000"]);
    let refused = electra_within(MINUTE, &args, &[]);
    let err = stderr(&refused);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(
        err.contains("needs about") && err.contains("is available (MemAvailable"),
        "{err}"
    );
    assert!(err.contains("Adam moments"), "{err}");
    assert!(
        !run.join("checkpoints").exists(),
        "the run started before refusing"
    );

    let hf = tmp.path().join("hf");
    std::fs::create_dir_all(&hf).expect("mkdir");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../electra-model/tests/fixtures/hf-tiny/discriminator");
    let mut config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture.join("config.json")).expect("config"),
    )
    .expect("json");
    config["hidden_size"] = 1_000_000_000u64.into();
    config["num_attention_heads"] = 1.into();
    std::fs::write(hf.join("config.json"), config.to_string()).expect("config");
    std::fs::copy(
        fixture.join("model.safetensors"),
        hf.join("model.safetensors"),
    )
    .expect("weights");
    let input = tmp.path().join("in.json");
    std::fs::write(&input, r#"{"input_ids": [[2, 5, 3]]}"#).expect("input");
    let refused = electra_within(
        MINUTE,
        &[
            "forward",
            "--checkpoint",
            s(&hf),
            "--input",
            s(&input),
            "--output",
            s(&tmp.path().join("out.json")),
        ],
        &[],
    );
    let err = stderr(&refused);
    assert_eq!(refused.status.code(), Some(1), "{err}");
    assert!(
        err.contains("needs about") && err.contains("weights"),
        "{err}"
    );
}

/// A run whose estimate is above 80 % of the available memory says so at the start, and
/// runs; one above all of it is refused. (The available memory is set through
/// `ELECTRA_MEMORY_AVAILABLE`, from the estimate the refusal names.)
#[test]
fn a_run_near_the_memory_limit_says_so_at_start() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = tmp.path().join("run");
    let args = run_flags(&run, "1");
    let refused = electra_within(MINUTE, &args, &[("ELECTRA_MEMORY_AVAILABLE", "1K")]);
    let err = stderr(&refused);
    assert!(!refused.status.success(), "{err}");
    // "needs about 1.2 MiB (1234567 bytes) of memory"
    let needed: u64 = err
        .split("needs about ")
        .nth(1)
        .and_then(|rest| rest.split(" bytes)").next())
        .and_then(|size| size.rsplit('(').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no estimate in: {err}"));
    let near = (needed * 10 / 9).to_string();
    let ran = electra_within(
        5 * MINUTE,
        &args,
        &[("ELECTRA_MEMORY_AVAILABLE", near.as_str())],
    );
    let err = stderr(&ran);
    assert!(ran.status.success(), "{err}");
    assert!(err.contains("near the limit"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Slow or stuck input

/// A small shard set (4 shards) for the input tests.
fn build_shards(dir: &Path) {
    electra_ok(&[
        "data",
        "build",
        "--out",
        s(dir),
        "--shards",
        "4",
        "--demo-documents",
        "40",
        "--max-seq-len",
        "32",
    ]);
}

fn shard_files(dir: &Path) -> Vec<PathBuf> {
    names(dir)
        .into_iter()
        .filter(|n| n.starts_with("shard-") && n.ends_with(".parquet"))
        .map(|n| dir.join(n))
        .collect()
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(made.success());
}

/// A FIFO in place of a shard or of the manifest (reading one waits for a writer that never
/// comes) is an error naming the file, at once: `data inspect` and `pretrain` do not hang.
#[test]
fn a_fifo_in_place_of_a_shard_or_the_manifest_is_an_error_not_a_hang() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let shards = tmp.path().join("shards");
    build_shards(&shards);
    let shard = shard_files(&shards).remove(1);
    std::fs::remove_file(&shard).expect("remove");
    mkfifo(&shard);
    let name = shard
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();

    // `data inspect` compares sizes with the manifest first: a FIFO has none.
    let inspect = electra_within(MINUTE, &["data", "inspect", s(&shards)], &[]);
    assert!(!inspect.status.success());
    let err = stderr(&inspect);
    assert!(
        err.contains(&name) && (err.contains("FIFO") || err.contains("replaced")),
        "{err}"
    );
    let run = tmp.path().join("run");
    let mut args = run_flags(&run, "2");
    args.extend_from_slice(&["--data", s(&shards)]);
    let pretrain = electra_within(MINUTE, &args, &[]);
    assert!(!pretrain.status.success());
    let err = stderr(&pretrain);
    assert!(err.contains(&name) && err.contains("FIFO"), "{err}");

    let manifest = shards.join("manifest.json");
    std::fs::remove_file(&manifest).expect("remove");
    mkfifo(&manifest);
    let inspect = electra_within(MINUTE, &["data", "inspect", s(&shards)], &[]);
    let err = stderr(&inspect);
    assert!(!inspect.status.success());
    assert!(
        err.contains("manifest.json") && err.contains("FIFO"),
        "{err}"
    );
}

/// Shards removed, or made unreadable, while a run trains on them: when the loader next
/// opens one, the run stops with an error naming the shard (no retry: the file will not come
/// back by itself), within the time limit; its last checkpoint stays for `--resume`.
#[test]
fn shards_removed_or_made_unreadable_during_training_stop_the_run_naming_the_shard() {
    for case in ["removed", "unreadable"] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let shards = tmp.path().join("shards");
        build_shards(&shards);
        let run = tmp.path().join("run");
        let mut args: Vec<String> = run_flags(&run, "100000")
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.extend(["--data".to_string(), s(&shards).to_string()]);
        // Permissions do not bind root: as root the run is started as `nobody`.
        let as_nobody = case == "unreadable" && is_root();
        let mut command = if as_nobody {
            for dir in [tmp.path(), &shards] {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
                    .expect("chmod");
            }
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(env!("CARGO_BIN_EXE_electra"));
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_electra"))
        };
        let mut child = command
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        wait_for_steps(&run, 3, &mut child);
        for shard in shard_files(&shards) {
            if case == "removed" {
                std::fs::remove_file(&shard).expect("remove");
            } else {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&shard, std::fs::Permissions::from_mode(0o000))
                    .expect("chmod");
            }
        }
        let out = wait_within(child, 5 * MINUTE, &["pretrain", case]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{case}: {err}");
        let expected = if case == "removed" {
            "No such file or directory"
        } else {
            "Permission denied"
        };
        assert!(
            err.contains("shard-") && err.contains(expected),
            "{case}: {err}"
        );
        assert!(
            names(&run.join("checkpoints"))
                .iter()
                .any(|n| n.starts_with("step-")),
            "{case}: no checkpoint kept"
        );
    }
}
