//! How close each backend must come to flex and to the PyTorch oracle, and why.
//!
//! Every comparison is a max absolute difference over all elements, in the units of the
//! quantity. The same tolerance holds a quantity against flex and against the oracle (PyTorch
//! CPU, f32), since flex itself agrees with PyTorch to ~2e-6 on activations.

use crate::backend::DeviceSpec;

/// The tolerances one backend is held to, per kind of quantity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerances {
    /// Activations of the HF fixture models (embeddings, hidden states, logits; values of
    /// order 1) and the objective's logits on the PyTorch loss fixture.
    pub activations: f64,
    /// Losses of one forward pass (the MLM loss is ~10, the total `mlm + 50·rtd` ~45).
    pub losses: f64,
    /// The global L2 norm of the gradients before clipping (of order 10-100 on the tiny
    /// config, dominated by the 50-weighted RTD loss).
    pub grad_norm: f64,
    /// Every parameter after each optimizer step (values of order 0.02-1; one Adam step moves
    /// a parameter by up to ~3·lr = 3e-3).
    pub parameters: f64,
    /// Sampling: largest gap between the empirical frequency of each token and its softmax
    /// probability over [`SAMPLING_ROWS`](super::measure::SAMPLING_ROWS) draws (a statistical
    /// bound, the same on every backend: about 6 standard deviations).
    pub sampling_frequency: f64,
}

/// flex, the reference. Against PyTorch: both sides are f32 on a CPU with different
/// summation orders; the largest activation difference seen is ~2e-6 (the same 1e-5 bound as
/// `electra-model`'s `hf_parity` test) and losses agree to ~1e-7 relative. Against itself
/// (the reference run and the conformance run are both flex) every difference is exactly 0,
/// so the bounds on training quantities only matter for the PyTorch columns.
pub const FLEX: Tolerances = Tolerances {
    activations: 1e-5,
    losses: 1e-4,
    grad_norm: 1e-4,
    parameters: 1e-6,
    sampling_frequency: 0.02,
};

/// ndarray: another f32 CPU backend with its own matmul (matrixmultiply) and reduction
/// order; the same rounding-level differences as flex against PyTorch, so the same bounds
/// as a GPU, which are loose enough for any f32 summation order.
pub const NDARRAY: Tolerances = GPU_F32;

/// wgpu (Vulkan). Measured on lavapipe (Mesa's CPU Vulkan driver, LLVM-compiled SPIR-V) in
/// `docs/backends.md`. Kernels reduce in a different order than flex (tiled matmuls, tree
/// reductions in workgroups), and Vulkan allows `exp`, `log`, `sqrt` and division a few ULP
/// of error; WGSL has no `erf`, so GELU goes through a polynomial approximation (~1e-7).
/// Across two post-LN layers these add up to ~1e-6 on activations. Training differences grow
/// with steps because Adam's update `m/(√v+ε)` divides by `√v ≈ 0.03·|g|`: a gradient that
/// differs by δ in its last bits moves the parameter by up to `lr·δ/(√(1−β2)|g|+ε)`, largest
/// for the tiniest gradients.
pub const WGPU: Tolerances = GPU_F32;

/// CUDA, provisional until a GPU run records its numbers (`docs/backends.md`): the bounds of
/// an f32 GPU backend. cubecl's CUDA matmuls stay in f32 (no TF32 unless asked for), so the
/// differences are of the same kind as wgpu's: reduction order and fast transcendental
/// functions.
pub const CUDA: Tolerances = GPU_F32;

/// The bounds of an f32 backend that reduces in its own order (GPUs, other CPU backends):
/// ~50x the differences measured on lavapipe, and ~100x below what a real mistake (a wrong
/// mask, LayerNorm epsilon, GELU form, skipped bias correction, undecayed weight) moves.
const GPU_F32: Tolerances = Tolerances {
    activations: 1e-4,
    losses: 1e-3,
    grad_norm: 1e-2,
    parameters: 1e-4,
    sampling_frequency: 0.02,
};

impl Tolerances {
    /// The tolerances for the backend of `spec`.
    pub fn for_device(spec: DeviceSpec) -> Self {
        match spec {
            DeviceSpec::Flex => FLEX,
            DeviceSpec::NdArray => NDARRAY,
            DeviceSpec::Wgpu | DeviceSpec::WgpuGpu(_) | DeviceSpec::WgpuCpu => WGPU,
            DeviceSpec::Cuda(_) => CUDA,
        }
    }
}
