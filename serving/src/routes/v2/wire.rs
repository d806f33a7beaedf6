//! Triton's binary tensor data extension, both ways.
//!
//! A request with an `Inference-Header-Content-Length: N` header carries its
//! JSON in the first `N` bytes of the body and raw tensor bytes after it:
//! each input whose `parameters.binary_data_size` is set takes that many
//! bytes, in input order, and has no `data`. Numbers are little-endian;
//! `BYTES` elements are each a 4-byte little-endian length followed by the
//! bytes. An answer is framed the same way when the client asks for binary
//! outputs (`parameters.binary_data_output`, or `parameters.binary_data` on a
//! requested output): each such output gets `parameters.binary_data_size`
//! and its bytes follow the JSON, in output order.
//!
//! Every length here comes from the client, so each is checked against the
//! bytes actually present before anything is sliced or allocated.

use axum::http::{HeaderMap, StatusCode};

use crate::error::ApiError;

/// Header naming the length of the JSON part of a binary request or answer.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// A request body split into its JSON header and its binary tensor bytes.
#[derive(Debug)]
pub struct Framed<'a> {
    /// The JSON part.
    pub json: &'a [u8],
    /// The bytes after it (empty for a plain JSON request).
    pub binary: &'a [u8],
}

/// Splits a body by its `Inference-Header-Content-Length` header, if any.
pub fn split<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<Framed<'a>, ApiError> {
    let Some(value) = headers.get(HEADER_LENGTH) else {
        return Ok(Framed {
            json: body,
            binary: &[],
        });
    };
    let bad = |message: String| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_binary_header", message)
            .with_field("Inference-Header-Content-Length")
    };
    let length: usize = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| bad("Inference-Header-Content-Length is not a whole number".into()))?;
    if length > body.len() {
        return Err(bad(format!(
            "Inference-Header-Content-Length is {length} but the body has {} bytes",
            body.len()
        )));
    }
    let (json, binary) = body.split_at(length);
    Ok(Framed { json, binary })
}

/// Python's JSON writers (as `tritonclient` uses in JSON mode) write a
/// missing number as a bare `NaN`, which is not JSON. Outside strings, each
/// `NaN` token becomes `null` (missing); the text is copied only when it has
/// one. `Infinity` is left alone and stays a parse error.
pub fn nan_to_null(json: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let (mut in_string, mut escaped) = (false, false);
    let mut i = 0;
    while i < json.len() {
        let b = json[i];
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if json[i..].starts_with(b"NaN") {
            let out = out.get_or_insert_with(|| json[..i].to_vec());
            out.extend_from_slice(b"null");
            i += 3;
            continue;
        }
        if let Some(out) = out.as_mut() {
            out.push(b);
        }
        i += 1;
    }
    match out {
        Some(out) => std::borrow::Cow::Owned(out),
        None => std::borrow::Cow::Borrowed(json),
    }
}

/// Hands out the binary part of a request to its inputs, in order.
#[derive(Debug)]
pub struct BinaryCursor<'a> {
    rest: &'a [u8],
}

impl<'a> BinaryCursor<'a> {
    /// A cursor over the bytes after the JSON header.
    pub fn new(binary: &'a [u8]) -> Self {
        BinaryCursor { rest: binary }
    }

    /// The next `size` bytes, for the input at `field`.
    pub fn take(&mut self, size: u64, field: &str) -> Result<&'a [u8], ApiError> {
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s <= self.rest.len())
            .ok_or_else(|| {
                ApiError::invalid(
                    "invalid_binary_data",
                    format!(
                        "binary_data_size is {size} but only {} binary bytes remain",
                        self.rest.len()
                    ),
                    format!("{field}.parameters.binary_data_size"),
                )
            })?;
        let (taken, rest) = self.rest.split_at(size);
        self.rest = rest;
        Ok(taken)
    }

    /// Fails when bytes are left over that no input claimed.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(
                "invalid_binary_data",
                format!(
                    "{} binary bytes after the last input's binary_data_size",
                    self.rest.len()
                ),
                "inputs",
            ))
        }
    }
}

