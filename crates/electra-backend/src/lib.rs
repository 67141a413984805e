//! # electra-backend: the one place that names burn backends
//!
//! Everything else in electra-rs is generic over `B: Backend`; this crate is where a concrete
//! backend is chosen, once, at the edge of a program. A user names a device with a string
//! (`--device flex`, `wgpu:cpu`, `cuda:1`, ...); [`DeviceSpec`] parses it and gives it one
//! meaning for every tool of the workspace (the `electra` CLI, the `throughput` benchmark, the
//! conformance tool and xtask): the table is on [`DeviceSpec`]. [`dispatch`] then runs a
//! generic task ([`BackendTask`], or [`MultiDeviceTask`] for data-parallel training) on the
//! backend type the device belongs to, after [`probe::open`] has checked that the device can
//! run on this machine: a missing GPU driver is a [`BackendError::Unavailable`] naming the
//! library, how to install it and which devices work here, not a panic in a worker thread.
//!
//! Backends are cargo features of this crate (`flex`, `ndarray`, `wgpu`, `cuda`); the binaries
//! forward features of the same names. A device whose backend was left out of the build is
//! [`BackendError::NotCompiled`], naming the feature. Without any feature the crate is only
//! [`DeviceSpec`] and its errors, without burn: xtask uses it that way to know which feature a
//! device needs without compiling a backend.
//!
//! Adding a backend touches this crate (a [`DeviceSpec`] variant with its parsing, display and
//! feature; a feature in `Cargo.toml`; an arm in [`dispatch_devices`]; a probe if its driver
//! loads at run time), one feature line in each crate that forwards backend features
//! (`electra-cli`, `electra-benches`, `electra-conformance`), a tolerance row in the
//! conformance tool, and CI (`.ci/run`, `xtask check-features`).
//!
//! The other thing every binary sets up once at its edge is its log output: [`logging`]
//! (feature `logging`) colours log lines only on a terminal and honours `NO_COLOR`.

mod cuda_problem;
mod error;
mod spec;

#[cfg(feature = "dispatch")]
mod dispatch;
#[cfg(feature = "logging")]
pub mod logging;
#[cfg(feature = "dispatch")]
pub mod probe;

pub use error::{BackendError, Unavailable};
pub use spec::{DeviceSpec, FORMS};

#[cfg(feature = "dispatch")]
pub use dispatch::{BackendTask, MultiDeviceTask, dispatch, dispatch_devices};
#[cfg(feature = "dispatch")]
pub use probe::{open as describe, working_devices};
