//! The gateway driven by real clients (Python's smtplib, imaplib and
//! poplib, and raw sockets for hostile ones) over real sockets, in front
//! of the in-memory backend; the set-up they share is in `fixture.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

mod fixture;
mod hardening;
mod imap;
mod pop3;
mod smtp;
