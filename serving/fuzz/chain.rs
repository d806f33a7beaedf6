//! The code paths the serving fuzz targets drive, shared by the targets
//! (`fuzz_targets/*.rs`) and the corpus replay test
//! (`serving/tests/fuzz_corpus.rs`), which both include this file by path
//! next to `serving/tests/support/fixture.rs` as `crate::fixture`.
//!
//! Each function takes one fuzz input, runs it through the same calls the
//! handlers make and returns what the parser answered. It panics only when
//! the code under test does, or when an `Ok` breaks an invariant.

#![allow(dead_code)]

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use presage_models::policy::SegmentPolicy;
use presage_serving::error::ApiError;
use presage_serving::routes::v2::tensors::{self, DecodeLimits, InferRequest};
use presage_serving::routes::v2::wire;
use presage_serving::row_parser::{self, ParseOptions};
use presage_serving::store::LoadedVersion;

/// The fixture model (five features, two categorical) with the default policy.
pub fn model() -> LoadedVersion {
    LoadedVersion::new(
        crate::fixture::artifact("fuzz", 0.0),
        SegmentPolicy::default_policy(),
    )
    .expect("the fixture loads")
}

/// Scores rows and assigns segments as the handlers do.
fn score(model: &LoadedVersion, row: &[f64]) {
    let p = model.probability(row);
    let assignment = model.policy.assign(p, row, &model.artifact.score_quantiles);
    assert!(assignment.index < model.policy.segments.len());
}

/// `rest_rows` input: byte 0 is flags (bit 0 batch, bit 1 strict, bit 2
/// keep values), byte 1 the limits (`max_rows` = 1 + low 5 bits,
/// `max_features` one of 2, 5, 16, 1000 by bits 5-6), the rest the body.
/// Returns how many rows parsed, or the parser's error.
pub fn rest_rows(model: &LoadedVersion, data: &[u8]) -> Result<usize, ApiError> {
    let [flags, limits, body @ ..] = data else {
        return Ok(0);
    };
    let options = ParseOptions {
        strict: flags & 2 != 0,
        keep_values: flags & 4 != 0,
        max_rows: 1 + usize::from(limits & 0x1f),
        max_features: [2, 5, 16, 1000][usize::from((limits >> 5) & 3)],
    };
    let width = model.artifact.schema.len();
    let check = |user: &row_parser::ParsedUser| {
        let encoded = &user.encoded;
        assert_eq!(encoded.row.len(), width);
        if let Some(sent) = &encoded.sent {
            assert_eq!(sent.len(), width);
        }
        // An unseen category per key read, at most LISTED unknown names (or
        // one summary) and at most LISTED missing names (or one summary).
        assert!(encoded.warnings.len() <= options.max_features + 2 * row_parser::LISTED);
        score(model, &encoded.row);
    };
    if flags & 1 == 0 {
        let user = row_parser::parse_user(body, model, options)?;
        check(&user);
        Ok(1)
    } else {
        let users = row_parser::parse_batch(body, model, options)?;
        assert!(users.len() <= options.max_rows);
        users.iter().for_each(check);
        Ok(users.len())
    }
}

/// Limits the `v2_request` chain decodes with.
pub const V2_LIMITS: DecodeLimits = DecodeLimits {
    max_rows: 64,
    max_inputs: 16,
};

/// `v2_request` input (split, `NaN` to `null`, JSON, decode, score, as
/// `routes::v2` does): byte 0 is flags (bit 0 send
/// `Inference-Header-Content-Length`, bit 1 strict, bit 2 take the header's
/// text from the input, bit 3 fold a numeric length into the body's size).
/// With bit 0 and not bit 2, four little-endian bytes give the length; with
/// bits 0 and 2, one byte gives the text's length (low 4 bits) and that
/// many bytes follow. The rest is the body. Returns how many rows decoded,
/// or the error.
pub fn v2_request(model: &LoadedVersion, data: &[u8]) -> Result<usize, ApiError> {
    let Some((&flags, rest)) = data.split_first() else {
        return Ok(0);
    };
    let mut headers = HeaderMap::new();
    let body = if flags & 1 == 0 {
        rest
    } else if flags & 4 == 0 {
        let Some((length, body)) = rest.split_first_chunk::<4>() else {
            return Ok(0);
        };
        let mut length = u32::from_le_bytes(*length) as usize;
        if flags & 8 != 0 {
            length %= body.len() + 1;
        }
        headers.insert(wire::HEADER_LENGTH, HeaderValue::from(length));
        body
    } else {
        let Some((&n, rest)) = rest.split_first() else {
            return Ok(0);
        };
        let n = usize::from(n & 15).min(rest.len());
        let (text, body) = rest.split_at(n);
        let Ok(value) = HeaderValue::from_bytes(text) else {
            return Ok(0);
        };
        headers.insert(wire::HEADER_LENGTH, value);
        body
    };
    let framed = wire::split(&headers, body)?;
    assert_eq!(framed.json.len() + framed.binary.len(), body.len());
    // Python's bare `NaN`s become `null` outside strings, as the handler does.
    let json = wire::nan_to_null(framed.json);
    if !framed.json.windows(3).any(|w| w == b"NaN") {
        assert_eq!(&*json, framed.json);
    }
    let request: InferRequest = serde_json::from_slice(&json).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            e.to_string(),
        )
    })?;
    let decoded = tensors::decode(model, &request, framed.binary, flags & 2 != 0, V2_LIMITS)?;
    let width = model.compiled.n_features();
    assert!(decoded.n <= V2_LIMITS.max_rows);
    assert_eq!(decoded.rows.len(), decoded.n * width);
    // One per input (unknown) plus one per feature (unseen or missing).
    assert!(decoded.warnings.len() <= request.inputs.len() + width);
    let probabilities = model.compiled.predict_batch(&decoded.rows);
    assert_eq!(probabilities.len(), decoded.n);
    for row in decoded.rows.chunks(width.max(1)) {
        score(model, row);
    }
    Ok(decoded.n)
}
