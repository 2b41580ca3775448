//! The C ABI of every library aotc generates, defined once.
//!
//! Each item below is written one time, in one of three macros that make
//! both its Rust form and a table the compiler writes C from
//! (`aotc::link` generates the public header, the C glue and the
//! `AotcApi` table from these tables):
//!
//! - [`constants!`]: the status codes, element types and argument roles:
//!   a Rust `const` each and a `(C name, value, comment)` table;
//! - [`structs!`]: the `#[repr(C)]` structs with the C type of each field;
//! - [`functions!`]: the C API's functions, in `AotcApi` order: the Rust
//!   [`Api`] table, the C signatures, and a compile-time check that each
//!   runtime function `aotc_rt_<name>` has the type of its `Api` field (a
//!   wrong Rust signature does not compile).
//!
//! Changing any of them changes [`ABI_VERSION`]: a library checks it when a
//! handle is created.

use std::ffi::{c_char, c_void};

/// The version of everything in this module.
pub const ABI_VERSION: u32 = 3;

/// A named integer of the ABI: (C name, value, comment).
pub type Constant<T> = (&'static str, T, &'static str);

macro_rules! constants {
    ($table:ident: $ty:ty { $( $(#[doc = $doc:literal])+ $name:ident = $value:literal, )* }) => {
        $( $(#[doc = $doc])+ pub const $name: $ty = $value; )*
        pub const $table: &[Constant<$ty>] = &[ $( (stringify!($name), $value, concat!($($doc),+)), )* ];
    };
}

constants!(STATUSES: i32 {
    /// Success.
    AOTC_OK = 0,
    /// A required pointer is null.
    AOTC_ERROR_NULL_POINTER = 1,
    /// A buffer's size is not the tensor's size in bytes.
    AOTC_ERROR_SIZE_MISMATCH = 2,
    /// An index out of range, or a library built for another ABI version.
    AOTC_ERROR_INDEX = 3,
    /// An allocation failed.
    AOTC_ERROR_OUT_OF_MEMORY = 4,
    /// Another thread is running the same handle.
    AOTC_ERROR_BUSY = 5,
    /// An argument out of its range (a thread count below 1).
    AOTC_ERROR_INVALID_ARGUMENT = 6,
});

constants!(DTYPES: u32 {
    /// float32
    AOTC_DTYPE_FLOAT32 = 0,
    /// float64
    AOTC_DTYPE_FLOAT64 = 1,
    /// float16
    AOTC_DTYPE_FLOAT16 = 2,
    /// bfloat16
    AOTC_DTYPE_BFLOAT16 = 3,
    /// int64
    AOTC_DTYPE_INT64 = 4,
    /// int32
    AOTC_DTYPE_INT32 = 5,
    /// int16
    AOTC_DTYPE_INT16 = 6,
    /// int8
    AOTC_DTYPE_INT8 = 7,
    /// uint8
    AOTC_DTYPE_UINT8 = 8,
    /// bool
    AOTC_DTYPE_BOOL = 9,
});

constants!(ROLES: u32 {
    /// A weight: read from the weights blob at `offset`.
    ROLE_WEIGHT = 0,
    /// A buffer: the handle's copy, initialized from the blob at `offset`.
    ROLE_BUFFER = 1,
    /// The caller's input `index`.
    ROLE_INPUT = 2,
    /// The caller's output `index`.
    ROLE_OUTPUT = 3,
    /// The new value of a buffer: written to staging in the handle, then copied into the buffer argument `index` after the run.
    ROLE_MUTATION = 4,
});

constants!(TRANSFORMS: u32 {
    /// The argument's data is the blob's bytes at `offset`.
    TRANSFORM_NONE = 0,
    /// A weight stored as f32 `[F, C, 3, 3]` that the runtime turns into Winograd F(2x2, 3x3)'s transformed filter, `[16, F / R, C, R]` (the argument's shape), when the model's first handle is created.
    TRANSFORM_WINOGRAD_F2 = 1,
    /// The same for F(4x4, 3x3): `[36, F / R, C, R]`.
    TRANSFORM_WINOGRAD_F4 = 2,
});

/// The name and size in bytes of an `AOTC_DTYPE_*` code.
pub fn dtype(code: u32) -> Option<(&'static str, usize)> {
    let (_, _, name) = DTYPES.iter().find(|(_, c, _)| *c == code)?;
    let size = match code {
        AOTC_DTYPE_FLOAT64 | AOTC_DTYPE_INT64 => 8,
        AOTC_DTYPE_FLOAT32 | AOTC_DTYPE_INT32 => 4,
        AOTC_DTYPE_FLOAT16 | AOTC_DTYPE_BFLOAT16 | AOTC_DTYPE_INT16 => 2,
        _ => 1,
    };
    Some((name.trim(), size))
}

/// One field of a C struct: (name, C declaration with `{}` where the name
/// goes).
pub type Field = (&'static str, &'static str);

macro_rules! structs {
    ($( $(#[doc = $doc:literal])+ struct $rust:ident as $c:literal / $fields_table:ident { $( $(#[doc = $fdoc:literal])* $field:ident: $cty:literal => $rty:ty, )* } )*) => {
        $(
            $(#[doc = $doc])+
            #[repr(C)]
            #[derive(Debug, Clone, Copy)]
            pub struct $rust { $( $(#[doc = $fdoc])* pub $field: $rty, )* }
            #[doc = concat!("The fields of `", $c, "` in C.")]
            pub const $fields_table: (&str, &[Field]) = ($c, &[ $( (stringify!($field), $cty), )* ]);
        )*
    };
}

structs! {
    /// Public description of one input or output (`AotcTensorInfo` in C):
    /// contiguous, row-major; `shape` has `rank` entries.
    struct TensorInfo as "AotcTensorInfo" / TENSOR_INFO {
        name: "const char *{}" => *const c_char,
        dtype: "uint32_t {}" => u32,
        rank: "uint32_t {}" => u32,
        shape: "const int64_t *{}" => *const i64,
    }

    /// One argument of the compiled entry point, in call order (private to
    /// the glue and the runtime).
    struct ArgDesc as "ArgDesc" / ARG_DESC {
        /// One of the `ROLE_*` codes.
        role: "uint32_t {}" => u32,
        /// Input or output index for ROLE_INPUT / ROLE_OUTPUT, the buffer's argument for ROLE_MUTATION.
        index: "uint32_t {}" => u32,
        /// Byte offset in the weights blob for ROLE_WEIGHT / ROLE_BUFFER.
        offset: "uint64_t {}" => u64,
        bytes: "uint64_t {}" => u64,
        rank: "uint32_t {}" => u32,
        shape: "const int64_t *{}" => *const i64,
        /// One of the `TRANSFORM_*` codes: how a ROLE_WEIGHT's data is made from the blob.
        transform: "uint32_t {}" => u32,
    }

    /// Everything the compiler knows about a model (private to the glue and
    /// the runtime).
    struct ModelDesc as "ModelDesc" / MODEL_DESC {
        abi_version: "uint32_t {}" => u32,
        name: "const char *{}" => *const c_char,
        num_args: "uint32_t {}" => u32,
        args: "const ArgDesc *{}" => *const ArgDesc,
        num_inputs: "uint32_t {}" => u32,
        inputs: "const AotcTensorInfo *{}" => *const TensorInfo,
        num_outputs: "uint32_t {}" => u32,
        outputs: "const AotcTensorInfo *{}" => *const TensorInfo,
        arena_bytes: "uint64_t {}" => u64,
        weights: "const uint8_t *{}" => *const u8,
        /// Calls the compiled function with one memref descriptor per argument, the arena's last.
        entry: "void (*{})(void *const *)" => unsafe extern "C" fn(descriptors: *const *mut c_void),
    }
}

/// One function of the C API: its name after `<prefix>_` (and
/// `aotc_rt_`), return type, parameters (C type, name) and comment.
#[derive(Debug, Clone, Copy)]
pub struct Function {
    pub name: &'static str,
    pub returns: &'static str,
    pub params: &'static [(&'static str, &'static str)],
    pub doc: &'static str,
    /// The runtime's function takes the model's `ModelDesc` first (the
    /// glue passes its own).
    pub takes_desc: bool,
}

/// The opaque handle (`AotcModel` in C).
pub type Handle = crate::Model;

macro_rules! present {
    () => {
        false
    };
    ($t:ty) => {
        true
    };
}

macro_rules! functions {
    ($( $(#[doc = $doc:literal])+ fn $name:ident($($param:ident: $cty:literal => $rty:ty),*) -> $cret:literal => $rret:ty = $runtime:path $(, with $desc:ty)?; )*) => {
        /// The function table every generated library returns from
        /// `<prefix>_api()` (`AotcApi` in C), in [`FUNCTIONS`] order.
        #[repr(C)]
        pub struct Api {
            pub abi_version: u32,
            $( pub $name: unsafe extern "C" fn($($rty),*) -> $rret, )*
        }

        /// The C API in `AotcApi` order.
        pub const FUNCTIONS: &[Function] = &[ $( Function {
            name: stringify!($name),
            returns: $cret,
            params: &[ $( ($cty, stringify!($param)), )* ],
            doc: concat!($($doc),+),
            takes_desc: present!($($desc)?),
        }, )* ];

        /// Each runtime function has the type of its table entry.
        const _: () = { $( let _: unsafe extern "C" fn($($desc,)? $($rty),*) -> $rret = $runtime; )* };
    };
}

functions! {
    /// Creates a model instance (weights shared, arena and buffers its own). 0 on success.
    fn create(out: "AotcModel **" => *mut *mut Handle) -> "int" => i32 = crate::aotc_rt_create, with *const ModelDesc;
    /// Frees a handle (NULL is ignored); the last handle freed stops the worker threads.
    fn free(model: "AotcModel *" => *mut Handle) -> "void" => () = crate::aotc_rt_free;
    /// How many inputs the model takes (-1 for NULL).
    fn num_inputs(model: "const AotcModel *" => *const Handle) -> "int" => i32 = crate::aotc_rt_num_inputs;
    /// How many outputs the model returns (-1 for NULL).
    fn num_outputs(model: "const AotcModel *" => *const Handle) -> "int" => i32 = crate::aotc_rt_num_outputs;
    /// The name, dtype and shape of input `index`.
    fn input_info(model: "AotcModel *" => *mut Handle, index: "int" => i32, info: "AotcTensorInfo *" => *mut TensorInfo) -> "int" => i32 = crate::aotc_rt_input_info;
    /// The name, dtype and shape of output `index`.
    fn output_info(model: "AotcModel *" => *mut Handle, index: "int" => i32, info: "AotcTensorInfo *" => *mut TensorInfo) -> "int" => i32 = crate::aotc_rt_output_info;
    /// Runs on caller buffers; every size must equal the tensor's size in bytes.
    fn run(model: "AotcModel *" => *mut Handle, inputs: "const void *const *" => *const *const c_void, input_bytes: "const size_t *" => *const usize, outputs: "void *const *" => *const *mut c_void, output_bytes: "const size_t *" => *const usize) -> "int" => i32 = crate::aotc_rt_run;
    /// This thread's last error on `model` (NULL: of create), "" after a call that succeeded. Never NULL.
    /// A handle runs on one thread at a time: a concurrent run returns AOTC_ERROR_BUSY.
    fn last_error(model: "const AotcModel *" => *const Handle) -> "const char *" => *const c_char = crate::aotc_rt_last_error;
    /// Sets the threads the handle's runs use (default: AOTC_NUM_THREADS, else the CPUs the process may run on).
    /// Below 1: AOTC_ERROR_INVALID_ARGUMENT. Handles share one worker pool; a run takes the calling
    /// thread alone while such runs are measured faster (see the README).
    fn set_num_threads(model: "AotcModel *" => *mut Handle, threads: "int" => i32) -> "int" => i32 = crate::aotc_rt_set_num_threads;
    /// The handle's thread count (-1 for NULL).
    fn num_threads(model: "const AotcModel *" => *const Handle) -> "int" => i32 = crate::aotc_rt_num_threads;
}

/// A C declaration of `name` with type `declaration` (`{}` marks where the
/// name goes: `void (*{})(int)`).
pub fn c_declaration(declaration: &str, name: &str) -> String {
    if declaration.contains("{}") {
        declaration.replace("{}", name)
    } else {
        format!("{declaration} {name}")
    }
}

/// `typedef struct <name> { ... } <name>;`
pub fn c_struct((name, fields): (&str, &[Field])) -> String {
    let body: Vec<String> = fields.iter().map(|(field, decl)| format!("  {};\n", c_declaration(decl, field))).collect();
    format!("typedef struct {name} {{\n{}}} {name};\n", body.concat())
}

/// `enum { NAME = value, ... };` with each comment.
pub fn c_enum<T: std::fmt::Display>(what: &str, constants: &[Constant<T>]) -> String {
    let rows: Vec<String> = constants.iter().map(|(name, value, doc)| format!("  {name} = {value}, /* {} */\n", doc.trim())).collect();
    format!("/* {what} */\nenum {{\n{}}};\n", rows.concat())
}

impl Function {
    /// The parameter list in C (`void` when empty).
    pub fn c_params(&self) -> String {
        if self.params.is_empty() {
            return "void".into();
        }
        self.params.iter().map(|(ty, name)| format!("{ty}{}{name}", if ty.ends_with('*') { "" } else { " " })).collect::<Vec<_>>().join(", ")
    }

    /// The argument names, comma-separated.
    pub fn c_args(&self) -> String {
        self.params.iter().map(|(_, name)| *name).collect::<Vec<_>>().join(", ")
    }

    /// `returns name(params)`.
    pub fn c_prototype(&self, name: &str) -> String {
        let sep = if self.returns.ends_with('*') { "" } else { " " };
        format!("{}{sep}{name}({})", self.returns, self.c_params())
    }

    /// The runtime's function, `aotc_rt_<name>`, as the glue declares it
    /// (with the model's `ModelDesc` first when it takes one).
    pub fn c_runtime_prototype(&self) -> String {
        let params = self.c_params();
        let params = match (self.takes_desc, self.params.is_empty()) {
            (false, _) => params,
            (true, true) => "const ModelDesc *desc".into(),
            (true, false) => format!("const ModelDesc *desc, {params}"),
        };
        let sep = if self.returns.ends_with('*') { "" } else { " " };
        format!("{}{sep}aotc_rt_{}({params})", self.returns, self.name)
    }

    /// The `AotcApi` field: `returns (*name)(params)`.
    pub fn c_field(&self) -> String {
        let sep = if self.returns.ends_with('*') { "" } else { " " };
        format!("{}{sep}(*{})({})", self.returns, self.name, self.c_params())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_table_has_one_pointer_per_function() {
        let pointer = std::mem::size_of::<usize>();
        assert_eq!(std::mem::size_of::<Api>(), pointer * (FUNCTIONS.len() + 1));
        assert_eq!(FUNCTIONS.iter().map(|f| f.name).collect::<Vec<_>>()[..2], ["create", "free"]);
    }

    #[test]
    fn c_text() {
        assert_eq!(FUNCTIONS[6].c_prototype("m_run"), "int m_run(AotcModel *model, const void *const *inputs, const size_t *input_bytes, void *const *outputs, const size_t *output_bytes)");
        assert_eq!(FUNCTIONS[7].c_field(), "const char *(*last_error)(const AotcModel *model)");
        assert_eq!(FUNCTIONS[0].c_runtime_prototype(), "int aotc_rt_create(const ModelDesc *desc, AotcModel **out)");
        assert_eq!(FUNCTIONS[1].c_runtime_prototype(), "void aotc_rt_free(AotcModel *model)");
        assert!(c_struct(MODEL_DESC).contains("  void (*entry)(void *const *);\n"));
        assert!(c_enum("Status codes.", STATUSES).contains("  AOTC_ERROR_BUSY = 5, /* Another thread is running the same handle. */\n"));
        assert_eq!(dtype(AOTC_DTYPE_BFLOAT16), Some(("bfloat16", 2)));
        assert_eq!(dtype(99), None);
    }
}
