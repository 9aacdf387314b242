//! The qmail-remote wrapper that signs at queue exit: see qmail-dkim-remote(8).
fn main() {
    std::process::exit(qmail_dkim::remote_main());
}
