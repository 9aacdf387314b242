//! qmail-dkim: a QMAILQUEUE program that signs and verifies DKIM and DomainKeys.
//!
//! Layers, top to bottom; a module imports only from the layers below its own (checked by the
//! test in `tests/e2e/layers.rs`; docs/architecture.md says what each module holds). `*`: a
//! private module.
//!
//! ```text
//! dmarc_reports                    `dkim dmarc import` and `report`: database, RFC 9990 XML, sending
//! keys, remote*                    `dkim keys`: key rotation; qmail-dkim-remote: sign at queue exit
//! check, run*                      `dkim check`; sequence the I/O of one message
//! plan                             settings -> the one Plan -> tasks with plain options
//! queue*                           start, feed and wait for the next program
//! arc, dkim2, dmarc, spf           RFC 8617, DKIM2 (draft), 9989, 7208 at queue time, with tasks
//! domainkeys                       RFC 4870, with its tasks
//! keygen                           key generation and record formats (dknewkey)
//! dkim                             RFC 6376/8463, with policy and task
//! task                             Task, Context, Finished, Refusal
//! dns, refusal*                    lookups; the refusal conventions
//! config, headers                  settings (the one reading of the environment), control files
//! envelope, log*, message
//! auth_results, error*, keyfile*   typed method results and Authentication-Results; errors; a key file
//! dmarc_spool                      the DMARC report spool's record format
//! access*, der, domain, getopt*, glob, rfc5322, tcprules
//! ```
//!
//! `config` and `dkim` do not import each other: `plan` hands the methods plain data.
//! Nothing below `config::settings` reads the environment.
//!
//! The public surface is what the binaries, the integration tests, the fuzz targets and the
//! benches use; everything else is `pub(crate)`, so the compiler names dead code.

#![cfg_attr(test, allow(clippy::cast_possible_truncation, reason = "test inputs are small and made here"))]

mod access;
pub mod arc;
pub mod auth_results;
pub mod check;
pub mod config;
pub mod der;
pub mod dkim;
pub mod dkim2;
pub mod dmarc;
pub mod dmarc_reports;
pub mod dmarc_spool;
pub mod dns;
pub mod domain;
pub mod domainkeys;
pub mod envelope;
mod error;
mod getopt;
pub mod glob;
pub mod headers;
mod keyfile;
pub mod keygen;
pub mod keys;
/// The linear-time harness (and its counting allocator) for the unit tests that need a
/// module's private functions; the integration tests share the file.
#[cfg(test)]
#[allow(unsafe_code)]
#[path = "../tests/support/linear.rs"]
mod linear;
mod log;
pub mod message;
pub mod plan;
#[allow(unsafe_code)]
mod queue;
#[allow(unsafe_code)]
mod refusal;
#[allow(unsafe_code)]
mod remote;
pub mod rfc5322;
#[allow(unsafe_code)]
mod run;
pub mod spf;
pub mod task;
pub mod tcprules;

/// The largest private key file any reader takes (dknewkey reads no more).
pub use keyfile::MAX_KEY_FILE;
/// qmail-dkim-remote's body: the binary only exits with what it returns.
pub use remote::main as remote_main;
/// qmail-dkim's body: the binary only returns what it returns.
pub use run::main as run_main;
