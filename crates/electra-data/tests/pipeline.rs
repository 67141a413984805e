//! End to end: text files -> shards -> manifest -> inspect -> loader, and the bad inputs.
// Helpers below are test code too: a failure should panic with the error.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use electra_data::build::{BuildConfig, BuildInput, build_shards};
use electra_data::corpus::resolve_inputs;
use electra_data::demo::{DemoCorpus, demo_tokenizer};
use electra_data::error::DataError;
use electra_data::inspect::inspect;
use electra_data::loader::{Batch, Cursor, DataLoader, LoaderConfig, Padding};
use electra_data::manifest::{Expectations, Manifest, Slice};
use electra_data::packing::Example;
use electra_data::shards::ShardReader;

/// Writes a small demo corpus as `n` text files (one .gz) and returns their paths.
fn write_corpus(dir: &Path, n: usize) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for i in 0..n {
        let corpus = DemoCorpus::new(100 + i as u64, 12);
        let path = dir.join(format!("part{i}.txt"));
        corpus.write_text(&path).unwrap();
        files.push(path);
    }
    files
}

fn small_config(shards: usize) -> BuildConfig {
    let mut c = BuildConfig::new(48, shards);
    c.row_group_rows = 16;
    c.encode_batch_lines = 37;
    c
}

fn build(dir: &Path, files: &[PathBuf], config: &BuildConfig) -> Manifest {
    let tok = demo_tokenizer().unwrap();
    build_shards(
        &BuildInput::Files(files.to_vec()),
        &tok,
        config,
        dir,
        &|_| {},
    )
    .unwrap()
}

fn all_rows(dir: &Path, m: &Manifest) -> Vec<Example> {
    let mut out = Vec::new();
    for s in &m.shards {
        let r = ShardReader::open(&dir.join(&s.file)).unwrap();
        for g in 0..r.num_row_groups() {
            out.extend(r.read_row_group(g).unwrap());
        }
    }
    out
}

fn one_epoch(cfg: LoaderConfig) -> LoaderConfig {
    LoaderConfig {
        epochs: Some(1),
        ..cfg
    }
}

fn collect(loader: DataLoader) -> Vec<Batch> {
    loader.map(|b| b.unwrap()).collect()
}

fn rows_of(batches: &[Batch]) -> Vec<Vec<u32>> {
    batches
        .iter()
        .flat_map(|b| (0..b.batch_size).map(move |r| b.row_ids(r).to_vec()))
        .collect()
}

#[test]
fn build_inspect_and_load() {
    let tmp = tempfile::tempdir().unwrap();
    let files = write_corpus(tmp.path(), 3);
    let out = tmp.path().join("shards");
    let m = build(&out, &files, &small_config(2));
    assert_eq!(m.shards.len(), 2);
    assert_eq!(m.counts.files, 3);
    assert_eq!(m.counts.documents, 36);
    assert!(m.counts.examples > 20, "{:?}", m.counts);
    assert_eq!(
        m.counts.examples,
        m.shards.iter().map(|s| s.rows).sum::<u64>()
    );
    assert!(m.shards.iter().all(|s| s.row_groups >= 1));
    let rows = all_rows(&out, &m);
    assert_eq!(rows.len() as u64, m.counts.examples);
    assert!(rows.iter().all(|e| e.len() <= 48 && e.input_ids[0] == 2));

    // inspect accepts it and reports every shard.
    let mut seen = 0;
    let report = inspect(&out, &mut |_| seen += 1).unwrap();
    assert_eq!(seen, 2);
    assert_eq!(
        report.length_histogram.iter().sum::<u64>(),
        m.counts.examples
    );
    assert!(report.two_segment_examples > 0);

    // The loader (unshuffled, one epoch) yields exactly the stored rows, padded.
    let cfg = LoaderConfig {
        shuffle: false,
        prefetch: 0,
        ..LoaderConfig::new(5, 0)
    };
    let batches = collect(
        DataLoader::from_shards(
            &out,
            one_epoch(cfg),
            &Expectations::default(),
            Cursor::default(),
        )
        .unwrap(),
    );
    let got = rows_of(&batches);
    let want: Vec<Vec<u32>> = rows.iter().map(|e| e.input_ids.clone()).collect();
    assert_eq!(got, want);
    let b = &batches[0];
    assert_eq!(b.seq_len, *b.lengths.iter().max().unwrap());
    for (r, e) in rows.iter().enumerate().take(b.batch_size) {
        let row = r * b.seq_len;
        assert_eq!(
            &b.attention_mask[row..row + b.seq_len]
                .iter()
                .filter(|&&m| m == 1)
                .count(),
            &e.len()
        );
        assert_eq!(
            &b.token_type_ids[row..row + e.len()],
            &e.token_type_ids()[..]
        );
        assert!(
            b.input_ids[row + e.len()..row + b.seq_len]
                .iter()
                .all(|&t| t == 0)
        );
    }
}

