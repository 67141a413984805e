//! Streaming readers of one corpus file and of a list of files.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use arrow_array::{Array, LargeStringArray, StringArray, StringViewArray};
use arrow_schema::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::{CorpusEvent, CorpusFormat, ReaderOptions};
use crate::error::{DataError, Result};

/// Lines of a (possibly gzip-compressed) file, with UTF-8 checks that name the byte offset.
struct LineReader {
    reader: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    line: u64,
    offset: u64,
}

impl LineReader {
    fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let mut raw = BufReader::with_capacity(1 << 18, file);
        let head = raw.fill_buf().map_err(|e| DataError::io(path, e))?;
        let reader: Box<dyn BufRead + Send> = if head.starts_with(&[0x1f, 0x8b]) {
            Box::new(BufReader::with_capacity(
                1 << 18,
                flate2::bufread::MultiGzDecoder::new(raw),
            ))
        } else {
            Box::new(raw)
        };
        Ok(Self {
            reader,
            buf: Vec::with_capacity(4096),
            line: 0,
            offset: 0,
        })
    }

    /// The next line without its `\n` / `\r\n`, or `None` at the end.
    fn next_line(&mut self, path: &Path, lossy: bool) -> Result<Option<String>> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        let start = self.offset;
        self.offset += n as u64;
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        match std::str::from_utf8(&self.buf) {
            Ok(s) => Ok(Some(s.to_owned())),
            Err(_) if lossy => Ok(Some(String::from_utf8_lossy(&self.buf).into_owned())),
            Err(e) => Err(DataError::InvalidUtf8 {
                path: path.to_path_buf(),
                line: self.line,
                offset: start + e.valid_up_to() as u64,
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    Undecided,
    Text,
    Wiki { in_doc: bool, skip_title: bool },
    Jsonl,
}

enum Source {
    Lines(LineReader, LineKind),
    Parquet(ParquetRecordBatchReader),
}

/// Streams the events of one corpus file; ends every file with [`CorpusEvent::EndOfDocument`].
pub struct FileReader {
    path: PathBuf,
    source: Source,
    options: ReaderOptions,
    pending: VecDeque<CorpusEvent>,
    text_bytes: u64,
    finished: bool,
}

fn format_of(path: &Path, requested: CorpusFormat) -> CorpusFormat {
    if requested != CorpusFormat::Auto {
        return requested;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".jsonl") || name.ends_with(".json") || name.ends_with(".ndjson") {
        CorpusFormat::Jsonl
    } else if name.ends_with(".parquet") {
        CorpusFormat::Parquet
    } else {
        CorpusFormat::Auto
    }
}

impl FileReader {
    /// Opens `path` with `options`.
    pub fn open(path: &Path, options: &ReaderOptions) -> Result<Self> {
        let source = match format_of(path, options.format) {
            CorpusFormat::Parquet => Source::Parquet(open_parquet(path, &options.text_field)?),
            format => {
                let kind = match format {
                    CorpusFormat::Text => LineKind::Text,
                    CorpusFormat::Wikiextractor => LineKind::Wiki {
                        in_doc: false,
                        skip_title: false,
                    },
                    CorpusFormat::Jsonl => LineKind::Jsonl,
                    _ => LineKind::Undecided,
                };
                Source::Lines(LineReader::open(path)?, kind)
            }
        };
        Ok(Self {
            path: path.to_path_buf(),
            source,
            options: options.clone(),
            pending: VecDeque::new(),
            text_bytes: 0,
            finished: false,
        })
    }

    /// Bytes of text read so far (decompressed; for Parquet, the text column's bytes).
    pub fn text_bytes(&self) -> u64 {
        self.text_bytes
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn push_document_text(&mut self, text: &str) {
        for line in text.split('\n') {
            let line = line.trim();
            if !line.is_empty() {
                self.pending.push_back(CorpusEvent::Line(line.to_string()));
            }
        }
        self.pending.push_back(CorpusEvent::EndOfDocument);
    }

    /// Reads until at least one event is pending or the file ends.
    fn fill(&mut self) -> Result<()> {
        while self.pending.is_empty() && !self.finished {
            match &mut self.source {
                Source::Lines(reader, kind) => {
                    let before = reader.offset;
                    let Some(line) = reader.next_line(&self.path, self.options.lossy)? else {
                        self.finished = true;
                        self.pending.push_back(CorpusEvent::EndOfDocument);
                        break;
                    };
                    self.text_bytes += reader.offset - before;
                    let trimmed = line.trim();
                    if *kind == LineKind::Undecided && !trimmed.is_empty() {
                        *kind = if trimmed.starts_with("<doc") {
                            LineKind::Wiki {
                                in_doc: false,
                                skip_title: false,
                            }
                        } else {
                            LineKind::Text
                        };
                    }
                    match kind {
                        LineKind::Undecided => {}
                        LineKind::Text => {
                            if trimmed.is_empty() {
                                self.pending.push_back(CorpusEvent::EndOfDocument);
                            } else {
                                self.pending
                                    .push_back(CorpusEvent::Line(trimmed.to_string()));
                            }
                        }
                        LineKind::Wiki { in_doc, skip_title } => {
                            if trimmed.starts_with("<doc") && trimmed.ends_with('>') {
                                if *in_doc {
                                    self.pending.push_back(CorpusEvent::EndOfDocument);
                                }
                                *in_doc = true;
                                *skip_title = true;
                            } else if trimmed == "</doc>" {
                                *in_doc = false;
                                *skip_title = false;
                                self.pending.push_back(CorpusEvent::EndOfDocument);
                            } else if trimmed.is_empty() {
                            } else if *skip_title {
                                *skip_title = false;
                            } else {
                                self.pending
                                    .push_back(CorpusEvent::Line(trimmed.to_string()));
                            }
                        }
                        LineKind::Jsonl => {
                            if trimmed.is_empty() {
                                continue;
                            }
                            let line_no = reader.line;
                            let value: serde_json::Value =
                                serde_json::from_str(trimmed).map_err(|e| {
                                    DataError::format(
                                        &self.path,
                                        format!("line {line_no}: invalid JSON: {e}"),
                                    )
                                })?;
                            let field = &self.options.text_field;
                            let Some(text) = value.get(field).and_then(|v| v.as_str()) else {
                                return Err(DataError::format(
                                    &self.path,
                                    format!(
                                        "line {line_no}: expected a JSON object with a string \
                                         field `{field}`"
                                    ),
                                ));
                            };
                            let text = text.to_string();
                            self.push_document_text(&text);
                        }
                    }
                }
                Source::Parquet(reader) => {
                    let next = crate::parquet_guard::decode(|| reader.next())
                        .map_err(|m| DataError::format(&self.path, m))?;
                    let Some(batch) = next else {
                        self.finished = true;
                        self.pending.push_back(CorpusEvent::EndOfDocument);
                        break;
                    };
                    let batch = batch.map_err(|e| {
                        DataError::format(&self.path, format!("corrupt Parquet data: {e}"))
                    })?;
                    let column = batch.column(0).clone();
                    let texts: Vec<Option<String>> =
                        if let Some(a) = column.as_any().downcast_ref::<StringArray>() {
                            a.iter().map(|s| s.map(str::to_string)).collect()
                        } else if let Some(a) = column.as_any().downcast_ref::<LargeStringArray>() {
                            a.iter().map(|s| s.map(str::to_string)).collect()
                        } else if let Some(a) = column.as_any().downcast_ref::<StringViewArray>() {
                            a.iter().map(|s| s.map(str::to_string)).collect()
                        } else {
                            return Err(DataError::format(
                                &self.path,
                                format!(
                                    "column `{}` is {}, expected a string column",
                                    self.options.text_field,
                                    column.data_type()
                                ),
                            ));
                        };
                    for text in texts.into_iter().flatten() {
                        self.text_bytes += text.len() as u64 + 1;
                        self.push_document_text(&text);
                    }
                }
            }
        }
        Ok(())
    }
}

fn open_parquet(path: &Path, column: &str) -> Result<ParquetRecordBatchReader> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| DataError::format(path, format!("not a readable Parquet file: {e}")))?;
    crate::parquet_guard::check_chunk_ranges(builder.metadata(), file_len)
        .map_err(|m| DataError::format(path, m))?;
    let schema = builder.schema().clone();
    let Some((index, field)) = schema.column_with_name(column) else {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        return Err(DataError::format(
            path,
            format!("no column `{column}` (columns: {})", names.join(", ")),
        ));
    };
    if !matches!(
        field.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        return Err(DataError::format(
            path,
            format!(
                "column `{column}` is {}, expected a string column",
                field.data_type()
            ),
        ));
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
    builder
        .with_projection(mask)
        .with_batch_size(256)
        .build()
        .map_err(|e| DataError::format(path, format!("cannot read Parquet file: {e}")))
}

impl Iterator for FileReader {
    type Item = Result<CorpusEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Err(e) = self.fill() {
            self.finished = true;
            self.pending.clear();
            return Some(Err(e));
        }
        self.pending.pop_front().map(Ok)
    }
}

/// Streams the events of several files in order (each file ends a document).
pub struct CorpusReader {
    files: Vec<PathBuf>,
    next_file: usize,
    current: Option<FileReader>,
    options: ReaderOptions,
    done_bytes: u64,
}

impl CorpusReader {
    /// A reader over `files` (see [`super::resolve_inputs`]).
    pub fn new(files: Vec<PathBuf>, options: ReaderOptions) -> Self {
        Self {
            files,
            next_file: 0,
            current: None,
            options,
            done_bytes: 0,
        }
    }

    /// Text bytes read so far over all files.
    pub fn text_bytes(&self) -> u64 {
        self.done_bytes + self.current.as_ref().map_or(0, FileReader::text_bytes)
    }

    /// Only the lines (documents boundaries dropped), e.g. to train a tokenizer.
    pub fn lines(self) -> impl Iterator<Item = Result<String>> {
        self.filter_map(|event| match event {
            Ok(CorpusEvent::Line(l)) => Some(Ok(l)),
            Ok(CorpusEvent::EndOfDocument) => None,
            Err(e) => Some(Err(e)),
        })
    }
}

impl Iterator for CorpusReader {
    type Item = Result<CorpusEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(reader) = &mut self.current {
                match reader.next() {
                    Some(event) => return Some(event),
                    None => {
                        self.done_bytes += reader.text_bytes();
                        self.current = None;
                    }
                }
            }
            let path = self.files.get(self.next_file)?.clone();
            self.next_file += 1;
            match FileReader::open(&path, &self.options) {
                Ok(r) => self.current = Some(r),
                Err(e) => {
                    self.next_file = self.files.len();
                    return Some(Err(e));
                }
            }
        }
    }
}
