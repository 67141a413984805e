//! `DataConfig`: the data section of a run's config, and the one call a trainer makes.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::demo::{DemoCorpus, demo_tokenizer};
use crate::error::{DataError, Result};
use crate::loader::{Cursor, DataLoader, LoaderConfig, Padding};
use crate::manifest::{Expectations, Manifest};
use crate::tokenizer::SpecialTokens;

/// Where pre-training data comes from and how it is streamed (serde, for the run's TOML).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Shard directory built by `electra data build`; `None`: the demo corpus, packed in memory
    /// with the demo tokenizer (a demo, not a benchmark).
    pub shards: Option<PathBuf>,
    /// Demo corpus documents (when `shards` is `None`).
    pub demo_documents: usize,
    /// Demo corpus text seed.
    pub demo_seed: u64,
    /// Demo packing length (shards carry their own).
    pub demo_max_seq_len: usize,
    /// Rows per shuffle window.
    pub shuffle_buffer: usize,
    /// Batches prepared ahead on a background thread.
    pub prefetch: usize,
    /// Padding rule.
    pub padding: Padding,
    /// Check every shard's SHA-256 against the manifest when the loader opens.
    pub verify_checksums: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            shards: None,
            demo_documents: 20_000,
            demo_seed: 0,
            demo_max_seq_len: 128,
            shuffle_buffer: 8192,
            prefetch: 4,
            padding: Padding::Longest,
            verify_checksums: false,
        }
    }
}

/// What the model needs to know about the data's vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VocabInfo {
    /// Number of token ids.
    pub vocab_size: usize,
    /// Special-token ids.
    pub special: SpecialTokens,
    /// Tokenizer hash.
    pub tokenizer_sha256: String,
    /// Maximum example length.
    pub max_seq_len: usize,
}

impl DataConfig {
    /// The vocabulary and length of the data (from the manifest, or the demo tokenizer), to
    /// size the model before opening the loader.
    pub fn vocab(&self) -> Result<VocabInfo> {
        match &self.shards {
            Some(dir) => {
                let (m, _) = Manifest::load(dir)?;
                Ok(VocabInfo {
                    vocab_size: m.tokenizer.vocab_size,
                    special: m.tokenizer.special,
                    tokenizer_sha256: m.tokenizer.sha256,
                    max_seq_len: m.settings.max_seq_len,
                })
            }
            None => {
                let t = demo_tokenizer()?;
                Ok(VocabInfo {
                    vocab_size: t.vocab_size(),
                    special: t.special_tokens(),
                    tokenizer_sha256: t.hash().to_string(),
                    max_seq_len: self.demo_max_seq_len,
                })
            }
        }
    }

    /// Opens the loader for one rank, checked against `expect`, starting at `start`.
    pub fn loader(
        &self,
        batch_size: usize,
        seed: u64,
        rank: usize,
        world_size: usize,
        expect: &Expectations,
        start: Cursor,
    ) -> Result<DataLoader> {
        let config = LoaderConfig {
            shuffle_buffer: self.shuffle_buffer,
            prefetch: self.prefetch,
            padding: self.padding,
            verify_checksums: self.verify_checksums,
            rank,
            world_size,
            ..LoaderConfig::new(batch_size, seed)
        };
        match &self.shards {
            Some(dir) => DataLoader::from_shards(dir, config, expect, start),
            None => {
                let corpus = DemoCorpus::new(self.demo_seed, self.demo_documents);
                let (loader, tokenizer) =
                    DataLoader::demo(corpus, self.demo_max_seq_len, config, start)?;
                let demo = std::path::Path::new("<demo>");
                if let Some(hash) = &expect.tokenizer_sha256
                    && hash != tokenizer.hash()
                {
                    return Err(DataError::tokenizer(
                        demo,
                        "the run's tokenizer is not the demo tokenizer the demo corpus uses",
                    ));
                }
                if let Some(max) = expect.max_vocab_size
                    && tokenizer.vocab_size() > max
                {
                    return Err(DataError::tokenizer(
                        demo,
                        format!(
                            "the demo vocabulary has {} ids but the model's has only {max}",
                            tokenizer.vocab_size()
                        ),
                    ));
                }
                Ok(loader)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_config_round_trips_and_loads() {
        let config = DataConfig {
            demo_documents: 10,
            demo_max_seq_len: 32,
            ..DataConfig::default()
        };
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<DataConfig>(&json).unwrap(), config);
        let vocab = config.vocab().unwrap();
        assert_eq!(vocab.special.pad, 0);
        let mut loader = config
            .loader(4, 0, 0, 1, &Expectations::default(), Cursor::default())
            .unwrap();
        let batch = loader.next().unwrap().unwrap();
        assert_eq!(batch.batch_size, 4);
        assert!(batch.seq_len <= 32);
        let small = Expectations {
            max_vocab_size: Some(10),
            ..Expectations::default()
        };
        assert!(
            config
                .loader(4, 0, 0, 1, &small, Cursor::default())
                .is_err()
        );
    }
}
