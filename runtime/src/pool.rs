//! The worker pool that runs parallel kernels.
//!
//! One pool per process, shared by every handle of every model linked with
//! this runtime. Its threads are started on the first parallel kernel that
//! wants them (no thread exists before a model runs with more than one),
//! spin for a short while after each piece of work (kernels follow each
//! other within microseconds during a run), yielding their CPU now and then
//! to any other thread that wants it, and then sleep on a condition
//! variable: an idle pool between runs uses no CPU. When the last handle is
//! freed, the threads are told to exit and joined, so a library can be
//! unloaded once its handles are freed.
//!
//! A compiled kernel whose outer loop is parallel is called through
//! [`aotc_rt_parallel_for`] with its iteration count. The range is cut into
//! one contiguous home range per thread (range `i` of `t` is
//! `[n*i/t, n*(i+1)/t)`; the calling thread's is range 0, worker `w`'s is
//! range `w`, so a thread works on the same rows kernel after kernel), and
//! each home range into a few pieces, smaller towards its back
//! ([`tapered`]). A thread runs its own pieces from the front; when it has
//! none left it takes pieces from the back of the other ranges. Threads of one machine do not run at one speed (two busy vCPUs
//! here differ by ~15%, and a worker may not be scheduled at all): with
//! fixed chunks a kernel would end when its slowest thread does. Every
//! iteration computes the same values wherever it runs, so results do not
//! depend on the thread count or on who ran what.
//!
//! Several handles running at once on several caller threads never start
//! more threads than the pool has: a kernel that finds the pool working for
//! another caller runs on its own calling thread alone. With `c` callers
//! and `t` threads per handle, at most `c + t - 1` threads compute.

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A piece of a parallel kernel: `task(context, begin, end, scratch)` runs
/// iterations `[begin, end)` with `scratch` for its temporaries (each
/// thread its own: the compiled kernels' temporaries would otherwise be
/// one arena slot that all threads write).
pub type Task = unsafe extern "C" fn(context: *const c_void, begin: i64, end: i64, scratch: *mut u8);

/// A thread's scratch: grown to the largest a kernel asked for, kept.
#[derive(Default)]
pub(crate) struct Scratch(Option<crate::AlignedBytes>);

impl Scratch {
    /// At least `bytes` bytes (null when none are asked for, or when they
    /// cannot be allocated: then the caller runs the kernel alone).
    fn get(&mut self, bytes: usize) -> *mut u8 {
        if bytes == 0 {
            return std::ptr::null_mut();
        }
        if self.0.as_ref().is_none_or(|b| b.len < bytes) {
            self.0 = crate::AlignedBytes::zeroed(bytes);
        }
        self.0.as_mut().map_or(std::ptr::null_mut(), |b| b.as_mut_ptr())
    }
}

/// How long a worker waits for the next piece of work before it sleeps:
/// it spins, yielding its CPU every [`SPINS_PER_YIELD`] checks.
const SPIN: Duration = Duration::from_micros(200);

/// See [`SPIN`]. The yields cost nothing when nothing else wants the CPU
/// (mobilenet_v2, resnet18, BERT at 2 threads: 0.989-1.003 of the time
/// with pure spinning) and hand it over when something does: with a
/// CPU-bound process beside it on 2 CPUs, mobilenet_v2 at 2 threads took
/// 0.55 of the time (a spinning worker kept the CPU its own caller, put
/// off by the other process, needed to post the next kernel).
const SPINS_PER_YIELD: u32 = 64;

/// How many times a caller spins for the workers' pieces before it yields
/// its CPU between checks (a few microseconds).
const WAIT_SPINS: u32 = 2048;

thread_local! {
    /// The thread count of the run on this thread (its handle's setting)
    /// and the handle's scratch, which the calling thread's pieces use.
    static RUN: Cell<(usize, *mut Scratch)> = const { Cell::new((1, std::ptr::null_mut())) };
    /// Set when a kernel of this thread's run could not get its scratch
    /// (some of its iterations did not run): the run fails.
    static OUT_OF_MEMORY: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a run) with parallel kernels using up to `threads` threads,
