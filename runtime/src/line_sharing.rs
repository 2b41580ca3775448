//! Which cache lines change threads, kernel by kernel, for the developers
//! (cargo feature `line-sharing`; no shipped build has it). A library
//! compiled with `aotc --trace-memory` calls [`aotc_rt_trace`] before every
//! load and store of its functions, with the function's name; this module
//! keeps, per 64-byte line, the thread that wrote it last and the threads
//! that read it since, and counts per function and thread the accesses
//! that move a line between threads, by how:
//!
//! - `remote_read`: reading a line another thread wrote, the first time
//!   since it did;
//! - `over_read`: writing a line this thread wrote last that another thread
//!   read since (the other core's copy must be invalidated first);
//! - `over_written`: writing a line another thread wrote last, not read by
//!   this thread since;
//! - `after_reading`: writing a line another thread wrote last, which this
//!   thread read since.
//!
//! What each costs when the threads' cores share no last-level cache:
//! `tools/line_sharing.py` (fitted on resnet18's kernels) and
//! `benches/cross_core.c`'s turns table (streaming passes).
//!
//! Each counts lines, once per change of the line's state. When the last
//! handle is freed the table goes to stderr; `tools/line_sharing.py`
//! compiles the model, runs it on two threads and prints it per run.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::{c_char, CStr};
use std::sync::Mutex;

/// How an access moved a line (see the module's comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    RemoteRead,
    OverRead,
    OverWritten,
    AfterReading,
}

const MOVES: usize = 4;
const NAMES: [&str; MOVES] = ["remote_read", "over_read", "over_written", "after_reading"];

/// The most threads told apart (more share the last id).
const THREADS: usize = 8;

/// A line's last writer (none: `NOBODY`) and the threads (bits) that read
/// it since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Line {
    writer: u8,
    readers: u8,
}

const NOBODY: u8 = u8::MAX;

/// The move an access of `thread` makes of a line in state `line`, and the
/// line's new state.
fn access(line: Line, thread: u8, write: bool) -> (Option<Move>, Line) {
    let me = 1u8 << thread;
    if !write {
        let remote = line.writer != NOBODY && line.writer != thread && line.readers & me == 0;
        return (remote.then_some(Move::RemoteRead), Line { readers: line.readers | me, ..line });
    }
    let others_read = line.readers & !me != 0;
    let moved = if line.writer == thread || line.writer == NOBODY {
        others_read.then_some(Move::OverRead)
    } else if line.readers & me != 0 {
        Some(Move::AfterReading)
    } else {
        Some(Move::OverWritten)
    };
    (moved, Line { writer: thread, readers: 0 })
}

#[derive(Default)]
struct State {
    lines: HashMap<usize, Line>,
    /// (function name, thread) -> lines per move
    counts: HashMap<(usize, u8), [u64; MOVES]>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

thread_local! {
    /// See [`set_thread`].
    static THREAD: Cell<u8> = const { Cell::new(0) };
}

/// The thread the accesses that follow count for: the home range of the
/// piece of a parallel kernel being run (the pool sets it), whichever
/// thread runs it, so that the counts follow the partition and not the
/// pieces that threads done early took over (tracing changes who is done
/// early); the caller's, 0, outside parallel kernels.
pub fn set_thread(range: usize) {
    THREAD.with(|t| t.set(range.min(THREADS - 1) as u8));
}

/// Records an access of `bytes` bytes at `address` (a write when `write`
/// is not 0) by the function named `function` (a C string that lives as
/// long as the library).
///
/// # Safety
/// `function` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn aotc_rt_trace(address: *const u8, bytes: i64, write: i32, function: *const c_char) {
    let thread = THREAD.with(|t| t.get());
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    state.get_or_insert_with(State::default).record(address as usize, bytes.max(1) as usize, write != 0, thread, function as usize);
}

impl State {
    /// An access of `bytes` at `address` by `thread` in `function`.
    fn record(&mut self, address: usize, bytes: usize, write: bool, thread: u8, function: usize) {
        for line in address / 64..=(address + bytes - 1) / 64 {
            let entry = self.lines.entry(line).or_insert(Line { writer: NOBODY, readers: 0 });
            let (moved, next) = access(*entry, thread, write);
            *entry = next;
            if let Some(m) = moved {
                self.counts.entry((function, thread)).or_insert([0; MOVES])[m as usize] += 1;
            }
        }
    }
}

/// Prints the counts to stderr, one line per function and thread that
/// moved a line, and forgets them.
pub fn print() {
    let Some(state) = STATE.lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
    for ((function, thread), counts) in state.counts {
        let name = unsafe { CStr::from_ptr(function as *const c_char) }.to_string_lossy();
        let fields: Vec<String> = NAMES.iter().zip(counts).map(|(n, c)| format!("{n} {c}")).collect();
        eprintln!("aotc-line-sharing {name} thread {thread} {}", fields.join(" "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(writer: u8, readers: u8) -> Line {
        Line { writer, readers }
    }

    #[test]
    fn reads_move_a_line_once_from_its_writer() {
        assert_eq!(access(line(0, 0), 1, false), (Some(Move::RemoteRead), line(0, 0b10)));
        assert_eq!(access(line(0, 0b10), 1, false), (None, line(0, 0b10)));
        assert_eq!(access(line(1, 0), 1, false), (None, line(1, 0b10)));
        assert_eq!(access(line(NOBODY, 0), 1, false), (None, line(NOBODY, 0b10)));
    }

    #[test]
    fn writes_are_told_apart_by_who_touched_the_line_since() {
        // the writer again, after the other thread read it
        assert_eq!(access(line(0, 0b10), 0, true), (Some(Move::OverRead), line(0, 0)));
        assert_eq!(access(line(0, 0b11), 0, true), (Some(Move::OverRead), line(0, 0)));
        // the writer again, nobody else read it: private
        assert_eq!(access(line(0, 0b01), 0, true), (None, line(0, 0)));
        // the other thread's line, not read by this one
        assert_eq!(access(line(1, 0), 0, true), (Some(Move::OverWritten), line(0, 0)));
        // the other thread's line, read by this one first
        assert_eq!(access(line(1, 0b01), 0, true), (Some(Move::AfterReading), line(0, 0)));
        // first touch
        assert_eq!(access(line(NOBODY, 0), 0, true), (None, line(0, 0)));
    }

    #[test]
    fn accesses_count_per_function_and_thread() {
        let mut state = State::default();
        // thread 1 writes four lines; thread 0 reads two of them, then
        // writes all four; thread 1 writes the first again (a line that
        // thread 0 wrote last and did not read since thread 1 did)
        state.record(4096, 256, true, 1, 7);
        state.record(4096, 128, false, 0, 7);
        state.record(4096, 256, true, 0, 7);
        state.record(4096, 4, true, 1, 8);
        assert_eq!(state.counts[&(7, 0)], [2, 0, 2, 2]);
        assert_eq!(state.counts[&(8, 1)], [0, 0, 1, 0]);
        assert_eq!(state.counts.len(), 2);
    }
}
