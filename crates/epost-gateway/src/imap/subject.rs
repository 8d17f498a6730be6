//! The base subject of RFC 5256 section 2.1, which SORT SUBJECT and both
//! THREAD algorithms compare: the subject without `Re:`, `Fwd:`,
//! `[list]` leaders, `(fwd)` trailers and `[fwd: ...]` wrappers, and
//! whether any of those said it was a reply or forward (THREAD=REFERENCES
//! merges replies under the original).
//!
//! Comparison keys are case-mapped with [`collation_key`] (upper case, as
//! Dovecot's i;unicode-casemap orders: `[` and `_` after letters).

/// A subject reduced to its base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BaseSubject {
    pub(crate) text: String,
    /// A reply or forward marker was taken off.
    pub(crate) reply_or_forward: bool,
}

/// The base subject of a decoded (RFC 2047) subject.
pub(crate) fn base_subject(decoded: &str) -> BaseSubject {
    // (1) Tabs and line breaks are spaces; runs of spaces are one.
    let mut text = String::with_capacity(decoded.len());
    for c in decoded.chars() {
        let c = if matches!(c, '\t' | '\r' | '\n') { ' ' } else { c };
        if c == ' ' && text.ends_with(' ') {
            continue;
        }
        text.push(c);
    }
    let mut reply = false;
    let mut text = text.as_str();
    loop {
        // (2) Trailers: "(fwd)" and white space, repeatedly.
        loop {
            if let Some(rest) = text.strip_suffix(' ') {
                text = rest;
            } else if text.len() >= 5
                && text.is_char_boundary(text.len() - 5)
                && text[text.len() - 5..].eq_ignore_ascii_case("(fwd)")
            {
                text = &text[..text.len() - 5];
                reply = true;
            } else {
                break;
            }
        }
        // (3)-(5) Leaders and blobs, until neither matches.
        loop {
            let mut changed = false;
            while let Some((rest, refwd)) = leader(text) {
                text = rest;
                reply |= refwd;
                changed = true;
            }
            if let Some(rest) = blob(text)
                && !rest.is_empty()
            {
                text = rest;
                changed = true;
            }
            if !changed {
                break;
            }
        }
        // (6) "[fwd: ...]" around everything: unwrap and start over.
        let wrapped = text.len() >= 6
            && text.is_char_boundary(5)
            && text[..5].eq_ignore_ascii_case("[fwd:")
            && text.ends_with(']');
        if !wrapped {
            break;
        }
        text = &text[5..text.len() - 1];
        reply = true;
    }
    BaseSubject { text: text.to_owned(), reply_or_forward: reply }
}

/// The key subjects (and display names) are compared by.
pub(crate) fn collation_key(text: &str) -> String {
    text.chars().flat_map(char::to_uppercase).collect()
}

/// `subj-leader = (*subj-blob subj-refwd) / WSP`: what is left after one,
/// and whether it was a `re`/`fw`/`fwd`.
fn leader(text: &str) -> Option<(&str, bool)> {
    if let Some(rest) = text.strip_prefix(' ') {
        return Some((rest, false));
    }
    let mut rest = text;
    while let Some(after) = blob(rest) {
        rest = after;
    }
    refwd(rest).map(|after| (after, true))
}

/// `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`.
fn refwd(text: &str) -> Option<&str> {
    let lower = |n: usize| text.get(..n).map(str::to_ascii_lowercase);
    let mut rest = if lower(3).as_deref() == Some("fwd") {
        &text[3..]
    } else if matches!(lower(2).as_deref(), Some("re" | "fw")) {
        &text[2..]
    } else {
        return None;
    };
    rest = rest.trim_start_matches(' ');
    if let Some(after) = blob(rest) {
        rest = after;
    }
    rest.strip_prefix(':')
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP`: what is left after one.
fn blob(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('[')?;
    let close = inner.find([']', '['])?;
    if inner.as_bytes()[close] != b']' {
        return None;
    }
    Some(inner[close + 1..].trim_start_matches(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects() {
        let cases = [
            ("a", "a", false),
            ("Re: a", "a", true),
            ("RE:  a  ", "a", true),
            ("Re: Re: Fwd: a", "a", true),
            ("[list] Re: a", "a", true),
            ("Re [2]: a", "a", true),
            ("fw: a (fwd)", "a", true),
            ("a (fwd)", "a", true),
            ("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "b", true),
            ("b (a)", "b (a)", false),
            ("Re: [FWD: c]", "c", true),
            ("[xyz]", "[xyz]", false),
            ("[xyz] hello", "hello", false),
            ("", "", false),
            (" ", "", false),
            ("Ad: Re: Ad: Re: Ad: x", "Ad: Re: Ad: Re: Ad: x", false),
            ("re: [fwd: [fwd: re: [fwd: babylon]]]", "babylon", true),
            ("Re:\tlong\r\n folded", "long folded", true),
            ("Refund", "Refund", false),
            ("Fwd a", "Fwd a", false),
            ("Grüße [x]", "Grüße [x]", false),
            ("Re: Grüße", "Grüße", true),
            ("[a][b] c", "c", false),
        ];
        for (subject, text, reply) in cases {
            let base = base_subject(subject);
            assert_eq!(
                base,
                BaseSubject { text: text.into(), reply_or_forward: reply },
                "{subject:?}"
            );
        }
    }

    #[test]
    fn collation_is_upper_case() {
        let mut keys = ["b", "_", "[xyz]", "a", "C", "ad: x"].map(collation_key);
        keys.sort();
        assert_eq!(keys, ["A", "AD: X", "B", "C", "[XYZ]", "_"]);
    }
}
