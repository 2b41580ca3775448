//! The exported program as aotc sees it: typed tensors, nodes with decoded
//! arguments, and the graph signature. Built by the pt2 reader, consumed by
//! the graph analysis and the aten importer.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Element types aotc knows, with torch's serialized ScalarType codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    U8,
    I8,
    I16,
    I32,
    I64,
    F16,
    F32,
    F64,
    Bool,
    BF16,
}

impl DType {
    /// torch/_export/serde/schema.py `ScalarType`.
    pub fn from_schema_code(code: i64) -> Option<DType> {
        Some(match code {
            1 => DType::U8,
            2 => DType::I8,
            3 => DType::I16,
            4 => DType::I32,
            5 => DType::I64,
            6 => DType::F16,
            7 => DType::F32,
            8 => DType::F64,
            12 => DType::Bool,
            13 => DType::BF16,
            _ => return None,
        })
    }

    /// The name torch prints (`torch.float32` without the prefix).
    pub fn torch_name(self) -> &'static str {
        match self {
            DType::U8 => "uint8",
            DType::I8 => "int8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::F16 => "float16",
            DType::F32 => "float32",
            DType::F64 => "float64",
            DType::Bool => "bool",
            DType::BF16 => "bfloat16",
        }
    }

    /// Bytes per element in memory (bool is one byte, as in torch).
    pub fn size_bytes(self) -> usize {
        match self {
            DType::U8 | DType::I8 | DType::Bool => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::I32 | DType::F32 => 4,
            DType::I64 | DType::F64 => 8,
        }
    }

    /// The MLIR element type used inside tensors.
    pub fn mlir(self) -> &'static str {
        match self {
            DType::U8 => "ui8",
            DType::I8 => "i8",
            DType::I16 => "i16",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::F16 => "f16",
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::Bool => "i1",
            DType::BF16 => "bf16",
        }
    }

    /// The code shared with the runtime's C ABI (`AOTC_DTYPE_*`, defined in
    /// `aotc_runtime::abi`).
    pub fn abi_code(self) -> u32 {
        use aotc_runtime::abi::*;
        match self {
            DType::F32 => AOTC_DTYPE_FLOAT32,
            DType::F64 => AOTC_DTYPE_FLOAT64,
            DType::F16 => AOTC_DTYPE_FLOAT16,
            DType::BF16 => AOTC_DTYPE_BFLOAT16,
            DType::I64 => AOTC_DTYPE_INT64,
            DType::I32 => AOTC_DTYPE_INT32,
            DType::I16 => AOTC_DTYPE_INT16,
            DType::I8 => AOTC_DTYPE_INT8,
            DType::U8 => AOTC_DTYPE_UINT8,
            DType::Bool => AOTC_DTYPE_BOOL,
        }
    }

    /// numpy's dtype descriptor for `.npy` headers.
    pub fn npy_descr(self) -> &'static str {
        match self {
            DType::U8 => "|u1",
            DType::I8 => "|i1",
            DType::I16 => "<i2",
            DType::I32 => "<i4",
            DType::I64 => "<i8",
            DType::F16 => "<f2",
            DType::F32 => "<f4",
            DType::F64 => "<f8",
            DType::Bool => "|b1",
            DType::BF16 => "<V2",
        }
    }

    pub fn from_npy_descr(descr: &str) -> Option<DType> {
        let all = [
            DType::U8,
            DType::I8,
            DType::I16,
            DType::I32,
            DType::I64,
            DType::F16,
            DType::F32,
            DType::F64,
            DType::Bool,
        ];
        all.into_iter().find(|d| d.npy_descr() == descr)
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::F32 | DType::F64 | DType::BF16)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.torch_name())
    }
}

/// A tensor's static type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Vec<i64>,
}

impl TensorType {
    pub fn numel(&self) -> usize {
        self.shape.iter().product::<i64>() as usize
    }

    pub fn size_bytes(&self) -> usize {
        self.numel() * self.dtype.size_bytes()
    }

    /// `tensor<1x3xf32>`
    pub fn mlir(&self) -> String {
        let mut s = String::from("tensor<");
        for d in &self.shape {
            s += &format!("{d}x");
        }
        s += self.dtype.mlir();
        s.push('>');
        s
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}{:?}", self.dtype, self.shape)
    }
}

/// A decoded node argument (the `Argument` union of the schema).
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    None,
    Tensor(String),
    Tensors(Vec<String>),
    OptionalTensors(Vec<Option<String>>),
    Int(i64),
    Ints(Vec<i64>),
    Float(f64),
    Floats(Vec<f64>),
    Bool(bool),
    Bools(Vec<bool>),
    Str(String),
    ScalarType(DType),
    /// Device, layout and memory format carry no meaning for CPU code generation.
    Ignored(&'static str),
    /// A subgraph of a higher-order op (the branches of `cond`, the body of
    /// `while_loop` and `map`).
    Graph(Box<Subgraph>),
}

