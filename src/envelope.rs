//! The qmail-queue envelope on fd 1: `F`sender`\0`, `T`recipient`\0`…, a final `\0`.
//! Parsed exactly as notqmail's qmail-queue.c reads it, and kept as raw bytes so it is passed on
//! unchanged.

use crate::error::{Error, Result};
use std::io::{self, Read};

/// qmail-queue refuses an address once 1003 bytes have been read without its `\0`.
pub const ADDRESS_LIMIT: usize = 1003;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The bytes read, up to and including the final `\0`: what the next program gets.
    pub raw: Vec<u8>,
    pub sender: Vec<u8>,
    pub recipients: Vec<Vec<u8>>,
}

/// Incremental parser: `feed` bytes until it says the envelope is complete.
#[derive(Debug, Default)]
pub struct Parser {
    raw: Vec<u8>,
    sender: Option<Vec<u8>>,
    recipients: Vec<Vec<u8>>,
    /// Bytes of the address being read, with its leading letter.
    cur: Vec<u8>,
    done: bool,
}

impl Parser {
    /// Feeds bytes; returns how many were consumed. After `is_done()` nothing more is consumed.
    pub fn feed(&mut self, data: &[u8]) -> Result<usize> {
        let mut used = 0;
        for &b in data {
            if self.done {
                break;
            }
            used += 1;
            self.raw.push(b);
            if self.cur.is_empty() {
                // The first byte of an item.
                match (self.sender.is_some(), b) {
                    (false, b'F') | (true, b'T') => self.cur.push(b),
                    (true, 0) => self.done = true,
                    (false, _) => return Err(Error::EnvelopeFormat("does not begin with F")),
                    (true, _) => return Err(Error::EnvelopeFormat("recipient does not begin with T")),
                }
                continue;
            }
            if b == 0 {
                let addr = self.cur[1..].to_vec();
                if self.sender.is_none() {
                    self.sender = Some(addr);
                } else {
                    self.recipients.push(addr);
                }
                self.cur.clear();
            } else {
                if self.cur.len() >= ADDRESS_LIMIT {
                    return Err(Error::AddressTooLong);
                }
                self.cur.push(b);
            }
        }
        Ok(used)
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn finish(self) -> Result<Envelope> {
        if !self.done {
            return Err(Error::Read {
                what: "envelope",
                source: io::Error::new(io::ErrorKind::UnexpectedEof, "end of file before the final NUL"),
            });
        }
        Ok(Envelope { raw: self.raw, sender: self.sender.unwrap_or_default(), recipients: self.recipients })
    }
}

/// Reads the envelope from `r` (fd 1), byte-exact, stopping at the final `\0` as qmail-queue does.
pub fn read(mut r: impl Read) -> Result<Envelope> {
    let mut p = Parser::default();
    let mut buf = [0u8; 4096];
    // qmail-queue reads through a buffer too; we must not consume past the final NUL, but the
    // caller closes fd 1 after it, so reading ahead is harmless.
    while !p.is_done() {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Read { what: "envelope", source: e }),
        };
        p.feed(&buf[..n])?;
    }
    p.finish()
}

/// Builds envelope bytes (for the tests and the fuzz target's round trip).
pub fn build(sender: &[u8], recipients: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    v.push(b'F');
    v.extend_from_slice(sender);
    v.push(0);
    for r in recipients {
        v.push(b'T');
        v.extend_from_slice(r);
        v.push(0);
    }
    v.push(0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(b: &[u8]) -> Result<Envelope> {
        read(b)
    }

    #[test]
    fn ordinary() {
        let raw = build(b"a@b", &[b"c@d", b"e@f"]);
        let e = parse(&raw).unwrap();
        assert_eq!(e.raw, raw);
        assert_eq!(e.sender, b"a@b");
        assert_eq!(e.recipients, vec![b"c@d".to_vec(), b"e@f".to_vec()]);
    }

    #[test]
    fn null_sender_and_no_recipients() {
        let e = parse(b"F\0\0").unwrap();
        assert!(e.sender.is_empty());
        assert!(e.recipients.is_empty());
    }

    #[test]
    fn refusals() {
        assert_eq!(parse(b"Xa\0\0").unwrap_err().exit_code(), 91);
        assert_eq!(parse(b"Fa\0Xb\0\0").unwrap_err().exit_code(), 91);
        assert_eq!(parse(b"Fa\0Tb\0").unwrap_err().exit_code(), 54);
        assert_eq!(parse(b"").unwrap_err().exit_code(), 54);
        assert_eq!(parse(b"Fa").unwrap_err().exit_code(), 54);
        let mut long = b"F".to_vec();
        long.extend(std::iter::repeat_n(b'a', 1002));
        long.extend_from_slice(b"\0\0");
        assert!(parse(&long).is_ok());
        let mut long = b"F".to_vec();
        long.extend(std::iter::repeat_n(b'a', 1003));
        long.extend_from_slice(b"\0\0");
        assert_eq!(parse(&long).unwrap_err().exit_code(), 11);
    }

    #[test]
    fn stops_at_final_nul() {
        let e = parse(b"Fa\0\0trailing").unwrap();
        assert_eq!(e.raw, b"Fa\0\0");
    }
}
