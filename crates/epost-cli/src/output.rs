//! How commands speak: a line of text for people, or one JSON document
//! (`--json`) for scripts. Commands build a serde value once and print it here.

use std::io::Write as _;

use serde::Serialize;

/// Prints `value` as pretty JSON when `json` is set, else the text `human`
/// renders. Fails only if standard output does (a reader that went away:
/// see [`is_closed_pipe`]).
pub(crate) fn emit<T: Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce(&T) -> String,
) -> std::io::Result<()> {
    let text = if json {
        // Serialising our own plain structs cannot fail.
        match serde_json::to_string_pretty(value) {
            Ok(text) => text,
            Err(err) => {
                eprintln!("error: cannot encode output as JSON: {err}");
                return Ok(());
            }
        }
    } else {
        human(value)
    };
    line(&text)
}

/// Writes `text` and a newline to standard output, flushed.
pub(crate) fn line(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

/// Whether `err` comes from writing to a pipe whose reader went away
/// (`epost inbox | head -1`): then the program ends quietly, as Unix
/// tools do, instead of reporting an error.
pub(crate) fn is_closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The one-line report of `err`: what we were doing, then why it failed,
/// each cause once. A library error that already prints its cause in its
/// own message (`cannot open the store in P: <cause>`) would otherwise show
/// that cause twice when the chain is walked.
pub(crate) fn report(err: &anyhow::Error) -> String {
    join_causes(err.chain().map(ToString::to_string))
}

/// Joins messages outermost first with `": "`, leaving out a message the
/// text so far already ends with.
fn join_causes(messages: impl IntoIterator<Item = String>) -> String {
    let mut text = String::new();
    for message in messages {
        if text.is_empty() {
            text = message;
        } else if !text.ends_with(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
    }
    text
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

#[cfg(test)]
mod tests {
    use super::join_causes;

    #[test]
    fn causes_are_joined_once_each() {
        let table: &[(&[&str], &str)] = &[
            (&["a"], "a"),
            (&["a", "b"], "a: b"),
            (&["cannot open x: locked", "locked"], "cannot open x: locked"),
            (&["start: open x: locked", "open x: locked", "locked"], "start: open x: locked"),
            (&["read x", "io", "io"], "read x: io"),
            (&["x: b", "a"], "x: b: a"),
        ];
        for (chain, want) in table {
            let got = join_causes(chain.iter().map(|m| m.to_string()));
            assert_eq!(&got, want, "{chain:?}");
        }
    }
}
