//! Reads a `.pt2` archive written by `torch.export.save` (torch >= 2.6 layout):
//!
//! ```text
//! <name>/models/model.json                         serialized ExportedProgram
//! <name>/data/weights/model_weights_config.json    FQN -> file + tensor meta
//! <name>/data/weights/weight_N                     raw little-endian bytes
//! <name>/data/constants/model_constants_config.json
//! <name>/data/sample_inputs/model.pt               torch.save pickle (args, kwargs)
//! ```
//!
//! Nothing here executes pickle code; every rejection names the file and field.

mod pickle;
pub mod schema;

use crate::program::*;
use crate::text::shown;
use anyhow::{anyhow, bail, Context, Result};
use schema::*;
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// How many bytes aotc may unpack from one archive when the user does not
/// say: 256 MiB plus four times the archive's size. Unpacking covers
/// decompressed entries and tensors materialized from strided views
/// (a stride-0 weight of a billion elements stored in 4 bytes). An honest
/// archive, whose entries torch stores uncompressed, needs about twice its
/// size; a decompression bomb or a view that claims gigabytes stops at the
/// limit with an error, before anything that large is allocated.
pub fn default_unpack_limit(archive_bytes: u64) -> u64 {
    (256 << 20) + archive_bytes.saturating_mul(4)
}

/// Counts the bytes unpacked from an archive against its limit.
#[derive(Debug, Clone)]
pub struct Budget {
    limit: u64,
    used: u64,
}

impl Budget {
    pub fn new(limit: u64) -> Budget {
        Budget { limit, used: 0 }
    }

    /// Reserves `bytes` for `what`, or fails (before anything is allocated).
    pub fn take(&mut self, bytes: u64, what: impl FnOnce() -> String) -> Result<()> {
        match self.used.checked_add(bytes).filter(|&total| total <= self.limit) {
            Some(total) => {
                self.used = total;
                Ok(())
            }
            None => bail!(
                "{} needs {bytes} bytes, which would pass the limit of {} bytes unpacked from one archive \
                 (raise it with --max-unpacked-bytes)",
                what(),
                self.limit
            ),
        }
    }
}

/// Reads a zip entry of `declared` uncompressed bytes, reserving them in
/// `budget` first and never reading past them: the declared size (which
/// the archive chooses) only bounds the read, it is not trusted for an
/// allocation up front.
pub fn read_entry(entry: &mut impl Read, declared: u64, budget: &mut Budget, what: &str) -> Result<Vec<u8>> {
    budget.take(declared, || what.to_string())?;
    let mut bytes = Vec::with_capacity(declared.min(1 << 24) as usize);
    entry
        .take(declared.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow!("{what}: cannot read (truncated or corrupt archive?): {e}"))?;
    if bytes.len() as u64 != declared {
        bail!("{what}: holds {} bytes but the archive's directory says {declared} (corrupt archive)", bytes.len());
    }
    Ok(bytes)
}

/// Opens and decodes a whole archive; `unpack_limit` bounds the bytes it
/// may unpack (default: [`default_unpack_limit`]).
pub fn read_archive(path: &Path, unpack_limit: Option<u64>) -> Result<ExportedProgram> {
    let file = std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if !file.metadata().map(|m| m.is_file()).unwrap_or(false) {
        bail!("{}: not a regular file", path.display());
    }
    let zip = zip::ZipArchive::new(file)
        .map_err(|e| anyhow!("{}: not a readable .pt2 archive (truncated, or not a zip file: {e})", path.display()))?;
    let budget = Budget::new(unpack_limit.unwrap_or_else(|| default_unpack_limit(size)));
    let mut archive = Archive { path: path.display().to_string(), zip, budget };
    archive.decode()
}

struct Archive {
    path: String,
    zip: zip::ZipArchive<std::fs::File>,
    budget: Budget,
}

