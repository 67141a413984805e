//! # electra-model: the encoder
//!
//! ELECTRA's networks are BERT encoders (post-LayerNorm transformers with learned absolute
//! positions and segment embeddings). This crate owns everything about them that does not
//! depend on the pre-training objective: the configuration ([`ElectraConfig`], with Hugging
//! Face's `config.json` field names and the paper's presets), the building blocks (embeddings,
//! attention, layers, the encoder tower, the discriminator and generator heads), the two
//! whole networks HF ships ([`ElectraForPreTraining`], the discriminator, and
//! [`ElectraForMaskedLM`], the generator), and the import and export of HF checkpoints
//! ([`hf`]).
//!
//! Downstream, `electra-objective` builds the pre-training model out of these blocks (one
//! shared [`ElectraEmbeddings`], two [`ElectraEncoder`] towers and both heads), and
//! `electra-eval` fine-tunes an [`ElectraModel`] with a task head.
//!
//! Every module is generic over the burn backend `B`; nothing here picks a device. Training
//! wraps the backend in `Autodiff<B>`; in inference dropout is a no-op.

pub mod config;
pub mod electra;
pub mod error;
pub mod hf;
pub mod hf_outputs;
pub mod input;
pub mod kernels;
pub mod memory;
pub mod seed;

#[cfg(test)]
mod fuzzed_readers;

pub use config::{Activation, ElectraConfig, HfConfig, PRESETS};
pub use electra::{
    DiscriminatorHead, ElectraAttention, ElectraEmbeddings, ElectraEncoder, ElectraForMaskedLM,
    ElectraForPreTraining, ElectraLayer, ElectraModel, EmbeddingTables, EncoderOutput,
    GeneratorHead, LayerNorm, additive_attention_mask,
};
pub use error::ModelError;
pub use input::{InputBatch, InputTensors};
