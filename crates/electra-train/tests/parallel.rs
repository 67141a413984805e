//! Data-parallel training through burn's collective on two CPU peers (two flex "devices": the
//! flex backend has one device, so both replicas live on it, each driven by its own thread and
//! joined by the collective's all-reduce, as on two GPUs).
//!
//! The oracle: two peers with `grad_accum_steps = 1` must compute what one device computes with
//! `grad_accum_steps = 2` over the same rows (see `electra_train::parallel`). With two peers
//! this holds bit for bit: one device accumulates `g1/2 + g2/2`, the peers average
//! `(g1 + g2)/2`, and halving is exact in floating point.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{AB, BACKEND_RNG, Cycle, losses, options, tiny_config};
use electra_train::TrainError;
use electra_train::config::RunConfig;
use electra_train::trainer::{self, Summary};

fn run_on(
    config: &RunConfig,
    dir: &Path,
    devices: usize,
    stop_after: Option<u64>,
) -> Result<Summary, TrainError> {
    let _guard = BACKEND_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let devices = vec![Default::default(); devices];
    trainer::run_data_parallel::<AB>(
        config,
        &mut Cycle::new(32),
        None,
        &devices,
        &options(dir, stop_after),
    )
}

fn parameters(checkpoint: &Path) -> BTreeMap<String, Vec<f32>> {
    let bytes = std::fs::read(checkpoint.join("model.safetensors")).expect("model.safetensors");
    let tensors = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, values)
        })
        .collect()
}

fn max_param_diff(a: &Path, b: &Path) -> f64 {
    let (a, b) = (parameters(a), parameters(b));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "same tensors"
    );
    a.iter()
        .flat_map(|(k, x)| x.iter().zip(&b[k]).map(|(p, q)| f64::from((p - q).abs())))
        .fold(0.0, f64::max)
}

#[test]
fn two_peers_compute_what_one_device_computes_with_twice_the_accumulation() {
    let mut single = tiny_config(4);
    single.train.grad_accum_steps = 2;
    let one = tempfile::tempdir().expect("tempdir");
    let a = run_on(&single, one.path(), 1, None).expect("one device");

    let parallel = tiny_config(4);
    let two = tempfile::tempdir().expect("tempdir");
    let b = run_on(&parallel, two.path(), 2, None).expect("two peers");
    assert_eq!((a.final_step, b.final_step), (4, 4));

    let (la, lb) = (losses(one.path()), losses(two.path()));
    assert_eq!(la.len(), 4);
    assert_eq!(la, lb, "the loss curves must be identical");
    // Not equal by construction: the model learns over the 4 steps.
    assert_ne!(la[0].1, la[3].1);
    assert_eq!(max_param_diff(&a.checkpoint, &b.checkpoint), 0.0);
}

#[test]
fn a_two_peer_run_resumes_exactly() {
    let config = tiny_config(4);
    let straight = tempfile::tempdir().expect("tempdir");
    let a = run_on(&config, straight.path(), 2, None).expect("uninterrupted");
    let split = tempfile::tempdir().expect("tempdir");
    run_on(&config, split.path(), 2, Some(2)).expect("first half");
    let b = run_on(&config, split.path(), 2, None).expect("resumed");
    assert_eq!((b.start_step, b.final_step), (2, 4));
    assert_eq!(losses(straight.path()), losses(split.path()));
    assert_eq!(max_param_diff(&a.checkpoint, &b.checkpoint), 0.0);
}

#[test]
fn a_batch_that_does_not_split_evenly_is_refused() {
    let mut config = tiny_config(2);
    config.train.batch_size = 6;
    config.train.grad_accum_steps = 2;
    let dir = tempfile::tempdir().expect("tempdir");
    let err = run_on(&config, dir.path(), 2, None).expect_err("6 rows over 2x2");
    assert!(
        err.to_string()
            .contains("multiple of train.grad_accum_steps (2) × devices (2)"),
        "{err}"
    );
}
