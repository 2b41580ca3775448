//! Weights that the runtime makes from the library's blob (an argument
//! whose `transform` is not `TRANSFORM_NONE`): made when the first handle
//! of a model is created, shared by all the model's handles in the process,
//! and freed with the last of them. A library stores a 3x3 weight once
//! instead of its Winograd transform, n^2/9 times as large (resnet18: 47
//! instead of 82 MB).

use crate::abi::*;
use crate::AlignedBytes;
use std::ffi::c_void;
use std::sync::{Arc, Mutex, Weak};

/// The derived data of one model's weight arguments, by argument index.
pub(crate) struct Derived {
    by_arg: Vec<Option<AlignedBytes>>,
}

impl Derived {
    /// The data of argument `k` if the runtime made it.
    pub(crate) fn data(&self, k: usize) -> Option<*mut u8> {
        self.by_arg.get(k)?.as_ref().map(|b| b.as_ptr() as *mut u8)
    }
}

/// The models whose derived weights are alive, by descriptor address.
static MADE: Mutex<Vec<(usize, Weak<Derived>)>> = Mutex::new(Vec::new());

/// The derived weights of `desc`'s model: those its live handles share, or
/// new ones. The error is the status and message of a failed create.
pub(crate) fn for_model(desc: &'static ModelDesc) -> Result<Arc<Derived>, (i32, String)> {
    // a poisoned lock only means another create panicked; the list is whole
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    made.retain(|(_, weak)| weak.strong_count() > 0);
    let key = desc as *const ModelDesc as usize;
    if let Some(alive) = made.iter().find(|(k, _)| *k == key).and_then(|(_, weak)| weak.upgrade()) {
        return Ok(alive);
    }
    let args = unsafe { std::slice::from_raw_parts(desc.args, desc.num_args as usize) };
    // the transforms run on the pool: this create counts as a handle
    // meanwhile, once for all of them (the last handle freed stops the
    // workers, which would otherwise start and stop for each weight)
    crate::pool::handle_created();
    let mut by_arg = Ok(Vec::new());
    crate::pool::with_threads(crate::pool::default_threads(), &mut crate::pool::Scratch::default(), || {
        by_arg = args.iter().map(|arg| derive(desc, arg)).collect::<Result<_, _>>();
    });
    crate::pool::handle_freed();
    let derived = Arc::new(Derived { by_arg: by_arg? });
    made.push((key, Arc::downgrade(&derived)));
    Ok(derived)
}

/// The data the runtime makes for `arg`, if it makes any.
fn derive(desc: &ModelDesc, arg: &ArgDesc) -> Result<Option<AlignedBytes>, (i32, String)> {
    let g: &[[f64; 3]] = match arg.transform {
        TRANSFORM_NONE => return Ok(None),
        TRANSFORM_WINOGRAD_F2 => &crate::winograd::G2,
        TRANSFORM_WINOGRAD_F4 => &crate::winograd::G4,
        other => return Err((AOTC_ERROR_INDEX, format!("create: unknown weight transform {other}"))),
    };
    let shape = unsafe { std::slice::from_raw_parts(arg.shape, arg.rank as usize) };
    let malformed = || (AOTC_ERROR_INDEX, format!("create: a Winograd weight of shape {shape:?} does not match its transform"));
    let (f, c, panel) = match *shape {
        [e, f, c] if e as usize == g.len() * g.len() => (f, c, 1),
        [e, panels, c, panel] if e as usize == g.len() * g.len() => (panels * panel, c, panel),
        _ => return Err(malformed()),
    };
    let (f, c, panel) = (f as usize, c as usize, panel as usize);
    if arg.bytes as usize != g.len() * g.len() * f * c * 4 {
        return Err(malformed());
    }
    // not zeroed: the transform writes every element, on the pool's
    // threads, which also take the first-touch page faults
    let Some(mut out) = AlignedBytes::for_overwrite(arg.bytes as usize) else {
        return Err((AOTC_ERROR_OUT_OF_MEMORY, format!("create: cannot allocate a {}-byte weight", arg.bytes)));
    };
    let stored = unsafe { desc.weights.add(arg.offset as usize) };
    let copy: Vec<f32>;
    let weights = if stored as usize % std::mem::align_of::<f32>() == 0 && cfg!(target_endian = "little") {
        // read in place (the blob is 64-byte aligned): a copy would be as
        // many fresh pages for the kernel to clear
        unsafe { std::slice::from_raw_parts(stored as *const f32, f * c * 9) }
    } else {
        let bytes = unsafe { std::slice::from_raw_parts(stored, f * c * 9 * 4) };
        copy = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        &copy
    };
    let job = TransformJob { weights, f, c, m: crate::winograd::coefficient_rows(g), panel, u: out.as_mut_ptr() as *mut f32 };
    // on the pool's threads (`for_model` sets it up)
    unsafe { crate::pool::aotc_rt_parallel_for(f as i64, transform_some_filters, &job as *const TransformJob as *const c_void, 0) };
    Ok(Some(out))
}

