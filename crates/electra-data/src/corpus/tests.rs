use std::io::Write;
use std::sync::Arc;

use super::*;
use crate::error::DataError;

fn events(path: &std::path::Path, options: &ReaderOptions) -> Vec<CorpusEvent> {
    FileReader::open(path, options)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn line(s: &str) -> CorpusEvent {
    CorpusEvent::Line(s.to_string())
}

const END: CorpusEvent = CorpusEvent::EndOfDocument;

#[test]
fn plain_text_documents() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.txt");
    std::fs::write(&p, "One.\n  Two.  \r\n\nThree.\n").unwrap();
    let ev = events(&p, &ReaderOptions::default());
    assert_eq!(
        ev,
        vec![line("One."), line("Two."), END, line("Three."), END]
    );
}

#[test]
fn gzip_is_transparent() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.txt.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"Alpha.\n\nBeta.\n").unwrap();
    std::fs::write(&p, gz.finish().unwrap()).unwrap();
    let ev = events(&p, &ReaderOptions::default());
    assert_eq!(ev, vec![line("Alpha."), END, line("Beta."), END]);
}

#[test]
fn corrupt_gzip_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.txt.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&b"Some text that compresses.\n".repeat(200))
        .unwrap();
    let mut bytes = gz.finish().unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 20] {
        *b ^= 0x5a;
    }
    std::fs::write(&p, bytes).unwrap();
    let result: Result<Vec<_>, _> = FileReader::open(&p, &ReaderOptions::default())
        .unwrap()
        .collect();
    let err = result.unwrap_err().to_string();
    assert!(err.contains("bad.txt.gz"), "{err}");
}

#[test]
fn wikiextractor_documents() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("wiki_00");
    std::fs::write(
        &p,
        "<doc id=\"12\" url=\"u\" title=\"Anarchism\">\nAnarchism\n\nFirst para.\nSecond.\n</doc>\n\
         <doc id=\"25\" url=\"u\" title=\"Autism\">\nAutism\nOnly line.\n</doc>\n",
    )
    .unwrap();
    let ev = events(&p, &ReaderOptions::default());
    assert_eq!(
        ev,
        vec![
            line("First para."),
            line("Second."),
            END,
            line("Only line."),
            END,
            END
        ]
    );
}

#[test]
fn jsonl_text_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.jsonl");
    std::fs::write(
        &p,
        "{\"text\": \"A one.\\nA two.\", \"id\": 1}\n\n{\"text\": \"B one.\"}\n",
    )
    .unwrap();
    let ev = events(&p, &ReaderOptions::default());
    assert_eq!(
        ev,
        vec![
            line("A one."),
            line("A two."),
            END,
            line("B one."),
            END,
            END
        ]
    );

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"text\": \"ok\"}\n{\"body\": \"no text\"}\n").unwrap();
    let result: Result<Vec<_>, _> = FileReader::open(&bad, &ReaderOptions::default())
        .unwrap()
        .collect();
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("bad.jsonl") && err.contains("line 2") && err.contains("`text`"),
        "{err}"
    );
}

#[test]
fn parquet_text_column() {
    use arrow_array::{ArrayRef, Int32Array, RecordBatch, StringArray};
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.parquet");
    let text: ArrayRef = Arc::new(StringArray::from(vec![
        Some("X one.\nX two."),
        None,
        Some("Y."),
    ]));
    let id: ArrayRef = Arc::new(Int32Array::from(vec![1, 2, 3]));
    let batch = RecordBatch::try_from_iter([("id", id), ("text", text)]).unwrap();
    let file = std::fs::File::create(&p).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let ev = events(&p, &ReaderOptions::default());
    assert_eq!(
        ev,
        vec![line("X one."), line("X two."), END, line("Y."), END, END]
    );

    let options = ReaderOptions {
        text_field: "body".to_string(),
        ..ReaderOptions::default()
    };
    let err = FileReader::open(&p, &options).err().unwrap().to_string();
    assert!(err.contains("c.parquet") && err.contains("body"), "{err}");
}

#[test]
fn invalid_utf8_names_file_line_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("latin1.txt");
    std::fs::write(&p, b"good line\ncaf\xe9 au lait\n").unwrap();
    let result: Result<Vec<_>, _> = FileReader::open(&p, &ReaderOptions::default())
        .unwrap()
        .collect();
    match result.unwrap_err() {
        DataError::InvalidUtf8 { path, line, offset } => {
            assert_eq!(path, p);
            assert_eq!(line, 2);
            assert_eq!(offset, 13);
        }
        other => panic!("unexpected {other}"),
    }
    let lossy = ReaderOptions {
        lossy: true,
        ..ReaderOptions::default()
    };
    let ev = events(&p, &lossy);
    assert_eq!(ev[1], line("caf\u{fffd} au lait"));
}

#[test]
fn files_dirs_and_globs() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("b.txt"), "b\n").unwrap();
    std::fs::write(sub.join("a.txt"), "a\n").unwrap();
    std::fs::write(sub.join(".hidden"), "h\n").unwrap();
    std::fs::write(dir.path().join("c.md"), "c\n").unwrap();
    let d = dir.path().to_string_lossy().to_string();
    let files = resolve_inputs(std::slice::from_ref(&d)).unwrap();
    assert_eq!(
        files,
        vec![
            dir.path().join("c.md"),
            sub.join("a.txt"),
            sub.join("b.txt")
        ]
    );
    let files = resolve_inputs(&[format!("{d}/sub/*.txt"), format!("{d}/sub/a.txt")]).unwrap();
    assert_eq!(files, vec![sub.join("a.txt"), sub.join("b.txt")]);
    let err = resolve_inputs(&[format!("{d}/nothing*.txt")]).unwrap_err();
    assert!(matches!(err, DataError::EmptyCorpus(_)), "{err}");

    let reader = CorpusReader::new(files, ReaderOptions::default());
    let lines: Vec<String> = reader.lines().collect::<Result<_, _>>().unwrap();
    assert_eq!(lines, vec!["a", "b"]);
}
