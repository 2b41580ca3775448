//! The aotc runtime, linked into every generated library.
//!
//! A generated library holds a constant [`ModelDesc`] (written by the
//! compiler in C: argument roles, shapes, the weights blob, the arena size
//! and the compiled entry point) and forwards its `<prefix>_*` C functions to
//! the `aotc_rt_*` functions here. The runtime owns per-handle state: mutable
//! buffer copies, the activation arena (one allocation per handle, reused by
//! every run). A handle runs on one thread at a time: a run that starts
//! while another thread is running the same handle returns
//! `AOTC_ERROR_BUSY` (never a wrong result); create one handle per thread
//! to run in parallel. Errors are kept per calling thread, like `errno`:
//! `last_error(model)` is the message of this thread's last failed call on
//! `model`, and a call on `model` that succeeds clears it.
//!
//! [`safe`] wraps the same C API for Rust programs.

pub mod abi;
mod derived;
#[cfg(feature = "kernel-times")]
pub mod kernel_times;
#[cfg(feature = "line-sharing")]
pub mod line_sharing;
pub mod pool;
pub mod safe;
mod thread_choice;
pub mod winograd;

use std::cell::{RefCell, UnsafeCell};
use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub use abi::*;


/// Blocks at least this large are aligned to it and, on Linux, advised to
/// use transparent huge pages: one 2 MiB page where 512 small ones would
/// each need a TLB entry. A model's arena is megabytes that every run walks
/// through (mobilenet_v2: 10 MB).
const HUGE_PAGE: usize = 2 << 20;

/// Zeroed heap memory, 64-byte aligned (2 MiB aligned from 2 MiB on).
pub(crate) struct AlignedBytes {
    ptr: std::ptr::NonNull<u8>,
    layout: std::alloc::Layout,
    pub(crate) len: usize,
}

// Owned memory, like a Vec<u8>.
unsafe impl Send for AlignedBytes {}
unsafe impl Sync for AlignedBytes {}

impl AlignedBytes {
    pub(crate) fn zeroed(len: usize) -> Option<AlignedBytes> {
        let bytes = Self::for_overwrite(len)?;
        unsafe { std::ptr::write_bytes(bytes.ptr.as_ptr(), 0, bytes.layout.size()) };
        Some(bytes)
    }
    /// Memory whose contents are unspecified until written: only for
    /// data that is written in full before it is read.
    pub(crate) fn for_overwrite(len: usize) -> Option<AlignedBytes> {
        let size = len.max(1).checked_next_multiple_of(64)?;
        let align = if size >= HUGE_PAGE { HUGE_PAGE } else { 64 };
        let layout = std::alloc::Layout::from_size_align(size, align).ok()?;
        let ptr = std::ptr::NonNull::new(unsafe { std::alloc::alloc(layout) })?;
        // advised before the first write, which is when pages are chosen
        if align == HUGE_PAGE {
            advise_huge_pages(ptr.as_ptr(), size);
        }
        Some(AlignedBytes { ptr, layout, len })
    }
    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        let len = self.len;
        unsafe { std::slice::from_raw_parts_mut(self.as_mut_ptr(), len) }
    }
}