#[test]
fn build_is_deterministic_and_slices_match() {
    let tmp = tempfile::tempdir().unwrap();
    let files = write_corpus(tmp.path(), 3);
    let a = build(&tmp.path().join("a"), &files, &small_config(3));
    let b = build(&tmp.path().join("b"), &files, &small_config(3));
    let sha = |m: &Manifest| {
        m.shards
            .iter()
            .map(|s| s.sha256.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(sha(&a), sha(&b));
    let mut other_seed = small_config(3);
    other_seed.seed = 999;
    let c = build(&tmp.path().join("c"), &files, &other_seed);
    assert_ne!(sha(&a), sha(&c));

    // Two slices built separately into one directory = the whole build.
    let sliced = tmp.path().join("sliced");
    for index in 0..2 {
        let mut cfg = small_config(3);
        cfg.slice = Some(Slice { index, count: 2 });
        build(&sliced, &files, &cfg);
    }
    let (merged, _) = Manifest::load(&sliced).unwrap();
    assert_eq!(sha(&merged), sha(&a));
    assert_eq!(merged.counts, a.counts);
    inspect(&sliced, &mut |_| {}).unwrap();
    // A missing part is an error.
    std::fs::remove_file(sliced.join("manifest.part-00001-of-00002.json")).unwrap();
    let err = Manifest::load(&sliced).unwrap_err().to_string();
    assert!(err.contains("1 of 2"), "{err}");
}

#[test]
fn demo_build_needs_no_files() {
    let tmp = tempfile::tempdir().unwrap();
    let tok = demo_tokenizer().unwrap();
    let m = build_shards(
        &BuildInput::Demo(DemoCorpus::new(1, 40)),
        &tok,
        &small_config(2),
        tmp.path(),
        &|_| {},
    )
    .unwrap();
    assert!(m.settings.demo.is_some());
    assert!(m.counts.examples > 20);
    // The demo tokenizer is saved next to the shards, with the manifest's hash.
    let saved = electra_data::Tokenizer::from_path(&tmp.path().join("tokenizer")).unwrap();
    assert_eq!(saved.hash(), m.tokenizer.sha256);
    inspect(tmp.path(), &mut |_| {}).unwrap();
}

#[test]
fn empty_corpus_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("blank.txt");
    std::fs::write(&p, "\n\n   \n").unwrap();
    let tok = demo_tokenizer().unwrap();
    let err = build_shards(
        &BuildInput::Files(vec![p]),
        &tok,
        &small_config(1),
        &tmp.path().join("o"),
        &|_| {},
    )
    .unwrap_err();
    assert!(matches!(err, DataError::EmptyCorpus(_)), "{err}");
    assert!(err.to_string().contains("blank.txt"), "{err}");
    let err = resolve_inputs(&[tmp.path().join("none").to_string_lossy()]).unwrap_err();
    assert!(matches!(err, DataError::EmptyCorpus(_)), "{err}");
}

/// Builds a one-shard directory and returns (dir, shard path).
fn one_shard(tmp: &Path) -> (PathBuf, PathBuf) {
    let files = write_corpus(tmp, 2);
    let out = tmp.join("shards");
    let m = build(&out, &files, &small_config(1));
    let shard = out.join(&m.shards[0].file);
    (out, shard)
}

fn assert_names(err: DataError, file: &Path, what: &str) {
    let msg = err.to_string();
    let name = file.file_name().unwrap().to_string_lossy();
    assert!(msg.contains(name.as_ref()), "{msg}");
    assert!(msg.contains(what), "{msg}");
}

#[test]
fn truncated_shard_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, shard) = one_shard(tmp.path());
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() - 100]).unwrap();
    assert_names(inspect(&out, &mut |_| {}).unwrap_err(), &shard, "truncated");
    let cfg = LoaderConfig::new(4, 0);
    assert_names(
        DataLoader::from_shards(&out, cfg, &Expectations::default(), Cursor::default())
            .unwrap_err(),
        &shard,
        "Parquet",
    );
}

