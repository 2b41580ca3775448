//! Reads the tensors out of a `torch.save` file (a zip holding `data.pkl` and
//! `data/<key>` storages) without executing pickle code: a small stack
//! machine understands the opcodes torch.save emits and accepts exactly two
//! globals, `torch._utils._rebuild_tensor_v2` and `torch.<Type>Storage`
//! (plus `collections.OrderedDict`, which torch passes as empty hooks).
//! Anything else is refused by name.

use super::Budget;
use crate::program::{DType, HostTensor, TensorType};
use crate::text::shown;
use anyhow::{anyhow, bail, Result};
use std::cell::RefCell;
use std::io::Cursor;
use std::rc::Rc;

/// A pickle value. Containers are reference counted: the memo and
/// repeated references share them (never a deep copy), and lists and dicts
/// stay shared when items are appended later, as in Python.
#[derive(Debug, Clone)]
enum Value {
    None,
    /// Bools and floats are read but not needed to locate tensors.
    Bool,
    Int(i64),
    Float,
    Str(Rc<str>),
    Tuple(Rc<Items>),
    List(Rc<RefCell<Items>>),
    /// Keys and values in turn.
    Dict(Rc<RefCell<Items>>),
    Global(Rc<str>),
    /// A persistent storage reference: (dtype, key).
    Storage(DType, Rc<str>),
    Tensor(usize),
    Mark,
}

/// A container's items. Dropping it never recurses, however deeply
/// containers nest (a pickle of a million nested tuples is a few MB).
#[derive(Debug, Default)]
struct Items(Vec<Value>);

impl Drop for Items {
    fn drop(&mut self) {
        let mut pending = std::mem::take(&mut self.0);
        while let Some(value) = pending.pop() {
            match value {
                Value::Tuple(rc) => {
                    if let Ok(mut items) = Rc::try_unwrap(rc) {
                        pending.append(&mut items.0);
                    }
                }
                Value::List(rc) | Value::Dict(rc) => {
                    if let Ok(cell) = Rc::try_unwrap(rc) {
                        pending.append(&mut cell.into_inner().0);
                    }
                }
                _ => {}
            }
        }
    }
}

fn tuple(items: Vec<Value>) -> Value {
    Value::Tuple(Rc::new(Items(items)))
}

/// The most values a pickle may reach when its tensors are collected
/// (shared references count each time they are reached, so a memo bomb
/// that shares one container 2^40 times stops here).
const MAX_VISITS: usize = 1 << 20;

/// Returns the tensors of the saved object in the order they appear
/// (for sample inputs `((x0, x1, ...), {kwargs})`, the positional inputs
/// first). Every byte it unpacks is counted in `budget`.
pub fn read_torch_save(bytes: &[u8], budget: &mut Budget) -> Result<Vec<HostTensor>> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| anyhow!("not a torch.save zip: {e}"))?;
    let pkl_name = zip
        .file_names()
        .find(|n| n.ends_with("data.pkl"))
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no data.pkl inside"))?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    let pkl = read(&mut zip, &pkl_name, budget)?;
    let mut machine = Machine { tensors: Vec::new(), stack: Vec::new(), memo: Default::default() };
    let root = machine.run(&pkl)?;
    let order = collect_tensors(&root)?;
    let mut out = Vec::new();
    for index in order {
        let (dtype, key, offset, shape, strides) = machine.tensors[index].clone();
        super::check_shape(&shape, dtype)?;
        let storage = read(&mut zip, &format!("{prefix}data/{key}"), budget)?;
        let ty = TensorType { dtype, shape };
        let data = super::gather_view(&storage, &ty, &strides, offset, budget)
            .map_err(|e| anyhow!("storage data/{}: {e}", shown(&key)))?;
        out.push(HostTensor { ty, data });
    }
    Ok(out)
}

fn read(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str, budget: &mut Budget) -> Result<Vec<u8>> {
    let mut entry = zip.by_name(name).map_err(|e| anyhow!("{}: {e}", shown(name)))?;
    let declared = entry.size();
    super::read_entry(&mut entry, declared, budget, &shown(name))
}

