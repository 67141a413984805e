//! What CUDA can lack on a machine, in words: kept out of the `cuda` feature so that the
//! messages are tested in every build (CI builds no CUDA tests).

#![cfg_attr(not(feature = "cuda"), allow(dead_code))]

use crate::{BackendError, DeviceSpec};

const DRIVER_FIX: &str = "install the NVIDIA driver for your GPU (Debian: `apt-get install \
    nvidia-driver`; Ubuntu: `ubuntu-drivers install`; others: \
    https://www.nvidia.com/Download/index.aspx), or put the directory that holds libcuda.so.1 on \
    LD_LIBRARY_PATH";
const NVRTC_FIX: &str = "install NVRTC from the CUDA toolkit (Debian/Ubuntu: `apt-get install \
    nvidia-cuda-toolkit`, or NVIDIA's `cuda-nvrtc-12-*` package), or put the directory that \
    holds libnvrtc.so on LD_LIBRARY_PATH";

/// Why CUDA cannot run here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CudaProblem {
    /// libcuda cannot be loaded.
    NoDriver,
    /// libcuda loads but `cuInit` or the device count fails.
    DriverFailed(String),
    /// libnvrtc cannot be loaded.
    NoNvrtc,
    /// NVRTC loads but cannot compile an empty kernel.
    NvrtcFailed(String),
    /// Fewer devices than the index asked for.
    NoSuchDevice {
        /// Devices the driver reports.
        count: usize,
    },
}

impl CudaProblem {
    /// The error for `device`, with the devices that work here.
    pub(crate) fn error(&self, device: DeviceSpec, working: Vec<String>) -> BackendError {
        let (problem, fix) = match self {
            Self::NoDriver => (
                "the NVIDIA CUDA driver library (libcuda.so / libcuda.so.1) cannot be loaded"
                    .to_string(),
                DRIVER_FIX,
            ),
            Self::DriverFailed(e) => (
                format!("the CUDA driver is installed but failed: {e}"),
                DRIVER_FIX,
            ),
            Self::NoNvrtc => (
                "the CUDA runtime compiler library NVRTC (libnvrtc.so) cannot be loaded".into(),
                NVRTC_FIX,
            ),
            Self::NvrtcFailed(e) => (format!("NVRTC cannot compile a kernel: {e}"), NVRTC_FIX),
            Self::NoSuchDevice { count } => (
                format!("the CUDA driver reports {count} device(s), so there is no `{device}`"),
                "pick an index below the device count (`nvidia-smi -L` lists the devices)",
            ),
        };
        BackendError::unavailable(device, problem, fix, working)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message a machine without the NVIDIA driver gets for `--device cuda` (CI's case).
    #[test]
    fn no_driver_names_libcuda_its_install_and_the_devices_that_work() {
        let err = CudaProblem::NoDriver
            .error(DeviceSpec::Cuda(0), vec!["flex".into(), "wgpu:cpu".into()])
            .to_string();
        assert!(
            err.starts_with("device `cuda:0` cannot be used on this machine"),
            "{err}"
        );
        assert!(err.contains("libcuda.so.1"), "{err}");
        assert!(err.contains("apt-get install nvidia-driver"), "{err}");
        assert!(err.contains("LD_LIBRARY_PATH"), "{err}");
        assert!(
            err.ends_with("devices that work here (this build, this machine): flex, wgpu:cpu"),
            "{err}"
        );
        let err = CudaProblem::NoNvrtc
            .error(DeviceSpec::Cuda(0), vec![])
            .to_string();
        assert!(
            err.contains("libnvrtc.so") && err.contains("nvidia-cuda-toolkit"),
            "{err}"
        );
        let err = CudaProblem::NoSuchDevice { count: 1 }
            .error(DeviceSpec::Cuda(3), vec!["cuda:0".into()])
            .to_string();
        assert!(
            err.contains("reports 1 device(s), so there is no `cuda:3`"),
            "{err}"
        );
    }
}
