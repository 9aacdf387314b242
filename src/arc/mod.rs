//! ARC (RFC 8617): validate the chain a message arrives with; seal it when we forward.
