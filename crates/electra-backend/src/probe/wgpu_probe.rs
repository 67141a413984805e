//! wgpu: the adapters of the graphics API burn uses (Vulkan on Linux and Windows, Metal on
//! macOS), listed before burn asks for one; then the device is opened once per process.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use burn::backend::wgpu::graphics::{AutoGraphicsApi, GraphicsApi};
use burn::backend::wgpu::{RuntimeOptions, WgpuDevice, init_setup};

use super::{quietly, working_devices};
use crate::{BackendError, DeviceSpec};

/// The wgpu device a wgpu spec names.
pub(crate) fn wgpu_device(spec: DeviceSpec) -> WgpuDevice {
    match spec {
        DeviceSpec::WgpuGpu(i) => WgpuDevice::DiscreteGpu(i),
        DeviceSpec::WgpuCpu => WgpuDevice::Cpu,
        _ => WgpuDevice::DefaultDevice,
    }
}

/// Polls a future that native wgpu completes at once (adapter enumeration).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::yield_now();
    }
}

/// An adapter as wgpu lists it: its name and type.
#[derive(Clone, Debug)]
struct Seen {
    name: String,
    device_type: wgpu::DeviceType,
}

/// The adapters wgpu sees for burn's graphics API (none when the loader or every driver is
/// missing).
fn adapters() -> Vec<Seen> {
    let backend = AutoGraphicsApi::backend();
    quietly(|| {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: backend.into(),
            // No validation or debug messenger: a missing driver is reported by us, once,
            // not as loader errors in the log.
            flags: wgpu::InstanceFlags::empty(),
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        block_on(instance.enumerate_adapters(backend.into()))
            .iter()
            .map(|adapter| {
                let info = adapter.get_info();
                Seen {
                    name: info.name,
                    device_type: info.device_type,
                }
            })
            .collect()
    })
    .unwrap_or_default()
}

/// The `--device` strings that `adapters` can serve, as burn selects them (an adapter of type
/// `Other` stands in for a missing discrete GPU or CPU adapter, as in cubecl).
fn served(adapters: &[Seen]) -> Vec<String> {
    use wgpu::DeviceType;
    let count = |t: DeviceType| adapters.iter().filter(|a| a.device_type == t).count();
    let other = count(DeviceType::Other);
    let mut served = Vec::new();
    if !adapters.is_empty() {
        served.push("wgpu".to_string());
    }
    if count(DeviceType::Cpu).max(other) > 0 {
        served.push("wgpu:cpu".to_string());
    }
    served.extend((0..count(DeviceType::DiscreteGpu).max(other)).map(|i| format!("wgpu:{i}")));
    served
}

/// wgpu's part of [`working_devices`].
pub(super) fn working() -> Vec<String> {
    served(&adapters())
}

/// What `spec` needs, and how to install it, when no adapter serves it.
fn unavailable(spec: DeviceSpec, adapters: &[Seen]) -> BackendError {
    let api = format!("{:?}", AutoGraphicsApi::backend());
    let problem = if adapters.is_empty() {
        format!(
            "wgpu found no {api} adapter at all: the {api} loader (libvulkan.so.1 on Linux) or \
             every {api} driver is missing"
        )
    } else {
        let names: Vec<String> = adapters
            .iter()
            .map(|a| format!("`{}` ({:?})", a.name, a.device_type))
            .collect();
        let wanted = match spec {
            DeviceSpec::WgpuCpu => "a software (CPU) adapter".to_string(),
            DeviceSpec::WgpuGpu(i) => format!("discrete GPU number {i} (counting from 0)"),
            _ => "an adapter".to_string(),
        };
        format!(
            "wgpu found no {wanted} among its {api} adapters: {}",
            names.join(", ")
        )
    };
    let fix = match spec {
        DeviceSpec::WgpuCpu => {
            "install Mesa's software Vulkan driver lavapipe and the Vulkan loader (Debian/Ubuntu: \
             `apt-get install mesa-vulkan-drivers libvulkan1`); `vulkaninfo --summary` lists \
             what Vulkan sees"
        }
        _ => {
            "install your GPU's Vulkan driver and the Vulkan loader (Debian/Ubuntu: `apt-get \
             install libvulkan1` plus `mesa-vulkan-drivers` for AMD/Intel, or the NVIDIA \
             driver); `vulkaninfo --summary` lists what Vulkan sees"
        }
    };
    BackendError::unavailable(spec, problem, fix, working_devices())
}

/// Opens the wgpu device of `spec` (once per process) and describes its adapter.
pub(super) fn open(spec: DeviceSpec) -> Result<String, BackendError> {
    static OPENED: Mutex<Option<HashMap<DeviceSpec, String>>> = Mutex::new(None);
    let mut opened = OPENED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let opened = opened.get_or_insert_with(HashMap::new);
    if let Some(description) = opened.get(&spec) {
        return Ok(description.clone());
    }
    let found = adapters();
    if !served(&found).contains(&spec.to_string()) {
        return Err(unavailable(spec, &found));
    }
    // wgpu could still refuse (a driver that lists an adapter but cannot create a device).
    let setup =
        quietly(|| init_setup::<AutoGraphicsApi>(&wgpu_device(spec), RuntimeOptions::default()))
            .map_err(|_| unavailable(spec, &found))?;
    let info = setup.adapter.get_info();
    let description = format!(
        "adapter `{}` ({:?}) on {:?}, driver `{}` {}",
        info.name, info.device_type, setup.backend, info.driver, info.driver_info
    );
    opened.insert(spec, description.clone());
    Ok(description)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(name: &str, device_type: wgpu::DeviceType) -> Seen {
        Seen {
            name: name.into(),
            device_type,
        }
    }

    #[test]
    fn device_strings_follow_the_adapters() {
        use wgpu::DeviceType::{Cpu, DiscreteGpu, IntegratedGpu};
        assert!(served(&[]).is_empty());
        assert_eq!(served(&[adapter("llvmpipe", Cpu)]), ["wgpu", "wgpu:cpu"]);
        assert_eq!(
            served(&[adapter("a", DiscreteGpu), adapter("b", DiscreteGpu)]),
            ["wgpu", "wgpu:0", "wgpu:1"]
        );
        assert_eq!(served(&[adapter("igpu", IntegratedGpu)]), ["wgpu"]);
    }

    #[test]
    fn no_adapter_names_the_loader_and_lavapipe() {
        let err = unavailable(DeviceSpec::WgpuCpu, &[]).to_string();
        assert!(err.contains("device `wgpu:cpu` cannot be used"), "{err}");
        assert!(err.contains("libvulkan.so.1"), "{err}");
        assert!(
            err.contains("apt-get install mesa-vulkan-drivers libvulkan1"),
            "{err}"
        );
        let err = unavailable(
            DeviceSpec::WgpuGpu(1),
            &[adapter("llvmpipe", wgpu::DeviceType::Cpu)],
        );
        assert!(err.to_string().contains("`llvmpipe` (Cpu)"), "{err}");
    }
}