impl Archive {
    fn read(&mut self, name: &str) -> Result<Vec<u8>> {
        let mut entry = self
            .zip
            .by_name(name)
            .map_err(|e| anyhow!("{}: cannot read {}: {e}", self.path, shown(name)))?;
        let declared = entry.size();
        read_entry(&mut entry, declared, &mut self.budget, &format!("{}: {}", self.path, shown(name)))
    }

    fn has(&self, name: &str) -> bool {
        self.zip.index_for_name(name).is_some()
    }

    fn json<T: serde::de::DeserializeOwned>(&mut self, name: &str) -> Result<T> {
        let bytes = self.read(name)?;
        serde_json::from_slice(&bytes).map_err(|e| anyhow!("{}: {name}: {e}", self.path))
    }

    /// Finds `<folder>/models/<model>.json`; returns (folder, model).
    fn find_model(&self) -> Result<(String, String)> {
        for name in self.zip.file_names() {
            let parts: Vec<&str> = name.split('/').collect();
            if parts.len() == 3 && parts[1] == "models" && parts[2].ends_with(".json") {
                let model = parts[2].trim_end_matches(".json").to_string();
                return Ok((parts[0].to_string(), model));
            }
        }
        bail!("{}: no model JSON in the archive (expected <name>/models/<model>.json; was it written by torch.export.save?)", self.path)
    }

    fn decode(&mut self) -> Result<ExportedProgram> {
        let (folder, model) = self.find_model()?;
        let model_path = format!("{folder}/models/{model}.json");
        let ep: ExportedProgramJson = self.json(&model_path)?;
        if ep.schema_version.major != SUPPORTED_SCHEMA_MAJOR {
            bail!(
                "{}: {model_path}: schema_version {}.{} is not supported (aotc reads schema {SUPPORTED_SCHEMA_MAJOR}.x, torch 2.6 and later)",
                self.path,
                ep.schema_version.major,
                ep.schema_version.minor
            );
        }
        let ctx = format!("{}: {model_path}", self.path);
        let graph = &ep.graph_module.graph;

        // A tensor aotc cannot type (complex dtype, data-dependent size) is
        // recorded, not fatal: the nodes that make it are reported together
        // with every other unsupported node.
        let mut tensor_types = BTreeMap::new();
        let mut bad_tensors = BTreeMap::new();
        for (name, meta) in &graph.tensor_values {
            match tensor_type(meta) {
                Ok(ty) => {
                    tensor_types.insert(name.clone(), ty);
                }
                Err(e) => {
                    bad_tensors.insert(name.clone(), format!("{e:#}"));
                }
            }
        }
        let type_of = |name: &str| -> Result<TensorType> {
            if bad_tensors.contains_key(name) {
                // a placeholder; the program is rejected before it is compiled
                return Ok(TensorType { dtype: DType::F32, shape: vec![] });
            }
            tensor_types
                .get(name)
                .cloned()
                .ok_or_else(|| anyhow!("{ctx}: tensor '{name}' has no entry in graph.tensor_values"))
        };

        let mut inputs = Vec::new();
        for (i, spec) in ep.graph_module.signature.input_specs.iter().enumerate() {
            let (name, kind) = input_spec(spec).with_context(|| format!("{ctx}: signature.input_specs[{i}]"))?;
            let ty = type_of(&name)?;
            inputs.push(GraphInput { name, kind, ty });
        }
        let mut outputs = Vec::new();
        for (i, spec) in ep.graph_module.signature.output_specs.iter().enumerate() {
            let Some((name, kind)) = output_spec(spec).with_context(|| format!("{ctx}: signature.output_specs[{i}]"))? else {
                continue;
            };
            let ty = type_of(&name)?;
            outputs.push(GraphOutput { name, kind, ty });
        }

        let mut nodes = Vec::new();
        for node in &graph.nodes {
            nodes.push(decode_node(node));
        }

        let mut weights = self.read_payloads(&folder, "weights", &model)?;
        weights.append(&mut self.read_payloads(&folder, "constants", &model)?);
        for input in &inputs {
            let fqn = match &input.kind {
                InputKind::User => continue,
                InputKind::Parameter { fqn } | InputKind::Buffer { fqn, .. } | InputKind::Constant { fqn } => fqn,
            };
            let Some(w) = weights.get(fqn) else {
                bail!("{}: no stored data for '{fqn}' (input '{}' of the graph signature)", self.path, input.name);
            };
            if w.ty != input.ty {
                bail!("{}: stored '{fqn}' is {} but the graph reads it as {}", self.path, w.ty, input.ty);
            }
        }

        let sample_path = format!("{folder}/data/sample_inputs/{model}.pt");
        let sample_inputs = if self.has(&sample_path) {
            let bytes = self.read(&sample_path)?;
            let tensors = pickle::read_torch_save(&bytes, &mut self.budget).with_context(|| format!("{}: {sample_path}", self.path))?;
            Some(tensors)
        } else {
            None
        };

        Ok(ExportedProgram { name: folder, inputs, outputs, nodes, tensor_types, bad_tensors, weights, sample_inputs, derived_weights: Default::default(), unread_weights: Default::default() })
    }

