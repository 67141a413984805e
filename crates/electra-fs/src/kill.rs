//! Test-only fault injection: named points where a test can have the process killed.

/// The environment variable naming the [`kill_point`] at which the process kills itself.
pub const KILL_AT_ENV: &str = "ELECTRA_TEST_KILL_AT";

/// In debug builds, when the environment variable [`KILL_AT_ENV`] equals `name`, the process
/// sends itself SIGKILL (exactly what `kill -9` does: no destructor, no flush, no handler
/// runs), falling back to `abort` where `kill` is unavailable. Release builds compile this to
/// nothing. Writers call it between the steps of a multi-file write, so a test can check what
/// a crash at each step leaves behind (see electra-cli's `pretrain` tests).
pub fn kill_point(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var_os(KILL_AT_ENV).is_some_and(|v| v == name) {
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status();
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}
