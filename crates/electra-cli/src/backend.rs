//! The CLI's side of backend selection. `--device` parses into an
//! [`electra_backend::DeviceSpec`] (one meaning for every tool of the workspace; the table is
//! on that type). Commands implement [`BackendTask`] (or [`MultiDeviceTask`] for `--devices`)
//! with `anyhow` errors; [`dispatch`] runs them through [`electra_backend::dispatch`], which
//! picks the backend type, checks that the device's driver is there (a missing one is an error
//! naming the library, its fix and the devices that work, not a panic) and, for a backend left
//! out of the build, names the feature to enable. Backends are cargo features of this crate,
//! forwarded to electra-backend.

use burn::tensor::backend::Backend;

pub use electra_backend::DeviceSpec;

/// Work that runs on whichever backend the user picked.
pub trait BackendTask {
    /// What the task returns.
    type Output;
    /// Runs the task on backend `B` and `device`.
    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<Self::Output>;
}

/// Work that runs on several devices of one backend at once (data-parallel training).
pub trait MultiDeviceTask {
    /// What the task returns.
    type Output;
    /// Runs the task on backend `B` and `devices` (at least one).
    fn run<B: Backend>(self, devices: Vec<B::Device>) -> anyhow::Result<Self::Output>;
}

/// A CLI task as an electra-backend task (whose errors travel in its output).
struct Lift<T>(T);

impl<T: BackendTask> electra_backend::BackendTask for Lift<T> {
    type Output = anyhow::Result<T::Output>;
    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        self.0.run::<B>(device)
    }
}

impl<T: MultiDeviceTask> electra_backend::MultiDeviceTask for Lift<T> {
    type Output = anyhow::Result<T::Output>;
    fn run<B: Backend>(self, devices: Vec<B::Device>) -> Self::Output {
        self.0.run::<B>(devices)
    }
}

/// Runs `task` on the backend and device that `spec` names.
pub fn dispatch<T: BackendTask>(spec: DeviceSpec, task: T) -> anyhow::Result<T::Output> {
    electra_backend::dispatch(spec, Lift(task))?
}

/// Runs `task` on the devices `specs` names, which must all belong to one backend
/// (`cuda:0,cuda:1`; `flex,flex` gives two CPU peers on the one flex device).
pub fn dispatch_devices<T: MultiDeviceTask>(
    specs: &[DeviceSpec],
    task: T,
) -> anyhow::Result<T::Output> {
    electra_backend::dispatch_devices(specs, Lift(task))?
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fails;
    impl BackendTask for Fails {
        type Output = ();
        fn run<B: Backend>(self, _device: B::Device) -> anyhow::Result<()> {
            anyhow::bail!("the task's own error")
        }
    }

    #[test]
    fn task_errors_and_backend_errors_both_reach_the_caller() {
        #[cfg(feature = "flex")]
        {
            let err = dispatch(DeviceSpec::Flex, Fails).unwrap_err();
            assert_eq!(err.to_string(), "the task's own error");
        }
        if !cfg!(feature = "cuda") {
            let err = dispatch(DeviceSpec::Cuda(0), Fails).unwrap_err();
            assert!(err.to_string().contains("--features cuda"), "{err}");
        }
    }
}
