//! qmail-dkim: a QMAILQUEUE program that signs and verifies DKIM and DomainKeys.
//!
//! Layers, top to bottom (a module imports only from the ones below it):
//! `run`, `check` -> `queue`, `refusal`, `headers`, `auth_results`, `policy` -> `dkim`, `domainkeys`,
//! `dns` -> `config`, `message`, `rfc5322`, `envelope`, `der`, `domain`, `glob`, `log` -> `error` -> `access`.

pub mod access;
pub mod error;
pub mod log;
pub mod der;
pub mod domain;
pub mod glob;
pub mod getopt;
pub mod envelope;
pub mod message;
pub mod rfc5322;
pub mod config;
pub mod dkim;
pub mod domainkeys;
pub mod dns;
pub mod auth_results;
pub mod headers;
pub mod keygen;
pub mod queue;
pub mod refusal;
pub mod task;
pub mod plan;
pub mod run;
pub mod check;
pub mod tcprules;
#[cfg(test)]
mod linear;
#[cfg(test)]
mod layers;
