//! Open Inference Protocol request tensors, decoded into model rows.
//!
//! A request carries either one input per feature, named after it, of shape
//! `[n]` or `[n, 1]` (numbers for numeric features, `BYTES` strings for
//! categorical ones), or one numeric matrix of shape `[n, n_features]` in
//! schema order with categorical features as their dictionary codes. Values
//! come as JSON `data` or, with the binary extension, as raw bytes (see
//! [`super::wire`]).
//!
//! Every size is the client's claim and is checked before anything is
//! allocated from it: shape dimensions are multiplied with `checked_mul`,
//! the row count must be at most `max_batch_rows`, and element counts must
//! match the data actually sent. Warnings are one per feature (an unseen
//! category counts its rows), so a large request cannot grow them.

use std::collections::BTreeMap;

use presage_models::schema::UNSEEN_CATEGORY;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::wire::{bytes_elements, BinaryCursor};
use crate::error::ApiError;
use crate::store::LoadedVersion;

/// A tensor's element type, as the protocol names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[allow(clippy::upper_case_acronyms)]
pub enum Datatype {
    /// Booleans.
    BOOL,
    /// Unsigned 8-bit integers.
    UINT8,
    /// Unsigned 16-bit integers.
    UINT16,
    /// Unsigned 32-bit integers.
    UINT32,
    /// Unsigned 64-bit integers.
    UINT64,
    /// Signed 8-bit integers.
    INT8,
    /// Signed 16-bit integers.
    INT16,
    /// Signed 32-bit integers.
    INT32,
    /// Signed 64-bit integers.
    INT64,
    /// Half-precision floats.
    FP16,
    /// Single-precision floats.
    FP32,
    /// Double-precision floats.
    FP64,
    /// Byte strings (UTF-8 text for categorical features).
    BYTES,
}

impl Datatype {
    /// Bytes per element in binary form (`None` for `BYTES`).
    fn width(self) -> Option<usize> {
        Some(match self {
            Datatype::BOOL | Datatype::UINT8 | Datatype::INT8 => 1,
            Datatype::UINT16 | Datatype::INT16 | Datatype::FP16 => 2,
            Datatype::UINT32 | Datatype::INT32 | Datatype::FP32 => 4,
            Datatype::UINT64 | Datatype::INT64 | Datatype::FP64 => 8,
            Datatype::BYTES => return None,
        })
    }

    /// Decodes one little-endian element of this (numeric) type.
    fn decode(self, b: &[u8]) -> f64 {
        let array = |n| -> [u8; 8] {
            let mut a = [0u8; 8];
            a[..n].copy_from_slice(&b[..n]);
            a
        };
        match self {
            Datatype::BOOL => f64::from(u8::from(b[0] != 0)),
            Datatype::UINT8 => f64::from(b[0]),
            Datatype::INT8 => f64::from(b[0] as i8),
            Datatype::UINT16 => f64::from(u16::from_le_bytes([b[0], b[1]])),
            Datatype::INT16 => f64::from(i16::from_le_bytes([b[0], b[1]])),
            Datatype::FP16 => half_to_f64(u16::from_le_bytes([b[0], b[1]])),
            Datatype::UINT32 => f64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            Datatype::INT32 => f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            Datatype::FP32 => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            Datatype::UINT64 => u64::from_le_bytes(array(8)) as f64,
            Datatype::INT64 => i64::from_le_bytes(array(8)) as f64,
            Datatype::FP64 => f64::from_le_bytes(array(8)),
            Datatype::BYTES => f64::NAN,
        }
    }
}

/// IEEE 754 half precision to double.
fn half_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((h >> 10) & 0x1f);
    let fraction = f64::from(h & 0x3ff);
    sign * match exponent {
        0 => fraction * 2f64.powi(-24),
        31 if fraction == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + fraction / 1024.0) * 2f64.powi(e - 15),
    }
}

/// Optional tensor parameters; `binary_data_size` marks binary data.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct TensorParameters {
    /// Bytes of this tensor in the binary part of the body.
    #[serde(default, deserialize_with = "crate::json::whole_number::option")]
    #[schema(minimum = 0)]
    pub binary_data_size: Option<u64>,
    /// Other parameters (ignored).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub other: Map<String, Value>,
}

