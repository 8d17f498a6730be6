//! smtp against real clients (being written).
