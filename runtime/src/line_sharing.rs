//! Which cache lines change threads, kernel by kernel, for the developers
//! (cargo feature `line-sharing`; no shipped build has it). A library
//! compiled with `aotc --trace-memory` calls [`aotc_rt_trace`] before every
//! load and store of its functions, with the function's name; this module
//! keeps, per 64-byte line, the thread that wrote it last and the threads
//! that read it since, and counts per function and thread the accesses
//! that move a line between threads, by how (`benches/cross_core.c`'s
//! turns table gives what each costs when the threads' cores share no last
//! level cache):
//!
//! - `remote_read`: reading a line another thread wrote, the first time
//!   since it did (~2.5x a private read);
//! - `over_read`: writing a line this thread wrote last that another thread
//!   read since (~11x a private write: the other core's copy must be
//!   invalidated first);
//! - `over_written`: writing a line another thread wrote last, not read by
//!   this thread since (~2.5x);
//! - `after_reading`: writing a line another thread wrote last, which this
//!   thread read since (like a private write).
//!
//! Each counts lines, once per change of the line's state. When the last
//! handle is freed the table goes to stderr; `tools/line_sharing.py`
//! compiles the model, runs it on two threads and prints it per run.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::{c_char, CStr};
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// This thread's id: threads are numbered in the order of their first
/// access (the calling thread of a run first, then the workers).
fn thread_id() -> u8 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! { static ID: Cell<Option<u8>> = const { Cell::new(None) }; }
    ID.with(|id| match id.get() {
        Some(i) => i,
        None => {
            let i = NEXT.fetch_add(1, Ordering::Relaxed).min(THREADS - 1) as u8;
            id.set(Some(i));
            i
        }
    })
}

/// Records an access of `bytes` bytes at `address` (a write when `write`
/// is not 0) by the function named `function` (a C string that lives as
/// long as the library).
///
/// # Safety
/// `function` must be a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn aotc_rt_trace(address: *const u8, bytes: i64, write: i32, function: *const c_char) {
    let thread = thread_id();
    let first = address as usize / 64;
    let last = (address as usize + bytes.max(1) as usize - 1) / 64;
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let state = state.get_or_insert_with(State::default);
    for line in first..=last {
        let entry = state.lines.entry(line).or_insert(Line { writer: NOBODY, readers: 0 });
        let (moved, next) = access(*entry, thread, write != 0);
        *entry = next;
        if let Some(m) = moved {
            state.counts.entry((function as usize, thread)).or_insert([0; MOVES])[m as usize] += 1;
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
    fn traced_accesses_count_per_function_and_thread() {
        static NAME: &CStr = c"kernel_under_test";
        let data = vec![0u8; 320];
        // four whole lines
        let address = (data.as_ptr() as usize).next_multiple_of(64);
        let p = address as *const u8;
        let other = std::thread::spawn(move || {
            // this thread writes all four lines...
            unsafe { aotc_rt_trace(address as *const u8, 256, 1, NAME.as_ptr()) };
        });
        other.join().unwrap();
        // ...then another reads two of them and writes all four
        unsafe {
            aotc_rt_trace(p, 128, 0, NAME.as_ptr());
            aotc_rt_trace(p, 256, 1, NAME.as_ptr());
        }
        let state = STATE.lock().unwrap().take().unwrap();
        let moves: Vec<[u64; MOVES]> = state.counts.iter().filter(|((f, _), _)| *f == NAME.as_ptr() as usize).map(|(_, c)| *c).collect();
        assert_eq!(moves.len(), 1, "{moves:?}");
        assert_eq!(moves[0], [2, 0, 2, 2]);
    }
}
