//! The worker pool that runs parallel kernels.
//!
//! One pool per process, shared by every handle of every model linked with
//! this runtime. Its threads are started on the first parallel kernel that
//! wants them (no thread exists before a model runs with more than one),
//! spin for a short while after each piece of work (kernels follow each
//! other within microseconds during a run) and then sleep on a condition
//! variable: an idle pool between runs uses no CPU. When the last handle is
//! freed, the threads are told to exit and joined, so a library can be
//! unloaded once its handles are freed.
//!
//! A compiled kernel whose outer loop is parallel is called through
//! [`aotc_rt_parallel_for`] with its iteration count: the range is cut into
//! one contiguous chunk per thread (static chunking, chunk `i` of `t` is
//! `[n*i/t, n*(i+1)/t)`), the calling thread and the workers take chunks
//! until none is left, and the call returns when all are done. Every
//! iteration computes the same values wherever it runs, so results do not
//! depend on the thread count.
//!
//! Several handles running at once on several caller threads never start
//! more threads than the pool has: a kernel that finds the pool working for
//! another caller runs on its own calling thread alone. With `c` callers
//! and `t` threads per handle, at most `c + t - 1` threads compute.

use std::cell::{Cell, UnsafeCell};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A chunk of a parallel kernel: `task(context, begin, end, scratch)` runs
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

/// How long a worker spins for the next piece of work before it sleeps.
const SPIN: Duration = Duration::from_micros(200);

/// How many times a caller spins for the workers' chunks before it yields
/// its CPU between checks (a few microseconds).
const WAIT_SPINS: u32 = 2048;

thread_local! {
    /// The thread count of the run on this thread (its handle's setting)
    /// and the handle's scratch, which the calling thread's chunks use.
    static RUN: Cell<(usize, *mut Scratch)> = const { Cell::new((1, std::ptr::null_mut())) };
    /// Set when a kernel of this thread's run could not get its scratch
    /// (some of its iterations did not run): the run fails.
    static OUT_OF_MEMORY: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a run) with parallel kernels using up to `threads` threads,
/// the calling thread's chunks `scratch`.
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
    scratch_bytes: usize,
}

/// `claim` packs the job number, its chunk count and the next chunk to
/// take: `(job << 32) | (chunks << 16) | next`. Threads take chunks with a
/// compare-and-swap that fails once the job has changed, so a worker late
/// for a job never takes a chunk of the next one, and reads the job only
/// after taking one of its chunks (the owner replaces the job only when all
/// its chunks are done).
const CHUNK_BITS: u32 = 16;
const MAX_CHUNKS: usize = (1 << CHUNK_BITS) - 1;

fn job_number(claim: u64) -> u64 {
    claim >> 32
}

fn chunks_of(claim: u64) -> usize {
    ((claim >> CHUNK_BITS) & MAX_CHUNKS as u64) as usize
}

fn next_of(claim: u64) -> usize {
    (claim & MAX_CHUNKS as u64) as usize
}

struct Pool {
    /// Held by the one caller whose kernel the workers run (and by the
    /// shutdown): a kernel that cannot take it runs on its caller alone.
    owner: AtomicBool,
    /// See [`CHUNK_BITS`]; workers wait for the job number to change.
    claim: AtomicU64,
    /// Written by the owner before it publishes a new `claim`; read by a
    /// thread after it took one of the job's chunks.
    job: UnsafeCell<Option<Job>>,
    /// Chunks of the current job finished.
    finished: AtomicUsize,
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

// The job cell is written only by the owner while no chunk of the job in it
// is taken and unfinished; see `claim`.
unsafe impl Sync for Pool {}

static POOL: Pool = Pool {
    owner: AtomicBool::new(false),
    claim: AtomicU64::new(0),
    job: UnsafeCell::new(None),
    finished: AtomicUsize::new(0),
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
    let at = |p: usize| ((n as i128 * p as i128) / parts as i128) as i64;
    (at(part), at(part + 1))
}

/// Runs `task` over `[0, iterations)` on up to the run's thread count: one
/// chunk per thread, `[n*i/t, n*(i+1)/t)` for chunk `i` of `t` (the same
/// chunks whoever runs them). The calling thread takes chunks too, so a
/// worker that the system has not scheduled yet delays nothing: the caller
/// runs its chunk.
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
    let threads = threads.min(iterations.max(0) as usize).min(MAX_CHUNKS);
    if threads <= 1 || !POOL.acquire() {
        task(context, 0, iterations, scratch);
        return;
    }
    let chunks = threads.min(POOL.ensure_workers(threads - 1) + 1);
    *POOL.job.get() = Some(Job { task, context, iterations, scratch_bytes });
    POOL.finished.store(0, Ordering::Relaxed);
    let number = job_number(POOL.claim.load(Ordering::Relaxed)).wrapping_add(1) & 0xffff_ffff;
    let claim = (number << 32) | ((chunks as u64) << CHUNK_BITS);
    POOL.claim.store(claim, Ordering::Release);
    POOL.wake_sleepers();
    POOL.run_chunks(number, &mut |job, begin, end| task(job.context, begin, end, scratch));
    // the chunks workers took: a short spin, then yield (a worker the
    // system put on this thread's CPU then gets to run)
    let mut spins = 0u32;
    while POOL.finished.load(Ordering::Acquire) != chunks {
        spins += 1;
        if spins < WAIT_SPINS {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
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

    /// Takes and runs chunks of job `number` until none is left.
    fn run_chunks(&self, number: u64, run: &mut dyn FnMut(&Job, i64, i64)) {
        loop {
            let claim = self.claim.load(Ordering::Acquire);
            if job_number(claim) != number || next_of(claim) >= chunks_of(claim) {
                return;
            }
            if self.claim.compare_exchange_weak(claim, claim + 1, Ordering::AcqRel, Ordering::Acquire).is_err() {
                continue;
            }
            let job = unsafe { (*self.job.get()).expect("a job is published before its chunks") };
            let (begin, end) = chunk(job.iterations, next_of(claim), chunks_of(claim));
            run(&job, begin, end);
            self.finished.fetch_add(1, Ordering::Release);
        }
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
            let seen = job_number(self.claim.load(Ordering::Acquire));
            let name = format!("aotc-worker-{}", workers.len() + 1);
            match std::thread::Builder::new().name(name).spawn(move || self.work(seen)) {
                Ok(handle) => workers.push(handle),
                Err(_) => break,
            }
        }
        self.started.store(workers.len(), Ordering::Relaxed);
        workers.len()
    }

    fn work(&self, mut seen: u64) {
        let mut scratch = Scratch::default();
        while let Some(number) = self.next_job(seen) {
            seen = number;
            self.run_chunks(number, &mut |job, begin, end| {
                let own = scratch.get(job.scratch_bytes);
                if own.is_null() && job.scratch_bytes > 0 {
                    self.out_of_memory.store(true, Ordering::Relaxed);
                } else {
                    unsafe { (job.task)(job.context, begin, end, own) };
                }
            });
        }
    }

    /// Waits for a job after number `seen` (None: exit): spins for
    /// [`SPIN`], then sleeps.
    fn next_job(&self, seen: u64) -> Option<u64> {
        let started = Instant::now();
        let mut spins = 0u32;
        let current = || job_number(self.claim.load(Ordering::Acquire));
        loop {
            if self.exit.load(Ordering::Acquire) {
                return None;
            }
            if current() != seen {
                return Some(current());
            }
            spins += 1;
            if spins % 64 != 0 || started.elapsed() < SPIN {
                std::hint::spin_loop();
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
    fn every_iteration_runs_once_at_any_thread_count() {
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
