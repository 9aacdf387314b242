//! Proof that the parsers of attacker input run in linear time and memory: each test runs a
//! parser on adversarial input of size n and 16n. Two measures, both must stay within 40x:
//! the bytes allocated on the test's thread (deterministic: counted by the allocator below) and
//! the CPU time of the thread (not wall time: on a loaded 2-core machine a long run is
//! preempted where a short one is not; the minimum of several interleaved runs). Quadratic work
//! would show about 256x.
//!
//! One file for two test binaries: the integration tests (`tests/e2e/linear`, the parsers
//! reached through public functions) and the library's unit tests (the checks beside a module
//! that need its private functions). Each installs the counting allocator for its own process
//! only; the count is per thread, as the tests run on threads of their own. See the ratios with
//! `cargo test --test e2e linear -- --nocapture`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

/// Counts the bytes allocated by each thread (tests run on threads of their own).
struct Counting;

thread_local! {
    static ALLOCATED: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is passed on to System unchanged; only a thread-local counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATED.try_with(|a| a.set(a.get() + layout.size() as u64));
        // SAFETY: the caller's guarantees for this call are the ones System needs.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's guarantees for this call are the ones System needs.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATED.try_with(|a| a.set(a.get() + layout.size() as u64));
        // SAFETY: the caller's guarantees for this call are the ones System needs.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATED.try_with(|a| a.set(a.get() + new_size as u64));
        // SAFETY: the caller's guarantees for this call are the ones System needs.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocated() -> u64 {
    ALLOCATED.with(Cell::get)
}

/// Allowed growth of time and of allocation for 16 times the input.
pub const MAX_RATIO: f64 = 40.0;
/// The small input is doubled until one run takes this long, so timer noise does not dominate,
/// or until it reaches [`MAX_SMALL`] (beyond, the large input outgrows the caches and the ratio
/// measures the memory system).
const MIN_SMALL: Duration = Duration::from_millis(2);
const MAX_SMALL: usize = 256 << 10;
const RUNS: usize = 3;

/// What one check measured.
#[derive(Debug, Clone, Copy)]
pub struct Ratios {
    pub time: f64,
    pub alloc: f64,
}

/// CPU time used by this thread.
fn thread_cpu() -> Duration {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .expect("clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::from(ts)
}

fn time_once<T>(input: &T, run: &impl Fn(&T)) -> (Duration, u64) {
    let a = allocated();
    let t = thread_cpu();
    run(input);
    let d = thread_cpu().saturating_sub(t);
    (d, allocated() - a)
}

fn measure<T>(small: &T, large: &T, run: &impl Fn(&T)) -> (Duration, Duration, u64, u64) {
    let (mut ts, mut tl) = (Duration::MAX, Duration::MAX);
    let (mut as_, mut al) = (0, 0);
    for _ in 0..RUNS {
        let (d, a) = time_once(small, run);
        ts = ts.min(d);
        as_ = a;
        let (d, a) = time_once(large, run);
        tl = tl.min(d);
        al = a;
    }
    (ts, tl, as_, al)
}

/// Runs `run` on `make(n)` and `make(16 n)` (n grown from `n0` until a run takes a few ms) and
/// fails when time or allocation grows more than [`MAX_RATIO`] times. Prints the ratios.
pub fn assert_linear<T>(what: &str, n0: usize, make: impl Fn(usize) -> T, run: impl Fn(&T)) -> Ratios {
    let mut n = n0.max(1);
    let mut small = make(n);
    while n < MAX_SMALL.max(n0) && time_once(&small, &run).0 < MIN_SMALL {
        n *= 2;
        small = make(n);
    }
    let large = make(16 * n);
    let mut best = None;
    // A quadratic parser fails every attempt (at about 256x); a disturbed measurement only one.
    for _ in 0..3 {
        let (ts, tl, as_, al) = measure(&small, &large, &run);
        let r = Ratios { time: tl.as_secs_f64() / ts.as_secs_f64().max(1e-9), alloc: al as f64 / (as_.max(1)) as f64 };
        eprintln!(
            "linear: {what}: n={n}: {:.2?} -> {:.2?} (x{:.1}), {as_} -> {al} bytes allocated (x{:.1})",
            ts, tl, r.time, r.alloc
        );
        assert!(r.alloc <= MAX_RATIO, "{what}: 16x the input allocates {:.1}x as much", r.alloc);
        if r.time <= MAX_RATIO {
            return r;
        }
        best = Some(r);
        if r.time > 2.5 * MAX_RATIO {
            break;
        }
    }
    panic!("{what}: 16x the input takes {:.1}x as long", best.map_or(0.0, |r| r.time));
}

/// Whole copies of `unit`, at least `n` bytes.
pub fn repeat(unit: &[u8], n: usize) -> Vec<u8> {
    unit.repeat(n.div_ceil(unit.len().max(1)).max(1))
}
