//! Winograd's filter transform U = G g G^T (the compiler's side of the
//! algorithm: `aotc_dialects::lower::winograd`). The transformed filters of
//! a model's constant weights are n^2/9 times the weights' size (16/9 for
//! F(2x2, 3x3), 4x for F(4x4, 3x3)), so a library stores the weights and
//! the runtime transforms them when the first handle of the model is
//! created (`derived`); the compiler uses the same tables and code.

/// F(2x2, 3x3)'s G (4x4 tiles).
pub const G2: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];

/// F(4x4, 3x3)'s G (6x6 tiles) at the points 0, 1, -1, 2, -2 and infinity.
pub const G4: [[f64; 3]; 6] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// U[e = n xi + nu][kh][kw]: the coefficient of g[kh][kw] in (G g G^T)[xi][nu].
pub fn filter_coefficients(g: &[[f64; 3]]) -> Vec<[[f64; 3]; 3]> {
    let n = g.len();
    let mut m = vec![[[0.0; 3]; 3]; n * n];
    for xi in 0..n {
        for nu in 0..n {
            for kh in 0..3 {
                for kw in 0..3 {
                    m[n * xi + nu][kh][kw] = g[xi][kh] * g[nu][kw];
                }
            }
        }
    }
    m
}

/// The filter transform of f32 weights `[F, C, 3, 3]` into row panels
/// `[n^2, F / panel, C, panel]` (`panel` 1: `[n^2, F, C]`), each element
/// summed in f64 and rounded once, written to `u` (n^2 F C elements).
/// `panel` must divide `F`.
pub fn filter_transform(weights: &[f32], f: usize, c: usize, g: &[[f64; 3]], panel: usize, u: &mut [f32]) {
    let m = coefficient_rows(g);
    assert_eq!(u.len(), m.len() * f * c, "the transformed filter's size");
    // SAFETY: `u` has every element the pairs write
    unsafe { transform_filters(weights, f, c, &m, panel, u.as_mut_ptr(), 0..f) };
}

/// [`filter_coefficients`] with each 3x3 flattened: U[e] = k[e] . g.
pub(crate) fn coefficient_rows(g: &[[f64; 3]]) -> Vec<[f64; 9]> {
    filter_coefficients(g).iter().map(|k| std::array::from_fn(|t| k[t / 3][t % 3])).collect()
}

/// [`filter_transform`] of the filters `filters` only (rows of `[F, C, 3,
/// 3]`), `m` from [`coefficient_rows`].
///
/// # Safety
/// `u` must have `m.len() * f * c` elements; calls with disjoint `filters`
/// write disjoint elements and may run at once.
pub(crate) unsafe fn transform_filters(
    weights: &[f32],
    f: usize,
    c: usize,
    m: &[[f64; 9]],
    panel: usize,
    u: *mut f32,
    filters: std::ops::Range<usize>,
) {
    for row in filters {
        for channel in 0..c {
            let w: [f64; 9] = std::array::from_fn(|t| weights[(row * c + channel) * 9 + t] as f64);
            // element (e, row / panel, channel, row % panel)
            let at = (row / panel * c + channel) * panel + row % panel;
            for (e, k) in m.iter().enumerate() {
                let mut sum = k[0] * w[0];
                for t in 1..9 {
                    sum += k[t] * w[t];
                }
                *u.add(e * f * c + at) = sum as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_into_row_panels() {
        // 4 filters of 2 channels, filter (f, c) all f + 10c
        let weights: Vec<f32> = (0..8).flat_map(|fc| [(fc / 2) as f32 + 10.0 * (fc % 2) as f32; 9]).collect();
        let (mut flat, mut panels) = (vec![0.0; 128], vec![0.0; 128]);
        filter_transform(&weights, 4, 2, &G2, 1, &mut flat);
        filter_transform(&weights, 4, 2, &G2, 2, &mut panels);
        for e in 0..16 {
            for f in 0..4 {
                for c in 0..2 {
                    assert_eq!(panels[e * 8 + (f / 2 * 2 + c) * 2 + f % 2], flat[e * 8 + f * 2 + c]);
                }
            }
        }
        // a constant filter k: U[0][0] = k (G's first row picks g[0][0])
        assert_eq!(flat[3 * 2 + 1], 13.0);
        // U[xi=1][nu=1] = (sum of G2[1])^2 k = 2.25 k
        assert_eq!(flat[5 * 8 + 3 * 2 + 1], 2.25 * 13.0);
    }
}