    /// Reads `data/<kind>/<model>_<kind>_config.json` and every tensor it lists.
    fn read_payloads(&mut self, folder: &str, kind: &str, model: &str) -> Result<BTreeMap<String, HostTensor>> {
        let config_path = format!("{folder}/data/{kind}/{model}_{kind}_config.json");
        let mut out = BTreeMap::new();
        if !self.has(&config_path) {
            return Ok(out);
        }
        let config: PayloadConfigJson = self.json(&config_path)?;
        for (fqn, entry) in &config.config {
            let field = format!("{}: {config_path}: config.{fqn}", self.path);
            if entry.use_pickle {
                bail!("{field}: pickled payloads are not supported (aotc never runs pickle code)");
            }
            let meta = entry.tensor_meta.as_ref().ok_or_else(|| anyhow!("{field}: no tensor_meta"))?;
            let ty = tensor_type(meta).with_context(|| field.clone())?;
            let file = format!("{folder}/data/{kind}/{}", entry.path_name);
            let bytes = self.read(&file)?;
            let data = gather_contiguous(&bytes, &ty, meta, &mut self.budget)
                .with_context(|| format!("{}: {} ('{}')", self.path, shown(&file), shown(fqn)))?;
            out.insert(fqn.clone(), HostTensor { ty, data });
        }
        Ok(out)
    }
}

fn as_int(value: &Json) -> Result<i64> {
    if let Some(v) = value.get("as_int").and_then(Json::as_i64) {
        return Ok(v);
    }
    if value.get("as_expr").is_some() {
        bail!("dynamic (symbolic) sizes are not supported yet; export with static shapes");
    }
    bail!("expected an integer, found {value}")
}

fn tensor_type(meta: &TensorMetaJson) -> Result<TensorType> {
    let dtype = DType::from_schema_code(meta.dtype)
        .ok_or_else(|| anyhow!("dtype code {} is not supported (complex, float8 and uint16+ are not)", meta.dtype))?;
    let shape = meta.sizes.iter().map(as_int).collect::<Result<Vec<_>>>()?;
    check_shape(&shape, dtype)?;
    Ok(TensorType { dtype, shape })
}

/// Rejects negative sizes and tensors too large to address (2^40 bytes).
pub fn check_shape(shape: &[i64], dtype: DType) -> Result<()> {
    let mut bytes = dtype.size_bytes() as i64;
    for &d in shape {
        if d < 0 {
            bail!("negative size {d} in shape {shape:?}");
        }
        bytes = bytes.checked_mul(d).filter(|b| *b < 1 << 40).ok_or_else(|| anyhow!("shape {shape:?} is too large"))?;
    }
    Ok(())
}