impl Drop for AlignedBytes {
    fn drop(&mut self) {
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// `madvise(MADV_HUGEPAGE)`: a hint, followed when transparent huge pages
/// are `madvise` or `always` and the kernel has free huge pages; when it
/// is not, the memory keeps small pages and nothing else changes.
#[cfg(target_os = "linux")]
fn advise_huge_pages(ptr: *mut u8, len: usize) {
    extern "C" {
        fn madvise(addr: *mut c_void, len: usize, advice: std::ffi::c_int) -> std::ffi::c_int;
    }
    const MADV_HUGEPAGE: std::ffi::c_int = 14;
    unsafe { madvise(ptr as *mut c_void, len, MADV_HUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_ptr: *mut u8, _len: usize) {}

pub struct Model {
    desc: &'static ModelDesc,
    /// Set while a run uses `state`: a run that finds it set (another
    /// thread is running this handle) returns AOTC_ERROR_BUSY.
    busy: AtomicBool,
    /// Threads its parallel kernels may use (see `pool`).
    threads: AtomicUsize,
    /// The weights the runtime made from the blob (shared with the model's
    /// other handles).
    derived: std::sync::Arc<derived::Derived>,
    state: UnsafeCell<RunState>,
}

/// What a run writes; only the thread that holds `busy` touches it.
struct RunState {
    arena: AlignedBytes,
    /// Mutable copies of buffers, by argument index.
    buffers: Vec<Option<AlignedBytes>>,
    /// One memref descriptor per entry argument (the arena's last), built at
    /// create; a run only stores the data pointers, so it allocates nothing.
    descriptors: Vec<Vec<i64>>,
    /// The address of each descriptor, as the entry point takes them (the
    /// descriptors' heap storage never moves).
    descriptor_pointers: Vec<*mut c_void>,
    /// The temporaries of parallel kernels' chunks on the calling thread.
    scratch: pool::Scratch,
    /// Whether a run uses the threads or the calling thread alone.
    thread_choice: thread_choice::ThreadChoice,
}

thread_local! {
    /// This thread's last error: the handle it concerns (0 for create and
    /// for calls on a null handle) and the message.
    static LAST_ERROR: RefCell<(usize, CString)> = RefCell::new((0, CString::default()));
}

/// Records the error of a call on `model` (null for create) for this
/// thread; returns `code`.
fn fail(model: *const Model, code: i32, message: &str) -> i32 {
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = (model as usize, message));
    code
}

/// Clears this thread's error about `model` after a call that succeeded.
fn succeed(model: *const Model) -> i32 {
    LAST_ERROR.with(|e| {
        let mut e = e.borrow_mut();
        if e.0 == model as usize {
            *e = (0, CString::default());
        }
    });
    AOTC_OK
}

/// Holds a handle's `busy` flag for the length of one run.
struct RunGuard<'a>(&'a AtomicBool);

impl<'a> RunGuard<'a> {
    fn acquire(flag: &'a AtomicBool) -> Option<RunGuard<'a>> {
        flag.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).ok().map(|_| RunGuard(flag))
    }
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Model {
    fn args(&self) -> &'static [ArgDesc] {
        unsafe { std::slice::from_raw_parts(self.desc.args, self.desc.num_args as usize) }
    }

    fn infos(&self, outputs: bool) -> &'static [TensorInfo] {
        let (ptr, n) = if outputs {
            (self.desc.outputs, self.desc.num_outputs)
        } else {
            (self.desc.inputs, self.desc.num_inputs)
        };
        if n == 0 {
            return &[];
        }
        unsafe { std::slice::from_raw_parts(ptr, n as usize) }
    }
}

/// Bytes of a tensor described by an info record.
fn info_bytes(info: &TensorInfo) -> usize {
    let shape = unsafe { std::slice::from_raw_parts(info.shape, info.rank as usize) };
    shape.iter().product::<i64>() as usize * dtype_size(info.dtype)
}

/// Element sizes by `AOTC_DTYPE_*` code.
pub fn dtype_size(dtype: u32) -> usize {
    abi::dtype(dtype).map_or(1, |(_, size)| size)
}

pub fn dtype_name(dtype: u32) -> &'static str {
    abi::dtype(dtype).map_or("unknown", |(name, _)| name)
}

fn set_data(descriptor: &mut [i64], data: *mut u8) {
    descriptor[0] = data as i64;
    descriptor[1] = data as i64;
}

/// A memref descriptor: {allocated, aligned, offset, sizes[r], strides[r]}.
fn descriptor(ptr: *mut u8, shape: &[i64]) -> Vec<i64> {
    let rank = shape.len();
    let mut d = vec![0i64; 3 + 2 * rank];
    d[0] = ptr as i64;
    d[1] = ptr as i64;
    let mut stride = 1i64;
    for i in (0..rank).rev() {
        d[3 + i] = shape[i];
        d[3 + rank + i] = stride;
        stride *= shape[i].max(1);
    }
    d
}

