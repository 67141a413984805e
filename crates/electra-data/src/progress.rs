//! Progress of the long data commands (building shards, training a vocabulary): a spinner
//! with the bytes of text read and the rate. indicatif draws it only on a terminal.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A spinner that shows the bytes of text read and the rate, with `message` after it. Advance
/// it with `inc(bytes)`.
pub fn text_spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {decimal_bytes} of text ({decimal_bytes_per_sec}) {msg}",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar.set_message(message);
    bar
}
