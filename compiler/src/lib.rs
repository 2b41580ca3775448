//! aotc: an ahead-of-time compiler from torch.export programs to native
//! libraries. See the README for the pipeline and the folder layout.

pub mod arena;
mod arena_copies;
pub mod attention_pattern;
mod border_fills;
pub mod codegen;
pub mod gelu_pattern;
pub mod graph;
pub mod higher_order;
pub mod import;
pub mod kernels;
mod line_sides;
pub mod mlir;
pub mod pipeline;
pub mod pool_pattern;
pub mod program;
pub mod pt2;
pub mod driver;
pub mod elf;
pub mod fold;
pub mod functionalize;
pub mod error;
pub mod link;
pub mod pack;
pub mod npy;
pub mod outline;
pub mod outputs;
pub mod padding;
pub mod parallel;
mod slab_loops;
pub mod text;
pub mod timings;
pub mod trace_memory;
