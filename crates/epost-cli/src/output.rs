//! How commands speak: a line of text for people, or one JSON document
//! (`--json`) for scripts. Commands build a serde value once and print it here.

use serde::Serialize;

/// Prints `value` as pretty JSON when `json` is set, else the text `human` renders.
pub(crate) fn emit<T: Serialize>(json: bool, value: &T, human: impl FnOnce(&T) -> String) {
    if json {
        // Serialising our own plain structs cannot fail.
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(err) => eprintln!("error: cannot encode output as JSON: {err}"),
        }
    } else {
        println!("{}", human(value));
    }
}

/// A progress bar counting `len` items on a terminal; hidden when stderr
/// is piped, so scripts see only the result.
pub(crate) fn progress(len: u64, label: &'static str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    let style =
        indicatif::ProgressStyle::with_template("{msg} {pos}/{len} {per_sec} {wide_bar} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(label);
    bar
}