#[test]
fn corrupt_shard_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, shard) = one_shard(tmp.path());
    let mut bytes = std::fs::read(&shard).unwrap();
    let mid = bytes.len() / 3;
    for b in &mut bytes[mid..mid + 8] {
        *b ^= 0xff;
    }
    std::fs::write(&shard, &bytes).unwrap();
    assert_names(inspect(&out, &mut |_| {}).unwrap_err(), &shard, "checksum");
    let cfg = LoaderConfig {
        verify_checksums: true,
        ..LoaderConfig::new(4, 0)
    };
    let err = DataLoader::from_shards(&out, cfg, &Expectations::default(), Cursor::default());
    assert_names(err.unwrap_err(), &shard, "checksum");
}

#[test]
fn foreign_parquet_is_named() {
    use arrow_array::{ArrayRef, Int64Array, RecordBatch};
    use std::sync::Arc;
    let tmp = tempfile::tempdir().unwrap();
    let (out, shard) = one_shard(tmp.path());
    let col: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
    let batch = RecordBatch::try_from_iter([("x", col)]).unwrap();
    let file = std::fs::File::create(&shard).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let err = ShardReader::open(&shard).unwrap_err();
    assert_names(err, &shard, "foreign");
    // inspect notices the size/checksum first; either way the file is named.
    let msg = inspect(&out, &mut |_| {}).unwrap_err().to_string();
    assert!(
        msg.contains(&*shard.file_name().unwrap().to_string_lossy()),
        "{msg}"
    );
}

#[test]
fn tokenizer_and_vocab_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, _) = one_shard(tmp.path());
    let cfg = LoaderConfig::new(4, 0);
    let other = Expectations {
        tokenizer_sha256: Some("0".repeat(64)),
        ..Expectations::default()
    };
    let err = DataLoader::from_shards(&out, cfg.clone(), &other, Cursor::default()).unwrap_err();
    assert_names(err, &out.join("manifest.json"), "different tokenizer");
    let small = Expectations {
        max_vocab_size: Some(100),
        ..Expectations::default()
    };
    let err = DataLoader::from_shards(&out, cfg.clone(), &small, Cursor::default()).unwrap_err();
    assert_names(err, &out.join("manifest.json"), "only 100");
    let right = Expectations {
        tokenizer_sha256: Some(demo_tokenizer().unwrap().hash().to_string()),
        max_vocab_size: Some(demo_tokenizer().unwrap().vocab_size()),
        max_seq_len: Some(48),
    };
    assert!(DataLoader::from_shards(&out, cfg, &right, Cursor::default()).is_ok());
    let err = Manifest::load(&tmp.path().join("nothing-here")).unwrap_err();
    assert!(err.to_string().contains("manifest"), "{err}");
}

fn demo_examples(n_docs: usize) -> Vec<Example> {
    let tok = demo_tokenizer().unwrap();
    DemoCorpus::new(5, n_docs)
        .examples(&tok, electra_data::packing::PackingConfig::new(32), 1)
        .unwrap()
}