/// One input tensor.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct InferInput {
    /// Tensor name: a feature name, or anything for the single matrix input.
    pub name: String,
    /// Tensor shape: `[n]` or `[n, 1]` per feature, `[n, n_features]` for a matrix.
    #[serde(deserialize_with = "crate::json::whole_number::list")]
    #[schema(value_type = Vec<u64>, minimum = 0)]
    pub shape: Vec<u64>,
    /// Element type.
    pub datatype: Datatype,
    /// Parameters (`binary_data_size` with the binary extension).
    #[serde(default)]
    pub parameters: Option<TensorParameters>,
    /// Values, flat or nested, row-major (absent with binary data).
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub data: Option<Vec<Value>>,
}

/// An output the client asks for.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RequestedOutput {
    /// `probability` or `segment`.
    pub name: String,
    /// `binary_data: true` answers this output as binary data.
    #[serde(default)]
    pub parameters: Option<OutputParameters>,
}

/// Parameters of a requested output.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct OutputParameters {
    /// Answer this output as binary data.
    #[serde(default)]
    pub binary_data: Option<bool>,
    /// Other parameters (ignored).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub other: Map<String, Value>,
}

/// Request parameters; `binary_data_output` asks for binary outputs.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct RequestParameters {
    /// Answer every output as binary data.
    #[serde(default)]
    pub binary_data_output: Option<bool>,
    /// Other parameters (ignored).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub other: Map<String, Value>,
}

/// An inference request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct InferRequest {
    /// Echoed back.
    #[serde(default)]
    pub id: Option<String>,
    /// Input tensors.
    pub inputs: Vec<InferInput>,
    /// Request parameters.
    #[serde(default)]
    pub parameters: Option<RequestParameters>,
    /// Outputs to return (default: `probability` and `segment`).
    #[serde(default)]
    pub outputs: Option<Vec<RequestedOutput>>,
}

/// Size limits for decoding.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// Most rows.
    pub max_rows: usize,
    /// Most inputs (features) in one request.
    pub max_inputs: usize,
}

/// Decoded rows, row-major in schema order, and the warnings.
#[derive(Debug, PartialEq)]
pub struct Decoded {
    /// Rows.
    pub n: usize,
    /// `n * n_features` values.
    pub rows: Vec<f64>,
    /// Non-fatal problems, at most one per feature.
    pub warnings: Vec<String>,
}

/// One element of an input, however it was sent.
enum Element<'a> {
    Number(f64),
    Text(&'a str),
    Missing,
    Wrong(&'static str),
}

impl Element<'_> {
    fn describe(&self) -> &'static str {
        match self {
            Element::Number(_) => "a number",
            Element::Text(_) => "a string",
            Element::Missing => "null",
            Element::Wrong(what) => what,
        }
    }
}

/// An input's values, JSON or binary, with their count checked.
enum Values<'a> {
    Json(Vec<&'a Value>),
    Numbers(&'a [u8], Datatype),
    Bytes(Vec<&'a [u8]>),
}

impl<'a> Values<'a> {
    fn get(&self, i: usize) -> Element<'a> {
        match self {
            Values::Json(values) => match values[i] {
                Value::Number(n) => Element::Number(n.as_f64().unwrap_or(f64::NAN)),
                Value::Bool(b) => Element::Number(f64::from(u8::from(*b))),
                Value::Null => Element::Missing,
                Value::String(s) => Element::Text(s),
                Value::Array(_) => Element::Wrong("an array"),
                Value::Object(_) => Element::Wrong("an object"),
            },
            Values::Numbers(bytes, datatype) => {
                let width = datatype.width().unwrap_or(1);
                Element::Number(datatype.decode(&bytes[i * width..(i + 1) * width]))
            }
            Values::Bytes(elements) => match std::str::from_utf8(elements[i]) {
                Ok(text) => Element::Text(text),
                Err(_) => Element::Wrong("bytes that are not UTF-8"),
            },
        }
    }
}

/// Flattens nested JSON arrays into `out`.
fn flatten<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| flatten(v, out)),
        other => out.push(other),
    }
}

/// The elements a shape holds, or an error if the product overflows.
fn elements_of(shape: &[u64], field: &str) -> Result<u64, ApiError> {
    shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            ApiError::invalid(
                "invalid_shape",
                format!("shape {shape:?} holds more elements than can be counted"),
                field,
            )
        })
}

