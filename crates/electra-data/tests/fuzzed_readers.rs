//! Property tests over every reader of user files in electra-data: corpus files (text,
//! WikiExtractor, JSONL, Parquet, each also gzip-compressed), vocabularies, `tokenizer.json`,
//! manifests, shards and the loader's data cursor (from a checkpoint's `state.json`).
//!
//! Each property feeds arbitrary bytes and structured-but-wrong inputs (valid files with a
//! field replaced, truncated or with bytes flipped) and asserts only that the reader returns
//! (`Ok` or an `Err`): a panic fails the test. Case counts are fixed and small, so the whole
//! file runs in seconds in a debug build.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use electra_data::Tokenizer;
use electra_data::build::{BuildConfig, BuildInput, build_shards};
use electra_data::corpus::{CorpusFormat, FileReader, ReaderOptions};
use electra_data::demo::{DemoCorpus, demo_tokenizer};
use electra_data::inspect::inspect;
use electra_data::loader::{Cursor, DataLoader, LoaderConfig};
use electra_data::manifest::{Expectations, Manifest};
use electra_data::shards::ShardReader;
use proptest::prelude::*;
use proptest::sample::Index;

use electra_fs::testing::{cases as config, damage, replace_json_value, wrong_json_value};

/// Lines a corpus reader may meet: markup of each format, broken JSON, wrong types, bytes.
fn corpus_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"<doc id=\"1\" url=\"u\" title=\"T\">".to_vec()),
        Just(b"</doc>".to_vec()),
        Just(b"<doc".to_vec()),
        Just(b"   ".to_vec()),
        Just(b"{\"text\": \"One. Two.\"}".to_vec()),
        Just(b"{\"text\": 5}".to_vec()),
        Just(b"{\"text\": null}".to_vec()),
        Just(b"{\"text\": [\"a\"]}".to_vec()),
        Just(b"{\"body\": \"x\"}".to_vec()),
        Just(b"[1, 2]".to_vec()),
        Just(b"{".to_vec()),
        Just(b"\"text\"".to_vec()),
        Just(b"\xef\xbb\xbfBOM line".to_vec()),
        Just(b"caf\xe9".to_vec()),
        "[ -~]{0,24}".prop_map(String::into_bytes),
        "\\PC{0,12}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..16),
    ]
}

fn corpus_bytes() -> impl Strategy<Value = Vec<u8>> {
    let ending = prop_oneof![Just(&b"\n"[..]), Just(&b"\r\n"[..]), Just(&b"\r"[..])];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec((corpus_line(), ending), 0..16).prop_map(|lines| {
            let mut out = Vec::new();
            for (line, end) in lines {
                out.extend_from_slice(&line);
                out.extend_from_slice(end);
            }
            out
        }),
    ]
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Reads every event (at most a bounded number) and returns; errors are fine.
fn drain(path: &Path, options: &ReaderOptions) {
    if let Ok(reader) = FileReader::open(path, options) {
        for event in reader.take(100_000) {
            if event.is_err() {
                break;
            }
        }
    }
}

const FORMATS: [CorpusFormat; 5] = [
    CorpusFormat::Auto,
    CorpusFormat::Text,
    CorpusFormat::Wikiextractor,
    CorpusFormat::Jsonl,
    CorpusFormat::Parquet,
];

const NAMES: [&str; 6] = [
    "c.txt",
    "c.jsonl",
    "c.parquet",
    "c.txt.gz",
    "c.jsonl.gz",
    "wiki_00",
];

/// A valid Parquet corpus file with a `text` column (nulls included) and an `id` column.
fn parquet_corpus() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        use arrow_array::{ArrayRef, Int32Array, RecordBatch, StringArray};
        let text: ArrayRef = Arc::new(StringArray::from(vec![
            Some("One.\nTwo."),
            None,
            Some("Three."),
        ]));
        let id: ArrayRef = Arc::new(Int32Array::from(vec![1, 2, 3]));
        let batch = RecordBatch::try_from_iter([("id", id), ("text", text)]).unwrap();
        let mut out = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        out
    })
}

proptest! {
    #![proptest_config(config(96))]

    /// Any bytes under any corpus file name, read as any format, lossy or not.
    #[test]
    fn corpus_readers_never_panic(
        bytes in corpus_bytes(),
        name in 0..NAMES.len(),
        format in 0..FORMATS.len(),
        lossy in any::<bool>(),
        compress in any::<bool>(),
        damage in damage(200),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(NAMES[name]);
        let bytes = if compress && NAMES[name].ends_with(".gz") { gzip(&bytes) } else { bytes };
        std::fs::write(&path, damage.apply(bytes)).unwrap();
        let options = ReaderOptions {
            format: FORMATS[format],
            text_field: "text".to_string(),
            lossy,
        };
        drain(&path, &options);
    }
}

