//! The integration tests: one binary, so the support code in `common` is compiled once, with a
//! module per area (ripgrep's layout). Run one area with `cargo test --test e2e sign::`.
//! `linear` installs a counting allocator for the whole binary: a thread-local add per
//! allocation, nothing the other tests notice (they run on threads of their own).

#![allow(clippy::cast_possible_truncation, reason = "test data: small sizes, counts and ports")]

mod common;

mod admin;
mod arc;
mod checks;
mod dkim2;
mod dmarc;
mod dmarc_reports;
mod domainkeys;
mod forged_pass;
mod forgery;
mod infra;
mod keys;
mod layers;
mod linear;
mod manual_letters;
mod queue_contract;
mod remote;
mod robustness;
mod rotation;
mod sign;
mod spf;
mod suites;
mod tools;
mod verify;