/// Copies a stored tensor into contiguous row-major order, checking that the
/// file holds every element its sizes, strides and storage offset address.
fn gather_contiguous(bytes: &[u8], ty: &TensorType, meta: &TensorMetaJson, budget: &mut Budget) -> Result<Vec<u8>> {
    let strides = meta.strides.iter().map(as_int).collect::<Result<Vec<_>>>()?;
    let offset = meta.storage_offset.as_ref().map(as_int).transpose()?.unwrap_or(0);
    if !strides.is_empty() && strides.len() != ty.shape.len() {
        bail!("has {} strides for {} dims", strides.len(), ty.shape.len());
    }
    let strides = if strides.is_empty() { contiguous_strides(&ty.shape) } else { strides };
    gather_view(bytes, ty, &strides, offset, budget)
}

/// The elements of a strided view of `storage` as a contiguous tensor of
/// type `ty`. The view's extent is computed with checked arithmetic and
/// must lie inside the storage; the result's bytes are reserved in
/// `budget` before they are allocated.
pub fn gather_view(storage: &[u8], ty: &TensorType, strides: &[i64], offset: i64, budget: &mut Budget) -> Result<Vec<u8>> {
    let elem = ty.dtype.size_bytes();
    let numel = ty.numel();
    if numel == 0 {
        return Ok(Vec::new());
    }
    let end = view_end(&ty.shape, strides, offset)
        .ok_or_else(|| anyhow!("storage offset {offset} and strides {strides:?} address elements outside any tensor"))?;
    let needed = end
        .checked_mul(elem as u64)
        .ok_or_else(|| anyhow!("storage offset {offset} and strides {strides:?} address elements outside any tensor"))?;
    if (storage.len() as u64) < needed {
        let layout = if strides == contiguous_strides(&ty.shape).as_slice() && offset == 0 {
            String::new()
        } else {
            format!(", strides {strides:?} and offset {offset}")
        };
        bail!("holds {} bytes but its shape {:?} ({}){layout} needs {needed}", storage.len(), ty.shape, ty.dtype);
    }
    budget.take(ty.size_bytes() as u64, || format!("a {} tensor of shape {:?}", ty.dtype, ty.shape))?;
    Ok(gather_strided(storage, &ty.shape, strides, offset, elem).expect("the view was checked to lie inside the storage"))
}

/// One past the last element a view addresses (in elements), or None if
/// the offset or a stride is negative or the arithmetic overflows. Only
/// called for views with at least one element.
fn view_end(shape: &[i64], strides: &[i64], offset: i64) -> Option<u64> {
    if offset < 0 || strides.len() != shape.len() {
        return None;
    }
    let mut last = offset as u64;
    for (&d, &s) in shape.iter().zip(strides) {
        let (d, s) = (u64::try_from(d).ok()?, u64::try_from(s).ok()?);
        last = last.checked_add(d.checked_sub(1)?.checked_mul(s)?)?;
    }
    last.checked_add(1)
}

/// The elements of a strided view (`shape`, `strides` and `offset` in
/// elements of `elem` bytes) in row-major order; None if the view reaches
/// past `bytes`. Callers bound the view's size first.
pub fn gather_strided(bytes: &[u8], shape: &[i64], strides: &[i64], offset: i64, elem: usize) -> Option<Vec<u8>> {
    let numel: i64 = shape.iter().product();
    if numel <= 0 {
        return Some(Vec::new());
    }
    if strides == contiguous_strides(shape).as_slice() {
        let start = (offset as usize).checked_mul(elem)?;
        return bytes.get(start..start.checked_add(numel as usize * elem)?).map(<[u8]>::to_vec);
    }
    let mut out = Vec::with_capacity(numel as usize * elem);
    let mut index = vec![0i64; shape.len()];
    for _ in 0..numel {
        let at = (offset + index.iter().zip(strides).map(|(i, s)| i * s).sum::<i64>()) as usize * elem;
        out.extend_from_slice(bytes.get(at..at + elem)?);
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Some(out)
}

pub fn contiguous_strides(shape: &[i64]) -> Vec<i64> {
    let mut strides = vec![1i64; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1].max(1);
    }
    strides
}

