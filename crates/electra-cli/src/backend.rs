//! The one place where a concrete burn backend is chosen.
//!
//! `--device` is parsed into a [`DeviceSpec`] here; [`dispatch`] monomorphises a
//! [`BackendTask`] for the backend the spec names and runs it on that device. Backends are cargo
//! features of this crate; naming one that was not compiled in is an error that says which
//! feature to enable.

use std::fmt;
use std::str::FromStr;

use anyhow::bail;
use burn::tensor::backend::Backend;

/// A device as the user names it: `flex`, `ndarray`, `wgpu`, `wgpu:N`, `wgpu:cpu`, `cuda`,
/// `cuda:N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// burn's pure-Rust CPU backend (feature `flex`, the default).
    Flex,
    /// The ndarray CPU backend (feature `ndarray`).
    NdArray,
    /// wgpu's default adapter (feature `wgpu`).
    Wgpu,
    /// The N-th discrete GPU through wgpu.
    WgpuGpu(usize),
    /// wgpu's CPU adapter (a software Vulkan driver such as lavapipe).
    WgpuCpu,
    /// The N-th CUDA device (feature `cuda`).
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, index) = match s.split_once(':') {
            Some((kind, index)) => (kind, Some(index)),
            None => (s, None),
        };
        let parse_index = |index: &str| {
            index.parse::<usize>().map_err(|_| {
                format!("device `{s}`: `{index}` is not a device index (expected e.g. `{kind}:0`)")
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
            _ => Err(format!(
                "unknown device `{s}`: expected flex, ndarray, wgpu, wgpu:N, wgpu:cpu, cuda or cuda:N"
            )),
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
    /// The cargo feature that compiles this backend in.
    pub fn feature(self) -> &'static str {
        match self {
            Self::Flex => "flex",
            Self::NdArray => "ndarray",
            Self::Wgpu | Self::WgpuGpu(_) | Self::WgpuCpu => "wgpu",
            Self::Cuda(_) => "cuda",
        }
    }
}

/// Work that runs on whichever backend the user picked.
pub trait BackendTask {
    /// What the task returns.
    type Output;
    /// Runs the task on backend `B` and `device`.
    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<Self::Output>;
}

fn not_compiled<T>(spec: DeviceSpec) -> anyhow::Result<T> {
    bail!(
        "device `{spec}` needs the `{feature}` backend, which this binary was built without; \
         rebuild with `cargo run --release --features {feature} -- ...`",
        feature = spec.feature()
    )
}

/// The wgpu device a wgpu spec names.
#[cfg(feature = "wgpu")]
fn wgpu_device(spec: DeviceSpec) -> burn::backend::wgpu::WgpuDevice {
    use burn::backend::wgpu::WgpuDevice;
    match spec {
        DeviceSpec::WgpuGpu(i) => WgpuDevice::DiscreteGpu(i),
        DeviceSpec::WgpuCpu => WgpuDevice::Cpu,
        _ => WgpuDevice::DefaultDevice,
    }
}

/// Work that runs on several devices of one backend at once (data-parallel training).
pub trait MultiDeviceTask {
    /// What the task returns.
    type Output;
    /// Runs the task on backend `B` and `devices` (at least one).
    fn run<B: Backend>(self, devices: Vec<B::Device>) -> anyhow::Result<Self::Output>;
}

/// Runs `task` on the backend and device that `spec` names.
pub fn dispatch<T: BackendTask>(spec: DeviceSpec, task: T) -> anyhow::Result<T::Output> {
    struct One<T>(T);
    impl<T: BackendTask> MultiDeviceTask for One<T> {
        type Output = T::Output;
        fn run<B: Backend>(self, devices: Vec<B::Device>) -> anyhow::Result<T::Output> {
            let Some(device) = devices.into_iter().next() else {
                bail!("no device given");
            };
            self.0.run::<B>(device)
        }
    }
    dispatch_devices(&[spec], One(task))
}

/// Runs `task` on the devices `specs` names, which must all belong to one backend
/// (`cuda:0,cuda:1`; `flex,flex` gives two CPU peers on the one flex device).
pub fn dispatch_devices<T: MultiDeviceTask>(
    specs: &[DeviceSpec],
    task: T,
) -> anyhow::Result<T::Output> {
    let Some(&first) = specs.first() else {
        bail!("no device given");
    };
    if let Some(other) = specs.iter().find(|s| s.feature() != first.feature()) {
        bail!(
            "devices `{first}` and `{other}` belong to different backends; data-parallel \
             training needs devices of one backend"
        );
    }
    let names: Vec<String> = specs.iter().map(ToString::to_string).collect();
    tracing::info!(devices = %names.join(","), "selected backend");
    match first {
        DeviceSpec::Flex => {
            #[cfg(feature = "flex")]
            return task.run::<burn::backend::Flex>(vec![Default::default(); specs.len()]);
        }
        DeviceSpec::NdArray => {
            #[cfg(feature = "ndarray")]
            return task.run::<burn::backend::NdArray>(vec![Default::default(); specs.len()]);
        }
        DeviceSpec::Wgpu | DeviceSpec::WgpuGpu(_) | DeviceSpec::WgpuCpu => {
            #[cfg(feature = "wgpu")]
            {
                let devices = specs.iter().map(|spec| wgpu_device(*spec)).collect();
                return task.run::<burn::backend::Wgpu>(devices);
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
                return task.run::<burn::backend::Cuda>(devices);
            }
        }
    }
    #[allow(unreachable_code)]
    not_compiled(first)
}

/// What `spec` runs on, in words: for wgpu the adapter wgpu chose (name, type, driver), so
/// that a run can prove which driver it used. For wgpu this initialises the device, so call
/// it before the device is first used.
pub fn describe(spec: DeviceSpec) -> anyhow::Result<String> {
    match spec {
        DeviceSpec::Flex | DeviceSpec::NdArray => {
            let threads = std::thread::available_parallelism().map_or(1, usize::from);
            Ok(format!("{spec} on the CPU, {threads} hardware threads"))
        }
        DeviceSpec::Wgpu | DeviceSpec::WgpuGpu(_) | DeviceSpec::WgpuCpu => wgpu_adapter(spec),
        DeviceSpec::Cuda(index) if cfg!(feature = "cuda") => Ok(format!("CUDA device {index}")),
        DeviceSpec::Cuda(_) => not_compiled(spec),
    }
}

/// Initialises the wgpu device of `spec` and describes the adapter wgpu chose for it.
#[cfg(feature = "wgpu")]
fn wgpu_adapter(spec: DeviceSpec) -> anyhow::Result<String> {
    use burn::backend::wgpu::{RuntimeOptions, graphics, init_setup};
    // wgpu panics when no adapter of the asked type exists; report that as an error.
    let setup = std::panic::catch_unwind(|| {
        init_setup::<graphics::AutoGraphicsApi>(&wgpu_device(spec), RuntimeOptions::default())
    })
    .map_err(|_| {
        anyhow::anyhow!(
            "device `{spec}`: wgpu found no such adapter (for `wgpu:cpu` on Debian: \
             `apt-get install mesa-vulkan-drivers libvulkan1`)"
        )
    })?;
    let info = setup.adapter.get_info();
    Ok(format!(
        "adapter `{}` ({:?}) on {:?}, driver `{}` {}",
        info.name, info.device_type, setup.backend, info.driver, info.driver_info
    ))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_adapter(spec: DeviceSpec) -> anyhow::Result<String> {
    not_compiled(spec)
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
    }

    #[test]
    fn rejects_unknown_devices_and_bad_indices() {
        let err = "tpu".parse::<DeviceSpec>().unwrap_err();
        assert!(err.contains("flex, ndarray, wgpu"), "{err}");
        let err = "cuda:x".parse::<DeviceSpec>().unwrap_err();
        assert!(err.contains("not a device index"), "{err}");
        assert!("flex:0".parse::<DeviceSpec>().is_err());
    }

    struct Probe;
    impl BackendTask for Probe {
        type Output = ();
        fn run<B: Backend>(self, _device: B::Device) -> anyhow::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_backend_left_out_names_its_feature() {
        for spec in [DeviceSpec::NdArray, DeviceSpec::Wgpu, DeviceSpec::Cuda(0)] {
            let compiled = match spec.feature() {
                "ndarray" => cfg!(feature = "ndarray"),
                "wgpu" => cfg!(feature = "wgpu"),
                _ => cfg!(feature = "cuda"),
            };
            if !compiled {
                let err = dispatch(spec, Probe).unwrap_err().to_string();
                assert!(
                    err.contains(&format!("--features {}", spec.feature())),
                    "{err}"
                );
            }
        }
        #[cfg(feature = "flex")]
        dispatch(DeviceSpec::Flex, Probe).expect("flex is compiled in");
    }

    struct Count;
    impl MultiDeviceTask for Count {
        type Output = usize;
        fn run<B: Backend>(self, devices: Vec<B::Device>) -> anyhow::Result<usize> {
            Ok(devices.len())
        }
    }

    #[test]
    fn several_devices_must_share_one_backend() {
        let err = dispatch_devices(&[DeviceSpec::Flex, DeviceSpec::Cuda(1)], Count)
            .unwrap_err()
            .to_string();
        assert!(err.contains("different backends"), "{err}");
        assert!(dispatch_devices(&[], Count).is_err());
        #[cfg(feature = "flex")]
        assert_eq!(
            dispatch_devices(&[DeviceSpec::Flex, DeviceSpec::Flex], Count).expect("flex"),
            2
        );
    }
}