/// Every single-byte change of a small Parquet corpus (each position, four masks) reads to
/// `Ok` or `Err`. The property below found a flip in the footer that made the `parquet` crate
/// assert on a negative column-chunk offset; this walks all of them.
#[test]
fn every_byte_flip_of_a_parquet_corpus_is_read_or_refused() {
    let clean = parquet_corpus();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.parquet");
    let options = ReaderOptions::default();
    for position in 0..clean.len() {
        for mask in [0x01u8, 0x15, 0x80, 0xff] {
            let mut bytes = clean.to_vec();
            bytes[position] ^= mask;
            std::fs::write(&path, &bytes).unwrap();
            drain(&path, &options);
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// A valid Parquet corpus, truncated or with a byte flipped, gzip-compressed or not, read
    /// by its text column or a missing one.
    #[test]
    fn damaged_parquet_corpora_never_panic(
        damage in damage(200),
        field in prop_oneof![Just("text"), Just("id"), Just("body")],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.parquet");
        std::fs::write(&path, damage.apply(parquet_corpus().to_vec())).unwrap();
        let options = ReaderOptions {
            text_field: field.to_string(),
            ..ReaderOptions::default()
        };
        drain(&path, &options);
    }

    /// Vocabulary files: any bytes, or lines of tokens with duplicates and missing specials.
    #[test]
    fn vocabulary_files_never_panic(
        bytes in corpus_bytes(),
        tokens in proptest::collection::vec(
            prop_oneof![
                Just("[PAD]".to_string()), Just("[UNK]".to_string()), Just("[CLS]".to_string()),
                Just("[SEP]".to_string()), Just("[MASK]".to_string()), Just("##".to_string()),
                Just(String::new()), "\\PC{0,6}",
            ],
            0..24,
        ),
        structured in any::<bool>(),
        text in "\\PC{0,40}",
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vocab.txt");
        let bytes = if structured { tokens.join("\n").into_bytes() } else { bytes };
        std::fs::write(&path, bytes).unwrap();
        if let Ok(tokenizer) = Tokenizer::from_path(&path) {
            let _ = tokenizer.encode(&text);
        }
    }

    /// `tokenizer.json`: any bytes, or the demo tokenizer's file with one value replaced.
    #[test]
    fn tokenizer_json_never_panics(
        bytes in corpus_bytes(),
        structured in any::<bool>(),
        at in any::<Index>(),
        value in json_value(),
        text in "\\PC{0,40}",
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        let bytes = if structured {
            let mut json: serde_json::Value =
                serde_json::from_slice(&demo_files().tokenizer_json).unwrap();
            replace_json_value(&mut json, at, value);
            serde_json::to_vec(&json).unwrap()
        } else {
            bytes
        };
        std::fs::write(&path, bytes).unwrap();
        if let Ok(tokenizer) = Tokenizer::from_path(&path) {
            let _ = tokenizer.encode(&text);
            let _ = tokenizer.vocab_in_order();
        }
    }
}

/// A demo shard set built once: its directory's files, and the demo tokenizer's JSON.
struct DemoFiles {
    files: Vec<(PathBuf, Vec<u8>)>,
    tokenizer_json: Vec<u8>,
    tokenizer_sha256: String,
}

fn demo_files() -> &'static DemoFiles {
    static FILES: OnceLock<DemoFiles> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let tok = demo_tokenizer().unwrap();
        let mut config = BuildConfig::new(32, 2);
        config.row_group_rows = 8;
        build_shards(
            &BuildInput::Demo(DemoCorpus::new(3, 12)),
            &tok,
            &config,
            dir.path(),
            &|_| {},
        )
        .unwrap();
        let mut files = Vec::new();
        collect(dir.path(), dir.path(), &mut files);
        files.sort();
        let tokenizer_json = std::fs::read(dir.path().join("tokenizer/tokenizer.json")).unwrap();
        DemoFiles {
            files,
            tokenizer_json,
            tokenizer_sha256: tok.hash().to_string(),
        }
    })
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            out.push((rel, std::fs::read(&path).unwrap()));
        }
    }
}

/// The position of `name` among the demo files.
fn demo_index(name: &str) -> usize {
    demo_files()
        .files
        .iter()
        .position(|(p, _)| p == Path::new(name))
        .unwrap()
}

/// Writes the demo shard set into `dir` with file `victim` changed by `change`.
fn write_demo(dir: &Path, victim: usize, change: impl FnOnce(&Path, Vec<u8>) -> Vec<u8>) {
    let files = &demo_files().files;
    let mut change = Some(change);
    for (i, (rel, bytes)) in files.iter().enumerate() {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes = match (i == victim, change.take()) {
            (true, Some(f)) => f(rel, bytes.clone()),
            (_, f) => {
                change = f;
                bytes.clone()
            }
        };
        std::fs::write(&path, bytes).unwrap();
    }
}

