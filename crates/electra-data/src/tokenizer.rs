//! The WordPiece tokenizer (BERT uncased) and the special-token lookup.
//!
//! A [`Tokenizer`] wraps a `tokenizers::Tokenizer` set up as BERT's `FullTokenizer` (spec
//! section 4): BERT normalizer (clean control characters, split CJK characters, lower-case,
//! NFD and drop combining marks), BERT pre-tokenizer (whitespace and punctuation split),
//! greedy longest-match-first WordPiece with `##` continuations (words over 200 characters
//! become `[UNK]`), and `[CLS] A [SEP] B [SEP]` framing. It loads either a BERT `vocab.txt`
//! (one token a line, id = line number) or a Hugging Face `tokenizer.json`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokenizers::models::TrainerWrapper;
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, decoders::wordpiece::WordPiece as WordPieceDecoder};

use crate::error::{DataError, Result};

/// The five special tokens every ELECTRA vocabulary must contain, in this order.
pub const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// BERT's limit: a word longer than this many characters becomes `[UNK]`.
pub const MAX_INPUT_CHARS_PER_WORD: usize = 200;

/// Ids of the special tokens (BERT uncased: pad 0, unk 100, cls 101, sep 102, mask 103).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialTokens {
    /// `[PAD]`: fills rows up to the batch length.
    pub pad: u32,
    /// `[UNK]`: unknown word.
    pub unk: u32,
    /// `[CLS]`: first token of every example.
    pub cls: u32,
    /// `[SEP]`: ends each segment.
    pub sep: u32,
    /// `[MASK]`: replaces masked tokens in the generator input.
    pub mask: u32,
}

impl SpecialTokens {
    /// Looks the five tokens up with `lookup`; a missing one is an error naming it and `path`.
    pub fn resolve(path: &Path, lookup: impl Fn(&str) -> Option<u32>) -> Result<Self> {
        let get = |token: &str| {
            lookup(token).ok_or_else(|| {
                DataError::tokenizer(
                    path,
                    format!(
                        "the vocabulary has no {token} token; ELECTRA needs all of {}",
                        SPECIAL_TOKENS.join(", ")
                    ),
                )
            })
        };
        Ok(Self {
            pad: get("[PAD]")?,
            unk: get("[UNK]")?,
            cls: get("[CLS]")?,
            sep: get("[SEP]")?,
            mask: get("[MASK]")?,
        })
    }
}

/// One text's tokens and the byte range each covers in the text
/// ([`Tokenizer::encode_batch_with_offsets`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokensWithOffsets {
    /// Token ids.
    pub ids: Vec<u32>,
    /// `(start, end)` byte offsets into the text, one per token.
    pub offsets: Vec<(usize, usize)>,
}

/// A loaded WordPiece tokenizer with its special ids, vocabulary size and content hash.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    special: SpecialTokens,
    vocab_size: usize,
    hash: String,
    source: PathBuf,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("source", &self.source)
            .field("vocab_size", &self.vocab_size)
            .field("special", &self.special)
            .field("hash", &self.hash)
            .finish()
    }
}

impl Tokenizer {
    /// Loads `path`: a `.json` file as a Hugging Face `tokenizer.json`, anything else as a BERT
    /// `vocab.txt`. A directory is searched for `tokenizer.json`, then `vocab.txt`.
    pub fn from_path(path: &Path) -> Result<Self> {
        if path.is_dir() {
            let json = path.join("tokenizer.json");
            if json.is_file() {
                return Self::from_tokenizer_json(&json);
            }
            let vocab = path.join("vocab.txt");
            if vocab.is_file() {
                return Self::from_vocab_file(&vocab);
            }
            return Err(DataError::tokenizer(
                path,
                "directory holds neither tokenizer.json nor vocab.txt",
            ));
        }
        if path.extension().is_some_and(|e| e == "json") {
            Self::from_tokenizer_json(path)
        } else {
            Self::from_vocab_file(path)
        }
    }

