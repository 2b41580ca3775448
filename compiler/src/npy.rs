//! `.npy` (format 1.0/2.0/3.0) reading and writing: little-endian, C-order
//! arrays of the dtypes aotc supports. The header is parsed strictly (a
//! dict with exactly 'descr', 'fortran_order' and 'shape'), and reading
//! never takes more bytes than the header's shape needs: a file that is
//! longer, or endless (`/dev/zero`), is an error, not an allocation.

use crate::program::{DType, HostTensor, TensorType};
use anyhow::{anyhow, bail, Context, Result};
use std::io::Read;
use std::path::Path;

/// The longest header accepted (numpy writes well under 1 KiB).
const MAX_HEADER: usize = 1 << 16;

/// Reads an array.
pub fn read(path: &Path) -> Result<HostTensor> {
    read_checked(path, |_| Ok(()))
}

/// Reads an array whose header `check` accepts; the check runs on the
/// header's type before any data is read.
pub fn read_checked(path: &Path, check: impl FnOnce(&TensorType) -> Result<()>) -> Result<HostTensor> {
    let file = std::fs::File::open(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let mut reader = std::io::BufReader::new(file);
    let ty = read_header(&mut reader).with_context(|| format!("{}: not a supported .npy file", path.display()))?;
    check(&ty)?;
    let data = read_exact_data(&mut reader, ty.size_bytes()).with_context(|| format!("{}: not a supported .npy file", path.display()))?;
    Ok(HostTensor { ty, data })
}

/// Parses a whole `.npy` file held in memory.
pub fn parse(bytes: &[u8]) -> Result<HostTensor> {
    let mut reader = bytes;
    let ty = read_header(&mut reader)?;
    let data = read_exact_data(&mut reader, ty.size_bytes())?;
    Ok(HostTensor { ty, data })
}

fn read_header(reader: &mut impl Read) -> Result<TensorType> {
    let mut start = [0u8; 8];
    reader.read_exact(&mut start).map_err(|_| anyhow!("missing the \\x93NUMPY magic"))?;
    if &start[..6] != b"\x93NUMPY" {
        bail!("missing the \\x93NUMPY magic");
    }
    let header_len = match start[6] {
        1 => {
            let mut n = [0u8; 2];
            reader.read_exact(&mut n).map_err(|_| anyhow!("truncated header"))?;
            u16::from_le_bytes(n) as usize
        }
        2 | 3 => {
            let mut n = [0u8; 4];
            reader.read_exact(&mut n).map_err(|_| anyhow!("truncated header"))?;
            u32::from_le_bytes(n) as usize
        }
        v => bail!("npy format version {v} is not supported"),
    };
    if header_len > MAX_HEADER {
        bail!("header of {header_len} bytes is longer than {MAX_HEADER}");
    }
    let mut header = vec![0u8; header_len];
    reader.read_exact(&mut header).map_err(|_| anyhow!("truncated header"))?;
    let header = std::str::from_utf8(&header).map_err(|_| anyhow!("the header is not text"))?;
    parse_header(header)
}

/// Reads exactly `bytes` bytes and checks that nothing follows them.
fn read_exact_data(reader: &mut impl Read, bytes: usize) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    data.try_reserve_exact(bytes).map_err(|_| anyhow!("cannot allocate {bytes} bytes for its data"))?;
    reader.take(bytes as u64 + 1).read_to_end(&mut data)?;
    if data.len() != bytes {
        let what = if data.len() > bytes { "more than".to_string() } else { format!("{}, fewer than", data.len()) };
        bail!("holds {what} the {bytes} data bytes its header describes");
    }
    Ok(data)
}

/// One value of the header dict.
#[derive(Debug, PartialEq)]
enum HeaderValue {
    Str(String),
    Bool(bool),
    Shape(Vec<i64>),
}

/// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`
fn parse_header(header: &str) -> Result<TensorType> {
    let mut text = header.trim();
    text = text.strip_prefix('{').ok_or_else(|| anyhow!("the header is not a dict"))?;
    let mut fields: Vec<(String, HeaderValue)> = Vec::new();
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix('}') {
            if !rest.trim().is_empty() {
                bail!("text after the header dict");
            }
            break;
        }
        let (key, rest) = quoted(text)?;
        let rest = rest.trim_start().strip_prefix(':').ok_or_else(|| anyhow!("expected ':' after '{key}'"))?.trim_start();
        let (value, rest) = header_value(rest)?;
        if fields.iter().any(|(k, _)| *k == key) {
            bail!("'{key}' appears twice in the header");
        }
        fields.push((key, value));
        let rest = rest.trim_start();
        text = match rest.strip_prefix(',') {
            Some(r) => r,
            None if rest.starts_with('}') => rest,
            None => bail!("expected ',' or '}}' in the header"),
        };
    }
    let get = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    if let Some((key, _)) = fields.iter().find(|(k, _)| !matches!(k.as_str(), "descr" | "fortran_order" | "shape")) {
        bail!("unknown header key '{}'", crate::text::shown(key));
    }
    let Some(HeaderValue::Str(descr)) = get("descr") else { bail!("the header has no 'descr' string") };
    let dtype = DType::from_npy_descr(descr).ok_or_else(|| anyhow!("dtype '{}' is not supported", crate::text::shown(descr)))?;
    match get("fortran_order") {
        Some(HeaderValue::Bool(false)) => {}
        Some(HeaderValue::Bool(true)) => bail!("Fortran-order arrays are not supported; save with np.ascontiguousarray"),
        _ => bail!("the header has no 'fortran_order' True or False"),
    }
    let Some(HeaderValue::Shape(shape)) = get("shape") else { bail!("the header has no 'shape' tuple") };
    crate::pt2::check_shape(shape, dtype)?;
    Ok(TensorType { dtype, shape: shape.clone() })
}