#[test]
fn shuffled_epoch_covers_every_row_once_and_ranks_are_disjoint() {
    let tmp = tempfile::tempdir().unwrap();
    let files = write_corpus(tmp.path(), 4);
    let out = tmp.path().join("s");
    let m = build(&out, &files, &small_config(3));
    let cfg = LoaderConfig {
        shuffle_buffer: 10,
        ..LoaderConfig::new(3, 42)
    };
    let load = |cfg: LoaderConfig| {
        rows_of(&collect(
            DataLoader::from_shards(
                &out,
                one_epoch(cfg),
                &Expectations::default(),
                Cursor::default(),
            )
            .unwrap(),
        ))
    };
    let shuffled = load(cfg.clone());
    let stored: Vec<Vec<u32>> = all_rows(&out, &m)
        .into_iter()
        .map(|e| e.input_ids)
        .collect();
    assert_ne!(shuffled, stored, "not shuffled");
    let mut a = shuffled.clone();
    let mut b = stored.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b, "an epoch is a permutation of the rows");
    assert_eq!(load(cfg.clone()), shuffled, "deterministic");
    assert_ne!(
        load(LoaderConfig {
            seed: 43,
            ..cfg.clone()
        }),
        shuffled
    );

    let mut union = Vec::new();
    let mut sizes = Vec::new();
    for rank in 0..3 {
        let r = load(LoaderConfig {
            rank,
            world_size: 3,
            ..cfg.clone()
        });
        sizes.push(r.len());
        union.extend(r);
    }
    union.sort();
    assert_eq!(union, b, "ranks are disjoint and cover the epoch");
    assert!(
        sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 3,
        "{sizes:?}"
    );
}

#[test]
fn resume_from_cursor_is_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let files = write_corpus(tmp.path(), 3);
    let out = tmp.path().join("s");
    build(&out, &files, &small_config(2));
    let cfg = LoaderConfig {
        shuffle_buffer: 7,
        epochs: Some(3),
        rank: 1,
        world_size: 2,
        ..LoaderConfig::new(4, 9)
    };
    let full = collect(
        DataLoader::from_shards(
            &out,
            cfg.clone(),
            &Expectations::default(),
            Cursor::default(),
        )
        .unwrap(),
    );
    assert!(full.len() > 10);
    for k in [1, 5, full.len() / 2, full.len() - 1] {
        let cursor = full[k - 1].cursor;
        let json = serde_json::to_string(&cursor).unwrap();
        let cursor: Cursor = serde_json::from_str(&json).unwrap();
        let rest = collect(
            DataLoader::from_shards(&out, cfg.clone(), &Expectations::default(), cursor).unwrap(),
        );
        assert_eq!(
            rows_of(&rest),
            rows_of(&full[k..]),
            "resume after batch {k}"
        );
    }
    // Batches run across epochs: three epochs, 0 to 2 (the last cursor points past the last
    // batch: still in epoch 2, or at the very start of epoch 3 when the data ends on a batch
    // boundary).
    let last = full.last().unwrap().cursor;
    assert!(
        last.epoch == 2 || (last.epoch == 3 && last.shard == 0 && last.row == 0),
        "{last:?}"
    );
    assert!(full.iter().any(|b| b.cursor.epoch == 1));
}

/// Rows seen, counted: a multiset of rows.
fn counts(rows: impl IntoIterator<Item = Vec<u32>>) -> std::collections::HashMap<Vec<u32>, usize> {
    let mut counts = std::collections::HashMap::new();
    for row in rows {
        *counts.entry(row).or_insert(0) += 1;
    }
    counts
}

