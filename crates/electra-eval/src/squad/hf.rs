//! Question-answering checkpoints on disk, as Hugging Face directories (`config.json` +
//! `model.safetensors`):
//!
//! - the `hf` head is HF's `ElectraForQuestionAnswering` exactly (`electra.*` under HF's
//!   names, `qa_outputs.weight [2, H]`, `qa_outputs.bias [2]`): `transformers` loads what we
//!   write, and we load what it writes (a fine-tuned model from the Hub, for example);
//! - the `reference` head has no HF class; its directory names `ElectraReferenceQA` in
//!   `architectures` and records whether it has the answerability classifier
//!   (`squad_answerable_classifier`) and its hidden width (`squad_joint_hidden`). Its encoder tensors are under HF's names, so
//!   `transformers`' `ElectraModel.from_pretrained` reads the encoder (ignoring the head).

use std::path::Path;

use burn::prelude::*;
use electra_model::hf;
use electra_model::{ElectraConfig, ElectraModel, HfConfig};
use serde_json::Value;

use crate::error::EvalError;
use crate::squad::model::{ElectraForSquad, HeadConfig, HeadKind, REFERENCE_HIDDEN};

/// HF's class of the `hf` head.
pub const HF_QA_CLASS: &str = "ElectraForQuestionAnswering";
/// Our name for the reference head's checkpoints.
pub const REFERENCE_QA_CLASS: &str = "ElectraReferenceQA";
/// The `config.json` key recording the reference head's answerability classifier.
pub const ANSWERABLE_KEY: &str = "squad_answerable_classifier";
/// The `config.json` key of the 2.0 no-answer threshold chosen on the dev set (what
/// `electra squad predict` applies by default).
pub const NULL_THRESHOLD_KEY: &str = "squad_null_threshold";
/// The `config.json` key of the SQuAD version the model was fine-tuned for.
pub const VERSION_KEY: &str = "squad_version";
/// The `config.json` key of the fine-tuning settings (windows, answers, beam).
pub const CONFIG_KEY: &str = "squad_config";
/// The `config.json` key recording the reference head's hidden width.
pub const JOINT_HIDDEN_KEY: &str = "squad_joint_hidden";

/// The head a checkpoint directory's `config.json` names, if it is a question-answering one.
pub fn qa_head(config: &HfConfig) -> Option<HeadKind> {
    config.architectures.iter().find_map(|a| match a.as_str() {
        HF_QA_CLASS => Some(HeadKind::HuggingFace),
        REFERENCE_QA_CLASS => Some(HeadKind::Reference),
        _ => None,
    })
}

/// Whether `dir` holds a question-answering checkpoint (either head).
pub fn is_qa_checkpoint(dir: &Path) -> bool {
    dir.join("config.json").is_file()
        && hf::read_config(dir)
            .ok()
            .and_then(|c| qa_head(&c))
            .is_some()
}

/// Loads the question-answering model in `dir` (either head); every tensor must be present
/// and of the right shape.
pub fn load<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(ElectraForSquad<B>, HfConfig), EvalError> {
    let config = hf::read_config(dir)?;
    let head = qa_head(&config).ok_or_else(|| {
        EvalError::InvalidConfig(format!(
            "{}: `architectures` is {:?}, not a question-answering model ({HF_QA_CLASS} or \
             {REFERENCE_QA_CLASS}); fine-tune one with `electra squad`",
            dir.join("config.json").display(),
            config.architectures
        ))
    })?;
    let head_config = HeadConfig {
        kind: head,
        answerable_classifier: config
            .extra
            .get(ANSWERABLE_KEY)
            .and_then(Value::as_bool)
            .unwrap_or(false),
        joint_hidden: config
            .extra
            .get(JOINT_HIDDEN_KEY)
            .and_then(Value::as_u64)
            .map_or(REFERENCE_HIDDEN, |w| w as usize),
    };
    let mut model = ElectraForSquad::new(
        ElectraModel::new(&config.model, device),
        &config.model,
        &head_config,
        device,
    );
    let class = match head {
        HeadKind::HuggingFace => HF_QA_CLASS,
        HeadKind::Reference => REFERENCE_QA_CLASS,
    };
    hf::apply_weights_as(&mut model, &hf::weights_file(dir)?, class)?;
    Ok((model, config))
}

/// Writes `model` to `dir` (created if needed; both files written atomically): HF's
/// `ElectraForQuestionAnswering` for the `hf` head, our reference-head layout otherwise.
pub fn save<B: Backend>(
    model: &ElectraForSquad<B>,
    config: &ElectraConfig,
    dir: &Path,
) -> Result<(), EvalError> {
    let mut hf_config = match model.head() {
        HeadKind::HuggingFace => HfConfig::new(config.clone(), HF_QA_CLASS),
        HeadKind::Reference => HfConfig::new(config.clone(), REFERENCE_QA_CLASS),
    };
    if let Some(head) = &model.reference {
        hf_config.extra.insert(
            ANSWERABLE_KEY.to_string(),
            Value::Bool(head.answerable_logit.is_some()),
        );
        hf_config.extra.insert(
            JOINT_HIDDEN_KEY.to_string(),
            Value::from(head.end_hidden.weight.val().dims()[1]),
        );
    }
    hf::save_config(model, &hf_config, dir)?;
    Ok(())
}
