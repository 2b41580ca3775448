//! Mutation fuzzing of archives: the reader (zip, model.json, weights
//! configs, the pickle of sample inputs) and, for mutants it accepts, the
//! import and lowering up to bufferization, all in this process. A mutant
//! must give an error or compile; a panic fails the test, and a crash or
//! an abort (an allocation the archive chose) takes the test binary down.
//!
//! Two mutators: bytes (bit flips, interesting values, truncations and
//! splices of the whole archive or of one entry), and structure (a parsed
//! model.json or weights config with one to three of its values, lists or
//! objects changed: shapes, strides, dtypes, offsets, argument kinds,
//! targets, names). Deterministic for a seed.

use std::io::{Read, Write};

/// xorshift64*: small, fast, reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const INTERESTING_INTS: &[i64] = &[
    0, -1, 1, 2, 3, 7, 255, 256, 65535, 1 << 31, (1 << 31) - 1, 1 << 32, 1 << 40, 1 << 62, i64::MAX, i64::MIN, -(1 << 40),
];

const HOSTILE_STRINGS: &[&str] = &[
    "",
    "\"",
    "*/",
    "\\",
    "\n",
    "%n%s",
    "\u{0}",
    "x\", 0}; int evil; static const char *q = {\"",
    ".incbin \"/etc/hostname\"",
    "aten.nonexistent.default",
    "torch.ops.aten.add.Tensor",
    "torch.ops.higher_order.cond",
    "as_graph",
    "../../../../etc/passwd",
];

/// One mutant of `archive`, and what was done (for the report).
pub fn mutate(archive: &[u8], rng: &mut Rng) -> (String, Vec<u8>) {
    if rng.chance(25) {
        let mut bytes = archive.to_vec();
        let what = mutate_bytes(&mut bytes, rng);
        return (format!("archive bytes: {what}"), bytes);
    }
    let Some(mut entries) = read_entries(archive) else {
        let mut bytes = archive.to_vec();
        let what = mutate_bytes(&mut bytes, rng);
        return (format!("archive bytes: {what}"), bytes);
    };
    let json_entries: Vec<usize> = (0..entries.len()).filter(|&i| entries[i].0.ends_with(".json")).collect();
    let what = if !json_entries.is_empty() && rng.chance(70) {
        // model.json most of the time, else a weights/constants config
        let model = json_entries.iter().copied().find(|&i| entries[i].0.contains("/models/"));
        let i = match model {
            Some(m) if rng.chance(75) => m,
            _ => *rng.pick(&json_entries),
        };
        let what = mutate_json_entry(&mut entries[i].1, rng);
        format!("{}: {what}", entries[i].0)
    } else if rng.chance(15) && entries.len() > 1 {
        let i = rng.below(entries.len());
        let (name, _) = entries.remove(i);
        format!("removed {name}")
    } else {
        let i = rng.below(entries.len());
        let what = mutate_bytes(&mut entries[i].1, rng);
        format!("{} bytes: {what}", entries[i].0)
    };
    (what, write_entries(&entries))
}

fn read_entries(archive: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive)).ok()?;
    let mut entries = Vec::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).ok()?;
        let mut data = Vec::new();
        f.by_ref().take(64 << 20).read_to_end(&mut data).ok()?;
        entries.push((f.name().to_string(), data));
    }
    Some(entries)
}

fn write_entries(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, data) in entries {
        if out.start_file(name.as_str(), options).is_ok() {
            let _ = out.write_all(data);
        }
    }
    out.finish().map(|c| c.into_inner()).unwrap_or_default()
}

/// Bit flips, interesting bytes, a truncation, a deletion or a duplicated range.
fn mutate_bytes(bytes: &mut Vec<u8>, rng: &mut Rng) -> String {
    if bytes.is_empty() {
        bytes.push(rng.next() as u8);
        return "grew an empty entry".into();
    }
    match rng.below(5) {
        0 => {
            let n = 1 + rng.below(8);
            for _ in 0..n {
                let at = rng.below(bytes.len());
                bytes[at] ^= 1 << rng.below(8);
            }
            format!("{n} bit flips")
        }
        1 => {
            let at = rng.below(bytes.len());
            let value = *rng.pick(&[0u8, 0xff, 0x7f, 0x80, b'"', b'\\', b'\n', b'}', b'9']);
            bytes[at] = value;
            format!("byte {at} = {value:#x}")
        }
        2 => {
            let len = rng.below(bytes.len());
            bytes.truncate(len);
            format!("truncated to {len}")
        }
        3 => {
            let at = rng.below(bytes.len());
            let len = 1 + rng.below((bytes.len() - at).min(64));
            bytes.drain(at..at + len);
            format!("deleted {len} at {at}")
        }
        _ => {
            let at = rng.below(bytes.len());
            let len = 1 + rng.below((bytes.len() - at).min(256));
            let piece: Vec<u8> = bytes[at..at + len].to_vec();
            let to = rng.below(bytes.len());
            bytes.splice(to..to, piece);
            format!("copied {len} bytes from {at} to {to}")
        }
    }
}

