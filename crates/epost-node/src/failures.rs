//! What went wrong at each peer a fan-out tried (a put's holders, a
//! notification's inbox holders), kept as typed errors and shown on one
//! line, `a; b; c`, so the caller's error says why without flattening
//! anything into text before it is shown.

use std::fmt;

/// Each peer's failure, in the order they were met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failures<E>(pub Vec<E>);

impl<E> Default for Failures<E> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<E> Failures<E> {
    pub fn push(&mut self, failure: E) {
        self.0.push(failure);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<E: fmt::Display> fmt::Display for Failures<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("no peers to hold it");
        }
        for (i, failure) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_read_as_one_line_and_none_says_so() {
        let mut failures = Failures::default();
        assert_eq!(failures.to_string(), "no peers to hold it");
        failures.push("a: refused");
        failures.push("b: timed out");
        assert_eq!(failures.to_string(), "a: refused; b: timed out");
    }
}
