//! Running generic code on the backend a [`DeviceSpec`] names.

use burn::tensor::backend::Backend;

use crate::{BackendError, DeviceSpec, probe};

/// Work that runs on whichever backend the user picked. The task's own errors travel inside
/// `Output` (e.g. `anyhow::Result<T>` in a binary).
pub trait BackendTask {
    /// What the task returns.
    type Output;
    /// Runs the task on backend `B` and `device`.
    fn run<B: Backend>(self, device: B::Device) -> Self::Output;
}

/// Work that runs on several devices of one backend at once (data-parallel training).
pub trait MultiDeviceTask {
    /// What the task returns.
    type Output;
    /// Runs the task on backend `B` and `devices` (at least one).
    fn run<B: Backend>(self, devices: Vec<B::Device>) -> Self::Output;
}

/// Runs `task` on the backend and device that `spec` names, after [`probe::open`] has checked
/// that the device can run here (a missing driver is an error, not a panic).
pub fn dispatch<T: BackendTask>(spec: DeviceSpec, task: T) -> Result<T::Output, BackendError> {
    struct One<T>(T);
    impl<T: BackendTask> MultiDeviceTask for One<T> {
        type Output = Result<T::Output, BackendError>;
        fn run<B: Backend>(self, devices: Vec<B::Device>) -> Self::Output {
            let device = devices.into_iter().next().ok_or(BackendError::NoDevice)?;
            Ok(self.0.run::<B>(device))
        }
    }
    dispatch_devices(&[spec], One(task))?
}

/// Runs `task` on the devices `specs` names, which must all belong to one backend
/// (`cuda:0,cuda:1`; `flex,flex` gives two CPU peers on the one flex device). Every device is
/// probed first.
pub fn dispatch_devices<T: MultiDeviceTask>(
    specs: &[DeviceSpec],
    task: T,
) -> Result<T::Output, BackendError> {
    let Some(&first) = specs.first() else {
        return Err(BackendError::NoDevice);
    };
    if let Some(&other) = specs.iter().find(|s| s.feature() != first.feature()) {
        return Err(BackendError::MixedBackends { first, other });
    }
    for spec in specs {
        probe::open(*spec)?;
    }
    let names: Vec<String> = specs.iter().map(ToString::to_string).collect();
    tracing::info!(devices = %names.join(","), "selected backend");
    match first {
        DeviceSpec::Flex => {
            #[cfg(feature = "flex")]
            return Ok(task.run::<burn::backend::Flex>(vec![Default::default(); specs.len()]));
        }
        DeviceSpec::NdArray => {
            #[cfg(feature = "ndarray")]
            return Ok(task.run::<burn::backend::NdArray>(vec![Default::default(); specs.len()]));
        }
        DeviceSpec::Wgpu | DeviceSpec::WgpuGpu(_) | DeviceSpec::WgpuCpu => {
            #[cfg(feature = "wgpu")]
            {
                let devices = specs.iter().map(|spec| probe::wgpu_device(*spec)).collect();
                return Ok(task.run::<burn::backend::Wgpu>(devices));
            }
        }
        DeviceSpec::Cuda(_) => {
            #[cfg(feature = "cuda")]
            {
                use burn::backend::cuda::CudaDevice;
                let devices = specs
                    .iter()
                    .map(|spec| match spec {
                        DeviceSpec::Cuda(index) => CudaDevice { index: *index },
                        _ => CudaDevice { index: 0 },
                    })
                    .collect();
                return Ok(task.run::<burn::backend::Cuda>(devices));
            }
        }
    }
    #[allow(unreachable_code)]
    Err(BackendError::NotCompiled { device: first })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Probe;
    impl BackendTask for Probe {
        type Output = &'static str;
        fn run<B: Backend>(self, _device: B::Device) -> &'static str {
            "ran"
        }
    }

    #[test]
    fn a_backend_left_out_names_its_feature() {
        for spec in [DeviceSpec::NdArray, DeviceSpec::Wgpu, DeviceSpec::Cuda(0)] {
            if !spec.is_compiled() {
                let err = dispatch(spec, Probe).unwrap_err();
                assert_eq!(err, BackendError::NotCompiled { device: spec });
                assert!(
                    err.to_string()
                        .contains(&format!("--features {}", spec.feature()))
                );
            }
        }
        #[cfg(feature = "flex")]
        assert_eq!(dispatch(DeviceSpec::Flex, Probe), Ok("ran"));
    }

    /// A task whose own errors travel in its output (the `electra` binary's commands).
    struct Fails;
    impl BackendTask for Fails {
        type Output = Result<(), String>;
        fn run<B: Backend>(self, _device: B::Device) -> Result<(), String> {
            Err("the task's own error".to_string())
        }
    }

    #[test]
    fn task_errors_and_backend_errors_both_reach_the_caller() {
        #[cfg(feature = "flex")]
        assert_eq!(
            dispatch(DeviceSpec::Flex, Fails),
            Ok(Err("the task's own error".to_string()))
        );
        if !cfg!(feature = "cuda") {
            let err = dispatch(DeviceSpec::Cuda(0), Fails).expect_err("not compiled");
            assert!(err.to_string().contains("--features cuda"), "{err}");
        }
    }

    struct Count;
    impl MultiDeviceTask for Count {
        type Output = usize;
        fn run<B: Backend>(self, devices: Vec<B::Device>) -> usize {
            devices.len()
        }
    }

    #[test]
    fn several_devices_must_share_one_backend() {
        let err = dispatch_devices(&[DeviceSpec::Flex, DeviceSpec::Cuda(1)], Count).unwrap_err();
        assert!(err.to_string().contains("different backends"), "{err}");
        assert_eq!(dispatch_devices(&[], Count), Err(BackendError::NoDevice));
        #[cfg(feature = "flex")]
        assert_eq!(
            dispatch_devices(&[DeviceSpec::Flex, DeviceSpec::Flex], Count),
            Ok(2)
        );
    }
}