fn mutate_json_entry(data: &mut Vec<u8>, rng: &mut Rng) -> String {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return format!("(not JSON) {}", mutate_bytes(data, rng));
    };
    let n = 1 + rng.below(3);
    let mut done = Vec::new();
    for _ in 0..n {
        done.push(mutate_json(&mut value, rng));
    }
    *data = serde_json::to_vec(&value).unwrap_or_default();
    done.join("; ")
}

/// Paths (object keys and array indices) to every value of a document.
fn paths(value: &serde_json::Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                prefix.push(k.clone());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                prefix.push(i.to_string());
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(value: &'a mut serde_json::Value, path: &[String]) -> Option<&'a mut serde_json::Value> {
    let mut v = value;
    for key in path {
        v = match v {
            serde_json::Value::Object(map) => map.get_mut(key)?,
            serde_json::Value::Array(items) => items.get_mut(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

/// Changes one value of the document: most often a number or list in a
/// tensor's metadata or a node's arguments, where shapes, strides, dtypes
/// and argument kinds live.
fn mutate_json(doc: &mut serde_json::Value, rng: &mut Rng) -> String {
    let mut all = Vec::new();
    paths(doc, &mut Vec::new(), &mut all);
    let focused: Vec<&Vec<String>> = all
        .iter()
        .filter(|p| p.iter().any(|k| matches!(k.as_str(), "sizes" | "strides" | "storage_offset" | "dtype" | "inputs" | "outputs" | "arg" | "target" | "tensor_meta" | "input_specs" | "output_specs")))
        .collect();
    let path = if !focused.is_empty() && rng.chance(80) { focused[rng.below(focused.len())].clone() } else { all[rng.below(all.len())].clone() };
    let shown = path.join(".");
    let donor = {
        let other = all[rng.below(all.len())].clone();
        at(doc, &other).cloned()
    };
    let Some(v) = at(doc, &path) else { return format!("{shown}: missing") };
    use serde_json::Value as J;
    let what = match v {
        J::Number(_) => {
            let n = if rng.chance(80) { *rng.pick(INTERESTING_INTS) } else { rng.next() as i64 % 1000 };
            *v = if rng.chance(10) { J::from(n as f64 * 1.5) } else { J::from(n) };
            format!("number = {v}")
        }
        J::String(s) => {
            if rng.chance(70) {
                *s = rng.pick(HOSTILE_STRINGS).to_string();
            } else {
                s.push_str(&"x".repeat(rng.below(70000)));
            }
            "string changed".into()
        }
        J::Bool(b) => {
            *b = !*b;
            "bool flipped".into()
        }
        J::Null => {
            *v = J::from(*rng.pick(INTERESTING_INTS));
            "null = number".into()
        }
        J::Array(items) => match rng.below(5) {
            0 if !items.is_empty() => {
                items.remove(rng.below(items.len()));
                "removed an item".into()
            }
            1 if !items.is_empty() => {
                let item = items[rng.below(items.len())].clone();
                items.insert(rng.below(items.len() + 1), item);
                "duplicated an item".into()
            }
            2 => {
                items.clear();
                "emptied".into()
            }
            3 => {
                items.reverse();
                "reversed".into()
            }
            _ => {
                items.push(donor.unwrap_or(J::Null));
                "appended another value".into()
            }
        },
        J::Object(map) => match rng.below(3) {
            0 if !map.is_empty() => {
                let key = map.keys().nth(rng.below(map.len())).cloned().unwrap_or_default();
                map.remove(&key);
                format!("removed key {key}")
            }
            1 if !map.is_empty() => {
                // change a union's kind: {"as_tensor": ..} -> {"as_int": ..}
                let key = map.keys().nth(rng.below(map.len())).cloned().unwrap_or_default();
                let value = map.remove(&key).unwrap_or(J::Null);
                let kinds = ["as_tensor", "as_tensors", "as_int", "as_ints", "as_float", "as_none", "as_graph", "as_sym_int", "as_string", "as_optional_tensors", "user_input", "parameter", "buffer"];
                let new = rng.pick(&kinds).to_string();
                map.insert(new.clone(), value);
                format!("key {key} -> {new}")
            }
            _ => {
                *v = donor.unwrap_or(J::Null);
                "replaced by another value".into()
            }
        },
    };
    format!("{shown}: {what}")
}

/// The peak resident memory of this process so far, in MB (Linux).
pub fn peak_memory_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}