    /// Loads a BERT `vocab.txt`: one token a line, the id is the 0-based line number.
    pub fn from_vocab_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let offset = e.valid_up_to();
            DataError::InvalidUtf8 {
                path: path.to_path_buf(),
                line: bytes[..offset].iter().filter(|&&b| b == b'\n').count() as u64 + 1,
                offset: offset as u64,
            }
        })?;
        let tokens: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
        Self::from_vocab(tokens, path)
    }

    /// Builds the BERT uncased pipeline over `tokens` (id = index). `source` names the
    /// vocabulary in errors.
    pub fn from_vocab(tokens: Vec<String>, source: &Path) -> Result<Self> {
        if tokens.is_empty() {
            return Err(DataError::tokenizer(source, "the vocabulary is empty"));
        }
        let mut seen = HashSet::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            if t.is_empty() {
                return Err(DataError::tokenizer(
                    source,
                    format!("line {}: empty token", i + 1),
                ));
            }
            if !seen.insert(t.as_str()) {
                return Err(DataError::tokenizer(
                    source,
                    format!("line {}: duplicate token {t:?}", i + 1),
                ));
            }
        }
        let mut joined = tokens.join("\n");
        joined.push('\n');
        let vocab = WordPiece::read_bytes(joined.as_bytes())
            .map_err(|e| DataError::tokenizer(source, e.to_string()))?;
        let special = SpecialTokens::resolve(source, |t| {
            tokens.iter().position(|x| x == t).map(|i| i as u32)
        })?;
        let model = WordPiece::builder()
            .vocab(vocab)
            .unk_token("[UNK]".to_string())
            .continuing_subword_prefix("##".to_string())
            .max_input_chars_per_word(MAX_INPUT_CHARS_PER_WORD)
            .build()
            .map_err(|e| DataError::tokenizer(source, e.to_string()))?;
        let inner = bert_pipeline(model, special);
        Self::wrap(inner, source)
    }

    /// Loads a Hugging Face `tokenizer.json` as it is (its own normalizer and model).
    pub fn from_tokenizer_json(path: &Path) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| DataError::tokenizer(path, e.to_string()))?;
        Self::wrap(inner, path)
    }

    fn wrap(inner: tokenizers::Tokenizer, source: &Path) -> Result<Self> {
        let vocab_size = inner.get_vocab_size(true);
        check_dense_ids(&inner, vocab_size, source)?;
        let special = SpecialTokens::resolve(source, |t| inner.token_to_id(t))?;
        let hash = content_hash(&inner);
        Ok(Self {
            inner,
            special,
            vocab_size,
            hash,
            source: source.to_path_buf(),
        })
    }

    /// The special-token ids.
    pub fn special_tokens(&self) -> SpecialTokens {
        self.special
    }

    /// Number of ids (including added tokens): every id is `< vocab_size()`.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// SHA-256 (hex) of the vocabulary in id order and the normalizer and pre-tokenizer
    /// settings: equal for a `vocab.txt` and the `tokenizer.json` saved from it. Shards record
    /// it so a run can refuse shards built with another tokenizer.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Where the tokenizer came from (a path, `<demo>` or `<trained>`).
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Token id of `token`, if in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Token ids of one text, without `[CLS]`/`[SEP]`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| DataError::tokenizer(&self.source, e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Token ids of many texts in parallel (all cores), without `[CLS]`/`[SEP]`.
    pub fn encode_batch(&self, texts: &[String]) -> Result<Vec<Vec<u32>>> {
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let encodings = self
            .inner
            .encode_batch_fast(inputs, false)
            .map_err(|e| DataError::tokenizer(&self.source, e.to_string()))?;
        Ok(encodings
            .into_iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    /// Token ids of many texts with each token's byte range in its text (`text[start..end]`
    /// is what the token covers, before normalisation: lower-casing and accent stripping
    /// keep the ranges of the original characters), without `[CLS]`/`[SEP]`. For span
    /// extraction (SQuAD), where a predicted span of tokens must print the original text.
    pub fn encode_batch_with_offsets(&self, texts: &[&str]) -> Result<Vec<TokensWithOffsets>> {
        let inputs: Vec<&str> = texts.to_vec();
        let encodings = self
            .inner
            .encode_batch(inputs, false)
            .map_err(|e| DataError::tokenizer(&self.source, e.to_string()))?;
        Ok(encodings
            .into_iter()
            .map(|e| TokensWithOffsets {
                ids: e.get_ids().to_vec(),
                offsets: e.get_offsets().to_vec(),
            })
            .collect())
    }

    /// Text of `ids` (wordpieces joined, `##` removed), for inspection.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| DataError::tokenizer(&self.source, e.to_string()))
    }

    /// The vocabulary in id order (ids are checked to be `0..vocab_size()` when loading).
    pub fn vocab_in_order(&self) -> Vec<String> {
        vocab_in_order(&self.inner)
    }

    /// Writes `tokenizer.json` and `vocab.txt` into `dir` (created if needed), atomically.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
        let json = self
            .inner
            .to_string(true)
            .map_err(|e| DataError::tokenizer(&self.source, e.to_string()))?;
        electra_fs::write_atomic(&dir.join("tokenizer.json"), json.as_bytes())?;
        let mut vocab = self.vocab_in_order().join("\n");
        vocab.push('\n');
        electra_fs::write_atomic(&dir.join("vocab.txt"), vocab.as_bytes())?;
        Ok(())
    }
}

