//! qmail-dkim: a QMAILQUEUE program that signs and verifies DKIM and DomainKeys.
//!
//! Layers, top to bottom (a module imports only from the ones below it):
//! `run`, `check` -> `queue`, `headers`, `policy` -> `dkim`, `domainkeys`, `dns` -> `config`, `message`,
//! `envelope`, `der` -> `error`.

pub mod error;
pub mod der;
pub mod envelope;
pub mod message;
pub mod config;
pub mod dkim;
pub mod domainkeys;
pub mod dns;
pub mod headers;
pub mod policy;
pub mod keygen;
pub mod queue;
pub mod run;
pub mod check;
pub mod tcprules;
pub mod verify_task;
