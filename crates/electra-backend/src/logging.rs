//! The binaries' log output: `tracing` lines on standard error, filtered by `RUST_LOG` (or the
//! binary's default), in colour only where a person reads them. Written to a file or a pipe
//! (`electra pretrain > log 2>&1`), the lines carry no ANSI escape codes; `NO_COLOR` set to
//! anything but the empty string turns colour off on a terminal too (<https://no-color.org>),
//! as command-line tools of the Rust ecosystem do.

use std::ffi::OsStr;
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Whether log lines are coloured: only on a terminal, and not when `NO_COLOR` holds a
/// non-empty value.
pub fn colour(stream_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stream_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// Installs the global `tracing` subscriber: standard error, `RUST_LOG` or else
/// `default_filter`, colour as [`colour`] decides for standard error.
pub fn init(default_filter: &str) {
    let ansi = colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_a_non_empty_no_color() {
        assert!(colour(true, None));
        assert!(
            colour(true, Some(OsStr::new(""))),
            "an empty NO_COLOR is unset"
        );
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(
            !colour(false, None),
            "a file or a pipe gets no escape codes"
        );
        assert!(!colour(false, Some(OsStr::new("1"))));
    }
}
