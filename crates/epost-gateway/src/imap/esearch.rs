//! ESEARCH (RFC 4731) and its relatives: the RETURN options a SEARCH or
//! SORT may carry (MIN, MAX, ALL, COUNT; SAVE of RFC 5182; CONTEXT, UPDATE
//! and PARTIAL of RFC 5267), what the result says for them, and the
//! `* ESEARCH` responses (answers, and the ADDTO/REMOVEFROM updates of a
//! live context), which imap-types has no type for, so they are encoded
//! here.
//!
//! Deciding is pure: [`Esearch::answer`] takes the found numbers in result
//! order (ascending for SEARCH, sort order for SORT) and the options, and
//! [`ReturnOptions::saved`] says what RETURN (SAVE) keeps.

use crate::imap::partial::{BadPartial, Partial};

/// What a RETURN (...) list asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReturnOptions {
    pub(crate) min: bool,
    pub(crate) max: bool,
    pub(crate) all: bool,
    pub(crate) count: bool,
    /// Keep the result for `$` (RFC 5182).
    pub(crate) save: bool,
    /// A window of the result by position (RFC 5267 section 4.4, RFC
    /// 9394: from its end too).
    pub(crate) partial: Option<Partial>,
    /// Keep the search as a context and tell the client how its result
    /// changes (RFC 5267 section 4.3).
    pub(crate) update: bool,
}

/// Why a RETURN list is refused (BAD).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReturnError {
    #[error("unknown RETURN option {0}")]
    Unknown(String),
    #[error(transparent)]
    BadPartial(#[from] BadPartial),
    #[error("PARTIAL and ALL cannot be combined")]
    PartialWithAll,
    #[error("{0} is given twice")]
    Twice(&'static str),
}

impl ReturnOptions {
    /// The options named in a RETURN list, its items as the client wrote
    /// them. An empty list means ALL (RFC 4731 section 3.1).
    pub(crate) fn parse(items: &[&[u8]]) -> Result<Self, ReturnError> {
        let mut options = ReturnOptions::default();
        let mut items = items.iter();
        while let Some(item) = items.next() {
            match item.to_ascii_uppercase().as_slice() {
                b"MIN" => options.min = true,
                b"MAX" => options.max = true,
                b"ALL" => options.all = true,
                b"COUNT" => options.count = true,
                b"SAVE" => options.save = true,
                // A hint that the result will be asked again (RFC 5267
                // section 4.2): nothing to do with it.
                b"CONTEXT" => {}
                b"UPDATE" if options.update => return Err(ReturnError::Twice("UPDATE")),
                b"UPDATE" => options.update = true,
                b"PARTIAL" if options.partial.is_some() => {
                    return Err(ReturnError::Twice("PARTIAL"));
                }
                b"PARTIAL" => {
                    let range = items.next().ok_or(BadPartial)?;
                    options.partial = Some(Partial::parse(range)?);
                }
                other => {
                    return Err(ReturnError::Unknown(String::from_utf8_lossy(other).into_owned()));
                }
            }
        }
        if options.partial.is_some() && options.all {
            return Err(ReturnError::PartialWithAll);
        }
        // UPDATE alone asks for no result, only for its changes (as
        // Dovecot reads it); CONTEXT alone is RETURN ().
        let any = options.min || options.max || options.count || options.save || options.update;
        if !any && options.partial.is_none() {
            options.all = true;
        }
        Ok(options)
    }

    /// What RETURN (SAVE) keeps of `found` (in result order): the first
    /// and/or last alone when MIN and/or MAX are all that was asked
    /// besides SAVE, otherwise everything (RFC 5182 section 2.4).
    pub(crate) fn saved(&self, found: &[u32]) -> Vec<u32> {
        let only_ends = !self.all && !self.count && self.partial.is_none();
        if !only_ends || !(self.min || self.max) {
            return found.to_vec();
        }
        let mut kept = Vec::new();
        if self.min
            && let Some(&first) = found.first()
        {
            kept.push(first);
        }
        if self.max
            && let Some(&last) = found.last()
            && kept.last() != Some(&last)
        {
            kept.push(last);
        }
        kept
    }

    /// Whether only SAVE was asked: then no ESEARCH response is sent
    /// (RFC 5182 section 2.4).
    pub(crate) fn silent(&self) -> bool {
        self.save
            && !self.min
            && !self.max
            && !self.all
            && !self.count
            && !self.update
            && self.partial.is_none()
    }
}

/// An `* ESEARCH` response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Esearch {
    /// The command's tag (the correlator).
    pub(crate) tag: String,
    pub(crate) uid: bool,
    pub(crate) min: Option<u32>,
    pub(crate) max: Option<u32>,
    /// ALL as a sequence set; `None` when not asked or nothing was found.
    pub(crate) all: Option<String>,
    pub(crate) count: Option<usize>,
    /// PARTIAL: the range asked and the set found there (`None`: NIL).
    pub(crate) partial: Option<(Partial, Option<String>)>,
    /// The highest MODSEQ of what is returned, when the search used the
    /// MODSEQ key (RFC 7162 section 3.1.5); set by the caller.
    pub(crate) modseq: Option<u64>,
}

