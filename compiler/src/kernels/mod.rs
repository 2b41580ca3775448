//! The kernel-strategy layer. After lowering, every linalg op is one of a
//! few kinds of kernel; one module per kind chooses its configuration for
//! each op (tile sizes, vector shapes, how the accumulators stay in
//! registers) for the target, tags the op with it, and writes the
//! transform-dialect script that realizes it:
//!
//! - `matmul`: every product (linear, addmm, bmm, attention's products, the
//!   GEMM of im2col convolutions): register-tile micro-kernels of
//!   broadcast + `vector.fma` with the accumulators hoisted into loop-carried
//!   registers, cache-blocked over N and K;
//! - `elementwise`: all-parallel generics (after fusion), flattened when
//!   every operand is read the same way, tiled along the contiguous dim and
//!   vectorized (math functions are polynomial approximations, see
//!   `aotc_dialects::lower::approx`);
//! - `rows`: chains around a reduction along the contiguous dim (softmax,
//!   the norms) fused into one loop over rows, each row computed in L1;
//! - `reduction`: generics that reduce along their contiguous dim (softmax,
//!   norms, means): each row reduced into a vector of partial results, one
//!   vector step at a time, then once across the lanes;
//! - `scalar`: generics none of the above vectorizes (gathers, masked
//!   windows) stay scalar loops, their outer parallel loop shared by the
//!   worker threads;
//! - `prefetch` (after bufferization): the heaviest pass over a row of a
//!   row chain prefetches the next row of its inputs, and the K loop of a
//!   product on packed panels the lines of its panels 4 KiB ahead;
//! - `contiguous_transfers` (after bufferization): vector reads and writes
//!   of short rows that lie back to back in memory as one transfer of a
//!   collapsed view.
//!
//! The strategies run in that order; elementwise fusion runs between the
//! matmul strategy and the others, row fusion after it (see [`optimize`]).

pub mod analysis;
pub mod broadcast_fences;
pub mod contiguous_transfers;
pub mod copies;
pub mod elementwise;
pub mod epilogue;
pub mod finite_max;
pub mod matmul;
pub mod prefetch;
pub mod reduction;
pub mod rows;
pub mod scalar;

use crate::mlir::{run_pipeline, run_transform};
use aotc_dialects::lower::elementwise::EMPTY_ID;
use anyhow::Result;
use melior::ir::operation::{OperationLike, OperationMutLike, OperationRefMut, WalkOrder, WalkResult};
use melior::ir::{Attribute, Module};
use melior::Context;
use mlir_sys::MlirOperation;

/// What the kernels are generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The widest vector registers worth using (256 for AVX2, 512 where
    /// AVX-512 runs at full speed).
    pub vector_bits: u32,
    /// How many vector registers there are (16, or 32 with AVX-512).
    pub vector_registers: u32,
}

impl Target {
    /// f32 lanes of one vector register.
    pub fn lanes(&self) -> i64 {
        (self.vector_bits / 32) as i64
    }
}

impl Default for Target {
    fn default() -> Self {
        Target { vector_bits: 256, vector_registers: 16 }
    }
}

/// Runs the strategies in order: matmuls become micro-kernels first (fusion
/// would otherwise fold the im2col gather back into a generic
/// convolution), then elementwise fusion, then the fused elementwise and
/// reduction generics are vectorized.
pub fn optimize(context: &Context, module: &mut Module, target: &Target) -> Result<()> {
    run_pipeline(context, module, "builtin.module(canonicalize, cse)", "canonicalization")?;
    let mut script = Script::new();
    matmul::plan(context, module, target, &mut script)?;
    if !script.is_empty() {
        run_transform(context, module, &script.finish(), "matmul vectorization")?;
    }
    broadcast_fences::fence_broadcast_producers(context, module)?;
    run_pipeline(context, module, "builtin.module(func.func(linalg-fuse-elementwise-ops))", "elementwise fusion")?;
    broadcast_fences::remove_fences(module);
    tag_multi_result_inits(context, module);
    run_pipeline(context, module, "builtin.module(func.func(cse, canonicalize))", "elementwise fusion")?;
    reduction::collapse_trailing_reduction_dims(context, module)?;
    // before the strategies: they see the producers' outputs as slices of the padded buffers
    crate::padding::compute_pads_in_place(context, module)?;
    let mut script = Script::new();
    if rows::plan(context, module, &mut script) {
        run_transform(context, module, &script.finish(), "row fusion")?;
    }
    // transposes of activations (attention's K^T) as generics, which the
    // elementwise strategy tiles into 2-D blocks (else: scalar loops)
    if !ops_named(module, "linalg.transpose").is_empty() {
        let mut script = Script::new();
        let transposes = script.handle("transposes");
        script.line(format!(
            "{transposes} = transform.structured.match ops{{[\"linalg.transpose\"]}} in %root : (!transform.any_op) -> !transform.any_op"
        ));
        script.line(format!("transform.structured.generalize {transposes} : (!transform.any_op) -> !transform.any_op"));
        run_transform(context, module, &script.finish(), "transposes as generics")?;
    }
    let mut script = Script::new();
    elementwise::plan(context, module, target, &mut script);
    reduction::plan(context, module, target, &mut script);
    if !script.is_empty() {
        script.cleanup();
        run_transform(context, module, &script.finish(), "vectorization")?;
    }
    // what no strategy took: scalar loops, the outer one shared by threads
    let mut script = Script::new();
    scalar::plan(context, module, &mut script);
    if !script.is_empty() {
        run_transform(context, module, &script.finish(), "scalar loops")?;
    }
    reduction::reassociate_lane_sums(context, module);
    finite_max::lower(context, module)
}