/// A graph passed to a higher-order op: its own tensor names and types;
/// it reads only its inputs (torch.export passes everything explicitly).
#[derive(Debug, Clone, PartialEq)]
pub struct Subgraph {
    pub name: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub nodes: Vec<Node>,
    pub tensor_types: BTreeMap<String, TensorType>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    /// The op without the `torch.ops.` prefix: `aten.conv2d.default`.
    pub target: String,
    pub args: Vec<(String, Arg)>,
    /// Produced tensor names, in result order; `None` for results nothing can name.
    pub outputs: Vec<Option<String>>,
    pub stack_trace: Option<String>,
    /// Why the node could not be decoded (e.g. a symbolic argument).
    pub problem: Option<String>,
}

#[cfg(test)]
impl Node {
    /// A node with one result, `output`, and no stack trace (tests).
    pub fn for_test(name: &str, target: &str, args: Vec<(&str, Arg)>, output: &str) -> Node {
        Node {
            name: name.into(),
            target: target.into(),
            args: args.into_iter().map(|(n, a)| (n.to_string(), a)).collect(),
            outputs: vec![Some(output.into())],
            stack_trace: None,
            problem: None,
        }
    }
}

impl Node {
    /// The innermost user frame of the stack trace: `file.py:29: x = self.conv(x)`.
    pub fn source_line(&self) -> Option<String> {
        source_line_of(self.stack_trace.as_deref()?)
    }

    /// The argument called `name`, if the node has it.
    pub fn arg(&self, name: &str) -> Option<&Arg> {
        self.args.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }

    /// Sets the argument `name` to `value` (adding it when the node has
    /// none of that name).
    pub fn set_arg(&mut self, name: &str, value: Arg) {
        match self.args.iter_mut().find(|(n, _)| n == name) {
            Some((_, a)) => *a = value,
            None => self.args.push((name.to_string(), value)),
        }
    }

    /// The tensor the argument `name` names, if it is one.
    pub fn tensor_arg(&self, name: &str) -> Option<&str> {
        match self.arg(name) {
            Some(Arg::Tensor(t)) => Some(t),
            _ => None,
        }
    }
}

/// Picks the first frame of a Python stack trace (the user's code; torch's own
/// frames follow it) and renders it as `path:line: code`.
pub fn source_line_of(trace: &str) -> Option<String> {
    let mut lines = trace.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("File \"") {
            let (path, rest) = rest.split_once('"')?;
            let number = rest.split("line ").nth(1)?.split(',').next()?.trim();
            let code = lines.next().map(str::trim).unwrap_or("");
            return Some(format!("{path}:{number}: {code}"));
        }
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
pub enum InputKind {
    Parameter { fqn: String },
    Buffer { fqn: String, persistent: bool },
    Constant { fqn: String },
    User,
}

#[derive(Debug, Clone)]
pub struct GraphInput {
    pub name: String,
    pub kind: InputKind,
    pub ty: TensorType,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OutputKind {
    User,
    /// The new value of a buffer, stored back into the model for the next run.
    BufferMutation { fqn: String },
}

#[derive(Debug, Clone)]
pub struct GraphOutput {
    pub name: String,
    pub kind: OutputKind,
    pub ty: TensorType,
}

/// A tensor with its bytes, contiguous, little-endian.
#[derive(Debug, Clone)]
pub struct HostTensor {
    pub ty: TensorType,
    pub data: Vec<u8>,
}

impl HostTensor {
    /// Every element as f64 (exact for all supported dtypes but large int64).
    pub fn to_f64(&self) -> Vec<f64> {
        let n = self.ty.dtype.size_bytes();
        self.data
            .chunks_exact(n)
            .map(|c| match self.ty.dtype {
                DType::F32 => f32::from_le_bytes(c.try_into().unwrap()) as f64,
                DType::F64 => f64::from_le_bytes(c.try_into().unwrap()),
                DType::I64 => i64::from_le_bytes(c.try_into().unwrap()) as f64,
                DType::I32 => i32::from_le_bytes(c.try_into().unwrap()) as f64,
                DType::I16 => i16::from_le_bytes(c.try_into().unwrap()) as f64,
                DType::I8 => c[0] as i8 as f64,
                DType::U8 | DType::Bool => c[0] as f64,
                DType::F16 => f16_to_f64(u16::from_le_bytes(c.try_into().unwrap())),
                DType::BF16 => f32::from_bits((u16::from_le_bytes(c.try_into().unwrap()) as u32) << 16) as f64,
            })
            .collect()
    }
}

/// IEEE half precision to f64.
pub fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits >> 15 == 1 { -1.0 } else { 1.0 };
    let exponent = ((bits >> 10) & 0x1f) as i32;
    let mantissa = (bits & 0x3ff) as f64;
    sign * match exponent {
        0 => mantissa * 2f64.powi(-24),
        31 if mantissa == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + mantissa / 1024.0) * 2f64.powi(e - 15),
    }
}

