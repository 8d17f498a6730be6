//! PARTIAL ranges (RFC 5267 section 4.4, widened by RFC 9394): a window
//! of a result or a message set by position, `low:high` counted from the
//! first (1 is the first) or `-low:-high` counted from the last (-1 is
//! the last). SEARCH and SORT take one as a RETURN option, FETCH as a
//! modifier. Reading and windowing are pure.

use std::num::NonZeroU32;

/// A window by position, its ends in order (`low <= high`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Partial {
    /// Positions `low ..= high` from the first.
    First(NonZeroU32, NonZeroU32),
    /// Positions `low ..= high` from the last.
    Last(NonZeroU32, NonZeroU32),
}

/// Why a range is refused (the command is BAD).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("PARTIAL needs a range of two nonzero numbers, low:high or -low:-high")]
pub(crate) struct BadPartial;

impl Partial {
    /// `a:b` or `-a:-b`, both nonzero, in either order (`4:2` is `2:4`,
    /// as Dovecot reads it; `-3:-1` is `-1:-3`).
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, BadPartial> {
        let text = std::str::from_utf8(bytes).map_err(|_| BadPartial)?;
        let (a, b) = text.split_once(':').ok_or(BadPartial)?;
        let number = |s: &str| {
            if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse::<u32>().ok().and_then(NonZeroU32::new)
        };
        let (last, a, b) = match (a.strip_prefix('-'), b.strip_prefix('-')) {
            (Some(a), Some(b)) => (true, a, b),
            (None, None) => (false, a, b),
            _ => return Err(BadPartial),
        };
        let (a, b) = (number(a).ok_or(BadPartial)?, number(b).ok_or(BadPartial)?);
        let (low, high) = (a.min(b), a.max(b));
        Ok(if last { Partial::Last(low, high) } else { Partial::First(low, high) })
    }

    /// The part of `items` (in their order) the window covers; empty when
    /// it lies past their end.
    pub(crate) fn window<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let length = items.len();
        let (from, to) = match *self {
            Partial::First(low, high) => {
                ((low.get() as usize - 1).min(length), (high.get() as usize).min(length))
            }
            Partial::Last(low, high) => (
                length.saturating_sub(high.get() as usize),
                length.saturating_sub(low.get() as usize - 1),
            ),
        };
        &items[from..to.max(from)]
    }

    /// The range as an answer names it.
    pub(crate) fn echo(&self) -> String {
        match self {
            Partial::First(low, high) => format!("{low}:{high}"),
            Partial::Last(low, high) => format!("-{low}:-{high}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_in_either_order() {
        let n = |v: u32| NonZeroU32::new(v).unwrap();
        let cases: &[(&str, Option<Partial>)] = &[
            ("2:4", Some(Partial::First(n(2), n(4)))),
            ("4:2", Some(Partial::First(n(2), n(4)))),
            ("-1:-100", Some(Partial::Last(n(1), n(100)))),
            ("-100:-1", Some(Partial::Last(n(1), n(100)))),
            ("1", None),
            ("1:*", None),
            ("*:1", None),
            ("0:3", None),
            ("-1:2", None),
            ("1:-2", None),
            ("-0:-2", None),
            ("--1:-2", None),
            ("1:99999999999", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(Partial::parse(text.as_bytes()).ok(), *want, "{text}");
        }
        assert_eq!(Partial::parse(b"-5:-2").unwrap().echo(), "-2:-5");
        assert_eq!(Partial::parse(b"4:2").unwrap().echo(), "2:4");
    }

    #[test]
    fn windows_cut_from_either_end() {
        let items = [10, 20, 30, 40, 50];
        let cases: &[(&str, &[u32])] = &[
            ("1:1", &[10]),
            ("2:4", &[20, 30, 40]),
            ("1:6", &[10, 20, 30, 40, 50]),
            ("6:6", &[]),
            ("-1:-1", &[50]),
            ("-1:-2", &[40, 50]),
            ("-2:-4", &[20, 30, 40]),
            ("-1:-100", &[10, 20, 30, 40, 50]),
            ("-6:-9", &[]),
        ];
        for (text, want) in cases {
            let partial = Partial::parse(text.as_bytes()).unwrap();
            assert_eq!(partial.window(&items), *want, "{text}");
        }
        assert!(Partial::parse(b"-1:-3").unwrap().window::<u32>(&[]).is_empty());
    }
}
