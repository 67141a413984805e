//! Progress display shared by the commands that read a corpus.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A spinner that shows the bytes of text read and the rate, with `message` after it. Advance
/// it with `set_position(bytes)`.
pub fn text_spinner(message: String) -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {decimal_bytes} of text ({decimal_bytes_per_sec}) {msg}",
    )?);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar.set_message(message);
    Ok(bar)
}