/// Gives every `tensor.empty` without an [`EMPTY_ID`] (the id that keeps
/// CSE from merging two of them, see `aotc_dialects::lower::elementwise::empty`) that a generic of
/// several results (Winograd's transforms) writes into an id of its own.
/// Elementwise fusion's reshape propagation replaces the lowering's empties
/// of those results by new ones without the id, which CSE would then merge
/// across convolutions: bufferization gives the merged result one buffer
/// shared by every convolution of a shape, which `arena_copies` cannot
/// place into its destination (resnet18: a copy kernel after each Winograd
/// output transform; without them 131 kernel calls a run instead of 144,
/// ab 1 thread 0.99, 2 threads 1.00). Only these: tagging every id-less
/// empty also changes mobilenet_v2's arena and BERT's layer norms (merged
/// empties of their scratch rows), for no gain.
fn tag_multi_result_inits(context: &Context, module: &Module) {
    let mut next = 0i64;
    module.as_operation().walk(WalkOrder::PreOrder, |op| {
        if let Some(id) = op.attribute(EMPTY_ID).ok().and_then(|a| melior::ir::attribute::IntegerAttribute::try_from(a).ok()) {
            next = next.max(id.value() + 1);
        }
        WalkResult::Advance
    });
    for generic in ops_named(module, "linalg.generic") {
        let generic = unsafe { melior::ir::OperationRef::from_raw(generic) };
        if generic.result_count() < 2 {
            continue;
        }
        let inputs = generic.operand_count() - generic.result_count();
        for init in (inputs..generic.operand_count()).filter_map(|i| generic.operand(i).ok()) {
            let Ok(owner) = melior::ir::operation::OperationResult::try_from(init).map(|r| r.owner()) else { continue };
            if owner.name().as_string_ref().as_str() != Ok("tensor.empty") || owner.has_attribute(EMPTY_ID) {
                continue;
            }
            let id = Attribute::parse(context, &format!("{next} : i64")).expect("an integer attribute");
            next += 1;
            unsafe { OperationRefMut::from_raw(owner.to_raw()) }.set_discardable_attribute(EMPTY_ID, id);
        }
    }
}

/// After bufferization: buffer-to-buffer copies (padding, concatenation,
/// results leaving the arena) become row loops of vector transfers.
pub fn vectorize_copies(context: &Context, module: &mut Module, target: &Target) -> Result<()> {
    let mut script = Script::new();
    copies::plan(context, module, target, &mut script);
    if script.is_empty() {
        return Ok(());
    }
    run_transform(context, module, &script.finish(), "copy vectorization")
}

/// Every op named `name` in the module (raw handles: tagging mutates them).
pub fn ops_named(module: &Module, name: &str) -> Vec<MlirOperation> {
    let mut ops = Vec::new();
    module.as_operation().walk(WalkOrder::PreOrder, |op| {
        if op.name().as_string_ref().as_str() == Ok(name) {
            ops.push(op.to_raw());
        }
        WalkResult::Advance
    });
    ops
}

/// Marks an op with the configuration a strategy chose for it, as the
/// discardable attribute `aotc.kernel = "<value>"`, which its script
/// matches.
pub fn tag(context: &Context, op: MlirOperation, value: &str) {
    let mut op = unsafe { OperationRefMut::from_raw(op) };
    let attr = Attribute::parse(context, &format!("\"{value}\"")).expect("a string attribute");
    op.set_discardable_attribute("aotc.kernel", attr);
}

