//! The ELECTRA encoder, read top-down: embeddings, attention, layer, encoder tower, heads, and
//! the two Hugging Face model classes (discriminator and generator).
//!
//! The configuration lives in [`crate::config`]. Every block names the paper section or the HF
//! class (`transformers/models/electra/modeling_electra.py`) it mirrors. Shapes: `b` batch,
//! `s` sequence, `E` embedding size, `H` hidden size, `V` vocabulary.
//!
//! Sharing: the embeddings are a block of their own ([`ElectraEmbeddings`]) and the tower
//! ([`ElectraEncoder`]) starts from their output, so a pre-training model can own one embedding
//! block and feed both towers (spec 2.3), while [`ElectraModel`] mirrors HF's layout for a single
//! network.

use burn::module::{Initializer, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::{gelu_approximate, relu};
use burn::tensor::module::embedding;

use crate::config::{Activation, ElectraConfig};
use crate::kernels::{self, dropout};

/// The additive value for masked (padding) keys, as the reference code uses (spec 2.1).
pub const MASK_VALUE: f32 = -10000.0;

/// Applies the configured activation.
pub fn activate<B: Backend, const D: usize>(act: Activation, x: Tensor<B, D>) -> Tensor<B, D> {
    match act {
        Activation::Gelu => kernels::gelu(x),
        Activation::GeluNew => gelu_approximate(x),
        Activation::Relu => relu(x),
    }
}

/// A tensor drawn from N(0, std²) truncated at ±2·std, as TF's `truncated_normal_initializer`
/// does (spec 2.7): values outside the bounds are redrawn (eight rounds, after which the chance
/// of a value still outside is below 1e-10 per element; those are clamped).
pub fn truncated_normal<B: Backend, const D: usize>(
    shape: [usize; D],
    std: f64,
    device: &B::Device,
) -> Tensor<B, D> {
    let bound = 2.0 * std;
    let mut t = Tensor::<B, D>::random(shape, Distribution::Normal(0.0, std), device);
    for _ in 0..8 {
        let outside = t.clone().abs().greater_elem(bound);
        let fresh = Tensor::random(shape, Distribution::Normal(0.0, std), device);
        t = t.mask_where(outside, fresh);
    }
    t.clamp(-bound, bound)
}

/// A `Linear` whose weight is truncated-normal(0, std) and whose bias is zero (spec 2.7: the
/// attention, feed-forward and head kernels).
fn linear_truncated<B: Backend>(
    d_in: usize,
    d_out: usize,
    std: f64,
    device: &B::Device,
) -> Linear<B> {
    let mut linear = LinearConfig::new(d_in, d_out)
        .with_initializer(Initializer::Zeros)
        .init(device);
    linear.weight = Param::from_tensor(truncated_normal([d_in, d_out], std, device));
    linear
}

/// A `Linear` with TF's default Glorot-uniform kernel and a zero bias (spec 2.7:
/// `embeddings_project`, the discriminator's `dense_prediction` and fine-tuning heads).
pub fn linear_glorot<B: Backend>(d_in: usize, d_out: usize, device: &B::Device) -> Linear<B> {
    let mut linear = LinearConfig::new(d_in, d_out)
        .with_initializer(Initializer::Zeros)
        .init(device);
    // burn draws an initializer's values lazily, at the parameter's first use, from whatever
    // random stream is current then; drawing them here ties them to the init seed, and model
    // replicas cloned before their first use (data-parallel peers) hold the same weights.
    let weight = Initializer::XavierUniform { gain: 1.0 }
        .init_with([d_in, d_out], Some(d_in), Some(d_out), device)
        .val();
    linear.weight = Param::from_tensor(weight);
    linear
}

/// An `Embedding` table initialised truncated-normal(0, std).
fn embedding_truncated<B: Backend>(
    rows: usize,
    dim: usize,
    std: f64,
    device: &B::Device,
) -> Embedding<B> {
    let mut embedding = EmbeddingConfig::new(rows, dim)
        .with_initializer(Initializer::Zeros)
        .init(device);
    embedding.weight = Param::from_tensor(truncated_normal([rows, dim], std, device));
    embedding
}

/// `linear` applied to `x [b, s, d_in]` as one `[b·s, d_in]` matrix product → `[b, s, d_out]`
/// (on 3-D input burn's weight gradient is a product per batch row plus a sum).
pub fn linear_2d<B: Backend>(linear: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [b, s, d] = x.dims();
    let y = dense_of(linear, x.reshape([b * s, d]));
    let d_out = y.dims()[1];
    y.reshape([b, s, d_out])
}

/// The bias of `linear` (zeros for a `Linear` built without one).
fn bias_of<B: Backend>(linear: &Linear<B>) -> Tensor<B, 1> {
    match &linear.bias {
        Some(bias) => bias.val(),
        None => Tensor::zeros([linear.weight.dims()[1]], &linear.weight.device()),
    }
}

/// `linear` on `x [n, d_in]` as [`kernels::dense()`] (one matrix product, the bias added in one
/// pass on the CPU backend) → `[n, d_out]`.
pub fn dense_of<B: Backend>(linear: &Linear<B>, x: Tensor<B, 2>) -> Tensor<B, 2> {
    kernels::dense(x, linear.weight.val(), bias_of(linear), false)
}

/// `act(linear(x))` on `x [n, d_in]`: one fused operation for the exact GELU
/// ([`kernels::dense_gelu`]), the dense layer then the activation otherwise.
pub fn dense_activation<B: Backend>(
    linear: &Linear<B>,
    x: Tensor<B, 2>,
    act: Activation,
) -> Tensor<B, 2> {
    match act {
        Activation::Gelu => kernels::dense_gelu(x, linear.weight.val(), bias_of(linear)),
        other => activate(other, dense_of(linear, x)),
    }
}

/// `norm(dropout(linear(x)) + residual)` on `[n, ..]` rows ([`kernels::dense_residual_layer_norm`]).
fn residual_norm<B: Backend>(
    linear: &Linear<B>,
    x: Tensor<B, 2>,
    residual: Tensor<B, 2>,
    norm: &LayerNorm<B>,
    prob: f64,
) -> Tensor<B, 2> {
    let (gamma, beta) = norm.parameters();
    kernels::dense_residual_layer_norm(
        x,
        linear.weight.val(),
        bias_of(linear),
        residual,
        (gamma, beta, norm.epsilon),
        prob,
    )
}

fn layer_norm<B: Backend>(dim: usize, eps: f64, device: &B::Device) -> LayerNorm<B> {
    LayerNorm::new(dim, eps, device)
}

/// LayerNorm over the last dimension (HF `LayerNorm`, eps 1e-12): `y = (x − μ)/√(σ² + eps)·γ + β`.
/// The parameters are named as burn's `LayerNorm` (`gamma`, `beta`), so checkpoints and the HF
/// name mapping are unchanged; the forward pass is [`kernels::layer_norm`] (one fused
/// operation with its own backward on the CPU backend).
#[derive(Module, Debug)]
pub struct LayerNorm<B: Backend> {
    /// Scale `γ [d]`, ones at init.
    pub gamma: Param<Tensor<B, 1>>,
    /// Shift `β [d]`, zeros at init (always present; an `Option` as in burn's module, so the
    /// record has the same shape).
    pub beta: Option<Param<Tensor<B, 1>>>,
    /// Added to the variance.
    #[module(skip)]
    pub epsilon: f64,
}

impl<B: Backend> LayerNorm<B> {
    /// `γ = 1`, `β = 0` over `dim` features.
    pub fn new(dim: usize, epsilon: f64, device: &B::Device) -> Self {
        Self {
            gamma: Param::from_tensor(Tensor::ones([dim], device)),
            beta: Some(Param::from_tensor(Tensor::zeros([dim], device))),
            epsilon,
        }
    }

    /// `γ` and `β` (zeros when absent).
    pub fn parameters(&self) -> (Tensor<B, 1>, Tensor<B, 1>) {
        let gamma = self.gamma.val();
        let beta = match &self.beta {
            Some(beta) => beta.val(),
            None => gamma.zeros_like(),
        };
        (gamma, beta)
    }

    /// `x [.., d]` → `[.., d]`.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let (gamma, beta) = self.parameters();
        kernels::layer_norm(x, gamma, beta, self.epsilon)
    }
}

