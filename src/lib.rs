//! qmail-dkim: a QMAILQUEUE program that signs and verifies DKIM and DomainKeys.
//!
//! Layers, top to bottom (a module imports only from the ones below it):
//! `remote` -> `run`, `check` -> `queue`, `refusal`, `headers`, `auth_results`, `policy` -> `dkim`, `domainkeys`,
//! `dns` -> `config`, `message`, `rfc5322`, `envelope`, `der`, `domain`, `glob`, `log` -> `error` -> `access`.

pub mod access;
pub mod error;
pub mod log;
pub mod der;
pub mod domain;
pub mod glob;
pub mod envelope;
pub mod message;
pub mod rfc5322;
pub mod config;
pub mod dkim;
pub mod domainkeys;
pub mod dns;
pub mod auth_results;
pub mod headers;
pub mod policy;
pub mod keygen;
pub mod queue;
pub mod refusal;
pub mod run;
pub mod remote;
pub mod check;
pub mod tcprules;
pub mod verify_task;
#[cfg(test)]
mod linear;
#[cfg(test)]
mod manual_letters;
