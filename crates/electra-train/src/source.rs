//! The bridge from `electra-data` to the loop: opens the run's data (Parquet shards, or the
//! built-in demo corpus) as [`BatchSource`]s and converts the loader's CPU batches into the
//! objective's [`HostBatch`].

use std::path::PathBuf;

use electra_data::{
    Batch, Cursor, DataLoader, DemoCorpus, Example, Expectations, LoaderConfig, PackingConfig,
    Tokenizer, demo_tokenizer,
};
use electra_objective::HostBatch;

use crate::config::RunConfig;
use crate::error::TrainError;
use crate::trainer::BatchSource;

/// Where a source's rows come from; kept so that a seek can restart the loader.
#[derive(Debug, Clone)]
enum Origin {
    /// Examples held in memory (the demo corpus), padded with `pad`.
    Examples { examples: Vec<Example>, pad: u32 },
    /// A directory of shards, checked against `expect`.
    Shards { dir: PathBuf, expect: Expectations },
}

/// A resumable stream of batches over shards or in-memory examples.
pub struct DataSource {
    origin: Origin,
    config: LoaderConfig,
    /// The run's `data.max_seq_len`, which every batch carries for the masking budget.
    max_seq_len: usize,
    loader: DataLoader,
    cursor: Cursor,
}

impl std::fmt::Debug for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataSource")
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

impl DataSource {
    fn start(
        origin: Origin,
        config: LoaderConfig,
        max_seq_len: usize,
        cursor: Cursor,
    ) -> Result<Self, TrainError> {
        let loader = match &origin {
            Origin::Examples { examples, pad } => {
                DataLoader::from_examples(examples.clone(), *pad, config.clone(), cursor)?
            }
            Origin::Shards { dir, expect } => {
                DataLoader::from_shards(dir, config.clone(), expect, cursor)?
            }
        };
        Ok(Self {
            origin,
            config,
            max_seq_len,
            loader,
            cursor,
        })
    }
}

impl BatchSource for DataSource {
    fn next_batch(&mut self, batch_size: usize) -> Result<HostBatch, TrainError> {
        if batch_size != self.config.batch_size {
            return Err(TrainError::InvalidConfig(format!(
                "the loader yields batches of {}, the loop asked for {batch_size}",
                self.config.batch_size
            )));
        }
        let batch = self.loader.next().ok_or_else(|| {
            TrainError::InvalidConfig("the data ran out (the loader was set to end)".to_string())
        })??;
        self.cursor = batch.cursor;
        to_host(&batch, self.max_seq_len)
    }

    fn cursor(&self) -> serde_json::Value {
        serde_json::to_value(self.cursor).unwrap_or_default()
    }

    fn seek(&mut self, cursor: &serde_json::Value) -> Result<(), TrainError> {
        let cursor: Cursor = serde_json::from_value(cursor.clone()).map_err(|e| {
            TrainError::InvalidConfig(format!("checkpoint data cursor {cursor}: {e}"))
        })?;
        *self = Self::start(
            self.origin.clone(),
            self.config.clone(),
            self.max_seq_len,
            cursor,
        )?;
        Ok(())
    }

    /// The earliest of the nodes' cursors: every node had read its whole slice before it, so
    /// no row is skipped (electra-data's loader doc, "Changing the number of ranks").
    fn regroup(&self, cursors: &[serde_json::Value]) -> Result<serde_json::Value, TrainError> {
        let mut earliest: Option<Cursor> = None;
        for (node, cursor) in cursors.iter().enumerate() {
            let cursor: Cursor = serde_json::from_value(cursor.clone()).map_err(|e| {
                TrainError::InvalidConfig(format!("node {node}'s data cursor {cursor}: {e}"))
            })?;
            earliest = Some(earliest.map_or(cursor, |e| e.min(cursor)));
        }
        let earliest = earliest
            .ok_or_else(|| TrainError::InvalidConfig("the checkpoint has no data cursor".into()))?;
        serde_json::to_value(earliest)
            .map_err(|e| TrainError::InvalidConfig(format!("data cursor: {e}")))
    }
}