/// the calling thread's pieces `scratch`.
/// Returns false when a kernel could not allocate its scratch.
pub(crate) fn with_threads(threads: usize, scratch: &mut Scratch, f: impl FnOnce()) -> bool {
    let before = RUN.with(|r| r.replace((threads.max(1), scratch as *mut Scratch)));
    OUT_OF_MEMORY.with(|o| o.set(false));
    f();
    RUN.with(|r| r.set(before));
    !OUT_OF_MEMORY.with(|o| o.replace(false))
}

#[derive(Clone, Copy)]
struct Job {
    task: Task,
    context: *const c_void,
    iterations: i64,
    /// Home ranges (threads taking part).
    ranges: usize,
    scratch_bytes: usize,
}

impl Job {
    /// The iterations of piece `piece` of home range `range`.
    fn piece(&self, range: usize, piece: usize) -> (i64, i64) {
        let (begin, end) = chunk(self.iterations, range, self.ranges);
        let (from, to) = tapered(end - begin, piece, pieces(end - begin));
        (begin + from, begin + to)
    }
}

/// Piece `piece` of `parts` (at most `n`) of `n` iterations, the pieces
/// smaller towards the back: each has one iteration, and of the other
/// `m = n - parts`, the last `l` pieces share `m * (l / parts)^2`. A thread
/// taking pieces from another's back takes the small ones first, and
/// threads that end their own ranges at about the same time meet where the
/// pieces are smallest (288 iterations: 67 in the first piece, 5 in the
/// last).
pub fn tapered(n: i64, piece: usize, parts: usize) -> (i64, i64) {
    let m = n - parts as i64;
    let squares = (parts * parts) as i64;
    let at = |k: usize| {
        let left = ((parts - k) * (parts - k)) as i64;
        // in 64 bits when the product fits (a 128-bit division is a call,
        // two per piece taken: 0.1% of resnet18's time at 2 threads)
        let back = match m.checked_mul(left) {
            Some(product) => product / squares,
            None => (m as i128 * left as i128 / squares as i128) as i64,
        };
        k as i64 + m - back
    };
    (at(piece), at(piece + 1))
}

/// How many pieces a home range of `iterations` is cut into: enough that a
/// thread done early takes over a small part of a slower one's range, few
/// enough that a piece stays large (each piece enters the kernel anew).
fn pieces(iterations: i64) -> usize {
    iterations.clamp(1, PIECES as i64) as usize
}

/// See [`pieces`]. Measured at 2 threads (resnet18, mobilenet_v2, from a C
/// loop): 8 and 16 alike and ~2% faster than one piece per range; 32 and
/// 64 slower (resnet18 +2%, +5%). Tapered pieces instead of equal ones:
/// ~1% faster on both; 16 tapered pieces like 8.
const PIECES: usize = 8;

/// The most threads a kernel runs on (the home ranges are a fixed array so
/// that a worker late for a job never reads memory being replaced).
pub const MAX_THREADS: usize = 256;

/// A posted job's `claim` is `(job << 16) | ranges`, with job numbers of
/// [`JOB_BITS`] bits that count up. Each home range has a word
/// `(job << 16) | (front << 8) | back`: the pieces `[front, back)` of job
/// `job` are left; its owner takes `front`, other threads take `back - 1`,
/// both with a compare-and-swap. A word of an older job stands for a range
/// nobody has touched in this job yet: all its pieces are left. So posting
/// a job writes no range's word (each stays on the cache line of the
/// thread that took from it last, usually its owner), a worker late for a
/// job never takes a piece of the next one (its compare-and-swap finds a
/// newer job, or none left of its own), and a job is finished only once
/// every range's word has moved to it.
fn job_number(word: u64) -> u64 {
    word >> 16
}