/// # Safety
/// `desc` must point to a descriptor written by the aotc compiler that
/// lives for the program's lifetime; `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn aotc_rt_create(desc: *const ModelDesc, out: *mut *mut Model) -> i32 {
    let none = ptr::null();
    if out.is_null() || desc.is_null() {
        return fail(none, AOTC_ERROR_NULL_POINTER, "create: the output pointer is null");
    }
    *out = ptr::null_mut();
    let desc: &'static ModelDesc = &*desc;
    if desc.abi_version != ABI_VERSION {
        return fail(none, AOTC_ERROR_INDEX, "create: the library was built for another runtime ABI version");
    }
    let derived = match derived::for_model(desc) {
        Ok(derived) => derived,
        Err((code, message)) => return fail(none, code, &message),
    };
    let Some(arena) = AlignedBytes::zeroed(desc.arena_bytes as usize) else {
        return fail(none, AOTC_ERROR_OUT_OF_MEMORY, &format!("create: cannot allocate the {}-byte arena", desc.arena_bytes));
    };
    let args = std::slice::from_raw_parts(desc.args, desc.num_args as usize);
    let mut buffers = Vec::with_capacity(args.len());
    for arg in args {
        if arg.role != ROLE_BUFFER && arg.role != ROLE_MUTATION {
            buffers.push(None);
            continue;
        }
        let Some(mut copy) = AlignedBytes::zeroed(arg.bytes as usize) else {
            return fail(none, AOTC_ERROR_OUT_OF_MEMORY, &format!("create: cannot allocate a {}-byte buffer", arg.bytes));
        };
        if arg.role == ROLE_BUFFER {
            let initial = std::slice::from_raw_parts(desc.weights.add(arg.offset as usize), arg.bytes as usize);
            copy.as_mut_slice().copy_from_slice(initial);
        }
        buffers.push(Some(copy));
    }
    let mut descriptors: Vec<Vec<i64>> = args
        .iter()
        .map(|a| descriptor(ptr::null_mut(), std::slice::from_raw_parts(a.shape, a.rank as usize)))
        .collect();
    descriptors.push(descriptor(ptr::null_mut(), &[desc.arena_bytes as i64]));
    let descriptor_pointers = descriptors.iter_mut().map(|d| d.as_mut_ptr() as *mut c_void).collect();
    let state = RunState { arena, buffers, descriptors, descriptor_pointers, scratch: pool::Scratch::default(), thread_choice: Default::default() };
    let threads = AtomicUsize::new(pool::default_threads());
    let model = Box::new(Model { desc, busy: AtomicBool::new(false), threads, derived, state: UnsafeCell::new(state) });
    pool::handle_created();
    *out = Box::into_raw(model);
    succeed(none)
}

/// # Safety
/// `model` must come from `aotc_rt_create` (or be null), and no other
/// thread may be using it.
#[no_mangle]
pub unsafe extern "C" fn aotc_rt_free(model: *mut Model) {
    if !model.is_null() {
        drop(Box::from_raw(model));
        pool::handle_freed();
    }
}

/// Sets how many threads the handle's runs use (from the next run on; a
/// run uses the calling thread alone while that is measured faster, see
/// `thread_choice`). Below 1 is an error (`AOTC_ERROR_INVALID_ARGUMENT`);
/// more than the machine has is allowed (the extra threads share its
/// cores).
///
/// # Safety
/// `model` must come from `aotc_rt_create` (or be null).
#[no_mangle]
pub unsafe extern "C" fn aotc_rt_set_num_threads(model: *mut Model, threads: i32) -> i32 {
    let Some(m) = (model as *const Model).as_ref() else {
        return fail(model, AOTC_ERROR_NULL_POINTER, "set_num_threads: the model handle is null");
    };
    if threads < 1 {
        return fail(model, AOTC_ERROR_INVALID_ARGUMENT, &format!("set_num_threads: {threads} threads (at least 1)"));
    }
    m.threads.store(threads as usize, Ordering::Relaxed);
    succeed(model)
}

/// The handle's thread count (-1 for a null handle).
///
/// # Safety
/// `model` must come from `aotc_rt_create` (or be null).
#[no_mangle]
pub unsafe extern "C" fn aotc_rt_num_threads(model: *const Model) -> i32 {
    model.as_ref().map_or(-1, |m| m.threads.load(Ordering::Relaxed).min(i32::MAX as usize) as i32)
}

