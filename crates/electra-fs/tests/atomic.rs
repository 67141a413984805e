//! The atomic-write helpers: what a reader sees, what an error or a drop leaves behind.

use std::io::Write;
use std::path::Path;

use electra_fs::{AtomicFile, FsError, StagingDir, kill_point, write_atomic, write_atomic_with};

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn write_atomic_replaces_the_file_and_leaves_no_temp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out.json");
    write_atomic(&path, b"one").expect("first");
    write_atomic(&path, b"two").expect("second");
    assert_eq!(std::fs::read(&path).expect("read"), b"two");
    assert_eq!(names(dir.path()), ["out.json"]);
}

#[test]
fn an_error_names_the_destination() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = write_atomic(&dir.path().join("missing/dir/x"), b"").expect_err("no dir");
    assert!(err.to_string().contains("missing/dir/x"), "{err}");
    assert!(
        write_atomic(dir.path(), b"").is_err(),
        "a directory is no file name"
    );
}

#[test]
fn until_the_commit_only_a_hidden_sibling_exists_and_a_drop_removes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shard.parquet");
    std::fs::write(&path, b"old").expect("old");
    let mut file = AtomicFile::create(&path).expect("create");
    file.write_all(b"new, half").expect("write");
    let listed = names(dir.path());
    assert_eq!(listed.len(), 2, "{listed:?}");
    let temp = &listed[0];
    assert!(
        temp.starts_with(".shard.parquet.") && temp.ends_with(".tmp"),
        "{temp}"
    );
    assert_eq!(file.temp_path(), dir.path().join(temp));
    assert_eq!(std::fs::read(&path).expect("read"), b"old");
    drop(file);
    assert_eq!(names(dir.path()), ["shard.parquet"]);
    assert_eq!(std::fs::read(&path).expect("read"), b"old");

    let mut file = AtomicFile::create(&path).expect("create");
    file.write_all(b"new").expect("write");
    file.commit().expect("commit");
    assert_eq!(std::fs::read(&path).expect("read"), b"new");
    assert_eq!(names(dir.path()), ["shard.parquet"]);
}

#[test]
fn two_writers_of_one_file_get_different_temporaries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a");
    let one = AtomicFile::create(&path).expect("one");
    let two = AtomicFile::create(&path).expect("two");
    assert_ne!(one.temp_path(), two.temp_path());
}

#[test]
fn write_atomic_with_takes_a_path_writer_and_keeps_the_old_file_on_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, b"old").expect("old");
    let err = write_atomic_with(&path, |tmp| -> Result<(), FsError> {
        std::fs::write(tmp, b"partial").expect("write temp");
        Err(FsError::new(tmp, std::io::Error::other("disk full")))
    })
    .expect_err("fails");
    assert!(err.to_string().contains("disk full"), "{err}");
    assert_eq!(std::fs::read(&path).expect("read"), b"old");
    assert_eq!(names(dir.path()), ["model.safetensors"]);

    let n = write_atomic_with(&path, |tmp| -> Result<u32, FsError> {
        // Writers that refuse to overwrite get a path that does not exist yet.
        assert!(!tmp.exists(), "{} exists", tmp.display());
        std::fs::write(tmp, b"new").expect("write");
        Ok(7)
    })
    .expect("ok");
    assert_eq!(n, 7);
    assert_eq!(std::fs::read(&path).expect("read"), b"new");
    assert_eq!(names(dir.path()), ["model.safetensors"]);
}

#[test]
fn a_staging_dir_is_renamed_into_place_replacing_an_old_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("step-2");
    std::fs::create_dir(&dest).expect("old dest");
    std::fs::write(dest.join("stale"), b"x").expect("stale");
    let staging = StagingDir::create(dir.path().join(".step-2.tmp")).expect("create");
    std::fs::create_dir(staging.path().join("sub")).expect("sub");
    std::fs::write(staging.path().join("sub/model"), b"m").expect("model");
    std::fs::write(staging.path().join("state.json"), b"{}").expect("state");
    staging.commit(&dest).expect("commit");
    assert_eq!(names(dir.path()), ["step-2"]);
    assert_eq!(names(&dest), ["state.json", "sub"]);
    assert_eq!(std::fs::read(dest.join("sub/model")).expect("read"), b"m");
}

#[test]
fn a_dropped_staging_dir_removes_itself_and_create_clears_a_leftover() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(".build.tmp");
    std::fs::create_dir(&path).expect("leftover");
    std::fs::write(path.join("half-written"), b"x").expect("file");
    let staging = StagingDir::create(&path).expect("create");
    assert!(names(staging.path()).is_empty(), "leftover cleared");
    std::fs::write(staging.path().join("f"), b"x").expect("file");
    drop(staging);
    assert!(names(dir.path()).is_empty());
}

#[test]
fn commit_entries_into_moves_each_entry_replacing_same_names_and_keeps_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("tokenizer")).expect("out");
    std::fs::write(out.join("tokenizer/old"), b"x").expect("old");
    std::fs::write(out.join("notes.txt"), b"keep").expect("notes");
    let staging = StagingDir::create(out.join(".build-1.tmp")).expect("create");
    std::fs::create_dir(staging.path().join("tokenizer")).expect("tok");
    std::fs::write(staging.path().join("tokenizer/vocab.txt"), b"v").expect("vocab");
    for name in ["shard-1", "manifest.json", "shard-0"] {
        std::fs::write(staging.path().join(name), name).expect("write");
    }
    let moved = staging
        .commit_entries_into(&out, |name| name.starts_with("manifest"))
        .expect("commit");
    let moved: Vec<String> = moved
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    assert_eq!(moved, ["shard-0", "shard-1", "tokenizer", "manifest.json"]);
    assert_eq!(
        names(&out),
        [
            "manifest.json",
            "notes.txt",
            "shard-0",
            "shard-1",
            "tokenizer"
        ]
    );
    assert_eq!(names(&out.join("tokenizer")), ["vocab.txt"]);
}

#[test]
fn a_kill_point_that_is_not_named_returns() {
    // The test harness does not set ELECTRA_TEST_KILL_AT; the kill itself is tested through a
    // child `electra pretrain` in electra-cli's tests.
    kill_point("no-such-point");
}