/// See [`job_number`]: 48 bits, compared modulo 2^48 (see
/// [`REFRESH_RANGES_EVERY`]).
const JOB_BITS: u32 = 48;

/// Whether job number `a` is older than job number `b` (both of
/// [`JOB_BITS`] bits, `b - a` taken modulo 2^48 and less than half of it).
fn is_older(a: u64, b: u64) -> bool {
    let distance = b.wrapping_sub(a) & ((1 << JOB_BITS) - 1);
    distance != 0 && distance < 1 << (JOB_BITS - 1)
}

/// Every this many jobs the owner sets every range's word to the job
/// before, so that no word falls half the job numbers behind (a range only
/// jobs with more threads use could otherwise look newer than the current
/// job after 2^47 jobs without one).
const REFRESH_RANGES_EVERY: u64 = 1 << 32;

/// One home range's word, alone on its cache line (its owner updates it
/// once per piece).
#[repr(align(64))]
struct Range(AtomicU64);

impl Range {
    const fn new() -> Range {
        Range(AtomicU64::new(0))
    }

    /// Takes the first piece left (`from_back`: the last) of job `job`,
    /// whose home range this is has `pieces` pieces.
    fn take(&self, job: u64, from_back: bool, pieces: usize) -> Option<usize> {
        let mut word = self.0.load(Ordering::Acquire);
        loop {
            let (front, back) = if job_number(word) == job {
                ((word >> 8) & 0xff, word & 0xff)
            } else if is_older(job_number(word), job) {
                (0, pieces as u64)
            } else {
                return None;
            };
            if front >= back {
                return None;
            }
            let (taken, front, back) = if from_back { (back - 1, front, back - 1) } else { (front, front + 1, back) };
            let next = (job << 16) | (front << 8) | back;
            match self.0.compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(taken as usize),
                Err(now) => word = now,
            }
        }
    }

    /// Marks the range untouched by job `job` (and by any job after it).
    fn refresh(&self, job: u64) {
        self.0.store((job.wrapping_sub(1) & ((1 << JOB_BITS) - 1)) << 16, Ordering::Relaxed);
    }
}

/// The posted job: its claim and what to run, on one cache line, so a
/// worker that sees a new claim gets the job in the same transfer between
/// cores. The owner writes the job's fields, then the claim (release); a
/// thread reads the claim (acquire), then the fields, which belong to that
/// claim's job as long as the job is not finished: a thread uses them only
/// once it took one of the job's pieces (the owner posts the next job only
/// when all the iterations of this one are done).
#[repr(align(64))]
struct Posted {
    claim: AtomicU64,
    task: AtomicPtr<()>,
    context: AtomicPtr<c_void>,
    iterations: AtomicI64,
    scratch_bytes: AtomicUsize,
}

impl Posted {
    const fn new() -> Posted {
        Posted {
            claim: AtomicU64::new(0),
            task: AtomicPtr::new(std::ptr::null_mut()),
            context: AtomicPtr::new(std::ptr::null_mut()),
            iterations: AtomicI64::new(0),
            scratch_bytes: AtomicUsize::new(0),
        }
    }

    fn post(&self, number: u64, job: &Job) {
        self.task.store(job.task as *mut (), Ordering::Relaxed);
        self.context.store(job.context as *mut c_void, Ordering::Relaxed);
        self.iterations.store(job.iterations, Ordering::Relaxed);
        self.scratch_bytes.store(job.scratch_bytes, Ordering::Relaxed);
        self.claim.store((number << 16) | job.ranges as u64, Ordering::Release);
    }