/// Checks a row count against the limit.
fn check_rows(n: u64, limits: DecodeLimits, field: &str) -> Result<usize, ApiError> {
    usize::try_from(n)
        .ok()
        .filter(|n| *n <= limits.max_rows)
        .ok_or_else(|| {
            ApiError::invalid(
                "batch_too_large",
                format!(
                    "{n} rows is more than this server's limit of {} (max_batch_rows)",
                    limits.max_rows
                ),
                field,
            )
        })
}

/// Reads an input's values: `expected` elements from its JSON `data` or its
/// binary bytes.
fn values<'a>(
    input: &'a InferInput,
    expected: usize,
    cursor: &mut BinaryCursor<'a>,
    field: &str,
) -> Result<Values<'a>, ApiError> {
    let binary_size = input.parameters.as_ref().and_then(|p| p.binary_data_size);
    match (binary_size, &input.data) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "invalid_binary_data",
            "an input has both data and binary_data_size; send one",
            format!("{field}.data"),
        )),
        (None, None) => Err(ApiError::invalid(
            "missing_data",
            "an input needs data (or binary_data_size with the binary extension)",
            format!("{field}.data"),
        )),
        (None, Some(data)) => {
            let mut flat = Vec::new();
            data.iter().for_each(|v| flatten(v, &mut flat));
            if flat.len() != expected {
                return Err(ApiError::invalid(
                    "invalid_shape",
                    format!(
                        "shape {:?} needs {expected} values, got {}",
                        input.shape,
                        flat.len()
                    ),
                    format!("{field}.data"),
                ));
            }
            Ok(Values::Json(flat))
        }
        (Some(size), None) => {
            let bytes = cursor.take(size, field)?;
            match input.datatype.width() {
                None => Ok(Values::Bytes(bytes_elements(
                    bytes,
                    expected,
                    &format!("{field}.parameters.binary_data_size"),
                )?)),
                Some(width) if bytes.len() == expected.saturating_mul(width) => {
                    Ok(Values::Numbers(bytes, input.datatype))
                }
                Some(width) => Err(ApiError::invalid(
                    "invalid_binary_data",
                    format!(
                        "shape {:?} of {:?} needs {} bytes, binary_data_size is {}",
                        input.shape,
                        input.datatype,
                        expected.saturating_mul(width),
                        bytes.len()
                    ),
                    format!("{field}.parameters.binary_data_size"),
                )),
            }
        }
    }
}