/// Options of [`train_wordpiece`].
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Target vocabulary size (special tokens included).
    pub vocab_size: usize,
    /// Minimum count of a pair to be merged.
    pub min_frequency: u64,
    /// Maximum number of distinct initial characters kept.
    pub limit_alphabet: usize,
    /// Show the `tokenizers` trainer's progress bars.
    pub show_progress: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            vocab_size: 30_522,
            min_frequency: 2,
            limit_alphabet: 1000,
            show_progress: true,
        }
    }
}

/// Trains a WordPiece vocabulary (BERT uncased normalization) on `texts`; the five special
/// tokens take ids 0..5.
pub fn train_wordpiece<I, S>(texts: I, options: &TrainOptions) -> Result<Tokenizer>
where
    I: Iterator<Item = S> + Send,
    S: AsRef<str> + Send,
{
    let source = Path::new("<trained>");
    if options.vocab_size <= SPECIAL_TOKENS.len() {
        return Err(DataError::Config {
            name: "vocab-size",
            message: format!(
                "{} is too small: it must exceed the {} special tokens",
                options.vocab_size,
                SPECIAL_TOKENS.len()
            ),
        });
    }
    let trainer = WordPieceTrainer::builder()
        .vocab_size(options.vocab_size)
        .min_frequency(options.min_frequency)
        .limit_alphabet(options.limit_alphabet)
        .show_progress(options.show_progress)
        .special_tokens(
            SPECIAL_TOKENS
                .iter()
                .map(|t| AddedToken::from(t.to_string(), true))
                .collect(),
        )
        .continuing_subword_prefix("##".to_string())
        .build();
    let mut trainer = TrainerWrapper::from(trainer);
    let mut model = WordPiece::default();
    model.unk_token = "[UNK]".to_string();
    model.max_input_chars_per_word = MAX_INPUT_CHARS_PER_WORD;
    let placeholder = SpecialTokens {
        pad: 0,
        unk: 1,
        cls: 2,
        sep: 3,
        mask: 4,
    };
    let mut inner = bert_pipeline(model, placeholder);
    inner
        .train(&mut trainer, texts)
        .map_err(|e| DataError::tokenizer(source, format!("training failed: {e}")))?;
    // Rebuild from the trained vocabulary so that the saved tokenizer.json and vocab.txt
    // describe exactly the same pipeline (and hash) as a vocab.txt load.
    let vocab = vocab_in_order(&inner);
    if vocab.len() <= SPECIAL_TOKENS.len() {
        return Err(DataError::EmptyCorpus(
            "the tokenizer trainer saw no text".to_string(),
        ));
    }
    Tokenizer::from_vocab(vocab, source)
}

