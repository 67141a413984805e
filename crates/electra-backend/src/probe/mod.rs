//! Is a device usable here? Checked before burn touches it.
//!
//! burn's GPU runtimes load their drivers lazily and panic, often in a worker thread, when one
//! is missing (cudarc: "Unable to dynamically load the cuda shared library"; cubecl-wgpu: "No
//! possible adapter available for backend"). [`open`] asks first: for wgpu it lists the
//! adapters wgpu sees and only then opens the device; for CUDA it loads the driver library and
//! NVRTC through cudarc and counts the devices. A failure is a
//! [`BackendError::Unavailable`] that names the missing library or adapter, how to install it,
//! and the `--device` values that do work on this machine ([`working_devices`]).

#[cfg(feature = "cuda")]
mod cuda_probe;
#[cfg(feature = "wgpu")]
mod wgpu_probe;

#[cfg(feature = "wgpu")]
pub(crate) use wgpu_probe::wgpu_device;

use crate::{BackendError, DeviceSpec};

/// Checks that `spec` can run on this machine and opens it where opening is separate from
/// first use (wgpu: the adapter is chosen and the device created, once per process). Returns
/// what it runs on, in words: for wgpu the adapter (name, type, driver), so that a run can
/// prove which driver it used.
pub fn open(spec: DeviceSpec) -> Result<String, BackendError> {
    if !spec.is_compiled() {
        return Err(BackendError::NotCompiled { device: spec });
    }
    match spec {
        DeviceSpec::Flex | DeviceSpec::NdArray => {
            let threads = std::thread::available_parallelism().map_or(1, usize::from);
            Ok(format!("{spec} on the CPU, {threads} hardware threads"))
        }
        #[cfg(feature = "wgpu")]
        DeviceSpec::Wgpu | DeviceSpec::WgpuGpu(_) | DeviceSpec::WgpuCpu => wgpu_probe::open(spec),
        #[cfg(feature = "cuda")]
        DeviceSpec::Cuda(index) => cuda_probe::open(spec, index),
        #[allow(unreachable_patterns)]
        _ => Err(BackendError::NotCompiled { device: spec }),
    }
}

/// The `--device` values that work in this build on this machine: the CPU backends compiled
/// in, wgpu's adapters (`wgpu`, `wgpu:cpu`, `wgpu:N`) and the CUDA devices that the driver
/// reports. Probing wgpu lists adapters without opening one.
pub fn working_devices() -> Vec<String> {
    #[allow(unused_mut)]
    let mut working = Vec::new();
    if cfg!(feature = "flex") {
        working.push("flex".to_string());
    }
    if cfg!(feature = "ndarray") {
        working.push("ndarray".to_string());
    }
    #[cfg(feature = "wgpu")]
    working.extend(wgpu_probe::working());
    #[cfg(feature = "cuda")]
    working.extend(cuda_probe::working());
    working
}

/// Runs `f`, turning a panic into `Err(message)` without printing it: the probes call into
/// driver loaders that report a missing library by panicking.
#[allow(dead_code)] // unused when no GPU backend is compiled in
fn quietly<R>(f: impl FnOnce() -> R + std::panic::UnwindSafe) -> Result<R, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(f);
    std::panic::set_hook(hook);
    result.map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_backends_compiled_in_always_work() {
        let working = working_devices();
        assert_eq!(
            working.contains(&"flex".to_string()),
            cfg!(feature = "flex")
        );
        #[cfg(feature = "flex")]
        assert!(open(DeviceSpec::Flex).expect("flex").contains("on the CPU"));
        if !cfg!(feature = "cuda") {
            assert_eq!(
                open(DeviceSpec::Cuda(0)),
                Err(BackendError::NotCompiled {
                    device: DeviceSpec::Cuda(0)
                })
            );
        }
    }

    #[test]
    fn quietly_turns_a_panic_into_its_message() {
        assert_eq!(quietly(|| 3), Ok(3));
        let err = quietly(|| -> u8 { panic!("no driver {}", 7) }).unwrap_err();
        assert_eq!(err, "no driver 7");
    }
}
