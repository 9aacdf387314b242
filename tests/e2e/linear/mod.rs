//! The linear-time proofs of the parsers of attacker (or admin) input that public functions
//! reach; the harness and its counting allocator are tests/support/linear.rs, shared with the
//! unit tests that need a module's private functions.

#[allow(unsafe_code, reason = "the counting allocator passes every call on to System")]
#[path = "../../support/linear.rs"]
mod harness;

pub use harness::{assert_linear, repeat};

mod tests;
