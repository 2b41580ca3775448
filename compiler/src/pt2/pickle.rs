//! Reads the tensors out of a `torch.save` file (a zip holding `data.pkl` and
//! `data/<key>` storages) without executing pickle code: a small stack
//! machine understands the opcodes torch.save emits and accepts exactly two
//! globals, `torch._utils._rebuild_tensor_v2` and `torch.<Type>Storage`
//! (plus `collections.OrderedDict`, which torch passes as empty hooks).
//! Anything else is refused by name.

use crate::program::{DType, HostTensor, TensorType};
use anyhow::{anyhow, bail, Result};
use std::io::{Cursor, Read};

#[derive(Debug, Clone)]
enum Value {
    None,
    /// Bools and floats are read but not needed to locate tensors.
    Bool,
    Int(i64),
    Float,
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String),
    /// A persistent storage reference: (dtype, key).
    Storage(DType, String),
    Tensor(usize),
    Mark,
}

/// Returns the tensors of the saved object in the order they appear
/// (for sample inputs `((x0, x1, ...), {kwargs})`, the positional inputs first).
pub fn read_torch_save(bytes: &[u8]) -> Result<Vec<HostTensor>> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| anyhow!("not a torch.save zip: {e}"))?;
    let pkl_name = zip
        .file_names()
        .find(|n| n.ends_with("data.pkl"))
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no data.pkl inside"))?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    let mut pkl = Vec::new();
    zip.by_name(&pkl_name)?.read_to_end(&mut pkl)?;
    let mut machine = Machine { tensors: Vec::new(), stack: Vec::new(), memo: Default::default() };
    let root = machine.run(&pkl)?;
    let mut order = Vec::new();
    collect_tensors(&root, &mut order);
    let mut out = Vec::new();
    for index in order {
        let (dtype, key, offset, shape, strides) = machine.tensors[index].clone();
        let mut storage = Vec::new();
        zip.by_name(&format!("{prefix}data/{key}"))
            .map_err(|e| anyhow!("storage data/{key}: {e}"))?
            .read_to_end(&mut storage)?;
        super::check_shape(&shape, dtype)?;
        if offset < 0 || strides.len() != shape.len() || strides.iter().any(|&s| !(0..=1 << 40).contains(&s)) {
            bail!("tensor with offset {offset} and strides {strides:?} is not supported");
        }
        let ty = TensorType { dtype, shape: shape.clone() };
        let elem = dtype.size_bytes();
        let last = offset + shape.iter().zip(&strides).map(|(d, s)| (d - 1).max(0) * s).sum::<i64>();
        if ty.numel() > 0 && (last as usize + 1) * elem > storage_len(&mut zip, &prefix, &key)? {
            bail!("storage data/{key} is shorter than its tensor {ty}");
        }
        let data = super::gather_strided(&storage, &shape, &strides, offset, elem)
            .ok_or_else(|| anyhow!("storage data/{key} is shorter than its tensor"))?;
        out.push(HostTensor { ty, data });
    }
    Ok(out)
}

fn storage_len(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, prefix: &str, key: &str) -> Result<usize> {
    Ok(zip.by_name(&format!("{prefix}data/{key}")).map_err(|e| anyhow!("storage data/{key}: {e}"))?.size() as usize)
}

fn collect_tensors(value: &Value, out: &mut Vec<usize>) {
    match value {
        Value::Tensor(i) => out.push(*i),
        Value::Tuple(items) | Value::List(items) => items.iter().for_each(|v| collect_tensors(v, out)),
        Value::Dict(items) => items.iter().for_each(|(_, v)| collect_tensors(v, out)),
        _ => {}
    }
}

type TensorRecord = (DType, String, i64, Vec<i64>, Vec<i64>);

struct Machine {
    tensors: Vec<TensorRecord>,
    stack: Vec<Value>,
    memo: std::collections::HashMap<u32, Value>,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let s = self.bytes.get(self.at..self.at + n).ok_or_else(|| anyhow!("pickle is truncated"))?;
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into()?))
    }
    fn line(&mut self) -> Result<String> {
        let rest = &self.bytes[self.at..];
        let end = rest.iter().position(|&b| b == b'\n').ok_or_else(|| anyhow!("pickle is truncated"))?;
        self.at += end + 1;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}