#[derive(Debug, Clone)]
pub struct ExportedProgram {
    /// The archive's folder name, e.g. `simple_net`.
    pub name: String,
    pub inputs: Vec<GraphInput>,
    pub outputs: Vec<GraphOutput>,
    pub nodes: Vec<Node>,
    pub tensor_types: BTreeMap<String, TensorType>,
    /// Tensors with no static type, and why (complex dtype, data-dependent size).
    pub bad_tensors: BTreeMap<String, String>,
    /// Parameters, buffers and constants by fully qualified name.
    pub weights: BTreeMap<String, HostTensor>,
    /// The archive's sample inputs (user inputs only), when it has them.
    pub sample_inputs: Option<Vec<HostTensor>>,
    /// Weight arguments whose data the runtime derives from the stored
    /// weight when the model's first handle is created, by input index: an
    /// `aotc_runtime::abi::TRANSFORM_*` code. The weight's bytes are then
    /// the transform's input, the input's type its result (see `pack`).
    pub derived_weights: BTreeMap<usize, u32>,
    /// Weight arguments the compiled program never reads, by input index
    /// (GPT-2's token embedding under its first name, once the lookup reads
    /// it where the LM head's name has it packed, see `pack`): the library
    /// stores no data for them (154 MB less for GPT-2).
    pub unread_weights: BTreeSet<usize>,
}

#[cfg(test)]
impl ExportedProgram {
    /// A program named `t` of these inputs, outputs, nodes and result
    /// types, with no weights or sample inputs (tests).
    pub fn for_test(inputs: Vec<GraphInput>, outputs: Vec<GraphOutput>, nodes: Vec<Node>, tensor_types: BTreeMap<String, TensorType>) -> ExportedProgram {
        ExportedProgram {
            name: "t".into(),
            inputs,
            outputs,
            nodes,
            tensor_types,
            bad_tensors: Default::default(),
            weights: Default::default(),
            sample_inputs: None,
            derived_weights: Default::default(),
            unread_weights: Default::default(),
        }
    }
}

impl ExportedProgram {
    pub fn user_inputs(&self) -> impl Iterator<Item = &GraphInput> {
        self.inputs.iter().filter(|i| i.kind == InputKind::User)
    }

    pub fn user_outputs(&self) -> impl Iterator<Item = &GraphOutput> {
        self.outputs.iter().filter(|o| o.kind == OutputKind::User)
    }

    /// The static type of a tensor: a node's result or a graph input.
    pub fn tensor_type(&self, name: &str) -> Option<&TensorType> {
        self.tensor_types.get(name).or_else(|| self.inputs.iter().find(|i| i.name == name).map(|i| &i.ty))
    }

    /// Whether the program writes the buffer `fqn` (a `BUFFER_MUTATION` output).
    pub fn writes_buffer(&self, fqn: &str) -> bool {
        self.outputs.iter().any(|o| matches!(&o.kind, OutputKind::BufferMutation { fqn: f } if f == fqn))
    }

    /// The weight a non-user input reads, if any.
    pub fn weight_of(&self, input: &GraphInput) -> Option<&HostTensor> {
        match &input.kind {
            InputKind::Parameter { fqn } | InputKind::Buffer { fqn, .. } | InputKind::Constant { fqn } => {
                self.weights.get(fqn)
            }
            InputKind::User => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_values() {
        assert_eq!(f16_to_f64(0x3c00), 1.0);
        assert_eq!(f16_to_f64(0xc000), -2.0);
        assert_eq!(f16_to_f64(0x0001), 2f64.powi(-24));
        assert!(f16_to_f64(0x7e00).is_nan());
    }

    #[test]
    fn first_stack_frame_is_the_source_line() {
        let trace = "File \"/m/model.py\", line 29, in forward\n    x = self.conv(x)\n  File \"/torch/conv.py\", line 565, in forward\n    return f(x)";
        assert_eq!(source_line_of(trace).unwrap(), "/m/model.py:29: x = self.conv(x)");
    }
}
