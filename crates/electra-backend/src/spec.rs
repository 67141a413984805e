//! Device strings: what the user types after `--device`, and what each one means.

use std::fmt;
use std::str::FromStr;

use crate::BackendError;

/// A device as the user names it. Every tool of the workspace (the `electra` CLI, the
/// `throughput` benchmark, the conformance tool, xtask) parses `--device` into this type, so a
/// string means the same device everywhere:
///
/// | string | backend (cargo feature) | device |
/// |---|---|---|
/// | `flex` | `flex` | burn's pure-Rust CPU backend (all cores through rayon) |
/// | `ndarray` | `ndarray` | the ndarray CPU backend |
/// | `wgpu` | `wgpu` | the adapter wgpu ranks best (a discrete GPU if there is one) |
/// | `wgpu:N` | `wgpu` | the N-th discrete GPU (from 0) |
/// | `wgpu:cpu` | `wgpu` | a software adapter (e.g. Mesa's lavapipe) |
/// | `cuda`, `cuda:N` | `cuda` | CUDA device 0, or N |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeviceSpec {
    /// burn's pure-Rust CPU backend (feature `flex`).
    Flex,
    /// The ndarray CPU backend (feature `ndarray`).
    NdArray,
    /// wgpu's preferred adapter (feature `wgpu`).
    Wgpu,
    /// The N-th discrete GPU through wgpu.
    WgpuGpu(usize),
    /// wgpu's CPU adapter (a software Vulkan driver such as lavapipe).
    WgpuCpu,
    /// The N-th CUDA device (feature `cuda`).
    Cuda(usize),
}

/// The device strings, as listed in help texts and errors.
pub const FORMS: &str = "flex, ndarray, wgpu, wgpu:N, wgpu:cpu, cuda, cuda:N";

impl FromStr for DeviceSpec {
    type Err = BackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, index) = match s.split_once(':') {
            Some((kind, index)) => (kind, Some(index)),
            None => (s, None),
        };
        let parse_index = |index: &str| {
            index.parse::<usize>().map_err(|_| BackendError::BadIndex {
                device: s.to_string(),
                index: index.to_string(),
                kind: kind.to_string(),
            })
        };
        match (kind, index) {
            ("flex", None) => Ok(Self::Flex),
            ("ndarray", None) => Ok(Self::NdArray),
            ("wgpu", None) => Ok(Self::Wgpu),
            ("wgpu", Some("cpu")) => Ok(Self::WgpuCpu),
            ("wgpu", Some(i)) => Ok(Self::WgpuGpu(parse_index(i)?)),
            ("cuda", None) => Ok(Self::Cuda(0)),
            ("cuda", Some(i)) => Ok(Self::Cuda(parse_index(i)?)),
            _ => Err(BackendError::UnknownDevice(s.to_string())),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flex => write!(f, "flex"),
            Self::NdArray => write!(f, "ndarray"),
            Self::Wgpu => write!(f, "wgpu"),
            Self::WgpuGpu(i) => write!(f, "wgpu:{i}"),
            Self::WgpuCpu => write!(f, "wgpu:cpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl DeviceSpec {
    /// The cargo feature that compiles this device's backend in (the same name in every crate
    /// that forwards backend features: `electra-cli`, `electra-benches`, `electra-conformance`).
    pub fn feature(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::NdArray => "ndarray",
            Self::Wgpu | Self::WgpuGpu(_) | Self::WgpuCpu => "wgpu",
            Self::Cuda(_) => "cuda",
        }
    }

    /// Whether this build has the device's backend compiled in.
    pub fn is_compiled(self) -> bool {
        match self.feature() {
            "flex" => cfg!(feature = "flex"),
            "ndarray" => cfg!(feature = "ndarray"),
            "wgpu" => cfg!(feature = "wgpu"),
            _ => cfg!(feature = "cuda"),
        }
    }

    /// Whether the device computes on the host's CPU cores (flex, ndarray, and wgpu's
    /// software adapter): throughput figures then default to the CPU's peak.
    pub fn runs_on_cpu(self) -> bool {
        matches!(self, Self::Flex | Self::NdArray | Self::WgpuCpu)
    }

    /// A file-name-safe form (`wgpu:cpu` → `wgpu-cpu`), for reports named after the device.
    pub fn file_stem(self) -> String {
        self.to_string().replace(':', "-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        let cases = [
            ("flex", DeviceSpec::Flex),
            ("ndarray", DeviceSpec::NdArray),
            ("wgpu", DeviceSpec::Wgpu),
            ("wgpu:1", DeviceSpec::WgpuGpu(1)),
            ("wgpu:cpu", DeviceSpec::WgpuCpu),
            ("cuda", DeviceSpec::Cuda(0)),
            ("cuda:3", DeviceSpec::Cuda(3)),
        ];
        for (text, spec) in cases {
            assert_eq!(text.parse::<DeviceSpec>(), Ok(spec), "{text}");
            // Display gives back a form that parses to the same device.
            assert_eq!(spec.to_string().parse::<DeviceSpec>(), Ok(spec));
        }
        assert_eq!(DeviceSpec::WgpuCpu.file_stem(), "wgpu-cpu");
    }

    #[test]
    fn rejects_unknown_devices_and_bad_indices() {
        let err = "tpu".parse::<DeviceSpec>().unwrap_err().to_string();
        assert!(err.contains("flex, ndarray, wgpu"), "{err}");
        let err = "cuda:x".parse::<DeviceSpec>().unwrap_err().to_string();
        assert!(err.contains("not a device index"), "{err}");
        assert!("flex:0".parse::<DeviceSpec>().is_err());
    }

    #[test]
    fn each_device_names_its_feature() {
        assert_eq!(DeviceSpec::Flex.feature(), "flex");
        assert_eq!(DeviceSpec::WgpuCpu.feature(), "wgpu");
        assert_eq!(DeviceSpec::WgpuGpu(2).feature(), "wgpu");
        assert_eq!(DeviceSpec::Cuda(1).feature(), "cuda");
        assert!(DeviceSpec::WgpuCpu.runs_on_cpu() && !DeviceSpec::Wgpu.runs_on_cpu());
    }
}
