//! What can go wrong between a device string and a running backend.

use std::fmt;

use crate::DeviceSpec;

/// An error of this crate: a device string that names nothing, a backend left out of the build,
/// or a device whose driver is missing on this machine. All are user errors (exit status 1 in
/// the CLI), never panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// A string that is no device.
    #[error("unknown device `{0}`: expected one of {forms}", forms = crate::FORMS)]
    UnknownDevice(String),
    /// `kind:index` where `index` is no number.
    #[error("device `{device}`: `{index}` is not a device index (expected e.g. `{kind}:0`)")]
    BadIndex {
        /// The whole string.
        device: String,
        /// The part after the colon.
        index: String,
        /// The part before it.
        kind: String,
    },
    /// A device whose backend feature this build lacks.
    #[error(
        "device `{device}` needs the `{feature}` backend, which this binary was built without; \
         rebuild with `--features {feature}` (for the `electra` binary: `cargo run --release \
         --features {feature} -- ...`)",
        feature = device.feature()
    )]
    NotCompiled {
        /// The device asked for.
        device: DeviceSpec,
    },
    /// Several devices of different backends (data-parallel training needs one backend).
    #[error(
        "devices `{first}` and `{other}` belong to different backends; data-parallel training \
         needs devices of one backend"
    )]
    MixedBackends {
        /// The first device.
        first: DeviceSpec,
        /// The first device of another backend.
        other: DeviceSpec,
    },
    /// An empty device list.
    #[error("no device given")]
    NoDevice,
    /// A compiled-in backend that cannot run here (missing driver, no such adapter or GPU).
    #[error("{0}")]
    Unavailable(Box<Unavailable>),
}

/// Why a compiled-in device cannot be used on this machine, how to fix it, and what can be
/// used instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// The device asked for.
    pub device: DeviceSpec,
    /// What is missing, naming the library or adapter.
    pub problem: String,
    /// How to install or configure what is missing.
    pub fix: String,
    /// The `--device` values that work in this build on this machine.
    pub working: Vec<String>,
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let working = if self.working.is_empty() {
            "none".to_string()
        } else {
            self.working.join(", ")
        };
        write!(
            f,
            "device `{}` cannot be used on this machine: {}\n  to fix: {}\n  devices that work \
             here (this build, this machine): {working}",
            self.device, self.problem, self.fix
        )
    }
}

impl BackendError {
    /// The error for `device` that cannot run here.
    pub fn unavailable(
        device: DeviceSpec,
        problem: impl Into<String>,
        fix: impl Into<String>,
        working: Vec<String>,
    ) -> Self {
        Self::Unavailable(Box::new(Unavailable {
            device,
            problem: problem.into(),
            fix: fix.into(),
            working,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_driver_names_library_fix_and_alternatives() {
        let err = BackendError::unavailable(
            DeviceSpec::Cuda(0),
            "the NVIDIA driver library libcuda.so cannot be loaded",
            "install the NVIDIA driver",
            vec!["flex".into(), "wgpu:cpu".into()],
        )
        .to_string();
        assert!(err.starts_with("device `cuda:0` cannot be used"), "{err}");
        assert!(err.contains("libcuda.so"), "{err}");
        assert!(err.contains("to fix: install the NVIDIA driver"), "{err}");
        assert!(err.ends_with(": flex, wgpu:cpu"), "{err}");
        let none = BackendError::unavailable(DeviceSpec::WgpuCpu, "x", "y", vec![]).to_string();
        assert!(none.ends_with(": none"), "{none}");
    }

    #[test]
    fn a_backend_left_out_names_its_feature() {
        let err = BackendError::NotCompiled {
            device: DeviceSpec::WgpuCpu,
        }
        .to_string();
        assert!(err.contains("--features wgpu"), "{err}");
    }
}