/// One weight's filter transform, shared among the pool's threads by
/// filters (see `winograd::transform_filters`).
struct TransformJob<'a> {
    weights: &'a [f32],
    f: usize,
    c: usize,
    m: Vec<[f64; 9]>,
    panel: usize,
    /// 64-byte aligned, `m.len() * f * c` elements
    u: *mut f32,
}

/// A `pool::Task`: filters `[begin, end)` of the `TransformJob` at `context`.
unsafe extern "C" fn transform_some_filters(context: *const c_void, begin: i64, end: i64, _scratch: *mut u8) {
    let job = &*(context as *const TransformJob);
    crate::winograd::transform_filters(job.weights, job.f, job.c, &job.m, job.panel, job.u, begin as usize..end as usize);
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn no_entry(_: *const *mut std::ffi::c_void) {}

    /// A model with one weight argument of `shape` stored as `weights`,
    /// transformed by `transform` (leaked: descriptors live forever).
    fn model(weights: Vec<f32>, shape: Vec<i64>, transform: u32) -> &'static ModelDesc {
        let blob: &'static [u8] = Vec::leak(weights.iter().flat_map(|v| v.to_le_bytes()).collect());
        let shape: &'static [i64] = Vec::leak(shape);
        let bytes = shape.iter().product::<i64>() as u64 * 4;
        let arg = ArgDesc { role: ROLE_WEIGHT, index: 0, offset: 0, bytes, rank: shape.len() as u32, shape: shape.as_ptr(), transform };
        let args: &'static [ArgDesc] = Vec::leak(vec![arg]);
        Box::leak(Box::new(ModelDesc {
            abi_version: ABI_VERSION,
            name: c"t".as_ptr(),
            num_args: 1,
            args: args.as_ptr(),
            num_inputs: 0,
            inputs: std::ptr::null(),
            num_outputs: 0,
            outputs: std::ptr::null(),
            arena_bytes: 0,
            weights: blob.as_ptr(),
            entry: no_entry,
        }))
    }

    #[test]
    fn handles_of_a_model_share_its_transformed_weights() {
        let _one = crate::pool::POOL_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        // 4 filters of 2 channels in row panels of 2: [16, 2, 2, 2]
        let weights: Vec<f32> = (0..72).map(|i| i as f32 / 7.0).collect();
        let desc = model(weights.clone(), vec![16, 2, 2, 2], TRANSFORM_WINOGRAD_F2);
        let first = for_model(desc).unwrap();
        let second = for_model(desc).unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        let mut want = vec![0.0f32; 128];
        crate::winograd::filter_transform(&weights, 4, 2, &crate::winograd::G2, 2, &mut want);
        let got = unsafe { std::slice::from_raw_parts(first.data(0).unwrap() as *const f32, 128) };
        assert_eq!(got, &want[..]);
        // made again once the last handle is gone
        drop((first, second));
        assert_eq!(MADE.lock().unwrap().iter().filter(|(k, w)| *k == desc as *const _ as usize && w.strong_count() > 0).count(), 0);
        let again = for_model(desc).unwrap();
        assert_eq!(unsafe { std::slice::from_raw_parts(again.data(0).unwrap() as *const f32, 128) }, &want[..]);
    }

    #[test]
    fn a_transform_that_does_not_fit_its_shape_is_an_error() {
        let _one = crate::pool::POOL_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let desc = model(vec![0.0; 72], vec![36, 4, 2], TRANSFORM_WINOGRAD_F2);
        let (code, message) = for_model(desc).err().unwrap();
        assert_eq!(code, AOTC_ERROR_INDEX);
        assert!(message.contains("does not match its transform"), "{message}");
        let unknown = model(vec![0.0; 72], vec![16, 4, 2], 9);
        assert!(for_model(unknown).err().unwrap().1.contains("unknown weight transform 9"));
        let untouched = model(vec![0.0; 8], vec![8], TRANSFORM_NONE);
        assert!(for_model(untouched).unwrap().data(0).is_none());
    }
}
