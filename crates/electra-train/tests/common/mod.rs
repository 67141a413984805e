//! Shared pieces of the loop tests: a tiny config, a deterministic batch source and a run
//! helper.

#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use burn::backend::{Autodiff, Flex};
use electra_model::ElectraConfig;
use electra_objective::HostBatch;
use electra_train::TrainError;
use electra_train::config::RunConfig;
use electra_train::metrics;
use electra_train::trainer::{self, BatchSource, RunOptions};

pub type AB = Autodiff<Flex>;

pub const VOCAB: usize = 40;
pub const SEQ: usize = 12;

/// A deterministic cycle of rows `[CLS] w w w ... [SEP] pad...`, with a learnable pattern:
/// each word is followed by word + 1.
pub struct Cycle {
    rows: Vec<Vec<i64>>,
    pos: usize,
}

impl Cycle {
    pub fn new(n: usize) -> Self {
        let rows = (0..n)
            .map(|i| {
                let len = 6 + i % 6;
                let mut row = vec![1];
                row.extend((0..len - 2).map(|j| 4 + ((i * 7 + j) % (VOCAB - 4)) as i64));
                row.push(2);
                row.resize(SEQ, 0);
                row
            })
            .collect();
        Self { rows, pos: 0 }
    }
}

impl BatchSource for Cycle {
    fn next_batch(&mut self, batch_size: usize) -> Result<HostBatch, TrainError> {
        let rows: Vec<Vec<i64>> = (0..batch_size)
            .map(|k| self.rows[(self.pos + k) % self.rows.len()].clone())
            .collect();
        self.pos += batch_size;
        let mask: Vec<Vec<i64>> = rows
            .iter()
            .map(|r| r.iter().map(|&t| i64::from(t != 0)).collect())
            .collect();
        let types = vec![vec![0; SEQ]; batch_size];
        Ok(HostBatch::from_rows(&rows, &types, &mask)?)
    }
    fn cursor(&self) -> serde_json::Value {
        serde_json::json!({ "pos": self.pos })
    }
    fn seek(&mut self, cursor: &serde_json::Value) -> Result<(), TrainError> {
        self.pos = cursor["pos"].as_u64().unwrap_or(0) as usize;
        Ok(())
    }
}

pub fn tiny_config(steps: u64) -> RunConfig {
    let mut c = RunConfig::preset("tiny").expect("tiny");
    c.model = ElectraConfig {
        num_hidden_layers: 1,
        max_position_embeddings: SEQ,
        ..ElectraConfig::micro(VOCAB)
    };
    c.objective.generator_hidden_multiplier = 0.5;
    c.objective.cls_token_id = 1;
    c.objective.sep_token_id = 2;
    c.objective.mask_token_id = 3;
    c.data.max_seq_len = SEQ;
    c.train.batch_size = 8;
    c.train.steps = steps;
    c.train.log_every = 1;
    c.train.checkpoint_every = 3;
    c.train.eval_every = 0;
    c.schedule.warmup_steps = 2;
    c.schedule.peak = 3e-3;
    c
}

pub fn options(dir: &Path, stop_after: Option<u64>) -> RunOptions {
    RunOptions {
        run_dir: dir.to_path_buf(),
        stop: Arc::new(AtomicBool::new(false)),
        stop_after,
        node: Default::default(),
    }
}

/// The backend's random stream is process-wide: runs in parallel test threads would interleave
/// their draws, so each run holds this lock.
pub static BACKEND_RNG: Mutex<()> = Mutex::new(());

pub fn run(
    config: &RunConfig,
    dir: &Path,
    stop_after: Option<u64>,
) -> Result<trainer::Summary, TrainError> {
    let _guard = BACKEND_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    trainer::run::<AB>(
        config,
        &mut Cycle::new(32),
        None,
        &device,
        &options(dir, stop_after),
    )
}

pub fn losses(dir: &Path) -> Vec<(f64, f64)> {
    metrics::read(&dir.join("metrics.jsonl"))
        .expect("metrics")
        .iter()
        .map(|r| (r["step"], r["loss"]))
        .collect()
}