/// # Safety
/// `model` must come from `aotc_rt_create` (or be null).
#[no_mangle]
pub unsafe extern "C" fn aotc_rt_num_inputs(model: *const Model) -> i32 {
    model.as_ref().map_or(-1, |m| m.desc.num_inputs as i32)
}

/// # Safety
/// `model` must come from `aotc_rt_create` (or be null).
#[no_mangle]
pub unsafe extern "C" fn aotc_rt_num_outputs(model: *const Model) -> i32 {
    model.as_ref().map_or(-1, |m| m.desc.num_outputs as i32)
}

unsafe fn tensor_info(model: *const Model, index: i32, info: *mut TensorInfo, outputs: bool) -> i32 {
    let kind = if outputs { "output" } else { "input" };
    let Some(m) = model.as_ref() else {
        return fail(model, AOTC_ERROR_NULL_POINTER, &format!("{kind}_info: the model handle is null"));
    };
    if info.is_null() {
        return fail(model, AOTC_ERROR_NULL_POINTER, &format!("{kind}_info: the info pointer is null"));
    }
    let infos = m.infos(outputs);
    match usize::try_from(index).ok().and_then(|i| infos.get(i)) {
        Some(i) => {
            *info = *i;
            succeed(model)
        }
        None => fail(model, AOTC_ERROR_INDEX, &format!("{kind}_info: index {index} is out of range (the model has {})", infos.len())),
    }
}

/// # Safety
/// `model` must come from `aotc_rt_create`; `info` must be writable.
#[no_mangle]
pub unsafe extern "C" fn aotc_rt_input_info(model: *mut Model, index: i32, info: *mut TensorInfo) -> i32 {
    tensor_info(model, index, info, false)
}

/// # Safety
/// `model` must come from `aotc_rt_create`; `info` must be writable.
#[no_mangle]
pub unsafe extern "C" fn aotc_rt_output_info(model: *mut Model, index: i32, info: *mut TensorInfo) -> i32 {
    tensor_info(model, index, info, true)
}

/// Checks the caller's buffers against the model: one pointer and the
/// exact byte size per tensor. A tensor with no elements may be null.
unsafe fn check_buffers(
    m: &Model,
    inputs: *const *const c_void,
    input_bytes: *const usize,
    outputs: *const *mut c_void,
    output_bytes: *const usize,
) -> Result<(), (i32, String)> {
    let (n_in, n_out) = (m.desc.num_inputs as usize, m.desc.num_outputs as usize);
    if (n_in > 0 && (inputs.is_null() || input_bytes.is_null())) || (n_out > 0 && (outputs.is_null() || output_bytes.is_null())) {
        return Err((AOTC_ERROR_NULL_POINTER, "run: null inputs/outputs array".into()));
    }
    let checks = [(false, inputs as *const *mut c_void, input_bytes), (true, outputs, output_bytes)];
    for (is_output, pointers, sizes) in checks {
        let infos = m.infos(is_output);
        let kind = if is_output { "output" } else { "input" };
        for (i, info) in infos.iter().enumerate() {
            let name = CStr::from_ptr(info.name).to_string_lossy();
            let (given, expected) = (*sizes.add(i), info_bytes(info));
            if (*pointers.add(i)).is_null() && expected > 0 {
                return Err((AOTC_ERROR_NULL_POINTER, format!("run: {kind} {i} ('{name}') is a null pointer")));
            }
            if given != expected {
                let shape = std::slice::from_raw_parts(info.shape, info.rank as usize);
                let message = format!(
                    "run: {kind} {i} ('{name}') has {given} bytes but {} {shape:?} needs {expected}",
                    dtype_name(info.dtype)
                );
                return Err((AOTC_ERROR_SIZE_MISMATCH, message));
            }
        }
    }
    Ok(())
}

