//! CUDA: the driver library (libcuda), the device count, and NVRTC (libnvrtc, which burn's
//! CUDA runtime needs to compile its kernels), loaded through the same cudarc that burn uses.

use std::sync::OnceLock;

use super::{quietly, working_devices};
use crate::cuda_problem::CudaProblem;
use crate::{BackendError, DeviceSpec};

/// The CUDA device count, or why CUDA cannot run here (probed once per process).
fn devices() -> &'static Result<usize, CudaProblem> {
    static PROBED: OnceLock<Result<usize, CudaProblem>> = OnceLock::new();
    PROBED.get_or_init(|| {
        let count = match quietly(|| {
            cudarc::driver::result::init()?;
            cudarc::driver::CudaContext::device_count()
        }) {
            Err(_) => return Err(CudaProblem::NoDriver),
            Ok(Err(e)) => return Err(CudaProblem::DriverFailed(format!("{e:?}"))),
            Ok(Ok(count)) => usize::try_from(count).unwrap_or(0),
        };
        match quietly(|| cudarc::nvrtc::compile_ptx("extern \"C\" __global__ void probe() {}")) {
            Err(_) => Err(CudaProblem::NoNvrtc),
            Ok(Err(e)) => Err(CudaProblem::NvrtcFailed(format!("{e:?}"))),
            Ok(Ok(_)) => Ok(count),
        }
    })
}

/// Checks that CUDA device `index` exists and can compile kernels.
pub(super) fn open(spec: DeviceSpec, index: usize) -> Result<String, BackendError> {
    match devices() {
        Ok(count) if index < *count => Ok(format!("CUDA device {index} of {count}")),
        Ok(count) => {
            Err(CudaProblem::NoSuchDevice { count: *count }.error(spec, working_devices()))
        }
        Err(problem) => Err(problem.error(spec, working_devices())),
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
