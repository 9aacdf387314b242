//! The DKIM signing task: one key, the signatures to make with it, and the body hashers they
//! share. [`Signer`] needs only plain data (a key, [`SignParams`], the header block and the
//! body), so any program can sign with it; qmail-dkim makes it in `crate::plan`.

use super::canon::BodyHasher;
use super::key::{KeyType, SigningKey};
use super::sign::{self, SignParams};
use super::Algorithm;
use crate::error::{Error, Result};
use crate::log;
use crate::message::Headers;
use crate::task::{Context, Finished, Task};

/// A loaded key with the signatures to make with it.
pub struct Signer {
    key: SigningKey,
    params: Vec<SignParams>,
    /// Per params entry: its body hasher (shared when canonicalization and hash agree).
    hasher: Vec<usize>,
    hashers: Vec<BodyHasher>,
}

/// A key that cannot make a requested signature (an Ed25519 key for rsa-sha256, say).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {} key cannot make {} signatures (check DKIMSIGNOPTIONS -z)", key.as_str(), algorithm.as_str())]
pub struct Unfit {
    pub key: KeyType,
    pub algorithm: Algorithm,
}

impl Signer {
    /// A signer for `params` (one per signature, `selector` filled in) with `key`.
    pub fn new(key: SigningKey, params: Vec<SignParams>) -> Result<Signer, Unfit> {
        let mut idx = Vec::new();
        let mut hashers: Vec<BodyHasher> = Vec::new();
        for p in &params {
            if !key.fits(p.algorithm) {
                return Err(Unfit { key: key.key_type(), algorithm: p.algorithm });
            }
            let want = (p.canon.body, p.algorithm.hash());
            let i = match hashers.iter().position(|h| (h.canon(), h.hash_alg()) == want && h.limit().is_none()) {
                Some(i) => i,
                None => {
                    hashers.push(BodyHasher::new(want.0, want.1, None));
                    hashers.len() - 1
                }
            };
            idx.push(i);
        }
        Ok(Signer { key, params, hasher: idx, hashers })
    }

    /// The selector the signatures are made with (one key, one selector).
    pub fn selector(&self) -> Option<&str> {
        self.params.first().map(|p| p.selector.as_str())
    }

    /// The DKIM key record of this key, as DNS publishes it: a program can check a signature
    /// of its own with it, without asking DNS.
    pub fn key_record(&self) -> Vec<u8> {
        use base64::Engine;
        let p = base64::engine::general_purpose::STANDARD.encode(self.key.public_key_dns());
        format!("v=DKIM1; k={}; p={p}", self.key.key_type().as_str()).into_bytes()
    }

    /// Body bytes, in order, in pieces of any size.
    pub fn update(&mut self, data: &[u8]) {
        for h in &mut self.hashers {
            h.update(data);
        }
    }

    /// The `DKIM-Signature` fields for the message with this header block, LF-ended, top
    /// first; calls `each` with the parameters of every signature made.
    pub fn sign(self, headers: &Headers, mut each: impl FnMut(&SignParams)) -> Result<Vec<u8>> {
        let Signer { key, params, hasher, hashers } = self;
        let finished: Vec<(Vec<u8>, u64)> = hashers.into_iter().map(BodyHasher::finish).collect();
        let mut out = Vec::new();
        for (p, &h) in params.iter().zip(&hasher) {
            let (hash, len) = &finished[h];
            let field = sign::sign(headers, p, hash, *len, &key)
                .map_err(|e| Error::Internal(format!("signing for d={} s={}: {e}", p.domain, p.selector)))?;
            each(p);
            out.extend_from_slice(&field);
        }
        Ok(out)
    }
}

impl Task for Signer {
    fn body(&mut self, data: &[u8]) {
        self.update(data);
    }

    fn finish(self: Box<Self>, ctx: &Context<'_>) -> Result<Finished> {
        let prepend = self.sign(ctx.queued, |p| {
            if ctx.verbose {
                eprintln!("qmail-dkim: signed d={} s={} a={}", p.domain, p.selector, p.algorithm.as_str());
            }
            log::note(log::Note::Sig {
                method: log::Method::Dkim,
                d: Some(p.domain.clone()),
                s: Some(p.selector.clone()),
                a: Some(p.algorithm.as_str().into()),
                result: "signed",
                letter: None,
            });
        })?;
        Ok(Finished { prepend, ..Default::default() })
    }
}
