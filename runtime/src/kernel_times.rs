//! Each parallel kernel's wall time, for the developers (cargo feature
//! `kernel-times`; no shipped build has it): every call of
//! `aotc_rt_parallel_for` adds its kernel's time, how long the calling
//! thread waited for the workers' pieces once its own were done, and how
//! long before that the workers had run out of pieces. When the last
//! handle is freed the table goes to stderr, each kernel by its address
//! (the task the compiled code passes), with the address of
//! `aotc_rt_parallel_for` to place them: `tools/kernel_times.py` names the
//! kernels from the library's symbols and prints them at each thread count
//! and placement of the two CPUs.
//!
//! Kernels that stay on the calling thread are not called through the
//! pool and are not in the table (they are small by construction).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// One kernel's totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub task: usize,
    pub iterations: i64,
    pub calls: u64,
    pub nanos: u64,
    /// The caller waiting for the workers' last pieces.
    pub caller_wait_nanos: u64,
    /// The workers out of pieces while the caller still ran its own.
    pub workers_idle_nanos: u64,
}

static ROWS: Mutex<Vec<Row>> = Mutex::new(Vec::new());

/// When the last worker of the current job ran out of pieces.
static WORKERS_DONE: AtomicU64 = AtomicU64::new(0);

/// Nanoseconds since the first call: one clock for every thread.
pub fn now() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// A worker has no piece left of the current job.
pub fn worker_done() {
    WORKERS_DONE.fetch_max(now(), Ordering::Relaxed);
}

/// A job is posted: forget the previous job's workers.
pub fn job_posted() {
    WORKERS_DONE.store(0, Ordering::Relaxed);
}

/// Adds one call of `task` over `iterations`, posted at `start`, whose
/// caller ran out of its own pieces at `mine` and saw every piece done at
/// `end` (a call run on the caller alone: `mine == end`, no workers).
pub fn record(task: usize, iterations: i64, start: u64, mine: u64, end: u64) {
    record_with(task, iterations, start, mine, end, WORKERS_DONE.load(Ordering::Relaxed));
}

/// [`record`] with the time the workers ran out of pieces (0: none did
/// in this call).
fn record_with(task: usize, iterations: i64, start: u64, mine: u64, end: u64, workers_done: u64) {
    let idle = if workers_done > start { mine.saturating_sub(workers_done) } else { 0 };
    let mut rows = ROWS.lock().unwrap_or_else(|e| e.into_inner());
    let row = match rows.iter_mut().find(|r| r.task == task) {
        Some(row) => row,
        None => {
            rows.push(Row { task, iterations, calls: 0, nanos: 0, caller_wait_nanos: 0, workers_idle_nanos: 0 });
            rows.last_mut().expect("just pushed")
        }
    };
    row.calls += 1;
    row.nanos += end - start;
    row.caller_wait_nanos += end - mine;
    row.workers_idle_nanos += idle;
}

/// The table so far, emptied.
pub fn take() -> Vec<Row> {
    std::mem::take(&mut *ROWS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Prints the table to stderr (see the module's comment) and empties it.
pub fn print() {
    let rows = take();
    if rows.is_empty() {
        return;
    }
    eprintln!("aotc-kernel-times parallel_for {:#x}", crate::pool::aotc_rt_parallel_for as *const () as usize);
    for r in rows {
        eprintln!(
            "aotc-kernel-time {:#x} iterations {} calls {} ns {} caller_wait_ns {} workers_idle_ns {}",
            r.task, r.iterations, r.calls, r.nanos, r.caller_wait_nanos, r.workers_idle_nanos
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table is one per process: these tests take turns, and each
    /// looks only at its own (made-up) kernels, since other tests' kernels
    /// run on the pool meanwhile.
    static TURN: Mutex<()> = Mutex::new(());

    fn rows_of(tasks: &[usize]) -> Vec<Row> {
        let mut rows: Vec<Row> = take().into_iter().filter(|r| tasks.contains(&r.task)).collect();
        rows.sort_by_key(|r| r.task);
        rows
    }

    #[test]
    fn calls_add_up_per_kernel() {
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        record_with(1, 10, 100, 150, 170, 0);
        record_with(2, 4, 200, 260, 260, 0);
        record_with(1, 10, 300, 340, 345, 0);
        assert_eq!(
            rows_of(&[1, 2]),
            [
                Row { task: 1, iterations: 10, calls: 2, nanos: 115, caller_wait_nanos: 25, workers_idle_nanos: 0 },
                Row { task: 2, iterations: 4, calls: 1, nanos: 60, caller_wait_nanos: 0, workers_idle_nanos: 0 },
            ]
        );
        assert!(rows_of(&[1, 2]).is_empty());
    }

    #[test]
    fn workers_idle_counts_from_their_last_piece_to_the_callers() {
        let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
        // workers done at 300, the caller's own pieces at 500
        record_with(7, 2, 100, 500, 520, 300);
        // the workers' time is from an older call: not this one's
        record_with(8, 2, 100, 500, 500, 50);
        let rows = rows_of(&[7, 8]);
        assert_eq!((rows[0].workers_idle_nanos, rows[0].caller_wait_nanos), (200, 20));
        assert_eq!(rows[1].workers_idle_nanos, 0);
    }
}