impl Machine {
    fn pop(&mut self) -> Result<Value> {
        self.stack.pop().ok_or_else(|| anyhow!("pickle stack underflow"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let mark = self
            .stack
            .iter()
            .rposition(|v| matches!(v, Value::Mark))
            .ok_or_else(|| anyhow!("pickle MARK missing"))?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }

    fn run(&mut self, bytes: &[u8]) -> Result<Value> {
        let mut r = Reader { bytes, at: 0 };
        loop {
            let op = r.u8()?;
            match op {
                0x80 => {
                    r.u8()?;
                } // PROTO
                0x95 => {
                    r.take(8)?;
                } // FRAME
                b'.' => return self.pop(),
                b'(' => self.stack.push(Value::Mark),
                b')' => self.stack.push(Value::Tuple(vec![])),
                b']' => self.stack.push(Value::List(vec![])),
                b'}' => self.stack.push(Value::Dict(vec![])),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool),
                0x89 => self.stack.push(Value::Bool),
                b'K' => {
                    let v = r.u8()? as i64;
                    self.stack.push(Value::Int(v))
                }
                b'M' => {
                    let v = r.u16()? as i64;
                    self.stack.push(Value::Int(v))
                }
                b'J' => {
                    let v = r.u32()? as i32 as i64;
                    self.stack.push(Value::Int(v))
                }
                0x8a => {
                    // LONG1
                    let n = r.u8()? as usize;
                    let b = r.take(n)?;
                    let mut v: i64 = 0;
                    for (i, byte) in b.iter().enumerate().take(8) {
                        v |= (*byte as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.stack.push(Value::Int(v))
                }
                b'G' => {
                    r.take(8)?;
                    self.stack.push(Value::Float)
                }
                b'X' => {
                    let n = r.u32()? as usize;
                    let s = String::from_utf8_lossy(r.take(n)?).into_owned();
                    self.stack.push(Value::Str(s))
                }
                0x8c => {
                    let n = r.u8()? as usize;
                    let s = String::from_utf8_lossy(r.take(n)?).into_owned();
                    self.stack.push(Value::Str(s))
                }
                b'q' => {
                    let k = r.u8()? as u32;
                    self.memo.insert(k, self.stack.last().cloned().ok_or_else(|| anyhow!("empty stack"))?);
                }
                b'r' => {
                    let k = r.u32()?;
                    self.memo.insert(k, self.stack.last().cloned().ok_or_else(|| anyhow!("empty stack"))?);
                }
                0x94 => {
                    let k = self.memo.len() as u32;
                    self.memo.insert(k, self.stack.last().cloned().ok_or_else(|| anyhow!("empty stack"))?);
                }
                b'h' => {
                    let k = r.u8()? as u32;
                    self.stack.push(self.memo.get(&k).cloned().ok_or_else(|| anyhow!("bad memo {k}"))?)
                }
                b'j' => {
                    let k = r.u32()?;
                    self.stack.push(self.memo.get(&k).cloned().ok_or_else(|| anyhow!("bad memo {k}"))?)
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items))
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        bail!("pickle stack underflow");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items))
                }
                b'c' => {
                    let module = r.line()?;
                    let name = r.line()?;
                    self.stack.push(global(&module, &name)?)
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.stack.push(global(&m, &n)?),
                        _ => bail!("STACK_GLOBAL without strings"),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.stack.push(persistent_load(pid)?)
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let value = self.reduce(callable, args)?;
                    self.stack.push(value)
                }
                b'a' => {
                    let v = self.pop()?;
                    if let Some(Value::List(l)) = self.stack.last_mut() {
                        l.push(v)
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    if let Some(Value::List(l)) = self.stack.last_mut() {
                        l.extend(items)
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    if let Some(Value::Dict(d)) = self.stack.last_mut() {
                        d.push((k, v))
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if let Some(Value::Dict(d)) = self.stack.last_mut() {
                        for pair in items.chunks(2) {
                            if let [k, v] = pair {
                                d.push((k.clone(), v.clone()))
                            }
                        }
                    }
                }
                b'b' => {
                    // BUILD: state for an object we keep opaque; drop it.
                    self.pop()?;
                }
                other => bail!("pickle opcode 0x{other:02x} is not supported (aotc reads only tensors)"),
            }
        }
    }

    fn reduce(&mut self, callable: Value, args: Value) -> Result<Value> {
        let Value::Global(name) = callable else { bail!("pickle REDUCE on a non-global") };
        let Value::Tuple(args) = args else { bail!("pickle REDUCE without a tuple") };
        match name.as_str() {
            "collections.OrderedDict" => Ok(Value::Dict(vec![])),
            "torch._utils._rebuild_tensor_v2" => {
                let (dtype, key) = match args.first() {
                    Some(Value::Storage(d, k)) => (*d, k.clone()),
                    _ => bail!("_rebuild_tensor_v2 without a storage"),
                };
                let offset = match args.get(1) {
                    Some(Value::Int(o)) => *o,
                    _ => 0,
                };
                let ints = |v: Option<&Value>| -> Result<Vec<i64>> {
                    match v {
                        Some(Value::Tuple(items)) => items
                            .iter()
                            .map(|x| match x {
                                Value::Int(i) => Ok(*i),
                                _ => Err(anyhow!("non-integer size")),
                            })
                            .collect(),
                        _ => bail!("_rebuild_tensor_v2 without sizes"),
                    }
                };
                let shape = ints(args.get(2))?;
                let strides = ints(args.get(3))?;
                self.tensors.push((dtype, key, offset, shape, strides));
                Ok(Value::Tensor(self.tensors.len() - 1))
            }
            other => bail!("pickle calls '{other}', which aotc does not run"),
        }
    }
}

fn global(module: &str, name: &str) -> Result<Value> {
    let full = format!("{module}.{name}");
    match full.as_str() {
        "torch._utils._rebuild_tensor_v2" | "collections.OrderedDict" => Ok(Value::Global(full)),
        _ if module == "torch" && name.ends_with("Storage") => Ok(Value::Global(full)),
        _ => bail!("pickle refers to '{full}', which aotc does not load (only tensors are read)"),
    }
}

fn storage_dtype(name: &str) -> Option<DType> {
    Some(match name {
        "torch.FloatStorage" => DType::F32,
        "torch.DoubleStorage" => DType::F64,
        "torch.HalfStorage" => DType::F16,
        "torch.BFloat16Storage" => DType::BF16,
        "torch.LongStorage" => DType::I64,
        "torch.IntStorage" => DType::I32,
        "torch.ShortStorage" => DType::I16,
        "torch.CharStorage" => DType::I8,
        "torch.ByteStorage" => DType::U8,
        "torch.BoolStorage" => DType::Bool,
        _ => return None,
    })
}

/// `('storage', torch.FloatStorage, '0', 'cpu', numel)`
fn persistent_load(pid: Value) -> Result<Value> {
    let Value::Tuple(items) = pid else { bail!("persistent id is not a tuple") };
    match items.as_slice() {
        [Value::Str(tag), Value::Global(ty), Value::Str(key), ..] if tag == "storage" => {
            let dtype = storage_dtype(ty).ok_or_else(|| anyhow!("storage type '{ty}' is not supported"))?;
            Ok(Value::Storage(dtype, key.clone()))
        }
        _ => bail!("unsupported persistent id in pickle"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_arbitrary_globals() {
        let mut m = Machine { tensors: vec![], stack: vec![], memo: Default::default() };
        let err = m.run(b"\x80\x02cos\nsystem\n.").unwrap_err().to_string();
        assert!(err.contains("os.system"), "{err}");
    }

    #[test]
    fn reads_nested_tuples() {
        let mut m = Machine { tensors: vec![], stack: vec![], memo: Default::default() };
        // ((1, 2), {}) in protocol 2
        let v = m.run(b"\x80\x02K\x01K\x02\x86q\x00}q\x01\x86q\x02.").unwrap();
        assert!(matches!(v, Value::Tuple(ref t) if t.len() == 2));
    }
}