    /// The job of `claim` (read after `claim`; see the type's comment).
    fn job(&self, claim: u64) -> Job {
        let task = self.task.load(Ordering::Relaxed);
        Job {
            // SAFETY: a non-null task was stored from a `Task`; a null one
            // (no job posted yet) is never called: no piece of it is taken
            task: unsafe { std::mem::transmute::<*mut (), Task>(if task.is_null() { never as *mut () } else { task }) },
            context: self.context.load(Ordering::Relaxed),
            iterations: self.iterations.load(Ordering::Relaxed),
            ranges: (claim & 0xffff) as usize,
            scratch_bytes: self.scratch_bytes.load(Ordering::Relaxed),
        }
    }
}

/// The task of a job that was never posted (never called).
unsafe extern "C" fn never(_: *const c_void, _: i64, _: i64, _: *mut u8) {}

struct Pool {
    /// Held by the one caller whose kernel the workers run (and by the
    /// shutdown): a kernel that cannot take it runs on its caller alone.
    owner: AtomicBool,
    /// The current job; workers wait for its number to change.
    posted: Posted,
    ranges: [Range; MAX_THREADS],
    /// Iterations of the current job the workers finished (each adds its
    /// own once it has no piece left: one write per worker and job).
    finished: AtomicU64,
    exit: AtomicBool,
    /// A worker could not allocate its scratch for the current job.
    out_of_memory: AtomicBool,
    /// Workers that sleep (or are about to) on `wake`.
    sleep: Mutex<usize>,
    wake: Condvar,
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// `workers.len()`, read without the lock by each parallel kernel
    /// (changed only by the pool's owner).
    started: AtomicUsize,
    /// Live model handles (the pool shuts down when it drops to 0).
    handles: AtomicUsize,
}

static POOL: Pool = Pool {
    owner: AtomicBool::new(false),
    posted: Posted::new(),
    ranges: [const { Range::new() }; MAX_THREADS],
    finished: AtomicU64::new(0),
    exit: AtomicBool::new(false),
    out_of_memory: AtomicBool::new(false),
    sleep: Mutex::new(0),
    wake: Condvar::new(),
    workers: Mutex::new(Vec::new()),
    started: AtomicUsize::new(0),
    handles: AtomicUsize::new(0),
};

/// The chunk `part` of `parts` of `n` iterations.
pub fn chunk(n: i64, part: usize, parts: usize) -> (i64, i64) {
    // in 64 bits when the product fits (a 128-bit division is a call)
    let at = |p: usize| match n.checked_mul(p as i64) {
        Some(product) => product / parts as i64,
        None => ((n as i128 * p as i128) / parts as i128) as i64,
    };
    (at(part), at(part + 1))
}

