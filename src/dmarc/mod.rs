//! DMARC (RFC 7489): the RFC5322.From domain's policy over our DKIM and SPF results.