/// Runs the model. `inputs[i]` points to `input_bytes[i]` bytes for input
/// `i` (contiguous, row-major, the dtype and shape `input_info` reports);
/// outputs likewise. Sizes must match exactly.
///
/// # Safety
/// `model` must come from `aotc_rt_create`; each non-null buffer pointer
/// must be valid for the number of bytes given beside it.
#[no_mangle]
pub unsafe extern "C" fn aotc_rt_run(
    model: *mut Model,
    inputs: *const *const c_void,
    input_bytes: *const usize,
    outputs: *const *mut c_void,
    output_bytes: *const usize,
) -> i32 {
    // Shared access only: another thread may hold the same pointer.
    let Some(m) = (model as *const Model).as_ref() else {
        return fail(model, AOTC_ERROR_NULL_POINTER, "run: the model handle is null");
    };
    if let Err((code, message)) = check_buffers(m, inputs, input_bytes, outputs, output_bytes) {
        return fail(model, code, &message);
    }
    let Some(_guard) = RunGuard::acquire(&m.busy) else {
        return fail(model, AOTC_ERROR_BUSY, "run: another thread is running this model handle (use one handle per thread)");
    };
    let state = &mut *m.state.get();
    let args = m.args();
    for (k, arg) in args.iter().enumerate() {
        let data = match arg.role {
            ROLE_WEIGHT => m.derived.data(k).unwrap_or_else(|| m.desc.weights.add(arg.offset as usize) as *mut u8),
            ROLE_BUFFER | ROLE_MUTATION => state.buffers[k].as_mut().map_or(ptr::null_mut(), |b| b.as_mut_ptr()),
            ROLE_INPUT => *inputs.add(arg.index as usize) as *mut u8,
            _ => *outputs.add(arg.index as usize) as *mut u8,
        };
        set_data(&mut state.descriptors[k], data);
    }
    let arena = state.arena.as_mut_ptr();
    let last = state.descriptors.len() - 1;
    set_data(&mut state.descriptors[last], arena);
    let threads = state.thread_choice.threads_for_run(m.threads.load(Ordering::Relaxed));
    let start = std::time::Instant::now();
    if !pool::with_threads(threads, &mut state.scratch, || (m.desc.entry)(state.descriptor_pointers.as_ptr())) {
        return fail(model, AOTC_ERROR_OUT_OF_MEMORY, "run: cannot allocate a thread's scratch memory (the outputs are not valid)");
    }
    state.thread_choice.record(threads, start.elapsed());
    // Mutated buffers take their new values for the next run.
    for (k, arg) in args.iter().enumerate() {
        if arg.role == ROLE_MUTATION {
            let staging = state.buffers[k].as_mut().map(|b| b.as_mut_ptr());
            let target = state.buffers[arg.index as usize].as_mut().map(|b| b.as_mut_ptr());
            if let (Some(src), Some(dst)) = (staging, target) {
                ptr::copy_nonoverlapping(src, dst, arg.bytes as usize);
            }
        }
    }
    succeed(model)
}

/// This thread's last error message for `model` (for `model` null: of the
/// last failed create, or call on a null handle), or "" when the last call
/// succeeded. Never null.
///
/// # Safety
/// `model` may be any pointer: it is only compared, never read.
#[no_mangle]
pub unsafe extern "C" fn aotc_rt_last_error(model: *const Model) -> *const c_char {
    static EMPTY: &[u8; 1] = b"\0";
    LAST_ERROR.with(|e| {
        let e = e.borrow();
        if e.0 == model as usize {
            // The CString lives in this thread's slot until the next error.
            e.1.as_ptr()
        } else {
            EMPTY.as_ptr() as *const c_char
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_are_row_major() {
        let d = descriptor(64 as *mut u8, &[2, 3, 4]);
        assert_eq!(&d[2..], &[0, 2, 3, 4, 12, 4, 1]);
    }

    #[test]
    fn aligned_bytes_are_aligned() {
        let mut b = AlignedBytes::zeroed(100).unwrap();
        assert_eq!(b.as_mut_ptr() as usize % 64, 0);
        assert_eq!(b.as_mut_slice().len(), 100);
        let mut big = AlignedBytes::zeroed(HUGE_PAGE + 1).unwrap();
        assert_eq!(big.as_mut_ptr() as usize % HUGE_PAGE, 0);
        assert!(big.as_mut_slice().iter().all(|&b| b == 0));
        assert_eq!(big.as_mut_slice().len(), HUGE_PAGE + 1);
    }
}