fn bert_pipeline(model: WordPiece, special: SpecialTokens) -> tokenizers::Tokenizer {
    let mut inner = tokenizers::Tokenizer::new(model);
    inner.with_normalizer(Some(BertNormalizer::new(true, true, Some(true), true)));
    inner.with_pre_tokenizer(Some(BertPreTokenizer));
    inner.with_post_processor(Some(BertProcessing::new(
        ("[SEP]".to_string(), special.sep),
        ("[CLS]".to_string(), special.cls),
    )));
    inner.with_decoder(Some(WordPieceDecoder::default()));
    inner
}

/// Every id must be below the number of tokens (ids `0..n`, no gaps, none shared): the model's
/// embedding table has `vocab_size` rows, and an id past it (a hand-edited or foreign
/// `tokenizer.json`) would otherwise fail deep inside training, or allocate a table of the
/// id's size.
fn check_dense_ids(inner: &tokenizers::Tokenizer, vocab_size: usize, source: &Path) -> Result<()> {
    let vocab = inner.get_vocab(true);
    let mut seen = vec![false; vocab_size];
    let mut by_id: Vec<(u32, String)> = vocab.into_iter().map(|(t, i)| (i, t)).collect();
    by_id.sort();
    for (id, token) in by_id {
        match seen.get_mut(id as usize) {
            Some(slot) if !*slot => *slot = true,
            Some(_) => {
                return Err(DataError::tokenizer(
                    source,
                    format!("token {token:?}: id {id} is used by another token too"),
                ));
            }
            None => {
                return Err(DataError::tokenizer(
                    source,
                    format!(
                        "token {token:?} has id {id}, but the vocabulary has {vocab_size} tokens \
                         (expected ids 0..{vocab_size} without gaps)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn vocab_in_order(inner: &tokenizers::Tokenizer) -> Vec<String> {
    let vocab = inner.get_vocab(true);
    let size = vocab.values().map(|&i| i as usize + 1).max().unwrap_or(0);
    let mut out = vec![String::new(); size];
    for (token, id) in vocab {
        out[id as usize] = token;
    }
    out
}

fn content_hash(inner: &tokenizers::Tokenizer) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"electra-tokenizer-v1\n");
    let normalizer = serde_json::to_string(&inner.get_normalizer()).unwrap_or_default();
    let pre = serde_json::to_string(&inner.get_pre_tokenizer()).unwrap_or_default();
    hasher.update(normalizer.as_bytes());
    hasher.update(b"\n");
    hasher.update(pre.as_bytes());
    hasher.update(b"\n");
    for token in vocab_in_order(inner) {
        hasher.update(token.as_bytes());
        hasher.update(b"\n");
    }
    electra_fs::hex(&hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_vocab() -> Vec<String> {
        [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", ".",
            "un", "##believ", "##able", "cafe",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// Offsets are byte ranges of the original text, whatever the normaliser did to it
    /// (lower-casing, accent stripping), so `text[start..end]` prints what the token covers.
    #[test]
    fn offsets_cover_the_original_text() {
        let tok = Tokenizer::from_vocab(tiny_vocab(), Path::new("<test>")).unwrap();
        let text = "The  Café sat\ton unbelievable.";
        let out = tok.encode_batch_with_offsets(&[text, ""]).unwrap();
        let pieces: Vec<&str> = out[0].offsets.iter().map(|&(a, b)| &text[a..b]).collect();
        assert_eq!(
            pieces,
            ["The", "Café", "sat", "on", "un", "believ", "able", "."]
        );
        assert_eq!(out[0].ids, [5, 14, 7, 8, 11, 12, 13, 10]);
        assert!(out[1].ids.is_empty() && out[1].offsets.is_empty());
    }

    #[test]
    fn vocab_txt_round_trip_and_bert_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vocab.txt");
        std::fs::write(&path, tiny_vocab().join("\n")).unwrap();
        let tok = Tokenizer::from_path(&path).unwrap();
        assert_eq!(
            tok.special_tokens(),
            SpecialTokens {
                pad: 0,
                unk: 1,
                cls: 2,
                sep: 3,
                mask: 4
            }
        );
        assert_eq!(tok.vocab_size(), 15);
        // Lower-casing, accent stripping, punctuation split, ## continuation, unknown word.
        assert_eq!(
            tok.encode("The CAT sat on the mat. Unbelievable café zebra")
                .unwrap(),
            vec![5, 6, 7, 8, 5, 9, 10, 11, 12, 13, 14, 1]
        );
        // Saved tokenizer.json loads to the same ids and the same hash.
        let out = dir.path().join("saved");
        tok.save(&out).unwrap();
        let again = Tokenizer::from_path(&out.join("tokenizer.json")).unwrap();
        assert_eq!(again.hash(), tok.hash());
        assert_eq!(
            again.encode("the cat unbelievable").unwrap(),
            vec![5, 6, 11, 12, 13]
        );
        let reread = Tokenizer::from_path(&out.join("vocab.txt")).unwrap();
        assert_eq!(reread.hash(), tok.hash());
    }

    /// The real BERT uncased vocabulary, when the shared data is present (skipped otherwise).
    #[test]
    fn bert_uncased_vocab_when_present() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/vocab/bert-base-uncased-vocab.txt");
        if !path.is_file() {
            eprintln!("skipped: {} not present", path.display());
            return;
        }
        let tok = Tokenizer::from_path(&path).unwrap();
        assert_eq!(tok.vocab_size(), 30_522);
        assert_eq!(
            tok.special_tokens(),
            SpecialTokens {
                pad: 0,
                unk: 100,
                cls: 101,
                sep: 102,
                mask: 103
            }
        );
        assert_eq!(
            tok.encode("Héllo, WORLD! The end.").unwrap(),
            vec![7592, 1010, 2088, 999, 1996, 2203, 1012]
        );
        let long_word = "a".repeat(201);
        assert_eq!(tok.encode(&long_word).unwrap(), vec![100]);
    }

    #[test]
    fn missing_special_token_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vocab.txt");
        let vocab: Vec<String> = tiny_vocab().into_iter().filter(|t| t != "[MASK]").collect();
        std::fs::write(&path, vocab.join("\n")).unwrap();
        let err = Tokenizer::from_path(&path).unwrap_err().to_string();
        assert!(err.contains("[MASK]"), "{err}");
        assert!(err.contains("vocab.txt"), "{err}");
    }

    #[test]
    fn duplicate_token_is_an_error() {
        let mut vocab = tiny_vocab();
        vocab.push("cat".to_string());
        let err = Tokenizer::from_vocab(vocab, Path::new("v.txt"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate"), "{err}");
    }

    #[test]
    fn different_vocab_different_hash() {
        let a = Tokenizer::from_vocab(tiny_vocab(), Path::new("a")).unwrap();
        let mut v = tiny_vocab();
        v.push("dog".to_string());
        let b = Tokenizer::from_vocab(v, Path::new("b")).unwrap();
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn train_small_vocab() {
        let lines = vec!["the cat sat on the mat"; 50];
        let tok = train_wordpiece(
            lines.into_iter(),
            &TrainOptions {
                vocab_size: 60,
                show_progress: false,
                ..TrainOptions::default()
            },
        )
        .unwrap();
        assert_eq!(tok.special_tokens().pad, 0);
        assert_eq!(tok.special_tokens().mask, 4);
        assert!(tok.vocab_size() <= 60);
        let ids = tok.encode("the cat").unwrap();
        assert!(!ids.contains(&tok.special_tokens().unk), "{ids:?}");
    }
}
