//! SPF (RFC 7208): check_host() for the envelope sender or the HELO name, at queue time.