/// `world` ranks in lockstep take `steps` batches each from `start`; returns their rows and
/// cursors.
fn ranks_take(
    out: &Path,
    cfg: &LoaderConfig,
    world: usize,
    steps: Option<usize>,
    start: Cursor,
) -> (Vec<Vec<u32>>, Vec<Cursor>) {
    let (mut rows, mut cursors) = (Vec::new(), Vec::new());
    for rank in 0..world {
        let cfg = LoaderConfig {
            rank,
            world_size: world,
            ..cfg.clone()
        };
        let loader = DataLoader::from_shards(out, cfg, &Expectations::default(), start).unwrap();
        let batches: Vec<Batch> = loader
            .take(steps.unwrap_or(usize::MAX))
            .map(|b| b.unwrap())
            .collect();
        cursors.push(batches.last().map_or(start, |b| b.cursor));
        rows.extend(rows_of(&batches));
    }
    (rows, cursors)
}

#[test]
fn resuming_on_another_world_size_from_the_earliest_cursor_skips_no_row() {
    let tmp = tempfile::tempdir().unwrap();
    let files = write_corpus(tmp.path(), 4);
    let out = tmp.path().join("s");
    let m = build(&out, &files, &small_config(3));
    let all = counts(all_rows(&out, &m).into_iter().map(|e| e.input_ids));
    let total: usize = all.values().sum();
    let cfg = one_epoch(LoaderConfig {
        shuffle_buffer: 10,
        ..LoaderConfig::new(3, 42)
    });
    for (before, after) in [(2, 3), (3, 2), (2, 1), (1, 2)] {
        // The old ranks stop two thirds of the way through the epoch, past shard ends.
        let steps = total * 2 / 3 / (before * 3);
        let (seen, cursors) = ranks_take(&out, &cfg, before, Some(steps), Cursor::default());
        let earliest = *cursors.iter().min().unwrap();
        assert!(cursors.iter().all(|c| *c >= earliest));
        assert!(
            earliest.shard >= 1,
            "{before} -> {after}: the test must pass a shard end"
        );
        let (rest, _) = ranks_take(&out, &cfg, after, None, earliest);
        let seen = counts(seen.into_iter().chain(rest));
        for (row, n) in &all {
            let got = seen.get(row).copied().unwrap_or(0);
            assert!(
                got >= *n,
                "{before} -> {after} ranks: a row was skipped ({got} of {n})"
            );
        }
        let repeated = seen.values().sum::<usize>() - total;
        if before == 1 {
            assert_eq!(repeated, 0, "1 -> {after} ranks reads nothing twice");
        } else {
            // Fewer than `before` positions in the current shard, plus one per shard end.
            assert!(
                repeated < before + m.shards.len(),
                "{before} -> {after}: {repeated} rows twice"
            );
        }
    }
}

#[test]
fn memory_loader_prefetch_padding_and_demo() {
    let examples = demo_examples(30);
    let n = examples.len();
    let inline = LoaderConfig {
        prefetch: 0,
        shuffle_buffer: 16,
        ..LoaderConfig::new(8, 3)
    };
    let a = collect(
        DataLoader::from_examples(
            examples.clone(),
            0,
            one_epoch(inline.clone()),
            Cursor::default(),
        )
        .unwrap(),
    );
    let pre = LoaderConfig {
        prefetch: 2,
        ..inline.clone()
    };
    let b = collect(
        DataLoader::from_examples(examples.clone(), 0, one_epoch(pre), Cursor::default()).unwrap(),
    );
    assert_eq!(a, b, "prefetch changes nothing but the thread");
    assert_eq!(rows_of(&a).len(), n);
    let set: HashSet<Vec<u32>> = rows_of(&a).into_iter().collect();
    assert_eq!(
        set.len(),
        examples
            .iter()
            .map(|e| e.input_ids.clone())
            .collect::<HashSet<_>>()
            .len()
    );

    let fixed = LoaderConfig {
        padding: Padding::Fixed(40),
        ..inline.clone()
    };
    let mut loader =
        DataLoader::from_examples(examples.clone(), 0, fixed, Cursor::default()).unwrap();
    let batch = loader.next().unwrap().unwrap();
    assert_eq!(batch.seq_len, 40);
    assert_eq!(batch.input_ids.len(), 8 * 40);
    let too_short = LoaderConfig {
        padding: Padding::Fixed(10),
        ..inline.clone()
    };
    let mut loader = DataLoader::from_examples(examples, 0, too_short, Cursor::default()).unwrap();
    assert!(loader.next().unwrap().is_err());

    // Endless by default; the demo loader needs no files.
    let (mut demo, tok) = DataLoader::demo(
        DemoCorpus::new(0, 20),
        64,
        LoaderConfig::new(4, 0),
        Cursor::default(),
    )
    .unwrap();
    for _ in 0..50 {
        let b = demo.next().unwrap().unwrap();
        assert!(b.seq_len <= 64);
        assert!(
            b.input_ids
                .iter()
                .all(|&id| (id as usize) < tok.vocab_size())
        );
    }
    let err = DataLoader::from_examples(vec![], 0, LoaderConfig::new(4, 0), Cursor::default())
        .unwrap_err();
    assert!(matches!(err, DataError::EmptyCorpus(_)));
}