/// Runs `task` over `[0, iterations)` on up to the run's thread count: one
/// home range per thread, `[n*i/t, n*(i+1)/t)` for range `i` of `t`, cut
/// into pieces that a thread done early takes from the others. The calling
/// thread runs range 0 and then takes pieces too, so a worker that the
/// system has not scheduled yet delays nothing: the caller runs its pieces.
///
/// # Safety
/// `task` must be safe to call with `context` on any thread, for disjoint
/// ranges at once.
#[no_mangle]
pub unsafe extern "C" fn aotc_rt_parallel_for(iterations: i64, task: Task, context: *const c_void, scratch_bytes: i64) {
    let (threads, scratch) = RUN.with(|r| r.get());
    let scratch_bytes = scratch_bytes.max(0) as usize;
    let mut own = Scratch::default();
    // a call outside a run (tests) has no handle scratch
    let scratch = scratch.as_mut().unwrap_or(&mut own).get(scratch_bytes);
    if scratch.is_null() && scratch_bytes > 0 {
        OUT_OF_MEMORY.with(|o| o.set(true));
        return;
    }
    let threads = threads.min(iterations.max(0) as usize).min(MAX_THREADS);
    if threads <= 1 || !POOL.acquire() {
        #[cfg(feature = "kernel-times")]
        let start = crate::kernel_times::now();
        task(context, 0, iterations, scratch);
        #[cfg(feature = "kernel-times")]
        {
            let end = crate::kernel_times::now();
            crate::kernel_times::record(task as usize, iterations, start, end, end);
        }
        return;
    }
    let ranges = threads.min(POOL.ensure_workers(threads - 1) + 1);
    let job = Job { task, context, iterations, ranges, scratch_bytes };
    POOL.finished.store(0, Ordering::Relaxed);
    let number = job_number(POOL.posted.claim.load(Ordering::Relaxed)).wrapping_add(1) & ((1 << JOB_BITS) - 1);
    if number % REFRESH_RANGES_EVERY == 0 {
        POOL.ranges.iter().for_each(|word| word.refresh(number));
    }
    #[cfg(feature = "kernel-times")]
    let start = {
        crate::kernel_times::job_posted();
        crate::kernel_times::now()
    };
    POOL.posted.post(number, &job);
    POOL.wake_sleepers();
    let mine = POOL.run_pieces(&job, number, 0, &mut |job, begin, end| task(job.context, begin, end, scratch));
    #[cfg(feature = "kernel-times")]
    let mine_done = crate::kernel_times::now();
    // the pieces workers took: a short spin, then yield (a worker the
    // system put on this thread's CPU then gets to run)
    let mut spins = 0u32;
    while POOL.finished.load(Ordering::Acquire) != (iterations - mine) as u64 {
        spins += 1;
        if spins < WAIT_SPINS {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    #[cfg(feature = "kernel-times")]
    crate::kernel_times::record(task as usize, iterations, start, mine_done, crate::kernel_times::now());
    if POOL.out_of_memory.swap(false, Ordering::Relaxed) {
        OUT_OF_MEMORY.with(|o| o.set(true));
    }
    POOL.owner.store(false, Ordering::Release);
}

impl Pool {
    fn acquire(&self) -> bool {
        self.owner.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    fn wake_sleepers(&self) {
        let sleeping = self.sleep.lock().unwrap_or_else(|e| e.into_inner());
        if *sleeping > 0 {
            self.wake.notify_all();
        }
    }

    /// Runs the pieces of job `number`'s home range `home` from the front,
    /// then those left in the other ranges from their backs. Returns how
    /// many iterations it ran. `job` is the job as read after its claim: a
    /// worker late for job `number` may have read some of the next one's
    /// fields, but then it takes no piece.
    fn run_pieces(&self, job: &Job, number: u64, home: usize, run: &mut dyn FnMut(&Job, i64, i64)) -> i64 {
        let mut done = 0;
        for range in (0..job.ranges).map(|k| (home + k) % job.ranges) {
            let (begin, end) = chunk(job.iterations, range, job.ranges);
            while let Some(piece) = self.ranges[range].take(number, range != home, pieces(end - begin)) {
                let (begin, end) = job.piece(range, piece);
                #[cfg(feature = "line-sharing")]
                crate::line_sharing::set_thread(range);
                run(job, begin, end);
                done += end - begin;
            }
        }
        #[cfg(feature = "line-sharing")]
        crate::line_sharing::set_thread(home);
        done
    }

    /// Starts workers until there are `count`; returns how many there are
    /// (fewer if the system has no more threads).
    fn ensure_workers(&'static self, count: usize) -> usize {
        let started = self.started.load(Ordering::Relaxed);
        if started >= count {
            return started;
        }
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        while workers.len() < count {
            let seen = job_number(self.posted.claim.load(Ordering::Acquire));
            let home = workers.len() + 1;
            let name = format!("aotc-worker-{home}");
            match std::thread::Builder::new().name(name).spawn(move || self.work(home, seen)) {
                Ok(handle) => workers.push(handle),
                Err(_) => break,
            }
        }
        self.started.store(workers.len(), Ordering::Relaxed);
        workers.len()
    }

    /// The loop of the worker whose home range is `home`: it takes part in
    /// jobs with more ranges than that.
    fn work(&self, home: usize, mut seen: u64) {
        let mut scratch = Scratch::default();
        while let Some(claim) = self.next_job(seen) {
            seen = job_number(claim);
            let job = self.posted.job(claim);
            if home >= job.ranges {
                continue;
            }
            let done = self.run_pieces(&job, seen, home, &mut |job, begin, end| {
                let own = scratch.get(job.scratch_bytes);
                if own.is_null() && job.scratch_bytes > 0 {
                    self.out_of_memory.store(true, Ordering::Relaxed);
                } else {
                    unsafe { (job.task)(job.context, begin, end, own) };
                }
            });
            if done > 0 {
                #[cfg(feature = "kernel-times")]
                crate::kernel_times::worker_done();
                self.finished.fetch_add(done as u64, Ordering::Release);
            }
        }
    }

    /// Waits for a job after number `seen` and returns its claim (None:
    /// exit): spins (and yields) for [`SPIN`], then sleeps.
    fn next_job(&self, seen: u64) -> Option<u64> {
        let started = Instant::now();
        let mut spins = 0u32;
        let current = || job_number(self.posted.claim.load(Ordering::Acquire));
        loop {
            if self.exit.load(Ordering::Acquire) {
                return None;
            }
            let claim = self.posted.claim.load(Ordering::Acquire);
            if job_number(claim) != seen {
                return Some(claim);
            }
            spins += 1;
            if spins % SPINS_PER_YIELD != 0 {
                std::hint::spin_loop();
                continue;
            }
            if started.elapsed() < SPIN {
                std::thread::yield_now();
                continue;
            }
            let mut sleeping = self.sleep.lock().unwrap_or_else(|e| e.into_inner());
            *sleeping += 1;
            while current() == seen && !self.exit.load(Ordering::Acquire) {
                sleeping = self.wake.wait(sleeping).unwrap_or_else(|e| e.into_inner());
            }
            *sleeping -= 1;
            drop(sleeping);
            spins = 0;
        }
    }

    /// Stops and joins every worker (no job runs: the caller owns the pool).
    fn shut_down(&self) {
        while !self.acquire() {
            std::thread::yield_now();
        }
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        self.started.store(0, Ordering::Relaxed);
        if !workers.is_empty() {
            self.exit.store(true, Ordering::Release);
            {
                let _sleeping = self.sleep.lock().unwrap_or_else(|e| e.into_inner());
                self.wake.notify_all();
            }
            for w in workers {
                let _ = w.join();
            }
            self.exit.store(false, Ordering::Release);
        }
        self.owner.store(false, Ordering::Release);
    }
}

/// A handle was created.
pub(crate) fn handle_created() {
    POOL.handles.fetch_add(1, Ordering::AcqRel);
}

/// A handle was freed: the last one stops the workers.
pub(crate) fn handle_freed() {
    if POOL.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
        #[cfg(feature = "kernel-times")]
        crate::kernel_times::print();
        #[cfg(feature = "line-sharing")]
        crate::line_sharing::print();
        POOL.shut_down();
    }
}

/// How many threads the pool has started (for tests).
pub fn workers() -> usize {
    POOL.workers.lock().unwrap_or_else(|e| e.into_inner()).len()
}

/// The default thread count of a new handle: `AOTC_NUM_THREADS` when it is
/// a positive number, else the CPUs this process may run on (its affinity
/// mask and CPU quota, not the machine's core count).
pub fn default_threads() -> usize {
    let from_env = std::env::var("AOTC_NUM_THREADS").ok().and_then(|v| v.trim().parse::<usize>().ok()).filter(|&n| n > 0);
    from_env.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The tests that use the pool run one at a time: a handle held by one
/// would keep the pool of another alive, and a kernel that finds the pool
/// running another's runs on its caller alone (these tests' own and
/// `derived`'s, whose weight transforms run on the pool).
#[cfg(test)]
pub(crate) static POOL_TESTS: Mutex<()> = Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_range_in_order() {
        for (n, parts) in [(10, 3), (7, 7), (2, 1), (1000, 16), (5, 2)] {
            let chunks: Vec<(i64, i64)> = (0..parts).map(|p| chunk(n, p, parts)).collect();
            assert_eq!(chunks[0].0, 0);
            assert_eq!(chunks[parts - 1].1, n);
            assert!(chunks.windows(2).all(|w| w[0].1 == w[1].0));
            let sizes: Vec<i64> = chunks.iter().map(|(b, e)| e - b).collect();
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1, "{sizes:?}");
        }
    }

    unsafe extern "C" fn mark(context: *const c_void, begin: i64, end: i64, _scratch: *mut u8) {
        let slots = context as *const AtomicUsize;
        for i in begin..end {
            (*slots.add(i as usize)).fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn pieces_cover_each_home_range_in_order() {
        for (iterations, ranges) in [(37, 2), (3, 3), (1000, 16), (9, 2), (70000, 5)] {
            let job = Job { task: mark, context: std::ptr::null(), iterations, ranges, scratch_bytes: 0 };
            let mut next = 0;
            for range in 0..ranges {
                let (begin, end) = chunk(iterations, range, ranges);
                for piece in 0..pieces(end - begin) {
                    let (from, to) = job.piece(range, piece);
                    assert!(from == next && to > from, "{iterations} in {ranges}: range {range} piece {piece}");
                    next = to;
                }
                assert_eq!(next, end);
            }
            assert_eq!(next, iterations);
        }
    }

    #[test]
    fn pieces_get_smaller_towards_the_back() {
        for n in [1, 4, 8, 37, 288, 70000] {
            let parts = pieces(n);
            let sizes: Vec<i64> = (0..parts).map(|k| tapered(n, k, parts)).map(|(a, b)| b - a).collect();
            assert_eq!(sizes.iter().sum::<i64>(), n);
            assert!(sizes.iter().all(|&s| s >= 1) && sizes[0] >= sizes[parts - 1], "{n}: {sizes:?}");
        }
        assert_eq!(tapered(288, 0, 8), (0, 67));
        assert_eq!(tapered(288, 7, 8), (283, 288));
        // as many pieces as iterations: one each
        assert_eq!((0..8).map(|k| tapered(8, k, 8)).collect::<Vec<_>>(), (0..8).map(|k| (k, k + 1)).collect::<Vec<_>>());
    }

    thread_local! {
        static CALLER: Cell<bool> = const { Cell::new(false) };
    }

    /// Set when iteration 8 has started, and when iteration 9 is done.
    static EIGHT_STARTED: AtomicBool = AtomicBool::new(false);
    static NINE_DONE: AtomicBool = AtomicBool::new(false);

    /// Waits (up to 5 s) for `flag`.
    fn wait_for(flag: &AtomicBool) {
        let start = Instant::now();
        while !flag.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// Records which thread ran each iteration (2: the caller, 1: a
    /// worker). Iteration 0 waits until iteration 8 has started, and
    /// iteration 8 until iteration 9 is done: whoever runs 8 is held up
    /// while another thread takes the rest of its range.
    unsafe extern "C" fn record(context: *const c_void, begin: i64, end: i64, _scratch: *mut u8) {
        let slots = context as *const AtomicUsize;
        for i in begin..end {
            match i {
                0 => wait_for(&EIGHT_STARTED),
                8 => {
                    EIGHT_STARTED.store(true, Ordering::Release);
                    wait_for(&NINE_DONE);
                }
                _ => {}
            }
            (*slots.add(i as usize)).store(if CALLER.with(|c| c.get()) { 2 } else { 1 }, Ordering::Relaxed);
            if i == 9 {
                NINE_DONE.store(true, Ordering::Release);
            }
        }
    }

    #[test]
    fn pieces_of_a_slow_thread_are_taken_over() {
        let _one = POOL_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        handle_created();
        // 16 iterations at 2 threads: the caller's range is 0..8, the
        // worker's 8..16 (pieces of one iteration). The caller waits in
        // iteration 0 for the worker to start iteration 8, which waits for
        // iteration 9: the caller, done with its range, runs 15 down to 9.
        let slots: Vec<AtomicUsize> = (0..16).map(|_| AtomicUsize::new(0)).collect();
        let mut scratch = Scratch::default();
        CALLER.with(|c| c.set(true));
        let ran = with_threads(2, &mut scratch, || unsafe { aotc_rt_parallel_for(16, record, slots.as_ptr() as *const c_void, 0) });
        CALLER.with(|c| c.set(false));
        handle_freed();
        assert!(ran);
        let by: Vec<usize> = slots.iter().map(|s| s.load(Ordering::Relaxed)).collect();
        assert_eq!(by[8], 1, "the worker's first piece ran on the worker: {by:?}");
        assert!(by[9..].iter().all(|&b| b == 2), "the rest of the worker's range ran on the caller: {by:?}");
        assert!(by[..8].iter().all(|&b| b == 2), "{by:?}");
    }

    #[test]
    fn a_range_word_of_an_older_job_has_all_its_pieces_left() {
        let range = Range::new();
        // job 0 (never posted) is older than job 1: all 3 pieces left
        assert_eq!(range.take(1, false, 3), Some(0));
        assert_eq!(range.take(1, true, 3), Some(2));
        assert_eq!(range.take(1, false, 3), Some(1));
        assert_eq!(range.take(1, false, 3), None);
        // a late thread of job 1 takes nothing once job 2 has started here
        assert_eq!(range.take(2, true, 2), Some(1));
        assert_eq!(range.take(1, false, 3), None);
        // the owner's refresh makes the word older than its job
        range.refresh(7);
        assert_eq!(range.take(7, false, 1), Some(0));
        assert_eq!(range.take(7, false, 1), None);
        // numbers compare modulo 2^48
        let last = (1u64 << JOB_BITS) - 1;
        assert!(is_older(last, 0) && is_older(last - 5, 3) && !is_older(3, last - 5) && !is_older(4, 4));
        range.refresh(0);
        assert_eq!(job_number(range.0.load(Ordering::Relaxed)), last);
        assert_eq!(range.take(0, true, 4), Some(3));
    }

    #[test]
    fn many_jobs_in_a_row_run_each_iteration_once() {
        // workers late for one job while the next is posted, ranges that
        // some jobs do not use (different thread counts), 1 to 40 iterations
        let _one = POOL_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        handle_created();
        let slots: Vec<AtomicUsize> = (0..40).map(|_| AtomicUsize::new(0)).collect();
        let mut scratch = Scratch::default();
        for round in 0..20000usize {
            let (threads, iterations) = (1 + round % 4, 1 + (round * 7) % 40);
            let ran = with_threads(threads, &mut scratch, || unsafe { aotc_rt_parallel_for(iterations as i64, mark, slots.as_ptr() as *const c_void, 0) });
            assert!(ran);
            for (i, slot) in slots.iter().enumerate() {
                assert_eq!(slot.swap(0, Ordering::Relaxed), (i < iterations) as usize, "round {round}: {threads} threads, {iterations} iterations");
            }
        }
        handle_freed();
    }

    #[test]
    fn every_iteration_runs_once_at_any_thread_count() {
        let _one = POOL_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        handle_created();
        for threads in [1, 2, 3, 5] {
            let slots: Vec<AtomicUsize> = (0..37).map(|_| AtomicUsize::new(0)).collect();
            let mut scratch = Scratch::default();
            let ran = with_threads(threads, &mut scratch, || unsafe { aotc_rt_parallel_for(37, mark, slots.as_ptr() as *const c_void, 0) });
            assert!(ran);
            assert!(slots.iter().all(|s| s.load(Ordering::Relaxed) == 1), "{threads} threads");
        }
        handle_freed();
        assert_eq!(workers(), 0);
    }
}