/// The single key of a one-field union object, and its value.
fn union(value: &Json) -> Result<(&str, &Json)> {
    let object = value.as_object().ok_or_else(|| anyhow!("expected an object, found {value}"))?;
    let mut present = object.iter().filter(|(_, v)| !v.is_null());
    match (present.next(), present.next()) {
        (Some((k, v)), None) => Ok((k.as_str(), v)),
        _ => bail!("expected exactly one field, found {value}"),
    }
}

fn tensor_name(value: &Json) -> Result<String> {
    value
        .get("name")
        .and_then(Json::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow!("expected a tensor argument with a name, found {value}"))
}

fn input_spec(spec: &Json) -> Result<(String, InputKind)> {
    let (kind, body) = union(spec)?;
    let arg_name = || -> Result<String> {
        let arg = body.get("arg").ok_or_else(|| anyhow!("{kind}: no arg"))?;
        match arg.get("as_tensor") {
            Some(t) => tensor_name(t),
            None => tensor_name(arg),
        }
    };
    let field = |f: &str| -> Result<String> {
        body.get(f)
            .and_then(Json::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow!("{kind}: no {f}"))
    };
    Ok(match kind {
        "user_input" => (arg_name()?, InputKind::User),
        "parameter" => (arg_name()?, InputKind::Parameter { fqn: field("parameter_name")? }),
        "buffer" => {
            let persistent = body.get("persistent").and_then(Json::as_bool).unwrap_or(true);
            (arg_name()?, InputKind::Buffer { fqn: field("buffer_name")?, persistent })
        }
        "tensor_constant" => (arg_name()?, InputKind::Constant { fqn: field("tensor_constant_name")? }),
        other => bail!("input kind '{other}' is not supported (aotc compiles tensor inputs, parameters, buffers and tensor constants)"),
    })
}

/// An output of the signature, or None for the new value of a user input
/// (the C API's inputs are read-only: a program that writes into an input
/// computes with the written value, but the caller's buffer is not changed).
fn output_spec(spec: &Json) -> Result<Option<(String, OutputKind)>> {
    let (kind, body) = union(spec)?;
    let arg = body.get("arg").ok_or_else(|| anyhow!("{kind}: no arg"))?;
    let name = match arg.get("as_tensor") {
        Some(t) => tensor_name(t)?,
        None if arg.get("name").is_some() => tensor_name(arg)?,
        None => bail!("{kind}: only tensor outputs are supported, found {arg}"),
    };
    Ok(Some(match kind {
        "user_output" => (name, OutputKind::User),
        "user_input_mutation" => return Ok(None),
        "buffer_mutation" => {
            let fqn = body
                .get("buffer_name")
                .and_then(Json::as_str)
                .ok_or_else(|| anyhow!("buffer_mutation: no buffer_name"))?;
            (name, OutputKind::BufferMutation { fqn: fqn.to_string() })
        }
        other => bail!("output kind '{}' is not supported (training outputs are not compiled)", shown(other)),
    }))
}

/// A node; what cannot be decoded is kept as the node's `problem`.
fn decode_node(node: &NodeJson) -> Node {
    let target = node.target.strip_prefix("torch.ops.").unwrap_or(&node.target).to_string();
    let stack_trace = node.metadata.get("stack_trace").cloned();
    match decode_node_parts(node) {
        Ok((args, outputs)) => {
            let name = node.name.clone().or_else(|| outputs.iter().flatten().next().cloned()).unwrap_or_else(|| target.clone());
            Node { name, target, args, outputs, stack_trace, problem: None }
        }
        Err(e) => {
            let name = node.name.clone().unwrap_or_else(|| target.clone());
            Node { name, target, args: vec![], outputs: vec![], stack_trace, problem: Some(format!("{e:#}")) }
        }
    }
}

type NodeParts = (Vec<(String, Arg)>, Vec<Option<String>>);