/// The `shard-*.parquet` file names in `dir`, sorted.
fn shard_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("shard-") && n.ends_with(".parquet"))
        .collect();
    names.sort();
    names
}

#[test]
fn rebuilding_into_a_shard_directory_is_refused_unless_overwrite_then_nothing_stale_remains() {
    let tmp = tempfile::tempdir().unwrap();
    let files = write_corpus(tmp.path(), 4);
    let out = tmp.path().join("shards");
    build(&out, &files, &small_config(4));
    assert_eq!(shard_files(&out).len(), 4);

    // Refused: the error names the directory and the flag, and the old set is untouched.
    let tok = demo_tokenizer().unwrap();
    let input = BuildInput::Files(files.clone());
    let err = build_shards(&input, &tok, &small_config(2), &out, &|_| {}).unwrap_err();
    assert!(matches!(err, DataError::OutputExists { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&out.display().to_string()), "{text}");
    assert!(text.contains("--overwrite"), "{text}");
    assert_eq!(shard_files(&out).len(), 4);
    inspect(&out, &mut |_| {}).unwrap();

    // With overwrite: exactly the new 2-shard set, nothing of the 4-shard build, no staging.
    let mut cfg = small_config(2);
    cfg.overwrite = true;
    let m = build(&out, &files, &cfg);
    assert_eq!(
        shard_files(&out),
        [
            "shard-00000-of-00002.parquet",
            "shard-00001-of-00002.parquet"
        ]
    );
    let hidden: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "staging left behind: {hidden:?}");
    assert_eq!(m.shards.len(), 2);
    inspect(&out, &mut |_| {}).unwrap();
}

#[test]
fn slices_share_a_directory_but_a_slice_is_not_rebuilt_silently() {
    let tmp = tempfile::tempdir().unwrap();
    let files = write_corpus(tmp.path(), 4);
    let out = tmp.path().join("sliced");
    let sliced = |index: usize, overwrite: bool| {
        let mut cfg = small_config(4);
        cfg.slice = Some(Slice { index, count: 2 });
        cfg.overwrite = overwrite;
        cfg
    };
    build(&out, &files, &sliced(0, false));
    build(&out, &files, &sliced(1, false));
    let tok = demo_tokenizer().unwrap();
    let input = BuildInput::Files(files.clone());
    let err = build_shards(&input, &tok, &sliced(0, false), &out, &|_| {}).unwrap_err();
    assert!(err.to_string().contains("--overwrite"), "{err}");
    build(&out, &files, &sliced(0, true));
    assert_eq!(shard_files(&out).len(), 4);
    inspect(&out, &mut |_| {}).unwrap();
    // A whole build over the slices must also be asked for.
    let err = build_shards(&input, &tok, &small_config(4), &out, &|_| {}).unwrap_err();
    assert!(matches!(err, DataError::OutputExists { .. }), "{err}");
}