/// The tensors reachable from `root`, in order, without recursion; fails
/// past MAX_VISITS values.
fn collect_tensors(root: &Value) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    let mut visits = 0usize;
    while let Some(value) = stack.pop() {
        visits += 1;
        if visits > MAX_VISITS {
            bail!("the pickle reaches more than {MAX_VISITS} values (containers shared too many times, or a cycle)");
        }
        match value {
            Value::Tensor(i) => out.push(i),
            Value::Tuple(c) => stack.extend(c.0.iter().rev().cloned()),
            Value::List(c) => stack.extend(c.borrow().0.iter().rev().cloned()),
            // values only: a dict's items alternate key, value
            Value::Dict(c) => stack.extend(c.borrow().0.iter().skip(1).step_by(2).rev().cloned()),
            _ => {}
        }
    }
    Ok(out)
}

type TensorRecord = (DType, Rc<str>, i64, Vec<i64>, Vec<i64>);

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
    fn string(&mut self, n: usize) -> Result<Rc<str>> {
        Ok(String::from_utf8_lossy(self.take(n)?).into())
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
                b')' => self.stack.push(tuple(vec![])),
                b']' => self.stack.push(Value::List(Default::default())),
                b'}' => self.stack.push(Value::Dict(Default::default())),
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
                    let s = r.string(n)?;
                    self.stack.push(Value::Str(s))
                }
                0x8c => {
                    let n = r.u8()? as usize;
                    let s = r.string(n)?;
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
                    self.stack.push(tuple(items))
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        bail!("pickle stack underflow");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(tuple(items))
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
                    self.extend_top(vec![v], false)?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend_top(items, false)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.extend_top(vec![k, v], true)?;
                }
                b'u' => {
                    let mut items = self.pop_mark()?;
                    items.truncate(items.len() / 2 * 2);
                    self.extend_top(items, true)?;
                }
                b'b' => {
                    // BUILD: state for an object we keep opaque; drop it.
                    self.pop()?;
                }
                other => bail!("pickle opcode 0x{other:02x} is not supported (aotc reads only tensors)"),
            }
        }
    }

    /// APPEND(S) and SETITEM(S): adds items to the list (or dict) on top of
    /// the stack, which every other reference to it sees too.
    fn extend_top(&mut self, items: Vec<Value>, dict: bool) -> Result<()> {
        match (self.stack.last(), dict) {
            (Some(Value::List(c)), false) | (Some(Value::Dict(c)), true) => {
                c.borrow_mut().0.extend(items);
                Ok(())
            }
            _ => bail!("the pickle adds items to something that is not a {}", if dict { "dict" } else { "list" }),
        }
    }

    fn reduce(&mut self, callable: Value, args: Value) -> Result<Value> {
        let Value::Global(name) = callable else { bail!("pickle REDUCE on a non-global") };
        let Value::Tuple(args) = args else { bail!("pickle REDUCE without a tuple") };
        let args = &args.0;
        match &*name {
            "collections.OrderedDict" => Ok(Value::Dict(Default::default())),
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
                        Some(Value::Tuple(c)) => c
                            .0
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
        "torch._utils._rebuild_tensor_v2" | "collections.OrderedDict" => Ok(Value::Global(full.into())),
        _ if module == "torch" && name.ends_with("Storage") => Ok(Value::Global(full.into())),
        _ => bail!("pickle refers to '{}', which aotc does not load (only tensors are read)", shown(&full)),
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
    match items.0.as_slice() {
        [Value::Str(tag), Value::Global(ty), Value::Str(key), ..] if &**tag == "storage" => {
            let dtype = storage_dtype(ty).ok_or_else(|| anyhow!("storage type '{}' is not supported", shown(ty)))?;
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
        assert!(matches!(v, Value::Tuple(ref t) if t.0.len() == 2));
    }
}