/// Turns a 0/1 attention mask `[b, s]` into the additive key mask `[b, 1, 1, s]`:
/// `(1 − mask)·(−10000)` (spec 2.1; HF uses the dtype's minimum, which gives the same
/// probabilities in f32).
pub fn additive_attention_mask<B: Backend>(attention_mask: Tensor<B, 2, Int>) -> Tensor<B, 4> {
    let [b, s] = attention_mask.dims();
    attention_mask
        .float()
        .neg()
        .add_scalar(1.0)
        .mul_scalar(MASK_VALUE)
        .reshape([b, 1, 1, s])
}

// ---------------------------------------------------------------------------------------------
// Embeddings: HF `ElectraEmbeddings`; paper §2, spec 2.2.
// ---------------------------------------------------------------------------------------------

/// Word + learned absolute position + token-type embeddings, then LayerNorm and dropout.
/// Width `E = embedding_size`. In pre-training this block is shared by both towers.
#[derive(Module, Debug)]
pub struct ElectraEmbeddings<B: Backend> {
    /// Token embeddings `[V, E]`; also the generator's (tied) output matrix.
    pub word_embeddings: Embedding<B>,
    /// Absolute position embeddings `[max_position_embeddings, E]`.
    pub position_embeddings: Embedding<B>,
    /// Segment embeddings `[type_vocab_size, E]`.
    pub token_type_embeddings: Embedding<B>,
    /// LayerNorm over `E` (eps 1e-12).
    pub layer_norm: LayerNorm<B>,
    /// Dropout (`hidden_dropout_prob`).
    pub dropout: Dropout,
}