impl Esearch {
    /// The answer to `options` for `found` (numbers in result order).
    /// `sorted`: the order is a sort order, and ALL keeps it.
    pub(crate) fn answer(
        tag: &str,
        uid: bool,
        found: &[u32],
        options: &ReturnOptions,
        sorted: bool,
    ) -> Self {
        let set = |numbers: &[u32]| {
            if sorted { sequence_in_order(numbers) } else { sequence_set(numbers) }
        };
        let partial = options.partial.map(|partial| {
            let part = partial.window(found);
            (partial, (!part.is_empty()).then(|| set(part)))
        });
        Esearch {
            tag: tag.to_owned(),
            uid,
            min: if options.min { found.first().copied() } else { None },
            max: if options.max { found.last().copied() } else { None },
            all: (options.all && !found.is_empty()).then(|| set(found)),
            count: options.count.then_some(found.len()),
            partial,
            modseq: None,
        }
    }

    /// The response line without its CRLF.
    pub(crate) fn encode(&self) -> Vec<u8> {
        // A tag is ASTRING-CHARs without `"` or `\`: safe to quote as is.
        let mut line = format!("* ESEARCH (TAG \"{}\")", self.tag);
        if self.uid {
            line.push_str(" UID");
        }
        if let Some(min) = self.min {
            line.push_str(&format!(" MIN {min}"));
        }
        if let Some(max) = self.max {
            line.push_str(&format!(" MAX {max}"));
        }
        if let Some(all) = &self.all {
            line.push_str(&format!(" ALL {all}"));
        }
        if let Some((partial, set)) = &self.partial {
            let set = set.as_deref().unwrap_or("NIL");
            line.push_str(&format!(" PARTIAL ({} {set})", partial.echo()));
        }
        if let Some(count) = self.count {
            line.push_str(&format!(" COUNT {count}"));
        }
        if let Some(modseq) = self.modseq {
            line.push_str(&format!(" MODSEQ {modseq}"));
        }
        line.into_bytes()
    }
}

/// An `* ESEARCH` telling how a live context's result changed (RFC 5267
/// section 4.3): the removals, then the additions, each a list of
/// (position, numbers in result order), to be applied in order. Position
/// 0 says "no position" (a SEARCH result is kept in ascending order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EsearchUpdate {
    pub(crate) tag: String,
    pub(crate) uid: bool,
    pub(crate) removed: Vec<(u32, Vec<u32>)>,
    pub(crate) added: Vec<(u32, Vec<u32>)>,
}

impl EsearchUpdate {
    /// The response line without its CRLF, or `None` when nothing changed.
    pub(crate) fn encode(&self) -> Option<Vec<u8>> {
        if self.removed.is_empty() && self.added.is_empty() {
            return None;
        }
        let mut line = format!("* ESEARCH (TAG \"{}\")", self.tag);
        if self.uid {
            line.push_str(" UID");
        }
        for (name, items) in [("REMOVEFROM", &self.removed), ("ADDTO", &self.added)] {
            if items.is_empty() {
                continue;
            }
            let pairs: Vec<String> = items
                .iter()
                .map(|(position, numbers)| {
                    // A SEARCH context's numbers ascend; a SORT context's
                    // keep their order.
                    let set = if *position == 0 {
                        sequence_set(numbers)
                    } else {
                        sequence_in_order(numbers)
                    };
                    format!("{position} {set}")
                })
                .collect();
            line.push_str(&format!(" {name} ({})", pairs.join(" ")));
        }
        Some(line.into_bytes())
    }
}

