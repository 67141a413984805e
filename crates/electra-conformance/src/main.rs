//! # electra-conformance: does a backend compute what flex and PyTorch compute?
//!
//! A development tool, run through `cargo xtask conformance --device D` (which builds it with
//! the cargo feature of D's backend; CI runs it for `flex` and for `wgpu:cpu` on lavapipe).
//! The same [`measure::Measure`] task runs twice in one process: on flex (the reference, which
//! also draws the initial training weights and the generator samples) and on device D. The
//! results are compared with each other and with the HF/PyTorch fixtures ([`report`]) under
//! the backend's tolerances ([`tolerance`]); the tool prints a Markdown table, writes the rows
//! and timings as JSON, and exits non-zero if any quantity is out of bounds. What is compared
//! and why each tolerance is what it is: docs/backends.md.
//!
//! Devices are [`electra_backend::DeviceSpec`]s and run through [`electra_backend::dispatch`],
//! like the `electra` binary's; this crate forwards the same backend features.

mod fixtures;
mod measure;
mod report;
mod run;
mod tolerance;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    electra_backend::logging::init("info");
    let args = run::ConformanceArgs::parse();
    match run::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The message and its causes, never a backtrace: these are findings, not bugs.
            eprintln!("Error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
