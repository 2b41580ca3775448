//! Copies between buffers: after bufferization, `linalg.copy` moves data
//! into padded buffers (a convolution's zero border), into slices of a
//! concatenation, and out of the arena, and fills (`linalg.map` of a
//! constant, `linalg.fill`) clear padded buffers. Each is tiled into rows
//! and every row copied or filled as vectors; without this the copy is one
//! scalar load and store per element (a fill, one `memset` on one thread).
//! The row loops are parallel: each thread copies or clears the rows it
//! will compute on (the same chunks of the same outer dim), so the lines
//! stay in its cache.

use super::{tag_plans, Script, Target};
use mlir_sys::MlirOperation;
use aotc_dialects::types::Ty;
use melior::ir::operation::{OperationLike, OperationRef};
use melior::ir::{Module, ValueLike};
use melior::Context;

/// The longest row copied as one (unrolled) vector transfer; longer rows
/// are split into pieces of a length that divides them.
const MAX_ROW: i64 = 256;

/// The shortest row copied as a vector.
const MIN_ROW: i64 = 4;

/// The shape of a memref type, and whether its innermost dim is contiguous
/// (identity layout, or a strided layout whose last stride is 1).
fn row_layout(text: &str) -> Option<(Ty, bool)> {
    let inner = text.strip_prefix("memref<")?.strip_suffix('>')?;
    let (shape, layout) = match inner.split_once(", ") {
        Some((shape, layout)) => (shape, Some(layout)),
        None => (inner, None),
    };
    let ty = Ty::parse(&format!("memref<{shape}>"))?;
    let contiguous = match layout {
        None => true,
        Some(l) => l
            .strip_prefix("strided<[")
            .and_then(|rest| rest.split(']').next())
            .and_then(|strides| strides.split(", ").last())
            .is_some_and(|last| last.trim() == "1"),
    };
    Some((ty, contiguous))
}

/// The tile of one row copy: every dim but the last by 1, the last by the
/// whole row or the largest piece of at most MAX_ROW that divides it (no
/// masked remainder).
fn row_tile(shape: &[i64], lanes: i64) -> Option<Vec<i64>> {
    let row = *shape.last()?;
    // rows shorter than a vector still move as one partial vector (a 7x7
    // image's rows), not element by element
    if row < MIN_ROW || shape.iter().any(|&d| d <= 0) {
        return None;
    }
    let piece = if row <= MAX_ROW { row } else { (lanes..=MAX_ROW).rev().find(|p| row % p == 0)? };
    let mut tile = vec![1; shape.len()];
    *tile.last_mut()? = piece;
    Some(tile)
}

/// Tags every vectorizable copy and fill with its row tile and writes the
/// script.
pub fn plan(context: &Context, module: &Module, target: &Target, script: &mut Script) {
    let lanes = target.lanes();
    let kinds: [(&str, &dyn Fn(MlirOperation) -> Option<Vec<i64>>, bool); 3] = [
        ("linalg.copy", &|raw| copy_tile(raw, lanes), true),
        ("linalg.map", &|raw| fill_tile(raw, 0), false),
        ("linalg.fill", &|raw| fill_tile(raw, 1), false),
    ];
    for (name, tile_of, vectorize) in kinds {
        let tag_of = |tile: &Vec<i64>| format!("{}_{}", name.trim_start_matches("linalg."), tile_tag(tile));
        for tile in tag_plans(context, module, name, tile_of, tag_of) {
            let op = script.match_tagged(name, &tag_of(&tile));
            let (piece, loops) = script.tile(&op, &tile);
            script.mark_parallel(&loops);
            if vectorize {
                script.vectorize(&piece, None);
            }
        }
    }
}

/// The tile of a fill (output operand `output`: the only operand of a
/// `linalg.map` with no inputs): its first dim with more than one element
/// by one, so the threads clear their own planes or rows; what is left of
/// each is a loop LLVM turns into `memset` (faster than vector stores of
/// rows that are not whole vectors).
fn fill_tile(raw: MlirOperation, output: usize) -> Option<Vec<i64>> {
    let op = unsafe { OperationRef::from_raw(raw) };
    if op.operand_count() != output + 1 {
        return None;
    }
    let (to, _) = row_layout(&op.operand(output).ok()?.r#type().to_string())?;
    let outer = to.shape.iter().position(|&d| d > 1)?;
    if to.shape.contains(&0) || outer + 1 == to.shape.len() {
        return None;
    }
    let mut tile = vec![0; to.shape.len()];
    tile[outer] = 1;
    Some(tile)
}

/// The row tile of a copy between buffers whose rows are contiguous.
fn copy_tile(raw: MlirOperation, lanes: i64) -> Option<Vec<i64>> {
    let op = unsafe { OperationRef::from_raw(raw) };
    let layout = |i: usize| op.operand(i).ok().and_then(|v| row_layout(&v.r#type().to_string()));
    let (Some((from, true)), Some((to, true))) = (layout(0), layout(1)) else { return None };
    if from.shape != to.shape || from.elem == "i1" {
        return None;
    }
    row_tile(&from.shape, lanes)
}

fn tile_tag(tile: &[i64]) -> String {
    tile.iter().map(i64::to_string).collect::<Vec<_>>().join("x")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_row_layouts() {
        let (ty, contiguous) = row_layout("memref<1x240x28x28xf32, strided<[215040, 1024, 32, 1], offset: 66>>").unwrap();
        assert_eq!((ty.shape, contiguous), (vec![1, 240, 28, 28], true));
        assert_eq!(row_layout("memref<4x8xf32>").unwrap().1, true);
        assert_eq!(row_layout("memref<4x8xf32, strided<[16, 2]>>").unwrap().1, false);
    }

    #[test]
    fn rows_are_split_by_divisors() {
        assert_eq!(row_tile(&[1, 240, 28, 28], 16), Some(vec![1, 1, 1, 28]));
        assert_eq!(row_tile(&[4, 1024], 16), Some(vec![1, 256]));
        assert_eq!(row_tile(&[4, 1000], 16), Some(vec![1, 250]));
        assert_eq!(row_tile(&[2, 1031], 16), None);
        assert_eq!(row_tile(&[4, 7], 8), Some(vec![1, 7]));
        assert_eq!(row_tile(&[4, 3], 8), None);
    }
}
