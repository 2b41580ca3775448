//! Minimal `.npy` (format 1.0/2.0) reading and writing: little-endian,
//! C-order arrays of the dtypes aotc supports.

use crate::program::{DType, HostTensor, TensorType};
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;

pub fn read(path: &Path) -> Result<HostTensor> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    parse(&bytes).with_context(|| format!("{}: not a supported .npy file", path.display()))
}

pub fn parse(bytes: &[u8]) -> Result<HostTensor> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("missing the \\x93NUMPY magic");
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes(bytes[8..12].try_into()?) as usize, 12),
        v => bail!("npy format version {v} is not supported"),
    };
    let header = std::str::from_utf8(bytes.get(start..start + header_len).ok_or_else(|| anyhow!("truncated header"))?)?;
    let field = |key: &str| -> Result<&str> {
        let at = header.find(&format!("'{key}'")).ok_or_else(|| anyhow!("header has no '{key}'"))?;
        Ok(header[at + key.len() + 2..].trim_start().trim_start_matches(':').trim_start())
    };
    let descr = field("descr")?;
    let descr = descr.trim_start_matches('\'').split('\'').next().unwrap_or("");
    let dtype = DType::from_npy_descr(descr).ok_or_else(|| anyhow!("dtype '{descr}' is not supported"))?;
    if field("fortran_order")?.starts_with("True") {
        bail!("Fortran-order arrays are not supported; save with np.ascontiguousarray");
    }
    let shape_text = field("shape")?;
    let shape_text = &shape_text[1..shape_text.find(')').ok_or_else(|| anyhow!("bad shape"))?];
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<i64>().map_err(|_| anyhow!("bad shape entry '{s}'")))
        .collect::<Result<Vec<_>>>()?;
    let ty = TensorType { dtype, shape };
    let data = &bytes[start + header_len..];
    if data.len() != ty.size_bytes() {
        bail!("holds {} data bytes but {} needs {}", data.len(), ty, ty.size_bytes());
    }
    Ok(HostTensor { ty, data: data.to_vec() })
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
        let t = HostTensor { ty: TensorType { dtype: DType::F32, shape: vec![2, 3] }, data: (0..24).collect() };
        let back = parse(&to_bytes(&t)).unwrap();
        assert_eq!(back.ty, t.ty);
        assert_eq!(back.data, t.data);
    }

    #[test]
    fn rejects_wrong_sizes() {
        let t = HostTensor { ty: TensorType { dtype: DType::F32, shape: vec![2] }, data: vec![0; 8] };
        let mut bytes = to_bytes(&t);
        bytes.pop();
        assert!(parse(&bytes).unwrap_err().to_string().contains("holds 7 data bytes"));
    }
}