impl<B: Backend> ElectraEmbeddings<B> {
    /// Fresh embeddings, truncated-normal(0, `initializer_range`) tables (spec 2.7).
    pub fn new(config: &ElectraConfig, device: &B::Device) -> Self {
        let (e, std) = (config.embedding_size, config.initializer_range);
        Self {
            word_embeddings: embedding_truncated(config.vocab_size, e, std, device),
            position_embeddings: embedding_truncated(
                config.max_position_embeddings,
                e,
                std,
                device,
            ),
            token_type_embeddings: embedding_truncated(config.type_vocab_size, e, std, device),
            layer_norm: layer_norm(e, config.layer_norm_eps, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        }
    }

    /// A block with zero tables and a fresh LayerNorm (γ = 1, β = 0): the `E_Δ` of
    /// gradient-disentangled sharing. Draws nothing from the random stream.
    pub fn zeros(config: &ElectraConfig, device: &B::Device) -> Self {
        let e = config.embedding_size;
        let table = |rows| {
            EmbeddingConfig::new(rows, e)
                .with_initializer(Initializer::Zeros)
                .init(device)
        };
        Self {
            word_embeddings: table(config.vocab_size),
            position_embeddings: table(config.max_position_embeddings),
            token_type_embeddings: table(config.type_vocab_size),
            layer_norm: layer_norm(e, config.layer_norm_eps, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
        }
    }

    /// `input_ids [b, s]`, `token_type_ids [b, s]` → `[b, s, E]`. Positions are `0..s`.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3> {
        self.forward_tables(self.tables(), input_ids, token_type_ids)
    }

    /// The block's three tables as tensors.
    pub fn tables(&self) -> EmbeddingTables<B> {
        EmbeddingTables {
            word: self.word_embeddings.weight.val(),
            position: self.position_embeddings.weight.val(),
            token_type: self.token_type_embeddings.weight.val(),
        }
    }

    /// [`Self::forward`] with `tables` in place of the block's own (same shapes), and the
    /// block's LayerNorm and dropout: how a block made of other tensors is embedded (the
    /// discriminator's `sg(E_G) + E_Δ` under gradient-disentangled sharing).
    pub fn forward_tables(
        &self,
        tables: EmbeddingTables<B>,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3> {
        let [b, s] = input_ids.dims();
        let device = input_ids.device();
        let positions = Tensor::<B, 1, Int>::arange(0..s as i64, &device)
            .reshape([1, s])
            .repeat_dim(0, b);
        let x = embedding(tables.word, input_ids)
            + embedding(tables.position, positions)
            + embedding(tables.token_type, token_type_ids);
        dropout(self.layer_norm.forward(x), self.dropout.prob)
    }

    /// The block with its tables replaced by `tables` (same shapes), its LayerNorm and dropout
    /// kept: a block whose tables were computed (a folded `E_G + E_Δ`) as a plain block. The
    /// tables become new parameters, detached from whatever computed them (on an autodiff
    /// backend a computed tensor cannot itself become a parameter).
    pub fn with_tables(&self, tables: EmbeddingTables<B>) -> Self {
        let tables = tables.map(Tensor::detach);
        let mut block = self.clone();
        block.word_embeddings.weight = Param::from_tensor(tables.word);
        block.position_embeddings.weight = Param::from_tensor(tables.position);
        block.token_type_embeddings.weight = Param::from_tensor(tables.token_type);
        block
    }
}

/// The word `[V, E]`, position `[P, E]` and token-type `[T, E]` tables of an embedding block.
#[derive(Clone, Debug)]
pub struct EmbeddingTables<B: Backend> {
    /// Word embeddings `[V, E]`.
    pub word: Tensor<B, 2>,
    /// Position embeddings `[max_position_embeddings, E]`.
    pub position: Tensor<B, 2>,
    /// Token-type embeddings `[type_vocab_size, E]`.
    pub token_type: Tensor<B, 2>,
}

impl<B: Backend> EmbeddingTables<B> {
    /// Applies `f` to each table.
    pub fn map(self, f: impl Fn(Tensor<B, 2>) -> Tensor<B, 2>) -> Self {
        Self {
            word: f(self.word),
            position: f(self.position),
            token_type: f(self.token_type),
        }
    }
}

/// Table by table `self + other`.
impl<B: Backend> core::ops::Add for EmbeddingTables<B> {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            word: self.word + other.word,
            position: self.position + other.position,
            token_type: self.token_type + other.token_type,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Attention: HF `ElectraSelfAttention` + `ElectraSelfOutput.dense`; spec 2.1 steps 1-2.
// ---------------------------------------------------------------------------------------------

/// Multi-head scaled dot-product self-attention with an additive key mask and dropout on the
/// attention probabilities (BERT semantics, unlike burn's `MultiHeadAttention`, which drops
/// scores before the softmax).
#[derive(Module, Debug)]
pub struct ElectraAttention<B: Backend> {
    /// Query projection `H → H`.
    pub query: Linear<B>,
    /// Key projection `H → H`.
    pub key: Linear<B>,
    /// Value projection `H → H`.
    pub value: Linear<B>,
    /// Output projection `H → H` (HF `attention.output.dense`).
    pub output: Linear<B>,
    /// Dropout on the attention probabilities.
    pub dropout: Dropout,
    /// Number of heads.
    pub num_heads: usize,
}

impl<B: Backend> ElectraAttention<B> {
    fn new(config: &ElectraConfig, device: &B::Device) -> Self {
        let (h, std) = (config.hidden_size, config.initializer_range);
        Self {
            query: linear_truncated(h, h, std, device),
            key: linear_truncated(h, h, std, device),
            value: linear_truncated(h, h, std, device),
            output: linear_truncated(h, h, std, device),
            dropout: DropoutConfig::new(config.attention_probs_dropout_prob).init(),
            num_heads: config.num_attention_heads,
        }
    }

    /// The fused query, key and value projection of `x [n, H]` → `[n, 3H]` (queries, keys,
    /// values side by side): one matrix product with the three weights concatenated
    /// (`[H, 3H]`; under autodiff the concatenation's backward splits the gradient back).
    pub fn qkv(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let weights = [&self.query, &self.key, &self.value].map(|l| l.weight.val());
        let biases = [&self.query, &self.key, &self.value].map(bias_of);
        kernels::dense(
            x,
            Tensor::cat(weights.to_vec(), 1),
            Tensor::cat(biases.to_vec(), 0),
            false,
        )
    }

    /// The attention context `[n, H]` of `x [n, H]` (`n = b·s` tokens) under the additive key
    /// mask `[b, s]`, heads merged, before the output projection: [`kernels::attention()`], which
    /// reads each head's queries, keys and values in place in the fused projection and runs
    /// scale, key mask, softmax and dropout of the scores in one pass.
    pub fn context(&self, x: Tensor<B, 2>, mask: Tensor<B, 2>) -> Tensor<B, 2> {
        let h = x.dims()[1];
        let scale = 1.0 / ((h / self.num_heads) as f64).sqrt();
        kernels::attention(self.qkv(x), mask, self.num_heads, scale, self.dropout.prob)
    }

    /// `x [b, s, H]`, `mask [b, 1, 1, s]` (additive) → `[b, s, H]` (before residual and LN).
    pub fn forward(&self, x: Tensor<B, 3>, mask: Tensor<B, 4>) -> Tensor<B, 3> {
        let [b, s, h] = x.dims();
        let ctx = self.context(x.reshape([b * s, h]), mask.reshape([b, s]));
        dense_of(&self.output, ctx).reshape([b, s, h])
    }
}

// ---------------------------------------------------------------------------------------------
// Layer: HF `ElectraLayer`; spec 2.1 steps 3-5 (post-LN).
// ---------------------------------------------------------------------------------------------

/// One post-LayerNorm transformer layer: attention, residual + LN, feed-forward, residual + LN.
#[derive(Module, Debug)]
pub struct ElectraLayer<B: Backend> {
    /// Self-attention (HF `attention.self` + `attention.output.dense`).
    pub attention: ElectraAttention<B>,
    /// LayerNorm after the attention residual (HF `attention.output.LayerNorm`).
    pub attention_layer_norm: LayerNorm<B>,
    /// Feed-forward input `H → FFN` (HF `intermediate.dense`).
    pub intermediate: Linear<B>,
    /// Feed-forward output `FFN → H` (HF `output.dense`).
    pub output: Linear<B>,
    /// LayerNorm after the feed-forward residual (HF `output.LayerNorm`).
    pub output_layer_norm: LayerNorm<B>,
    /// Dropout on both residual branches (`hidden_dropout_prob`).
    pub dropout: Dropout,
    /// Feed-forward activation (`hidden_act`).
    #[module(skip)]
    pub activation: Activation,
}

impl<B: Backend> ElectraLayer<B> {
    fn new(config: &ElectraConfig, device: &B::Device) -> Self {
        let (h, f, std) = (
            config.hidden_size,
            config.intermediate_size,
            config.initializer_range,
        );
        Self {
            attention: ElectraAttention::new(config, device),
            attention_layer_norm: layer_norm(h, config.layer_norm_eps, device),
            intermediate: linear_truncated(h, f, std, device),
            output: linear_truncated(f, h, std, device),
            output_layer_norm: layer_norm(h, config.layer_norm_eps, device),
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            activation: config.hidden_act,
        }
    }

    /// `x [b, s, H]`, `mask [b, 1, 1, s]` → `[b, s, H]`.
    ///
    /// Four fused operations ([`crate::kernels`]): the attention context from the fused
    /// projection; the output projection with its bias, dropout, residual and LayerNorm; the
    /// feed-forward input with its bias and activation; the feed-forward output with its bias,
    /// dropout, residual and LayerNorm. Each runs as one operation (with its own backward) on
    /// the CPU backend, and as the composed tensor operations elsewhere.
    pub fn forward(&self, x: Tensor<B, 3>, mask: Tensor<B, 4>) -> Tensor<B, 3> {
        let [b, s, h] = x.dims();
        let p = self.dropout.prob;
        let x = x.reshape([b * s, h]);
        let ctx = self.attention.context(x.clone(), mask.reshape([b, s]));
        let a = residual_norm(
            &self.attention.output,
            ctx,
            x,
            &self.attention_layer_norm,
            p,
        );
        let f = dense_activation(&self.intermediate, a.clone(), self.activation);
        residual_norm(&self.output, f, a, &self.output_layer_norm, p).reshape([b, s, h])
    }
}

// ---------------------------------------------------------------------------------------------
// Encoder tower: HF `ElectraModel.embeddings_project` + `ElectraEncoder`; spec 2.1-2.2.
// ---------------------------------------------------------------------------------------------

/// One network's own part: the optional `E → H` projection and the stack of layers. It starts
/// from the (possibly shared) embedding output.
#[derive(Module, Debug)]
pub struct ElectraEncoder<B: Backend> {
    /// `E → H` with bias, no activation; present iff `embedding_size != hidden_size`.
    pub embeddings_project: Option<Linear<B>>,
    /// The transformer layers.
    pub layers: Vec<ElectraLayer<B>>,
}

impl<B: Backend> ElectraEncoder<B> {
    /// A fresh tower for `config`.
    pub fn new(config: &ElectraConfig, device: &B::Device) -> Self {
        let embeddings_project = (config.embedding_size != config.hidden_size)
            .then(|| linear_glorot(config.embedding_size, config.hidden_size, device));
        Self {
            embeddings_project,
            layers: (0..config.num_hidden_layers)
                .map(|_| ElectraLayer::new(config, device))
                .collect(),
        }
    }

    /// `embedding_output [b, s, E]`, `mask [b, 1, 1, s]` (see [`additive_attention_mask`])
    /// → last hidden state `[b, s, H]`.
    pub fn forward(&self, embedding_output: Tensor<B, 3>, mask: Tensor<B, 4>) -> Tensor<B, 3> {
        let mut x = self.project(embedding_output);
        for layer in &self.layers {
            x = layer.forward(x, mask.clone());
        }
        x
    }

    /// Like [`Self::forward`] but returns every hidden state: index 0 is the (projected) input
    /// of the first layer, index `i` the output of layer `i` (HF `output_hidden_states`).
    pub fn forward_all(
        &self,
        embedding_output: Tensor<B, 3>,
        mask: Tensor<B, 4>,
    ) -> Vec<Tensor<B, 3>> {
        let mut states = vec![self.project(embedding_output)];
        for layer in &self.layers {
            let next = layer.forward(states[states.len() - 1].clone(), mask.clone());
            states.push(next);
        }
        states
    }

    fn project(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        match &self.embeddings_project {
            Some(project) => linear_2d(project, x),
            None => x,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Heads: HF `ElectraDiscriminatorPredictions` (spec 2.6) and
// `ElectraGeneratorPredictions` + `generator_lm_head` (spec 2.5).
// ---------------------------------------------------------------------------------------------

/// Replaced-token-detection head: `dense H → H`, activation, `dense_prediction H → 1`.
#[derive(Module, Debug)]
pub struct DiscriminatorHead<B: Backend> {
    /// `H → H`, truncated-normal init.
    pub dense: Linear<B>,
    /// `H → 1`, Glorot-uniform init (TF `dense_1`).
    pub dense_prediction: Linear<B>,
    /// `hidden_act`.
    #[module(skip)]
    pub activation: Activation,
}

impl<B: Backend> DiscriminatorHead<B> {
    /// A fresh head for a discriminator of `config`.
    pub fn new(config: &ElectraConfig, device: &B::Device) -> Self {
        let h = config.hidden_size;
        Self {
            dense: linear_truncated(h, h, config.initializer_range, device),
            dense_prediction: linear_glorot(h, 1, device),
            activation: config.hidden_act,
        }
    }

    /// `hidden [b, s, H]` → one logit per token `[b, s]` (positive = "replaced").
    pub fn forward(&self, hidden: Tensor<B, 3>) -> Tensor<B, 2> {
        let [b, s, h] = hidden.dims();
        let x = dense_activation(&self.dense, hidden.reshape([b * s, h]), self.activation);
        dense_of(&self.dense_prediction, x).reshape([b, s])
    }
}

/// Masked-LM head: `dense H_g → E`, exact GELU, LayerNorm(E), then the tied output layer
/// `h · word_embeddingsᵀ + output_bias`.
#[derive(Module, Debug)]
pub struct GeneratorHead<B: Backend> {
    /// `H_g → E`, truncated-normal init.
    pub dense: Linear<B>,
    /// LayerNorm over `E`.
    pub layer_norm: LayerNorm<B>,
    /// The output layer's own bias `[V]` (HF `generator_lm_head.bias`, TF `output_bias`), zero
    /// at init. Its weight is the word-embedding matrix, passed to [`Self::forward`].
    pub output_bias: Param<Tensor<B, 1>>,
}

impl<B: Backend> GeneratorHead<B> {
    /// A fresh head for a generator of `config` (its `embedding_size` is the shared `E`).
    pub fn new(config: &ElectraConfig, device: &B::Device) -> Self {
        Self {
            dense: linear_truncated(
                config.hidden_size,
                config.embedding_size,
                config.initializer_range,
                device,
            ),
            layer_norm: layer_norm(config.embedding_size, config.layer_norm_eps, device),
            output_bias: Param::from_tensor(Tensor::zeros([config.vocab_size], device)),
        }
    }

    /// `hidden [n, H_g]` (e.g. the states gathered at masked positions), `word_embeddings
    /// [V, E]` → logits `[n, V]`. The activation is always the exact GELU, as in HF and the
    /// reference.
    pub fn forward(&self, hidden: Tensor<B, 2>, word_embeddings: Tensor<B, 2>) -> Tensor<B, 2> {
        let x = dense_activation(&self.dense, hidden, Activation::Gelu);
        let x = self.layer_norm.forward(x);
        kernels::dense(x, word_embeddings, self.output_bias.val(), true)
    }

    /// [`Self::forward`] on every position: `hidden [b, s, H_g]` → `[b, s, V]`.
    pub fn forward_all(&self, hidden: Tensor<B, 3>, word_embeddings: Tensor<B, 2>) -> Tensor<B, 3> {
        let [b, s, h] = hidden.dims();
        let logits = self.forward(hidden.reshape([b * s, h]), word_embeddings);
        let v = logits.dims()[1];
        logits.reshape([b, s, v])
    }
}

// ---------------------------------------------------------------------------------------------
// Whole networks: HF `ElectraModel`, `ElectraForPreTraining`, `ElectraForMaskedLM`.
// ---------------------------------------------------------------------------------------------

/// What an encoder computes for one batch, for parity tests and `electra forward`.
#[derive(Debug, Clone)]
pub struct EncoderOutput<B: Backend> {
    /// The embedding block's output `[b, s, E]` (before any projection).
    pub embedding_output: Tensor<B, 3>,
    /// `num_hidden_layers + 1` states `[b, s, H]`; the last is `last_hidden_state`.
    pub hidden_states: Vec<Tensor<B, 3>>,
}

impl<B: Backend> EncoderOutput<B> {
    /// The final layer's output `[b, s, H]`.
    pub fn last_hidden_state(&self) -> Tensor<B, 3> {
        // `forward_all` always returns at least the projected input.
        self.hidden_states[self.hidden_states.len() - 1].clone()
    }
}

/// Embeddings and one tower: HF `ElectraModel` (no pooler; spec 2.1).
#[derive(Module, Debug)]
pub struct ElectraModel<B: Backend> {
    /// The embedding block.
    pub embeddings: ElectraEmbeddings<B>,
    /// Projection and layers.
    pub encoder: ElectraEncoder<B>,
}

impl<B: Backend> ElectraModel<B> {
    /// A freshly initialised model (spec 2.7). Seed the backend first for reproducibility.
    pub fn new(config: &ElectraConfig, device: &B::Device) -> Self {
        Self {
            embeddings: ElectraEmbeddings::new(config, device),
            encoder: ElectraEncoder::new(config, device),
        }
    }

    /// `input_ids`, `token_type_ids`, `attention_mask` (1 = token, 0 = padding), all `[b, s]`
    /// → last hidden state `[b, s, H]`.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3> {
        let embedded = self.embeddings.forward(input_ids, token_type_ids);
        self.encoder
            .forward(embedded, additive_attention_mask(attention_mask))
    }

    /// Every intermediate state (see [`EncoderOutput`]).
    pub fn forward_all(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> EncoderOutput<B> {
        let embedding_output = self.embeddings.forward(input_ids, token_type_ids);
        let hidden_states = self.encoder.forward_all(
            embedding_output.clone(),
            additive_attention_mask(attention_mask),
        );
        EncoderOutput {
            embedding_output,
            hidden_states,
        }
    }
}

/// The discriminator: HF `ElectraForPreTraining` (the model kept for fine-tuning).
#[derive(Module, Debug)]
pub struct ElectraForPreTraining<B: Backend> {
    /// Embeddings and tower.
    pub electra: ElectraModel<B>,
    /// Replaced-token-detection head.
    pub discriminator_predictions: DiscriminatorHead<B>,
}

impl<B: Backend> ElectraForPreTraining<B> {
    /// A freshly initialised discriminator.
    pub fn new(config: &ElectraConfig, device: &B::Device) -> Self {
        Self {
            electra: ElectraModel::new(config, device),
            discriminator_predictions: DiscriminatorHead::new(config, device),
        }
    }

    /// Inputs `[b, s]` → replaced-token logits `[b, s]`.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> Tensor<B, 2> {
        let hidden = self
            .electra
            .forward(input_ids, token_type_ids, attention_mask);
        self.discriminator_predictions.forward(hidden)
    }
}

/// The generator: HF `ElectraForMaskedLM`. Its output layer is tied to its own word embeddings.
#[derive(Module, Debug)]
pub struct ElectraForMaskedLM<B: Backend> {
    /// Embeddings and tower.
    pub electra: ElectraModel<B>,
    /// Masked-LM head (with the output bias).
    pub generator_predictions: GeneratorHead<B>,
}

impl<B: Backend> ElectraForMaskedLM<B> {
    /// A freshly initialised generator.
    pub fn new(config: &ElectraConfig, device: &B::Device) -> Self {
        Self {
            electra: ElectraModel::new(config, device),
            generator_predictions: GeneratorHead::new(config, device),
        }
    }

    /// Inputs `[b, s]` → MLM logits at every position `[b, s, V]`.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3> {
        let hidden = self
            .electra
            .forward(input_ids, token_type_ids, attention_mask);
        self.generator_predictions
            .forward_all(hidden, self.electra.embeddings.word_embeddings.weight.val())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::module::ModuleVisitor;

    /// Every parameter of `module` as (path, shape, values).
    fn parameters<M: Module<Flex>>(module: &M) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        struct Collect {
            stack: Vec<String>,
            out: Vec<(String, Vec<usize>, Vec<f32>)>,
        }
        impl ModuleVisitor<Flex> for Collect {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.stack.push(name.to_string());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.stack.pop();
            }
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Flex, D>>) {
                let t = param.val();
                let shape = t.dims().to_vec();
                let values = t.into_data().to_vec::<f32>().expect("f32");
                self.out.push((self.stack.join("."), shape, values));
            }
        }
        let mut c = Collect {
            stack: Vec::new(),
            out: Vec::new(),
        };
        module.visit(&mut c);
        c.out
    }

    fn std_dev(values: &[f32]) -> f64 {
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        (values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt()
    }

    /// Spec 2.7, tensor by tensor, on both HF-shaped networks (so every kind of parameter the
    /// pre-training model and fine-tuning use is covered): truncated normal(0, 0.02) cut at
    /// ±2σ for embeddings and the attention, feed-forward and head `dense` kernels; Glorot
    /// uniform for `embeddings_project` and `dense_prediction`; zero biases (the generator's
    /// `output_bias` included); LayerNorm gain 1, bias 0. A parameter the test cannot classify
    /// fails it, so a new one must be added here.
    #[test]
    fn initialisation_follows_the_reference() {
        let config = ElectraConfig {
            vocab_size: 2000,
            embedding_size: 64,
            hidden_size: 128,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            intermediate_size: 512,
            max_position_embeddings: 64,
            ..ElectraConfig::small()
        };
        let device = Default::default();
        Flex::seed(&device, 7);
        let mut params = parameters(&ElectraForPreTraining::<Flex>::new(&config, &device));
        params.extend(parameters(&ElectraForMaskedLM::<Flex>::new(
            &config, &device,
        )));
        let std = config.initializer_range;
        // Standard deviation of N(0, σ²) truncated at ±2σ: σ·0.8796.
        let truncated_std = std * 0.879_626;
        let (mut truncated, mut glorot, mut zeros, mut ones) = (0, 0, 0, 0);
        for (path, shape, values) in &params {
            let max_abs = values.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
            let is_glorot = path.ends_with("embeddings_project.weight")
                || path.ends_with("dense_prediction.weight");
            if path.ends_with("layer_norm.gamma") {
                assert!(values.iter().all(|&v| v == 1.0), "{path}: LayerNorm gain 1");
                ones += 1;
            } else if path.ends_with(".bias")
                || path.ends_with("layer_norm.beta")
                || path.ends_with("output_bias")
            {
                assert!(values.iter().all(|&v| v == 0.0), "{path}: zero");
                zeros += 1;
            } else if is_glorot {
                let bound = (6.0 / (shape[0] + shape[1]) as f64).sqrt();
                assert!(
                    max_abs <= bound + 1e-7,
                    "{path}: {max_abs} > Glorot bound {bound}"
                );
                assert!(max_abs > 0.5 * bound, "{path}: {max_abs} vs bound {bound}");
                if values.len() >= 1000 {
                    let s = std_dev(values);
                    let want = bound / 3f64.sqrt();
                    assert!(
                        (s / want - 1.0).abs() < 0.05,
                        "{path}: std {s}, uniform {want}"
                    );
                }
                glorot += 1;
            } else if path.ends_with(".weight") {
                assert!(
                    max_abs <= 2.0 * std + 1e-7,
                    "{path}: {max_abs} beyond the ±2σ truncation"
                );
                if values.len() >= 1000 {
                    let s = std_dev(values);
                    assert!(
                        (s / truncated_std - 1.0).abs() < 0.05,
                        "{path}: std {s}, truncated normal {truncated_std}"
                    );
                    assert!(max_abs > 1.9 * std, "{path}: max {max_abs}, not cut at 2σ");
                }
                truncated += 1;
            } else {
                panic!("unclassified parameter {path} {shape:?}");
            }
        }
        // Per network: 3 tables + 6 layer kernels + 1 head dense; projection (+ dense_prediction).
        assert_eq!((truncated, glorot), (20, 3));
        assert!(zeros > 10 && ones > 5, "{zeros} zero, {ones} unit");
    }
}
