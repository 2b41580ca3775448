//! The part of torch.export's serialized ExportedProgram (torch/_export/serde/schema.py)
//! that aotc reads. Unknown fields are ignored; unknown *kinds* of values
//! (argument unions, input/output specs) are rejected by name where they are
//! converted, so that a newer torch gives a clear message instead of a panic.

use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// The schema major version this reader understands.
pub const SUPPORTED_SCHEMA_MAJOR: i64 = 8;

#[derive(Debug, Deserialize)]
pub struct ExportedProgramJson {
    pub graph_module: GraphModuleJson,
    pub schema_version: SchemaVersion,
    #[serde(default)]
    pub torch_version: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SchemaVersion {
    pub major: i64,
    pub minor: i64,
}

#[derive(Debug, Deserialize)]
pub struct GraphModuleJson {
    pub graph: GraphJson,
    pub signature: SignatureJson,
}

#[derive(Debug, Deserialize)]
pub struct GraphJson {
    pub inputs: Vec<Json>,
    pub outputs: Vec<Json>,
    pub nodes: Vec<NodeJson>,
    pub tensor_values: BTreeMap<String, TensorMetaJson>,
}

#[derive(Debug, Deserialize)]
pub struct NodeJson {
    pub target: String,
    pub inputs: Vec<NamedArgumentJson>,
    pub outputs: Vec<Json>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct NamedArgumentJson {
    pub name: String,
    pub arg: Json,
    /// 1 = positional, 2 = keyword (absent in older archives).
    #[serde(default)]
    pub kind: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TensorMetaJson {
    pub dtype: i64,
    pub sizes: Vec<Json>,
    #[serde(default)]
    pub strides: Vec<Json>,
    #[serde(default)]
    pub storage_offset: Option<Json>,
}

#[derive(Debug, Deserialize)]
pub struct SignatureJson {
    pub input_specs: Vec<Json>,
    pub output_specs: Vec<Json>,
}

/// `data/weights/<model>_weights_config.json` and `data/constants/<model>_constants_config.json`.
#[derive(Debug, Deserialize)]
pub struct PayloadConfigJson {
    pub config: BTreeMap<String, PayloadEntryJson>,
}

#[derive(Debug, Deserialize)]
pub struct PayloadEntryJson {
    pub path_name: String,
    #[serde(default)]
    pub use_pickle: bool,
    pub tensor_meta: Option<TensorMetaJson>,
}
