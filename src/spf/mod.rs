//! SPF (RFC 7208): check_host() for the envelope sender or the HELO name, at queue time.
//!
//! - [`record`]: the one parser of SPF records (§4.5 selection, §12 grammar);
//! - [`macros`]: the one parser of macro-strings and their expansion (§7);
//! - [`verify`]: check_host() (§4, §5, §6) over our [`crate::dns::Resolver`];
//! - [`task`]: the queue-time task (`SPFVERIFY`).
//!
//! **Decision: our own check_host(), not mail-auth's.** mail-auth 0.13.3
//! (`src/spf/verify.rs`) is wrong where we need it right:
//! - it has no void-lookup limit (§4.6.4: more than 2 lookups answered with nothing are
//!   `permerror`), so every one of a record's 10 terms may ask for names that do not exist
//!   (the abuse of third-party DNS the limit is there to stop);
//! - its overall time limit (20 s since the start) gives `permerror`, where §4.6.4 says a
//!   time-out is `temperror`: a slow server would make us bounce mail for good;
//! - it asks its own resolver, outside our one DNS time budget per message
//!   ([`crate::dns::Hickory`]), and cannot be given the test zone;
//!
//! and, read further: several `v=spf1` records are not `permerror` (§4.5) but the first that
//! parses wins; `exists` matches an AAAA-only name (§5.7: an A query); an IPv4-mapped IPv6
//! client is not treated as IPv4 for `a`/`mx` (§5); `ip6` networks can match an IPv4 client
//! (through its mapped form); each PTR name validated by `ptr` (and `%{p}`) uses up one of the
//! 10 terms (§4.6.4 counts terms; PTR names have a limit of their own, 10, beyond which names
//! are ignored), so a `ptr` skips names it should validate and later terms reach the limit;
//! `%{p}` is the first PTR name, not a validated one (§7.3); more than 10 MX names are `permerror` only after the
//! first 10 failed to match (ours: at once, §4.6.4 "MUST NOT result in querying more than 10");
//! and its parser (`src/spf/parse.rs`) takes an unknown mechanism (`moo:x`) for an unknown
//! modifier and skips it, clamps prefix lengths (`/33` is `/32`) and saturates octets (`999`
//! is `255`), where §4.6 and §12 make each a syntax error, so `permerror`.
//! mail-auth's `verify_spf` stays an oracle in the tests (tests/e2e/spf.rs): where none of these
//! apply, our result equals its result.
//!
//! Choices where the RFC leaves room: a void lookup is a term's own question (`a`, `mx`,
//! `exists`, `ptr`'s PTR question) answered with NXDOMAIN or no records, not the address
//! questions for MX or PTR names; a target name that cannot be asked (`BadName`: a label over
//! 63 octets after expansion, an empty label) matches nothing, is not void, and is asked
//! nothing; `%{p}` is looked up (one PTR question and at most 10 address questions, once per
//! check_host, not a term); as §5.5 says, DNS errors while validating PTR names are no match
//! (so `-ptr +all` can pass while the PTR server fails: the record's own choice), but a
//! temporary failure of `ptr`'s own PTR question is temperror, not §5.5's "no match", so that
//! a DNS outage never makes `ptr -all` a permanent refusal; a fail's `exp=` explanation goes
//! into the refusal text, marked as the domain's (§8.4); `v=spf1`
//! is recognised in any case (§12 strings are case-insensitive).
//!
//! Limits (all per check_host, records of includes and redirects together): 10 DNS-querying
//! terms, 2 void lookups (both `permerror` beyond), 10 MX names per `mx` (`permerror`), 10 PTR
//! names per `ptr` or `%{p}` (the rest ignored); expanded names at most 253 octets (cut on the
//! left, §7.3), explanations at most [`macros::MAX_EXPLANATION`] characters. DNS temporary
//! failures are `temperror`; time is bounded by the resolver's budget.

pub mod macros;
pub mod record;
pub(crate) mod task;
pub mod verify;

pub use crate::auth_results::{SpfOutput, SpfResult, SpfScope};
pub(crate) use task::{SpfSettings, SpfTask};
pub use verify::check_host;

#[cfg(test)]
mod tests;
