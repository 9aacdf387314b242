//! The QMAILQUEUE program: see qmail-dkim(8).
//!
//! `no_main`: qmail starts one of us per message, and std's start-up (a main-thread stack
//! guard found by reading /proc/self/maps, an alternate signal stack) was a seventh of the
//! instructions of an unsigned message. Of what it does we keep the two things that matter
//! here; a stack overflow is still a signal (SIGSEGV instead of SIGABRT).
// Under `cargo test` the harness brings its own main.
#![cfg_attr(not(test), no_main)]
#![allow(unsafe_code, reason = "our own C main: descriptor and signal set-up before any Rust code runs")]

#[cfg(not(test))]
use std::os::raw::{c_char, c_int};

#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    // SAFETY: poll on three descriptor numbers, open, and signal with SIG_IGN: no memory is shared.
    unsafe {
        // A closed fd 0, 1 or 2 gets /dev/null, as std does: else the queue program's pipe
        // could become our fd 2 and a diagnostic would end up in the message.
        let mut fds = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
        if libc::poll(fds.as_mut_ptr(), 3, 0) != -1 {
            for p in fds {
                if p.revents & libc::POLLNVAL != 0 && libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) != p.fd {
                    return 81;
                }
            }
        }
        // A log reader that went away must give EPIPE, not kill us (std's default too; the
        // queue program still starts with SIGPIPE at its default).
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    qmail_dkim::run_main()
}