fn decode_node_parts(node: &NodeJson) -> Result<NodeParts> {
    let mut args = Vec::new();
    for input in &node.inputs {
        let arg = decode_arg(&input.arg).with_context(|| format!("argument '{}'", input.name))?;
        args.push((input.name.clone(), arg));
    }
    let mut outputs = Vec::new();
    for out in &node.outputs {
        let (kind, body) = union(out)?;
        match kind {
            "as_tensor" => outputs.push(Some(tensor_name(body)?)),
            "as_tensors" => {
                for t in body.as_array().into_iter().flatten() {
                    outputs.push(Some(tensor_name(t)?));
                }
            }
            "as_none" => outputs.push(None),
            other => bail!("output of kind '{other}' is not supported"),
        }
    }
    Ok((args, outputs))
}

fn decode_arg(value: &Json) -> Result<Arg> {
    let (kind, body) = match union(value) {
        Ok(kv) => kv,
        // `{"as_none": null}` and similar: a union whose only field is null.
        Err(_) if value.as_object().is_some_and(|o| o.contains_key("as_none")) => return Ok(Arg::None),
        Err(e) => return Err(e),
    };
    let ints = |v: &Json| -> Result<Vec<i64>> {
        v.as_array()
            .ok_or_else(|| anyhow!("expected a list, found {v}"))?
            .iter()
            .map(|x| x.as_i64().ok_or_else(|| anyhow!("expected an integer, found {x}")))
            .collect()
    };
    Ok(match kind {
        "as_none" => Arg::None,
        "as_tensor" => Arg::Tensor(tensor_name(body)?),
        "as_tensors" => Arg::Tensors(body.as_array().into_iter().flatten().map(tensor_name).collect::<Result<_>>()?),
        "as_optional_tensors" => Arg::OptionalTensors(
            body.as_array()
                .into_iter()
                .flatten()
                .map(|t| match union(t) {
                    Ok(("as_tensor", t)) => tensor_name(t).map(Some),
                    _ => Ok(None),
                })
                .collect::<Result<_>>()?,
        ),
        "as_int" => Arg::Int(body.as_i64().ok_or_else(|| anyhow!("expected an integer, found {body}"))?),
        "as_ints" => Arg::Ints(ints(body)?),
        "as_float" => Arg::Float(json_float(body)?),
        "as_floats" => Arg::Floats(body.as_array().into_iter().flatten().map(json_float).collect::<Result<_>>()?),
        "as_bool" => Arg::Bool(body.as_bool().ok_or_else(|| anyhow!("expected a bool, found {body}"))?),
        "as_bools" => Arg::Bools(body.as_array().into_iter().flatten().filter_map(Json::as_bool).collect()),
        "as_string" => Arg::Str(body.as_str().unwrap_or_default().to_string()),
        "as_scalar_type" => {
            let code = body.as_i64().unwrap_or(-1);
            Arg::ScalarType(DType::from_schema_code(code).ok_or_else(|| anyhow!("dtype code {code} is not supported"))?)
        }
        "as_device" => Arg::Ignored("device"),
        "as_layout" => Arg::Ignored("layout"),
        "as_memory_format" => Arg::Ignored("memory_format"),
        "as_graph" => Arg::Graph(Box::new(decode_subgraph(body)?)),
        "as_sym_int" | "as_sym_ints" | "as_sym_float" | "as_sym_bool" => {
            bail!("symbolic values ({kind}) are not supported; export with static shapes")
        }
        other => bail!("argument kind '{other}' is not supported"),
    })
}

/// `{"name": ..., "graph": {inputs, outputs, nodes, tensor_values}}` of a
/// higher-order op's argument. (serde_json's recursion limit bounds how
/// deeply subgraphs can nest.)
fn decode_subgraph(body: &Json) -> Result<Subgraph> {
    let name = body.get("name").and_then(Json::as_str).unwrap_or("subgraph").to_string();
    let graph: GraphJson = serde_json::from_value(body.get("graph").cloned().unwrap_or(Json::Null))
        .map_err(|e| anyhow!("subgraph '{}': {e}", shown(&name)))?;
    let names = |values: &[Json], what: &str| -> Result<Vec<String>> {
        values
            .iter()
            .map(|v| match union(v)? {
                ("as_tensor", t) => tensor_name(t),
                (kind, _) => bail!("subgraph '{}': {what} of kind '{kind}' is not supported (only tensors)", shown(&name)),
            })
            .collect()
    };
    let mut tensor_types = BTreeMap::new();
    for (t, meta) in &graph.tensor_values {
        tensor_types.insert(t.clone(), tensor_type(meta).with_context(|| format!("subgraph '{}': tensor '{}'", shown(&name), shown(t)))?);
    }
    Ok(Subgraph {
        inputs: names(&graph.inputs, "an input")?,
        outputs: names(&graph.outputs, "an output")?,
        nodes: graph.nodes.iter().map(decode_node).collect(),
        tensor_types,
        name,
    })
}