/// The loader's batch as the objective's host batch. The loader pads a batch only to its
/// longest row; `max_seq_len` (the run's `data.max_seq_len`) travels with it so that the
/// masking slot budget follows the configured length, as the reference's does (spec 1.2).
pub fn to_host(batch: &Batch, max_seq_len: usize) -> Result<HostBatch, TrainError> {
    Ok(HostBatch::new(
        batch.input_ids.iter().map(|&x| i64::from(x)).collect(),
        batch.token_type_ids.iter().map(|&x| i64::from(x)).collect(),
        batch.attention_mask.iter().map(|&x| i64::from(x)).collect(),
        batch.batch_size,
        batch.seq_len,
    )?
    .with_max_seq_len(max_seq_len)?)
}

/// The run's data: the training source, the evaluation source (if any) and the tokenizer.
#[derive(Debug)]
pub struct RunData {
    /// Training batches.
    pub train: DataSource,
    /// Held-out batches for evaluation.
    pub eval: Option<DataSource>,
    /// The tokenizer the examples were made with.
    pub tokenizer: Tokenizer,
}

/// Opens the data `config.data` names. Checks that the tokenizer fits the model and fills the
/// objective's special-token ids from the tokenizer (call [`align_to_tokenizer`] first so the
/// saved config holds them).
pub fn open(config: &RunConfig) -> Result<RunData, TrainError> {
    open_node(config, 0, 1)
}

/// [`open`] for node `rank` of `nodes` in a multi-node run: the training source reads the
/// loader's rank `rank` of `nodes` (rows at positions `p % nodes == rank` of every shard's
/// shuffled stream) in micro-batches of `batch_size / grad_accum_steps / nodes` rows, what
/// the trainer asks one node for. The held-out source is read whole (node 0 evaluates).
pub fn open_node(config: &RunConfig, rank: usize, nodes: usize) -> Result<RunData, TrainError> {
    let data = &config.data;
    let micro_batch = config.train.batch_size / config.train.grad_accum_steps;
    if nodes == 0 || rank >= nodes || !micro_batch.is_multiple_of(nodes) {
        return Err(TrainError::InvalidConfig(format!(
            "node {rank} of {nodes}: the micro-batch of {micro_batch} rows must split evenly \
             across the nodes (train.batch_size a multiple of grad_accum_steps × nodes)"
        )));
    }
    let mut loader = LoaderConfig::new(micro_batch, config.derived_seed("data"));
    loader.shuffle_buffer = data.shuffle_buffer;
    let mut node_loader = loader.clone();
    node_loader.batch_size = micro_batch / nodes;
    node_loader.rank = rank;
    node_loader.world_size = nodes;
    match &data.shards {
        None => {
            let tokenizer = demo_tokenizer()?;
            check_vocab(&tokenizer, config)?;
            let pad = tokenizer.special_tokens().pad;
            let packing = PackingConfig::new(data.max_seq_len);
            let held_out =
                ((data.demo_documents as f64 * data.demo_eval_fraction).round() as usize).max(1);
            let train_docs =
                DemoCorpus::new(config.derived_seed("demo-corpus"), data.demo_documents);
            let examples =
                train_docs.examples(&tokenizer, packing, config.derived_seed("packing"))?;
            let train = DataSource::start(
                Origin::Examples { examples, pad },
                node_loader,
                data.max_seq_len,
                Cursor::default(),
            )?;
            let eval = if config.train.eval_every > 0 {
                let eval_docs = DemoCorpus::new(config.derived_seed("demo-eval-corpus"), held_out);
                let examples =
                    eval_docs.examples(&tokenizer, packing, config.derived_seed("eval-packing"))?;
                let mut eval_loader = loader;
                eval_loader.seed = config.derived_seed("eval-data");
                Some(DataSource::start(
                    Origin::Examples { examples, pad },
                    eval_loader,
                    data.max_seq_len,
                    Cursor::default(),
                )?)
            } else {
                None
            };
            Ok(RunData {
                train,
                eval,
                tokenizer,
            })
        }
        Some(dir) => {
            let tokenizer_path = data.tokenizer.as_ref().ok_or_else(|| {
                TrainError::InvalidConfig(
                    "data.tokenizer is required with data.shards: the run checks that the shards \
                     were built with it"
                        .to_string(),
                )
            })?;
            let tokenizer = Tokenizer::from_path(tokenizer_path)?;
            check_vocab(&tokenizer, config)?;
            let expect = Expectations {
                tokenizer_sha256: Some(tokenizer.hash().to_string()),
                max_vocab_size: Some(config.model.vocab_size),
                max_seq_len: Some(data.max_seq_len),
            };
            let train = DataSource::start(
                Origin::Shards {
                    dir: dir.clone(),
                    expect: expect.clone(),
                },
                node_loader,
                data.max_seq_len,
                Cursor::default(),
            )?;
            let eval = match (&data.eval_shards, config.train.eval_every > 0) {
                (Some(eval_dir), true) => Some(DataSource::start(
                    Origin::Shards {
                        dir: eval_dir.clone(),
                        expect,
                    },
                    loader,
                    data.max_seq_len,
                    Cursor::default(),
                )?),
                _ => None,
            };
            Ok(RunData {
                train,
                eval,
                tokenizer,
            })
        }
    }
}

