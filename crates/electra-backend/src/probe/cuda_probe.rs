//! CUDA: the driver library (libcuda), the device count, and NVRTC (libnvrtc, which burn's
//! CUDA runtime needs to compile its kernels), loaded through the same cudarc that burn uses.

use std::sync::OnceLock;

use super::{quietly, working_devices};
use crate::{BackendError, DeviceSpec};

const DRIVER_FIX: &str = "install the NVIDIA driver for your GPU (Debian: `apt-get install \
    nvidia-driver`; Ubuntu: `ubuntu-drivers install`; others: \
    https://www.nvidia.com/Download/index.aspx), or put the directory that holds libcuda.so.1 on \
    LD_LIBRARY_PATH";
const NVRTC_FIX: &str = "install NVRTC from the CUDA toolkit (Debian/Ubuntu: `apt-get install \
    nvidia-cuda-toolkit`, or NVIDIA's `cuda-nvrtc-12-*` package), or put the directory that \
    holds libnvrtc.so on LD_LIBRARY_PATH";

/// What went wrong and how to fix it.
type Problem = (String, &'static str);

/// The CUDA device count, or why CUDA cannot run here (probed once per process).
fn devices() -> &'static Result<usize, Problem> {
    static PROBED: OnceLock<Result<usize, Problem>> = OnceLock::new();
    PROBED.get_or_init(|| {
        let count = match quietly(|| {
            cudarc::driver::result::init()?;
            cudarc::driver::CudaContext::device_count()
        }) {
            Err(_) => {
                return Err((
                    "the NVIDIA CUDA driver library (libcuda.so / libcuda.so.1) cannot be loaded"
                        .into(),
                    DRIVER_FIX,
                ));
            }
            Ok(Err(e)) => {
                return Err((
                    format!("the CUDA driver is installed but failed: {e:?}"),
                    DRIVER_FIX,
                ));
            }
            Ok(Ok(count)) => usize::try_from(count).unwrap_or(0),
        };
        match quietly(|| cudarc::nvrtc::compile_ptx("extern \"C\" __global__ void probe() {}")) {
            Err(_) => Err((
                "the CUDA runtime compiler library NVRTC (libnvrtc.so) cannot be loaded".into(),
                NVRTC_FIX,
            )),
            Ok(Err(e)) => Err((format!("NVRTC cannot compile a kernel: {e:?}"), NVRTC_FIX)),
            Ok(Ok(_)) => Ok(count),
        }
    })
}

/// Checks that CUDA device `index` exists and can compile kernels.
pub(super) fn open(spec: DeviceSpec, index: usize) -> Result<String, BackendError> {
    match devices() {
        Ok(count) if index < *count => Ok(format!("CUDA device {index} of {count}")),
        Ok(count) => Err(BackendError::unavailable(
            spec,
            format!("the CUDA driver reports {count} device(s), so there is no device {index}"),
            "pick an index below the device count (`nvidia-smi -L` lists them)",
            working_devices(),
        )),
        Err((problem, fix)) => Err(BackendError::unavailable(
            spec,
            problem.clone(),
            *fix,
            working_devices(),
        )),
    }
}

/// `cuda:0` ... `cuda:N-1` when the driver and NVRTC load.
pub(super) fn working() -> Vec<String> {
    match devices() {
        Ok(count) => (0..*count).map(|i| format!("cuda:{i}")).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a machine without the NVIDIA driver (CI's, this project's build machine) `cuda` is an
    /// error naming libcuda, its fix and the devices that work; with a driver, device 0 opens
    /// when the driver reports one.
    #[test]
    fn cuda_without_a_driver_is_an_error_that_names_libcuda() {
        match devices() {
            Err(_) => {
                let err = open(DeviceSpec::Cuda(0), 0).unwrap_err().to_string();
                assert!(err.contains("device `cuda:0` cannot be used"), "{err}");
                assert!(err.contains("libcuda") || err.contains("libnvrtc"), "{err}");
                assert!(err.contains("to fix: install"), "{err}");
                assert!(err.contains("devices that work here"), "{err}");
                assert!(!working().iter().any(|d| d.starts_with("cuda")));
            }
            Ok(count) => {
                assert_eq!(open(DeviceSpec::Cuda(0), 0).is_ok(), *count > 0);
                assert!(open(DeviceSpec::Cuda(*count), *count).is_err());
            }
        }
    }
}
