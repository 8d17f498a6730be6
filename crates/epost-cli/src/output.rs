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
