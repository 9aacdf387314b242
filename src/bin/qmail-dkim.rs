//! The QMAILQUEUE program: see qmail-dkim(8).
fn main() {
    std::process::exit(qmail_dkim::run::main());
}