fn check_vocab(tokenizer: &Tokenizer, config: &RunConfig) -> Result<(), TrainError> {
    if tokenizer.vocab_size() > config.model.vocab_size {
        return Err(TrainError::InvalidConfig(format!(
            "the tokenizer has {} tokens but model.vocab_size is {}",
            tokenizer.vocab_size(),
            config.model.vocab_size
        )));
    }
    Ok(())
}

/// Sets the objective's special-token ids from the run's tokenizer (the demo tokenizer, or
/// `data.tokenizer`), so that the saved config is complete and exact, and checks that the
/// tokenizer fits the model's vocabulary.
pub fn align_to_tokenizer(config: &mut RunConfig) -> Result<(), TrainError> {
    let tokenizer = match (&config.data.shards, &config.data.tokenizer) {
        (None, _) => demo_tokenizer()?,
        (Some(_), Some(path)) => Tokenizer::from_path(path)?,
        (Some(_), None) => return Ok(()),
    };
    check_vocab(&tokenizer, config)?;
    let special = tokenizer.special_tokens();
    config.objective.pad_token_id = i64::from(special.pad);
    config.objective.cls_token_id = i64::from(special.cls);
    config.objective.sep_token_id = i64::from(special.sep);
    config.objective.mask_token_id = i64::from(special.mask);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use electra_data::{Padding, SpecialTokens};
    use electra_objective::ObjectiveConfig;
    use electra_objective::masking::{mask_batch, step_rng};

    const BERT: SpecialTokens = SpecialTokens {
        pad: 0,
        unk: 100,
        cls: 101,
        sep: 102,
        mask: 103,
    };

    /// `[CLS] w.. [SEP]` of `len` tokens, ordinary ids from 1000.
    fn example(len: usize) -> Example {
        let a: Vec<u32> = (0..len as u32 - 2).map(|t| 1000 + t).collect();
        Example::from_segments(&a, &[], BERT)
    }

    #[test]
    fn a_batch_of_short_rows_masks_the_reference_count() {
        // A run configured for 128 tokens (reference N = 19) whose micro-batch holds rows of
        // 50, 10 and 6 tokens, padded by the loader to 50 only. The reference masks
        // clamp(round(0.15·n), 1, 19) per row: 8, 2 and 1. A budget from the padded length
        // (floor(0.155·50) = 7) would cap the 50-token row at 7.
        let rows = [example(50), example(10), example(6)];
        let batch =
            Batch::from_examples(&rows, Padding::Longest, 0, Cursor::default()).expect("batch");
        assert_eq!(batch.seq_len, 50);
        let host = to_host(&batch, 128).expect("host");
        assert_eq!((host.seq, host.max_seq_len), (50, 128));
        let masked = mask_batch(
            &host,
            &ObjectiveConfig::default(),
            30522,
            &mut step_rng(1, 0),
        );
        assert_eq!(masked.slots, 19);
        let active: Vec<usize> = (0..3)
            .map(|r| {
                masked.weights[r * 19..(r + 1) * 19]
                    .iter()
                    .filter(|&&w| w == 1.0)
                    .count()
            })
            .collect();
        assert_eq!(active, [8, 2, 1]);
        assert!(
            to_host(&batch, 40).is_err(),
            "configured length below the padded one"
        );
    }

    #[test]
    fn every_loader_batch_carries_the_configured_length() {
        let config = RunConfig::resolve(
            Some("demo"),
            None,
            &[
                "data.demo_documents=20".to_string(),
                "train.eval_every=0".to_string(),
                "train.batch_size=8".to_string(),
            ],
        )
        .expect("config");
        let mut data = open(&config).expect("open");
        for _ in 0..4 {
            let batch = data.train.next_batch(8).expect("batch");
            assert!(batch.seq <= config.data.max_seq_len);
            assert_eq!(batch.max_seq_len, config.data.max_seq_len);
        }
    }
}