/// Splits a binary `BYTES` tensor into its elements, expecting `count`.
pub fn bytes_elements<'a>(
    mut data: &'a [u8],
    count: usize,
    field: &str,
) -> Result<Vec<&'a [u8]>, ApiError> {
    let bad = |message: String| ApiError::invalid("invalid_binary_data", message, field);
    // Each element takes at least its 4-byte length, so `count` is bounded
    // by the bytes present before anything is allocated from it.
    if count > data.len() / 4 {
        return Err(bad(format!(
            "{count} BYTES elements need at least {} bytes; got {}",
            count.saturating_mul(4),
            data.len()
        )));
    }
    let mut elements = Vec::with_capacity(count);
    while !data.is_empty() {
        let Some((length, rest)) = data.split_first_chunk::<4>() else {
            return Err(bad("a BYTES element's 4-byte length is cut short".into()));
        };
        let length = u32::from_le_bytes(*length) as usize;
        if length > rest.len() {
            return Err(bad(format!(
                "a BYTES element says {length} bytes but {} remain",
                rest.len()
            )));
        }
        let (element, rest) = rest.split_at(length);
        if elements.len() == count {
            return Err(bad(format!("more than {count} BYTES elements")));
        }
        elements.push(element);
        data = rest;
    }
    if elements.len() != count {
        return Err(bad(format!(
            "expected {count} BYTES elements, got {}",
            elements.len()
        )));
    }
    Ok(elements)
}

/// Appends FP64 values as little-endian bytes.
pub fn put_fp64(out: &mut Vec<u8>, values: &[f64]) {
    out.reserve(values.len() * 8);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Appends strings as length-prefixed `BYTES` elements.
pub fn put_bytes(out: &mut Vec<u8>, values: &[&str]) {
    for v in values {
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_elements_round_trip_and_reject_bad_lengths() {
        let mut encoded = Vec::new();
        put_bytes(&mut encoded, &["DSL", "", "Fiber optic"]);
        let elements = bytes_elements(&encoded, 3, "f").unwrap();
        assert_eq!(elements, [&b"DSL"[..], b"", b"Fiber optic"]);
        let code = |data: &[u8], n| bytes_elements(data, n, "f").unwrap_err().message;
        assert!(code(&encoded, 2).contains("more than 2"));
        assert!(code(&encoded, 4).contains("expected 4"));
        assert!(code(&encoded[..5], 1).contains("says 3 bytes but 1 remain"));
        assert!(code(&[1, 0], 0).contains("cut short"));
        // A count that could not fit in the bytes is refused before allocating.
        assert!(code(&encoded, usize::MAX).contains("need at least"));
    }

    #[test]
    fn bare_nan_becomes_null_outside_strings() {
        let text = br#"{"data": [1.5, NaN, -2], "name": "NaN \"NaN\""}"#;
        let fixed = nan_to_null(text);
        assert_eq!(
            std::str::from_utf8(&fixed).unwrap(),
            r#"{"data": [1.5, null, -2], "name": "NaN \"NaN\""}"#
        );
        assert!(matches!(
            nan_to_null(br#"{"a": "NaN"}"#),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn the_cursor_checks_every_size() {
        let data = [1u8, 2, 3, 4, 5];
        let mut cursor = BinaryCursor::new(&data);
        assert_eq!(cursor.take(2, "inputs[0]").unwrap(), [1, 2]);
        let error = cursor.take(u64::MAX, "inputs[1]").unwrap_err();
        assert_eq!(
            error.field.as_deref(),
            Some("inputs[1].parameters.binary_data_size")
        );
        assert_eq!(cursor.take(2, "inputs[1]").unwrap(), [3, 4]);
        assert!(cursor
            .finish()
            .unwrap_err()
            .message
            .contains("1 binary bytes"));
    }
}
