//! pop3 against real clients (being written).