/// A single-quoted string (numpy's repr) and the text after it.
fn quoted(text: &str) -> Result<(String, &str)> {
    let body = text.strip_prefix('\'').ok_or_else(|| anyhow!("expected a quoted key or value in the header"))?;
    let end = body.find('\'').ok_or_else(|| anyhow!("unterminated string in the header"))?;
    Ok((body[..end].to_string(), &body[end + 1..]))
}

fn header_value(text: &str) -> Result<(HeaderValue, &str)> {
    if text.starts_with('\'') {
        let (s, rest) = quoted(text)?;
        return Ok((HeaderValue::Str(s), rest));
    }
    for (word, value) in [("True", true), ("False", false)] {
        if let Some(rest) = text.strip_prefix(word) {
            return Ok((HeaderValue::Bool(value), rest));
        }
    }
    if let Some(body) = text.strip_prefix('(') {
        let end = body.find(')').ok_or_else(|| anyhow!("unterminated shape tuple"))?;
        let inner = body[..end].trim();
        let mut items: Vec<&str> = if inner.is_empty() { vec![] } else { inner.split(',').map(str::trim).collect() };
        // one trailing comma, as in `(7,)`
        if items.len() > 1 && items.last() == Some(&"") {
            items.pop();
        }
        let shape = items
            .iter()
            .map(|item| item.parse::<i64>().ok().filter(|d| *d >= 0).ok_or_else(|| anyhow!("bad shape entry '{}'", crate::text::shown(item))))
            .collect::<Result<Vec<i64>>>()?;
        return Ok((HeaderValue::Shape(shape), &body[end + 1..]));
    }
    bail!("unexpected value in the header")
}

pub fn to_bytes(tensor: &HostTensor) -> Vec<u8> {
    let shape = match tensor.ty.shape.len() {
        0 => "()".to_string(),
        1 => format!("({},)", tensor.ty.shape[0]),
        _ => format!("({})", tensor.ty.shape.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}", tensor.ty.dtype.npy_descr());
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&tensor.data);
    out
}

pub fn write(path: &Path, tensor: &HostTensor) -> Result<()> {
    std::fs::write(path, to_bytes(tensor)).with_context(|| format!("{}: cannot write", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for shape in [vec![2, 3], vec![], vec![4], vec![0, 5]] {
            let ty = TensorType { dtype: DType::F32, shape };
            let t = HostTensor { data: (0..ty.size_bytes() as u8).collect(), ty };
            let back = parse(&to_bytes(&t)).unwrap();
            assert_eq!(back.ty, t.ty);
            assert_eq!(back.data, t.data);
        }
    }

    #[test]
    fn rejects_wrong_sizes() {
        let t = HostTensor { ty: TensorType { dtype: DType::F32, shape: vec![2] }, data: vec![0; 8] };
        let mut bytes = to_bytes(&t);
        bytes.pop();
        assert!(parse(&bytes).unwrap_err().to_string().contains("holds 7, fewer than the 8 data bytes"));
        bytes.extend([0, 0]);
        assert!(parse(&bytes).unwrap_err().to_string().contains("more than the 8 data bytes"));
    }

    #[test]
    fn headers_are_parsed_strictly() {
        let header = |h: &str| parse_header(h).map(|t| t.shape).map_err(|e| e.to_string());
        assert_eq!(header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), Ok(vec![2, 3]));
        assert_eq!(header("{'descr': '<f4', 'fortran_order': False, 'shape': (7,)}"), Ok(vec![7]));
        assert_eq!(header("{'descr': '<f4', 'fortran_order': False, 'shape': ()}"), Ok(vec![]));
        for (bad, why) in [
            ("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}", "unexpected value"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x)}", "bad shape entry"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3)}", "bad shape entry"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,,)}", "bad shape entry"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2"  , "unterminated"),
            ("{'descr': '<f4', 'fortran_order': False}", "no 'shape'"),
            ("{'descr': '<f4', 'fortran_order': True, 'shape': (2,)}", "Fortran"),
            ("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", "twice"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999)}", "too large"),
        ] {
            let err = header(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
