//! Whether a run uses the handle's threads or the calling thread alone,
//! chosen from the handle's own run times.
//!
//! Sharing a run's kernels pays when the threads' cores share a last-level
//! cache. On a machine whose cores sit on several dies (two CCDs of an
//! EPYC, two sockets; a VM whose vCPUs the host places on one die or two,
//! and moves every few seconds), each line one thread wrote and another
//! reads crosses between the dies, and a small model whose kernels are
//! short can run slower on two threads than on one: squeezenet on the
//! development VM, 5.4 ms on one thread, 3.0 ms on two on one die, 6.8 ms
//! on two on two dies. A run alone takes the same time wherever the cores
//! are, so the handle times a run alone now and then, and uses its threads
//! while their runs are the faster:
//!
//! - the first [`WARMUP`] runs use the threads, untimed, the next
//!   [`FIRST_SHARED`] too, timed, and the next one runs alone;
//! - then each run takes the way whose recent runs were faster (alone: the
//!   median of the last [`SAMPLES`]; on the threads: that median, or the
//!   last run when it was faster), and every [`RETRY_ALONE`]th run (while
//!   the threads are faster) or [`RETRY_THREADS`]th run (while alone is)
//!   takes the other way, to follow a placement that changes.
//!
//! Outputs are the same either way (every kernel computes the same values
//! on any number of threads). `AOTC_ADAPTIVE_THREADS=0` turns the choice
//! off: every run uses the handle's threads.

use std::time::Duration;

/// Runs on the handle's threads whose times are not kept (the arena's
/// first touches, a worker starting).
const WARMUP: u64 = 3;
/// Timed runs on the handle's threads before the first run alone.
const FIRST_SHARED: usize = 2;
/// While the threads are faster, one run in this many runs alone: it only
/// refreshes a time that does not depend on where the cores are.
const RETRY_ALONE: u64 = 1024;
/// While alone is faster, one run in this many uses the threads, to see
/// whether their cores are close again (squeezenet: such a run costs 1.4 ms
/// over 16 runs of 5.4).
const RETRY_THREADS: u64 = 16;
/// Run times kept per way; their median is the way's time (one run slowed
/// by the system does not flip the choice).
const SAMPLES: usize = 4;

/// The last run times of one way.
#[derive(Debug, Default, Clone)]
struct Times {
    last: [Duration; SAMPLES],
    count: usize,
}

impl Times {
    fn add(&mut self, time: Duration) {
        self.last[self.count % SAMPLES] = time;
        self.count += 1;
    }

    /// The last time kept.
    fn latest(&self) -> Option<Duration> {
        (self.count > 0).then(|| self.last[(self.count - 1) % SAMPLES])
    }

    /// The median of the kept times (of the two middle ones, the mean).
    fn typical(&self) -> Option<Duration> {
        let n = self.count.min(SAMPLES);
        if n == 0 {
            return None;
        }
        // (a copy on the stack: a run allocates nothing)
        let mut kept = self.last;
        let kept = &mut kept[..n];
        kept.sort();
        Some((kept[(n - 1) / 2] + kept[n / 2]) / 2)
    }
}

/// One handle's choice (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct ThreadChoice {
    /// The thread count the times are for (they restart when it changes).
    threads: usize,
    runs: u64,
    shared: Times,
    alone: Times,
}

impl ThreadChoice {
    /// The threads the next run uses, of the handle's `threads`.
    pub(crate) fn threads_for_run(&mut self, threads: usize) -> usize {
        if threads <= 1 || !adaptive() {
            return threads;
        }
        if threads != self.threads {
            *self = ThreadChoice { threads, ..ThreadChoice::default() };
        }
        self.runs += 1;
        if self.runs <= WARMUP || self.shared.count < FIRST_SHARED {
            return threads;
        }
        let (Some(shared), Some(alone)) = (self.shared.typical(), self.alone.typical()) else { return 1 };
        // one fast run on the threads is enough to take them again (their
        // cores are close again: a retry every RETRY_THREADS runs finds it),
        // one slow run not enough to leave them
        let shared = shared.min(self.shared.latest().unwrap_or(shared));
        let alone_faster = alone < shared;
        let (faster, other, retry) = if alone_faster { (1, threads, RETRY_THREADS) } else { (threads, 1, RETRY_ALONE) };
        if self.runs % retry == 0 {
            other
        } else {
            faster
        }
    }

    /// Records the time of a run made with `used` threads of the handle's.
    pub(crate) fn record(&mut self, used: usize, time: Duration) {
        if self.threads <= 1 {
            return;
        }
        if self.runs <= WARMUP {
            // (first touches of the arena, a worker starting)
            return;
        }
        if used <= 1 { &mut self.alone } else { &mut self.shared }.add(time);
    }
}

/// Whether the choice is on (`AOTC_ADAPTIVE_THREADS` is not `0`).
fn adaptive() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("AOTC_ADAPTIVE_THREADS").map_or(true, |v| v.trim() != "0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(x: u64) -> Duration {
        Duration::from_millis(x)
    }

    /// Runs `n` runs at 2 threads, each taking `shared` or `alone` ms;
    /// returns the threads each used.
    fn runs(choice: &mut ThreadChoice, n: usize, shared: u64, alone: u64) -> Vec<usize> {
        (0..n)
            .map(|_| {
                let used = choice.threads_for_run(2);
                choice.record(used, ms(if used > 1 { shared } else { alone }));
                used
            })
            .collect()
    }

    #[test]
    fn threads_kept_while_faster_alone_tried_rarely() {
        let mut choice = ThreadChoice::default();
        let used = runs(&mut choice, 3000, 3, 5);
        assert_eq!(&used[..7], &[2, 2, 2, 2, 2, 1, 2]);
        let alone = used.iter().filter(|&&t| t == 1).count();
        assert!((2..=4).contains(&alone), "{alone} runs alone of 3000");
    }

    #[test]
    fn alone_when_threads_are_slower_and_back_when_they_are_not() {
        let mut choice = ThreadChoice::default();
        let used = runs(&mut choice, 200, 7, 5);
        let shared_late = used[100..].iter().filter(|&&t| t > 1).count();
        assert!((5..=8).contains(&shared_late), "{shared_late} of 100 runs on the threads");
        // the cores come close again: the next retry takes the threads back
        let used = runs(&mut choice, 100, 3, 5);
        assert!(used[16..].iter().all(|&t| t == 2), "{used:?}");
    }

    #[test]
    fn one_slow_run_does_not_flip_the_choice() {
        let mut choice = ThreadChoice::default();
        runs(&mut choice, 10, 3, 5);
        choice.record(2, ms(50));
        assert!(runs(&mut choice, 20, 3, 5).iter().all(|&t| t == 2));
    }

    #[test]
    fn one_thread_and_a_new_count() {
        let mut choice = ThreadChoice::default();
        assert_eq!(choice.threads_for_run(1), 1);
        runs(&mut choice, 10, 7, 5);
        assert_eq!(choice.threads_for_run(3), 3, "a new count starts over on its threads");
    }
}