/// Decodes a request's inputs into rows for `model`. Unknown inputs are
/// warnings, or 422 when `strict`.
pub fn decode(
    model: &LoadedVersion,
    request: &InferRequest,
    binary: &[u8],
    strict: bool,
    limits: DecodeLimits,
) -> Result<Decoded, ApiError> {
    let schema = &model.artifact.schema;
    let width = schema.len();
    let mut cursor = BinaryCursor::new(binary);
    if request.inputs.is_empty() {
        return Err(ApiError::invalid(
            "empty_request",
            "inputs is empty",
            "inputs",
        ));
    }
    if request.inputs.len() > limits.max_inputs {
        return Err(ApiError::invalid(
            "too_many_features",
            format!(
                "{} inputs is more than {} (max_features_per_row); this model has {width} features",
                request.inputs.len(),
                limits.max_inputs
            ),
            "inputs",
        ));
    }
    // A single numeric matrix of all features.
    if let [input] = request.inputs.as_slice() {
        if input.shape.len() == 2
            && input.shape[1] == width as u64
            && !model.positions.contains_key(&input.name)
        {
            if input.datatype == Datatype::BYTES {
                return Err(ApiError::invalid(
                    "wrong_type",
                    "a matrix input must be numeric (FP64 or FP32)",
                    "inputs[0].datatype",
                ));
            }
            let n = check_rows(input.shape[0], limits, "inputs[0].shape")?;
            let values = values(input, n * width, &mut cursor, "inputs[0]")?;
            cursor.finish()?;
            let rows = (0..n * width)
                .map(|i| match values.get(i) {
                    Element::Number(x) => Ok(x),
                    Element::Missing => Ok(f64::NAN),
                    other => Err(ApiError::invalid(
                        "wrong_type",
                        format!("a matrix input holds numbers, got {}", other.describe()),
                        "inputs[0].data",
                    )),
                })
                .collect::<Result<Vec<f64>, _>>()?;
            return Ok(Decoded {
                n,
                rows,
                warnings: Vec::new(),
            });
        }
    }
    // One input per feature: the row count is the first input's, checked
    // against the limit before the rows are allocated.
    let rows_of = |input: &InferInput, field: &str| -> Result<u64, ApiError> {
        match input.shape.as_slice() {
            [n] | [n, 1] => Ok(*n),
            shape => {
                elements_of(shape, field)?;
                Err(ApiError::invalid(
                    "invalid_shape",
                    format!("shape {shape:?} is not [n] or [n, 1]"),
                    field,
                ))
            }
        }
    };
    let n = check_rows(
        rows_of(&request.inputs[0], "inputs[0].shape")?,
        limits,
        "inputs[0].shape",
    )?;
    for (i, input) in request.inputs.iter().enumerate() {
        let field = format!("inputs[{i}].shape");
        if rows_of(input, &field)? != n as u64 {
            return Err(ApiError::invalid(
                "invalid_shape",
                "every input needs the same number of rows",
                field,
            ));
        }
    }
    let mut rows = vec![f64::NAN; n * width];
    let mut given = vec![false; width];
    let mut unknown = Vec::new();
    let mut unseen: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for (i, input) in request.inputs.iter().enumerate() {
        let field = format!("inputs[{i}]");
        let values = values(input, n, &mut cursor, &field)?;
        let Some(&position) = model.positions.get(&input.name) else {
            if strict {
                return Err(ApiError::invalid(
                    "unknown_feature",
                    format!("'{}' is not a feature of this model", input.name),
                    format!("{field}.name"),
                ));
            }
            unknown.push(format!("unknown input '{}' ignored", input.name));
            continue;
        };
        if std::mem::replace(&mut given[position], true) {
            return Err(ApiError::invalid(
                "duplicate_input",
                format!("'{}' is sent twice", input.name),
                format!("{field}.name"),
            ));
        }
        let lookup = model.categories[position].as_ref();
        let kind_error =
            |message: String| ApiError::invalid("wrong_type", message, format!("{field}.datatype"));
        let is_bytes = input.datatype == Datatype::BYTES;
        if lookup.is_some() && !is_bytes {
            return Err(kind_error(format!(
                "'{}' is categorical: send BYTES strings",
                input.name
            )));
        }
        if lookup.is_none() && is_bytes {
            return Err(kind_error(format!(
                "'{}' is numeric: send a numeric datatype such as FP64",
                input.name
            )));
        }
        for r in 0..n {
            rows[r * width + position] = match (lookup, values.get(r)) {
                (_, Element::Missing) => f64::NAN,
                (None, Element::Number(x)) => x,
                (Some(lookup), Element::Text(text)) => match lookup.get(text) {
                    Some(code) => f64::from(*code),
                    None => {
                        unseen.entry(position).or_insert((0, r)).0 += 1;
                        UNSEEN_CATEGORY
                    }
                },
                (None, other) => {
                    return Err(ApiError::invalid(
                        "wrong_type",
                        format!(
                            "'{}' is numeric: expected numbers, got {}",
                            input.name,
                            other.describe()
                        ),
                        format!("{field}.data"),
                    ))
                }
                (Some(_), other) => {
                    return Err(ApiError::invalid(
                        "wrong_type",
                        format!(
                            "'{}' is categorical: send BYTES strings, got {}",
                            input.name,
                            other.describe()
                        ),
                        format!("{field}.data"),
                    ))
                }
            };
        }
    }
    cursor.finish()?;
    let mut warnings = unknown;
    for (position, (count, first)) in unseen {
        let name = &schema.features[position].name;
        warnings.push(if count == 1 {
            format!("unseen category for '{name}' in row {first}")
        } else {
            format!("unseen category for '{name}' in {count} rows (first: row {first})")
        });
    }
    for (feature, given) in schema.features.iter().zip(&given) {
        if !given {
            warnings.push(format!(
                "missing input '{}' scored as missing",
                feature.name
            ));
        }
    }
    Ok(Decoded { n, rows, warnings })
}

#[cfg(test)]
mod tests {
    use super::half_to_f64;

    #[test]
    fn half_floats_decode() {
        assert_eq!(half_to_f64(0x3c00), 1.0);
        assert_eq!(half_to_f64(0xc000), -2.0);
        assert_eq!(half_to_f64(0x7bff), 65504.0);
        assert_eq!(half_to_f64(0x0001), 2f64.powi(-24));
        assert_eq!(half_to_f64(0x7c00), f64::INFINITY);
        assert!(half_to_f64(0x7e00).is_nan());
    }
}
