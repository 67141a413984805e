//! Data pipeline throughput: raw text MB/s into Parquet shards (tokenize + pack + write, all
//! cores) next to the ceiling, the raw `tokenizers` encode-batch speed on the same text.
//!
//! Text: a sample of `../shared/data/corpus` (Wikipedia WikiExtractor + Gutenberg, `.gz`) when
//! present (or `ELECTRA_BENCH_CORPUS`), else the demo corpus (a demo, not a real-text
//! measurement). Size: `ELECTRA_BENCH_MB` megabytes (default 4). Tokenizer: the BERT uncased
//! vocab in `../shared/data/vocab` when present, else the demo tokenizer.
//! Goal: build throughput >= 80 % of the raw tokenization throughput.

use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{Criterion, Throughput};
use electra_data::build::{BuildConfig, BuildInput, build_shards};
use electra_data::corpus::{CorpusEvent, CorpusReader, ReaderOptions, resolve_inputs};
use electra_data::demo::{DemoCorpus, demo_tokenizer};
use electra_data::loader::{Cursor, DataLoader, LoaderConfig};
use electra_data::manifest::Expectations;
use electra_data::tokenizer::Tokenizer;

const FILES: usize = 8;

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

/// Documents (lists of lines) of about `budget` bytes, and where they came from.
fn sample(budget: u64) -> (Vec<Vec<String>>, String) {
    let corpus = std::env::var("ELECTRA_BENCH_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| shared().join("corpus"));
    let mut docs = Vec::new();
    if corpus.is_dir() {
        // Half from each sub-corpus (directories in sorted order), so both kinds of text count.
        let mut subdirs: Vec<PathBuf> = std::fs::read_dir(&corpus)
            .expect("read corpus dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        subdirs.sort();
        let share = budget / subdirs.len().max(1) as u64;
        for dir in &subdirs {
            let files = resolve_inputs(&[dir.to_string_lossy()]).expect("corpus files");
            let mut reader = CorpusReader::new(files, ReaderOptions::default());
            let (mut bytes, mut doc) = (0u64, Vec::new());
            while bytes < share {
                match reader.next() {
                    Some(Ok(CorpusEvent::Line(l))) => {
                        bytes += l.len() as u64 + 1;
                        doc.push(l);
                    }
                    Some(Ok(CorpusEvent::EndOfDocument)) => {
                        bytes += 1;
                        if !doc.is_empty() {
                            docs.push(std::mem::take(&mut doc));
                        }
                    }
                    Some(Err(e)) => panic!("{e}"),
                    None => break,
                }
            }
            if !doc.is_empty() {
                docs.push(doc);
            }
        }
        (docs, format!("{} (sample)", corpus.display()))
    } else {
        let demo = DemoCorpus::new(0, usize::MAX);
        let mut bytes = 0u64;
        for d in demo.documents() {
            bytes += d.iter().map(|l| l.len() as u64 + 1).sum::<u64>() + 1;
            docs.push(d);
            if bytes >= budget {
                break;
            }
        }
        (docs, "demo corpus (a demo, not real text)".to_string())
    }
}

fn tokenizer() -> Tokenizer {
    let vocab = shared().join("vocab/bert-base-uncased-vocab.txt");
    if vocab.is_file() {
        Tokenizer::from_path(&vocab).expect("BERT vocab")
    } else {
        demo_tokenizer().expect("demo tokenizer")
    }
}

/// Writes the documents round-robin into `FILES` text files; returns the files and text bytes.
fn write_files(dir: &Path, docs: &[Vec<String>]) -> (Vec<PathBuf>, u64) {
    let mut texts = vec![String::new(); FILES];
    for (i, d) in docs.iter().enumerate() {
        let t = &mut texts[i % FILES];
        for l in d {
            t.push_str(l);
            t.push('\n');
        }
        t.push('\n');
    }
    let mut files = Vec::new();
    let mut bytes = 0;
    for (i, t) in texts.iter().enumerate() {
        let p = dir.join(format!("part-{i}.txt"));
        std::fs::write(&p, t).expect("write sample");
        bytes += t.len() as u64;
        files.push(p);
    }
    (files, bytes)
}

fn raw_tokenize(tokenizer: &Tokenizer, lines: &[String]) -> usize {
    let mut n = 0;
    for chunk in lines.chunks(4096) {
        let inputs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let enc = tokenizer
            .inner()
            .encode_batch_fast(inputs, false)
            .expect("encode");
        n += enc.iter().map(|e| e.len()).sum::<usize>();
    }
    n
}

fn build(tokenizer: &Tokenizer, files: &[PathBuf], out: &Path) -> u64 {
    let mut config = BuildConfig::new(128, FILES / 2);
    // Every pass rebuilds the same directory.
    config.overwrite = true;
    let m = build_shards(
        &BuildInput::Files(files.to_vec()),
        tokenizer,
        &config,
        out,
        &|_| {},
    )
    .expect("build");
    m.counts.tokens
}

fn data(c: &mut Criterion) {
    let mb: f64 = std::env::var("ELECTRA_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4.0);
    let (docs, source) = sample((mb * 1e6) as u64);
    let tokenizer = tokenizer();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (files, bytes) = write_files(tmp.path(), &docs);
    let lines: Vec<String> = docs.into_iter().flatten().collect();
    let out = tmp.path().join("shards");
    eprintln!(
        "data bench: {:.1} MB of text from {source}, tokenizer {} ({} ids), {} threads",
        bytes as f64 / 1e6,
        tokenizer.source().display(),
        tokenizer.vocab_size(),
        rayon::current_num_threads()
    );

    // Alternating timed passes first: the headline ratio, robust to load that changes over
    // time on a shared machine (the criterion runs below are minutes apart).
    let mut ratios = Vec::new();
    for round in 1..=3 {
        let t = Instant::now();
        raw_tokenize(&tokenizer, &lines);
        let raw = bytes as f64 / 1e6 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        build(&tokenizer, &files, &out);
        let full = bytes as f64 / 1e6 / t.elapsed().as_secs_f64();
        eprintln!(
            "pass {round}: raw encode_batch_fast {raw:.2} MB/s, data build {full:.2} MB/s = {:.0}% of raw",
            100.0 * full / raw
        );
        ratios.push(full / raw);
    }
    ratios.sort_by(f64::total_cmp);
    eprintln!(
        "median: data build at {:.0}% of raw tokenization",
        100.0 * ratios[1]
    );

    let mut group = c.benchmark_group("data");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("tokenize_raw_encode_batch_fast", |b| {
        b.iter(|| raw_tokenize(&tokenizer, &lines))
    });
    group.bench_function("build_shards", |b| {
        b.iter(|| build(&tokenizer, &files, &out))
    });
    group.finish();

    // The loader reading back one epoch of those shards (shuffled, batch 128, prefetch).
    let open = || {
        DataLoader::from_shards(
            &out,
            epoch_config(),
            &Expectations::default(),
            Cursor::default(),
        )
        .expect("loader")
    };
    let rows = open().rows_per_epoch();
    let mut group = c.benchmark_group("data_loader");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows));
    group.bench_function("epoch_rows_batch128", |b| {
        b.iter(|| {
            open()
                .map(|batch| batch.expect("batch").batch_size)
                .sum::<usize>()
        })
    });
    group.finish();
}

fn epoch_config() -> LoaderConfig {
    LoaderConfig {
        epochs: Some(1),
        ..LoaderConfig::new(128, 0)
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    data(&mut c);
    c.final_summary();
}
