//! An error with its causes on one line, `outer: inner: innermost`, where
//! a message must be text (an API error's body, a mail error's detail):
//! the reader sees why, not only what.

use std::fmt;

/// Displays an error and every error below it.
pub(crate) struct Chain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("cannot store the message")]
        Put(#[source] std::io::Error),
    }

    #[test]
    fn every_cause_is_shown_once_in_order() {
        let e = Outer::Put(std::io::Error::other("disk on fire"));
        assert_eq!(Chain(&e).to_string(), "cannot store the message: disk on fire");
        let alone = std::io::Error::other("alone");
        assert_eq!(Chain(&alone).to_string(), "alone");
    }
}
