//! imap against real clients (being written).