/// Floats are JSON numbers, or the strings "Infinity", "-Infinity", "NaN".
fn json_float(value: &Json) -> Result<f64> {
    if let Some(f) = value.as_f64() {
        return Ok(f);
    }
    match value.as_str() {
        Some("Infinity") | Some("inf") => Ok(f64::INFINITY),
        Some("-Infinity") | Some("-inf") => Ok(f64::NEG_INFINITY),
        Some("NaN") | Some("nan") => Ok(f64::NAN),
        _ => bail!("expected a float, found {value}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_of_contiguous_shapes() {
        assert_eq!(contiguous_strides(&[6, 3, 5, 5]), vec![75, 25, 5, 1]);
        assert_eq!(contiguous_strides(&[]), Vec::<i64>::new());
    }

    #[test]
    fn gathers_a_transposed_tensor() {
        // A 2x3 view with strides (1, 2) over storage [0 1 2 3 4 5] is [[0 2 4] [1 3 5]].
        let bytes: Vec<u8> = (0u8..6).collect();
        let ty = TensorType { dtype: DType::U8, shape: vec![2, 3] };
        let meta: TensorMetaJson = serde_json::from_str(
            r#"{"dtype": 1, "sizes": [{"as_int": 2}, {"as_int": 3}], "strides": [{"as_int": 1}, {"as_int": 2}]}"#,
        )
        .unwrap();
        assert_eq!(gather_contiguous(&bytes, &ty, &meta, &mut Budget::new(100)).unwrap(), vec![0, 2, 4, 1, 3, 5]);
    }

    #[test]
    fn short_weight_file_is_an_error() {
        let ty = TensorType { dtype: DType::F32, shape: vec![4] };
        let meta: TensorMetaJson = serde_json::from_str(r#"{"dtype": 7, "sizes": [{"as_int": 4}]}"#).unwrap();
        let err = gather_contiguous(&[0u8; 12], &ty, &meta, &mut Budget::new(100)).unwrap_err().to_string();
        assert!(err.contains("holds 12 bytes"), "{err}");
    }

    #[test]
    fn rejects_negative_and_huge_shapes() {
        assert!(check_shape(&[2, -1], DType::F32).unwrap_err().to_string().contains("negative size -1"));
        assert!(check_shape(&[1 << 30, 1 << 30], DType::F32).unwrap_err().to_string().contains("too large"));
        assert!(check_shape(&[6, 3, 5, 5], DType::F32).is_ok());
    }

    #[test]
    fn decodes_argument_unions() {
        let arg: Json = serde_json::from_str(r#"{"as_ints": [2, 2]}"#).unwrap();
        assert_eq!(decode_arg(&arg).unwrap(), Arg::Ints(vec![2, 2]));
        let arg: Json = serde_json::from_str(r#"{"as_float": "-Infinity"}"#).unwrap();
        assert_eq!(decode_arg(&arg).unwrap(), Arg::Float(f64::NEG_INFINITY));
        let arg: Json = serde_json::from_str(r#"{"as_graph": {"name": "g"}}"#).unwrap();
        assert!(decode_arg(&arg).unwrap_err().to_string().contains("subgraph 'g'"));
        let arg: Json = serde_json::from_str(r#"{"as_custom_obj": {}}"#).unwrap();
        assert!(decode_arg(&arg).unwrap_err().to_string().contains("as_custom_obj"));
    }
}
