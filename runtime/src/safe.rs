//! A safe Rust API over any generated library's C API.
//!
//! ```ignore
//! extern "C" { fn simple_net_api() -> *const aotc_runtime::safe::Api; }
//! let mut model = unsafe { aotc_runtime::safe::Model::new(simple_net_api()) }?;
//! let outputs = model.run_f32(&[&input])?;
//! ```

use crate::{dtype_name, dtype_size, TensorInfo, AOTC_OK};
use std::ffi::{c_void, CStr};

/// Opaque handle type of the C API (`AotcModel`).
pub use crate::abi::Handle as RawModel;
/// The function table every generated library returns from `<prefix>_api()`.
pub use crate::abi::Api;

/// An input or output as Rust sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub dtype: &'static str,
    pub shape: Vec<i64>,
    pub bytes: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{} (status {})", self.message, self.code)
    }
}

impl std::error::Error for Error {}

/// One model instance: owns its arena and buffers.
pub struct Model {
    api: &'static Api,
    raw: *mut RawModel,
    pub inputs: Vec<Tensor>,
    pub outputs: Vec<Tensor>,
}

impl Model {
    /// # Safety
    /// `api` must be the table returned by a generated library's `<prefix>_api()`.
    pub unsafe fn new(api: *const Api) -> Result<Model, Error> {
        let api: &'static Api = &*api;
        let mut raw = std::ptr::null_mut();
        let code = (api.create)(&mut raw);
        if code != AOTC_OK {
            return Err(Error { code, message: CStr::from_ptr((api.last_error)(std::ptr::null())).to_string_lossy().into() });
        }
        let mut model = Model { api, raw, inputs: Vec::new(), outputs: Vec::new() };
        for (outputs, count) in [(false, (api.num_inputs)(raw)), (true, (api.num_outputs)(raw))] {
            for i in 0..count {
                let mut info = std::mem::zeroed::<TensorInfo>();
                let f = if outputs { api.output_info } else { api.input_info };
                model.check(f(raw, i, &mut info))?;
                let shape = std::slice::from_raw_parts(info.shape, info.rank as usize).to_vec();
                let bytes = shape.iter().product::<i64>() as usize * dtype_size(info.dtype);
                let t = Tensor {
                    name: CStr::from_ptr(info.name).to_string_lossy().into(),
                    dtype: dtype_name(info.dtype),
                    shape,
                    bytes,
                };
                if outputs { model.outputs.push(t) } else { model.inputs.push(t) }
            }
        }
        Ok(model)
    }

    fn check(&self, code: i32) -> Result<(), Error> {
        if code == AOTC_OK {
            return Ok(());
        }
        let message = unsafe { CStr::from_ptr((self.api.last_error)(self.raw)) }.to_string_lossy().into();
        Err(Error { code, message })
    }

    /// Sets how many threads this handle's runs use (at least 1; the
    /// default is `AOTC_NUM_THREADS`, else the CPUs the process may run on).
    pub fn set_num_threads(&mut self, threads: usize) -> Result<(), Error> {
        let threads = i32::try_from(threads).unwrap_or(i32::MAX);
        self.check(unsafe { (self.api.set_num_threads)(self.raw, threads) })
    }

    /// This handle's thread count.
    pub fn num_threads(&self) -> usize {
        unsafe { (self.api.num_threads)(self.raw) }.max(1) as usize
    }

    /// Runs on raw bytes; sizes are checked by the runtime.
    pub fn run_bytes(&mut self, inputs: &[&[u8]], outputs: &mut [&mut [u8]]) -> Result<(), Error> {
        if inputs.len() != self.inputs.len() || outputs.len() != self.outputs.len() {
            return Err(Error {
                code: crate::AOTC_ERROR_INDEX,
                message: format!(
                    "the model takes {} inputs and {} outputs, got {} and {}",
                    self.inputs.len(),
                    self.outputs.len(),
                    inputs.len(),
                    outputs.len()
                ),
            });
        }
        let in_ptrs: Vec<*const c_void> = inputs.iter().map(|b| b.as_ptr() as *const c_void).collect();
        let in_sizes: Vec<usize> = inputs.iter().map(|b| b.len()).collect();
        let out_ptrs: Vec<*mut c_void> = outputs.iter_mut().map(|b| b.as_mut_ptr() as *mut c_void).collect();
        let out_sizes: Vec<usize> = outputs.iter().map(|b| b.len()).collect();
        let code = unsafe { (self.api.run)(self.raw, in_ptrs.as_ptr(), in_sizes.as_ptr(), out_ptrs.as_ptr(), out_sizes.as_ptr()) };
        self.check(code)
    }

    /// Runs a model whose inputs and outputs are all float32.
    pub fn run_f32(&mut self, inputs: &[&[f32]]) -> Result<Vec<Vec<f32>>, Error> {
        let in_bytes: Vec<&[u8]> = inputs
            .iter()
            .map(|x| unsafe { std::slice::from_raw_parts(x.as_ptr() as *const u8, std::mem::size_of_val(*x)) })
            .collect();
        let mut outs: Vec<Vec<f32>> = self.outputs.iter().map(|o| vec![0f32; o.bytes / 4]).collect();
        let mut out_bytes: Vec<&mut [u8]> = outs
            .iter_mut()
            .map(|o| unsafe { std::slice::from_raw_parts_mut(o.as_mut_ptr() as *mut u8, o.len() * 4) })
            .collect();
        self.run_bytes(&in_bytes, &mut out_bytes)?;
        Ok(outs)
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        unsafe { (self.api.free)(self.raw) }
    }
}