/// Ascending numbers as a compact sequence set (`1:3,5`); the numbers are
/// sorted and deduplicated first. Empty for none.
pub(crate) fn sequence_set(numbers: &[u32]) -> String {
    let mut sorted = numbers.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    sequence_in_order(&sorted)
}

/// Numbers as a sequence set in their own order: only runs that ascend by
/// one become ranges (RFC 5267 section 3.2: `3,2,1` must not be `3:1`).
pub(crate) fn sequence_in_order(numbers: &[u32]) -> String {
    let mut out = String::new();
    let mut at = 0;
    while at < numbers.len() {
        let start = numbers[at];
        let mut end = at;
        while end + 1 < numbers.len() && numbers[end + 1] == numbers[end].wrapping_add(1) {
            end += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if end > at {
            out.push_str(&format!("{start}:{}", numbers[end]));
        } else {
            out.push_str(&start.to_string());
        }
        at = end + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(items: &str) -> Result<ReturnOptions, ReturnError> {
        let items: Vec<&[u8]> = items.split_whitespace().map(str::as_bytes).collect();
        ReturnOptions::parse(&items)
    }

    fn line(found: &[u32], items: &str, uid: bool) -> String {
        let esearch = Esearch::answer("a1", uid, found, &options(items).unwrap(), false);
        String::from_utf8(esearch.encode()).unwrap()
    }

    #[test]
    fn return_options_parse() {
        let all = ReturnOptions { all: true, ..Default::default() };
        assert_eq!(options(""), Ok(all.clone()));
        assert_eq!(options("all"), Ok(all));
        let min_count = ReturnOptions { min: true, count: true, ..Default::default() };
        assert_eq!(options("MIN count"), Ok(min_count));
        let save = ReturnOptions { save: true, ..Default::default() };
        assert_eq!(options("SAVE"), Ok(save.clone()));
        assert!(save.silent());
        let partial = options("PARTIAL 4:2").unwrap();
        assert_eq!(partial.partial, Partial::parse(b"2:4").ok());
        assert!(!partial.all);
        for bad in ["PARTIAL 1", "PARTIAL 1:*", "PARTIAL *:1", "PARTIAL 0:3", "PARTIAL"] {
            assert_eq!(options(bad), Err(ReturnError::BadPartial(BadPartial)), "{bad}");
        }
        assert_eq!(options("PARTIAL 1:2 ALL"), Err(ReturnError::PartialWithAll));
        assert_eq!(options("PARTIAL 1:2 PARTIAL 3:4"), Err(ReturnError::Twice("PARTIAL")));
        assert_eq!(options("FUZZY"), Err(ReturnError::Unknown("FUZZY".into())));
        // UPDATE alone asks for nothing but the changes; CONTEXT is a hint.
        let update = ReturnOptions { update: true, ..Default::default() };
        assert_eq!(options("UPDATE"), Ok(update));
        assert_eq!(options("update update"), Err(ReturnError::Twice("UPDATE")));
        let all = options("UPDATE ALL").unwrap();
        assert!(all.update && all.all);
        assert_eq!(options("CONTEXT"), options(""));
        assert!(!options("SAVE UPDATE").unwrap().silent());
    }

    #[test]
    fn update_lines() {
        let line = |uid: bool, removed: &[(u32, &[u32])], added: &[(u32, &[u32])]| {
            let list = |items: &[(u32, &[u32])]| -> Vec<(u32, Vec<u32>)> {
                items.iter().map(|(p, n)| (*p, n.to_vec())).collect()
            };
            let update = EsearchUpdate {
                tag: "B01".into(),
                uid,
                removed: list(removed),
                added: list(added),
            };
            update.encode().map(|l| String::from_utf8(l).unwrap())
        };
        assert_eq!(line(false, &[], &[]), None);
        assert_eq!(
            line(true, &[], &[(0, &[32769, 32768])]).unwrap(),
            "* ESEARCH (TAG \"B01\") UID ADDTO (0 32768:32769)"
        );
        assert_eq!(
            line(false, &[(0, &[5, 1, 3, 4])], &[(0, &[2])]).unwrap(),
            "* ESEARCH (TAG \"B01\") REMOVEFROM (0 1,3:5) ADDTO (0 2)"
        );
        // Sorted: several pairs, each set in its own order.
        assert_eq!(
            line(true, &[(2, &[7])], &[(1, &[2733]), (1, &[2731, 2732]), (4, &[9, 8])]).unwrap(),
            "* ESEARCH (TAG \"B01\") UID REMOVEFROM (2 7) ADDTO (1 2733 1 2731:2732 4 9,8)"
        );
    }

    #[test]
    fn esearch_lines() {
        let found = [1, 2, 3, 5, 6, 7];
        let cases: &[(&[u32], &str, bool, &str)] = &[
            (&found, "", false, "* ESEARCH (TAG \"a1\") ALL 1:3,5:7"),
            (&found, "MIN", false, "* ESEARCH (TAG \"a1\") MIN 1"),
            (&found, "MAX", true, "* ESEARCH (TAG \"a1\") UID MAX 7"),
            (&found, "COUNT", false, "* ESEARCH (TAG \"a1\") COUNT 6"),
            (
                &found,
                "COUNT MAX ALL MIN",
                false,
                "* ESEARCH (TAG \"a1\") MIN 1 MAX 7 ALL 1:3,5:7 COUNT 6",
            ),
            (&[], "", false, "* ESEARCH (TAG \"a1\")"),
            (&[], "MIN MAX", true, "* ESEARCH (TAG \"a1\") UID"),
            (&[], "COUNT", false, "* ESEARCH (TAG \"a1\") COUNT 0"),
            (&[1, 2, 4, 5], "PARTIAL 1:3", false, "* ESEARCH (TAG \"a1\") PARTIAL (1:3 1:2,4)"),
            (&[1, 2, 4, 5], "PARTIAL 2:10", false, "* ESEARCH (TAG \"a1\") PARTIAL (2:10 2,4:5)"),
            (
                &[1, 2, 4, 5],
                "COUNT PARTIAL 1:2 MAX",
                false,
                "* ESEARCH (TAG \"a1\") MAX 5 PARTIAL (1:2 1:2) COUNT 4",
            ),
            (&[1, 2, 3, 4, 5], "PARTIAL 6:6", false, "* ESEARCH (TAG \"a1\") PARTIAL (6:6 NIL)"),
            // From the end (RFC 9394).
            (
                &[1, 2, 4, 5],
                "PARTIAL -1:-2",
                true,
                "* ESEARCH (TAG \"a1\") UID PARTIAL (-1:-2 4:5)",
            ),
            (&[1, 2, 4, 5], "PARTIAL -3:-2", false, "* ESEARCH (TAG \"a1\") PARTIAL (-2:-3 2,4)"),
            (&[1, 2], "PARTIAL -3:-9", false, "* ESEARCH (TAG \"a1\") PARTIAL (-3:-9 NIL)"),
        ];
        for (found, items, uid, want) in cases {
            assert_eq!(line(found, items, *uid), *want, "{items} of {found:?}");
        }
    }

    #[test]
    fn sorted_results_keep_their_order() {
        let all = ReturnOptions { all: true, min: true, max: true, ..Default::default() };
        let esearch = Esearch::answer("s", false, &[5, 3, 4, 1, 2], &all, true);
        assert_eq!(esearch.encode(), b"* ESEARCH (TAG \"s\") MIN 5 MAX 2 ALL 5,3:4,1:2");
        assert_eq!(sequence_in_order(&[3, 2, 1]), "3,2,1");
    }

    #[test]
    fn sequence_sets_compress_runs() {
        assert_eq!(sequence_set(&[]), "");
        assert_eq!(sequence_set(&[7]), "7");
        assert_eq!(sequence_set(&[4, 1, 2, 3, 9, 3]), "1:4,9");
        assert_eq!(
            sequence_set(&[u32::MAX - 1, u32::MAX]),
            format!("{}:{}", u32::MAX - 1, u32::MAX)
        );
    }

    #[test]
    fn save_keeps_what_was_asked() {
        let found = [2, 4, 9];
        let cases: &[(&str, &[u32])] = &[
            ("SAVE", &[2, 4, 9]),
            ("SAVE MIN", &[2]),
            ("SAVE MAX", &[9]),
            ("SAVE MIN MAX", &[2, 9]),
            ("SAVE MIN COUNT", &[2, 4, 9]),
            ("SAVE ALL", &[2, 4, 9]),
        ];
        for (items, want) in cases {
            assert_eq!(options(items).unwrap().saved(&found), *want, "{items}");
        }
        assert_eq!(options("SAVE MIN MAX").unwrap().saved(&[3]), vec![3]);
        assert!(options("SAVE MIN MAX").unwrap().saved(&[]).is_empty());
    }
}