/// Tags every `name` op that `plan_for` gives a plan with that plan's tag
/// (see [`tag`]) and returns the distinct plans in first-seen order: the
/// script realizes each plan once, for every op carrying its tag.
pub fn tag_plans<P: PartialEq>(
    context: &Context,
    module: &Module,
    name: &str,
    plan_for: impl Fn(MlirOperation) -> Option<P>,
    tag_of: impl Fn(&P) -> String,
) -> Vec<P> {
    let mut plans: Vec<P> = Vec::new();
    for raw in ops_named(module, name) {
        let Some(p) = plan_for(raw) else { continue };
        tag(context, raw, &tag_of(&p));
        if !plans.contains(&p) {
            plans.push(p);
        }
    }
    plans
}

/// The annotation of loops whose accumulators are hoisted after cleanup.
const HOIST: &str = "aotc.hoist";

/// The annotation of loops whose iterations are independent (see there).
pub use aotc_dialects::lower::PARALLEL;

/// A transform-dialect script under construction: `%root` is the module,
/// `%func` its functions.
pub struct Script {
    body: String,
    /// Whether loops were annotated for [`Script::hoist_after_cleanup`].
    hoist: bool,
    next: usize,
    cleanup: bool,
}

impl Script {
    pub fn new() -> Script {
        Script { body: String::new(), hoist: false, next: 0, cleanup: false }
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// A fresh handle name.
    pub fn handle(&mut self, stem: &str) -> String {
        self.next += 1;
        format!("%{stem}{}", self.next)
    }

    pub fn line(&mut self, line: impl AsRef<str>) {
        self.body.push_str("    ");
        self.body.push_str(line.as_ref());
        self.body.push('\n');
    }

    /// Hoists the loop-invariant subsets (accumulators read and written on
    /// every iteration) out of `loop` into loop-carried values, after the
    /// cleanups: the transfers only match once canonical. The loop is found
    /// again by an annotation, since canonicalization may fold a one-trip
    /// loop away (a handle held across it would then be invalid).
    pub fn hoist_after_cleanup(&mut self, loop_handle: &str) {
        self.line(format!("transform.annotate {loop_handle} \"{HOIST}\" : !transform.any_op"));
        self.hoist = true;
    }

    /// Marks `loops` as [`PARALLEL`]: only loops over parallel dims, in
    /// whose iterations no value is accumulated.
    pub fn mark_parallel(&mut self, loops: &[String]) {
        self.annotate(loops, PARALLEL);
    }

    /// Gives each of `ops` the unit attribute `name`.
    pub fn annotate(&mut self, ops: &[String], name: &str) {
        for op in ops {
            self.line(format!("transform.annotate {op} \"{name}\" : !transform.any_op"));
        }
    }

    /// A handle to every `op` tagged `aotc.kernel = "<tag>"`.
    pub fn match_tagged(&mut self, op: &str, tag: &str) -> String {
        let h = self.handle("op");
        self.line(format!(
            "{h} = transform.structured.match ops{{[\"{op}\"]}} attributes{{aotc.kernel = \"{tag}\"}} in %root : (!transform.any_op) -> !transform.any_op"
        ));
        h
    }

    /// Tiles `op` with `sizes`; returns the tiled op and the loops (one per
    /// non-zero size).
    pub fn tile(&mut self, op: &str, sizes: &[i64]) -> (String, Vec<String>) {
        self.tile_in_order(false, op, sizes, None)
    }

    /// Tiles `op` like [`Script::tile`] and fuses into the loops the
    /// producers of its operands, its init's included (each becomes a slice
    /// of itself computed inside the loop).
    pub fn tile_and_fuse(&mut self, op: &str, sizes: &[i64]) -> (String, Vec<String>) {
        self.tile_in_order(true, op, sizes, None)
    }

    /// [`Script::tile`], or [`Script::tile_and_fuse`] when `fuse`, with the
    /// loops nested in `order` if given (a permutation of the dims,
    /// outermost first), else in the dims' order.
    pub fn tile_in_order(&mut self, fuse: bool, op: &str, sizes: &[i64], order: Option<&[i64]>) -> (String, Vec<String>) {
        // (the two ops spell the interchange differently)
        let (transform, interchange_word) = if fuse { ("fuse", "interchange") } else { ("tile_using_for", "interchange =") };
        let interchange =
            order.map_or(String::new(), |o| format!(" {interchange_word} [{}]", o.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")));
        let tiled = self.handle("tiled");
        let loops = sizes.iter().filter(|&&s| s != 0).count();
        let names: Vec<String> = (0..loops).map(|_| self.handle("loop")).collect();
        let results = std::iter::once(tiled.clone()).chain(names.iter().cloned()).collect::<Vec<_>>().join(", ");
        let types = vec!["!transform.any_op"; loops + 1].join(", ");
        let sizes_text = sizes.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        self.line(format!(
            "{results} = transform.structured.{transform} {op} tile_sizes [{sizes_text}]{interchange} : (!transform.any_op) -> ({types})"
        ));
        (tiled, names)
    }

    /// Vectorizes `op` (static shapes; `vector_sizes` masks a partial tile).
    pub fn vectorize(&mut self, op: &str, vector_sizes: Option<&[i64]>) {
        match vector_sizes {
            Some(sizes) => {
                let sizes = sizes.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
                self.line(format!("transform.structured.vectorize {op} vector_sizes [{sizes}] : !transform.any_op"));
            }
            None => self.line(format!("transform.structured.vectorize {op} : !transform.any_op")),
        }
    }

    /// Ends the script with the vector cleanups the strategies rely on
    /// (reductions to lane reductions, transfer permutations folded).
    pub fn cleanup(&mut self) {
        self.cleanup = true;
    }

    pub fn finish(self) -> String {
        let mut s = String::from(
            "module attributes {transform.with_named_sequence} {\n  transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {\n",
        );
        s += "    %func = transform.structured.match ops{[\"func.func\"]} in %root : (!transform.any_op) -> !transform.any_op\n";
        s += &self.body;
        if self.cleanup {
            // masked transfers (widened rows) as transfers with a mask operand
            s += "    transform.apply_patterns to %func {\n      transform.apply_patterns.vector.lower_masked_transfers\n      transform.apply_patterns.canonicalization\n    } : !transform.any_op\n";
            if self.hoist {
                s += &format!("    %hoist = transform.structured.match attributes{{{HOIST}}} in %func : (!transform.any_op) -> !transform.any_op\n");
                s += "    transform.loop.hoist_loop_invariant_subsets %hoist : !transform.any_op\n";
            }
            s += "    transform.apply_patterns to %func {\n      transform.apply_patterns.vector.lower_multi_reduction lowering_strategy = \"innerreduction\"\n      transform.apply_patterns.vector.transfer_permutation_patterns\n      transform.apply_patterns.canonicalization\n    } : !transform.any_op\n";
            // transposed reads: one shuffle of the flattened vector, not an
            // extract and insert per element
            s += "    transform.apply_patterns to %func {\n      transform.apply_patterns.vector.drop_unit_dims_with_shape_cast\n    } : !transform.any_op\n";
            // a broadcast read along the vector (a per-channel value over a
            // row of an NCHW image: vector<1x1x1x48> from a 1x1x1x1 view)
            // without its unit dims, so that it becomes one load and a
            // broadcast: kept 4-d, it was unrolled lane by lane through the
            // stack (efficientnet_b0's squeeze-and-excite scaling 4x slower)
            s += "    transform.apply_patterns to %func {\n      transform.apply_patterns.vector.cast_away_vector_leading_one_dim\n    } : !transform.any_op\n";
            // 16 x 16 blocks (a transpose's tiles): unpack and shuffle
            // steps within registers; the rest (short transposes) as above
            s += "    transform.apply_patterns to %func {\n      transform.apply_patterns.vector.lower_transpose lowering_strategy = \"shuffle_16x16\"\n    } : !transform.any_op\n";
            s += "    transform.apply_patterns to %func {\n      transform.apply_patterns.vector.lower_transpose lowering_strategy = \"shuffle_1d\"\n    } : !transform.any_op\n";
        }
        s += "    transform.yield\n  }\n}\n";
        s
    }
}

impl Default for Script {
    fn default() -> Self {
        Script::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loops nested in a given order, by either transform: the script parses
    /// and runs, and the loops come out in that order.
    #[test]
    fn tiles_in_order_with_either_transform() {
        for fuse in [false, true] {
            let context = aotc_dialects::new_context();
            let mut module = crate::mlir::parse(
                &context,
                "func.func @f(%a: tensor<8x16xf32>, %b: tensor<8x16xf32>) -> tensor<8x16xf32> {
                   %r = linalg.add {aotc.kernel = \"t\"} ins(%a, %a : tensor<8x16xf32>, tensor<8x16xf32>) outs(%b : tensor<8x16xf32>) -> tensor<8x16xf32>
                   return %r : tensor<8x16xf32>
                 }",
                "test module",
            )
            .unwrap();
            let mut script = Script::new();
            let op = script.match_tagged("linalg.add", "t");
            script.tile_in_order(fuse, &op, &[2, 4], Some(&[1, 0]));
            run_transform(&context, &mut module, &script.finish(), "tiling").unwrap();
            let text = module.as_operation().to_string();
            // the outer loop steps over the columns (4), the inner over the rows (2)
            let steps: Vec<&str> = text.lines().filter(|l| l.contains("scf.for")).map(|l| l.split(" step ").nth(1).unwrap_or("")).collect();
            assert_eq!(steps.len(), 2, "{text}");
            assert!(steps[0].starts_with("%c4") && steps[1].starts_with("%c2"), "{text}");
        }
    }
}