/// Everything that reads a shard directory: inspect, the shard reader, the loader (with and
/// without checksums, from an arbitrary cursor), taking a few batches.
fn read_shard_dir(dir: &Path, cursor: Cursor, verify: bool) {
    let _ = inspect(dir, &mut |_| {});
    let _ = Manifest::load(dir);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "parquet")
            && let Ok(reader) = ShardReader::open(&path)
        {
            for g in 0..reader.num_row_groups().min(64) {
                let _ = reader.read_row_group(g);
            }
            let _ = reader.row_group_of(u64::MAX);
        }
    }
    let mut config = LoaderConfig::new(3, 7);
    config.verify_checksums = verify;
    config.epochs = Some(2);
    config.shuffle_buffer = 4;
    let expect = Expectations {
        tokenizer_sha256: Some(demo_files().tokenizer_sha256.clone()),
        max_vocab_size: Some(1 << 20),
        max_seq_len: Some(32),
    };
    if let Ok(loader) = DataLoader::from_shards(dir, config, &expect, cursor) {
        for batch in loader.take(8) {
            if batch.is_err() {
                break;
            }
        }
    }
}

fn cursor() -> impl Strategy<Value = Cursor> {
    let big = prop_oneof![0u64..4, any::<u64>()];
    (big.clone(), prop_oneof![0usize..4, any::<usize>()], big)
        .prop_map(|(epoch, shard, row)| Cursor { epoch, shard, row })
}

proptest! {
    #![proptest_config(config(48))]

    /// A shard directory with one file (a shard, a manifest, a tokenizer file) truncated, a
    /// byte flipped or replaced by any bytes; read from any cursor.
    #[test]
    fn damaged_shard_directories_never_panic(
        victim in any::<Index>(),
        damage in damage(200),
        cursor in cursor(),
        verify in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let victim = victim.index(demo_files().files.len());
        write_demo(dir.path(), victim, |_, bytes| damage.apply(bytes));
        read_shard_dir(dir.path(), cursor, verify);
    }

    /// A manifest with one value replaced by a wrong type or out-of-range value (counts,
    /// row numbers, file names, hashes, settings); read from any cursor.
    #[test]
    fn manifests_with_wrong_values_never_panic(
        at in any::<Index>(),
        value in json_value(),
        cursor in cursor(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let manifest = demo_index("manifest.json");
        write_demo(dir.path(), manifest, |_, bytes| {
            let mut json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            replace_json_value(&mut json, at, value);
            serde_json::to_vec_pretty(&json).unwrap()
        });
        read_shard_dir(dir.path(), cursor, false);
    }
}

// Regressions the properties found, kept as plain tests.

#[test]
fn a_manifest_with_a_huge_max_seq_len_is_refused_or_read_without_a_huge_table() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = demo_index("manifest.json");
    write_demo(dir.path(), manifest, |_, bytes| {
        let mut json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        json["settings"]["max_seq_len"] = serde_json::json!(u64::MAX);
        serde_json::to_vec(&json).unwrap()
    });
    // Was an overflow panic (`max_seq_len + 1`) or an allocation of max_seq_len counters.
    let report = inspect(dir.path(), &mut |_| {}).unwrap();
    assert!(report.length_histogram.len() <= 33);
}

#[test]
fn a_tokenizer_json_with_an_id_past_the_vocabulary_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokenizer.json");
    let mut json: serde_json::Value = serde_json::from_slice(&demo_files().tokenizer_json).unwrap();
    json["model"]["vocab"]["[MASK]"] = serde_json::json!(4_000_000_000u32);
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    // Was an allocation of 4e9 strings (abort) when hashing the vocabulary.
    let err = Tokenizer::from_path(&path).unwrap_err().to_string();
    assert!(
        err.contains("tokenizer.json") && err.contains("[MASK]") && err.contains("4000000000"),
        "{err}"
    );
}

#[test]
fn a_shard_row_whose_segment_b_starts_at_0_is_an_error_not_a_panic() {
    use electra_data::packing::Example;
    use electra_data::shards::{ShardWriter, TokenDtype};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shard-00000-of-00001.parquet");
    let mut writer = ShardWriter::create(&path, TokenDtype::Uint16, "h", 8, 4).unwrap();
    writer
        .write(Example {
            input_ids: vec![2, 5, 3],
            segment_b_start: 0,
        })
        .unwrap();
    writer.finish().unwrap();
    // Was an index underflow in `inspect` (`input_ids[segment_b_start - 1]`).
    let err = ShardReader::open(&path)
        .unwrap()
        .read_row_group(0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("segment_b_start 0"), "{err}");
}

/// Wrong JSON values, and the name of a shard that exists.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    wrong_json_value(vec![serde_json::json!("shard-00000-of-00002.parquet")])
}
