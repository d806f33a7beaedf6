//! Body extractors whose rejections are [`ApiError`]s: malformed JSON is 400
//! `malformed_json`, a body over the limit is 413 `body_too_large`, a body
//! not in full by its deadline is 408 `body_timeout`, a missing
//! `Content-Type: application/json` is 415, and a well-formed body of the
//! wrong shape is 422 `invalid_body`, each with the parser's message.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// When the request's body must have arrived in full: set by the
/// router's middleware (`request_timeout_ms`, `body_read_timeout_ms`) and
/// read by the body extractors here.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub tokio::time::Instant);

/// `axum::Json` with the API's error format.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBody(bytes) = JsonBody::from_request(req, state).await?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|e| {
            if e.is_data() {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                    format!("Failed to deserialize the JSON body into the target type: {e}"),
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    format!("Failed to parse the request body as JSON: {e}"),
                )
            }
        })
    }
}

/// A request body that must be JSON (`Content-Type: application/json`),
/// read as bytes within the body limit, for handlers that parse it
/// themselves (see [`crate::row_parser`]). Rejections match [`ApiJson`]'s.
#[derive(Debug, Clone)]
pub struct JsonBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = media_type_is(&req, |mime| {
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        read_bytes(req, state).await.map(JsonBody)
    }
}

/// Whether the request's media type (`Content-Type` without parameters,
/// compared without regard to case) is one `accepts` takes; `accepts` sees
/// it in lower case. Allocation-free for the usual short types.
pub(crate) fn media_type_is(req: &Request, accepts: impl Fn(&str) -> bool) -> bool {
    let Some(essence) = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
    else {
        return false;
    };
    let essence = essence.trim();
    let mut buf = [0u8; 64];
    match buf.get_mut(..essence.len()) {
        Some(lower) => {
            lower.copy_from_slice(essence.as_bytes());
            lower.make_ascii_lowercase();
            std::str::from_utf8(lower).is_ok_and(&accepts)
        }
        None => accepts(&essence.to_ascii_lowercase()),
    }
}

/// A request body of any content type, read as bytes within the body limit
/// (for the V2 routes, which take JSON without a content type and Triton's
/// binary framing). Rejections match [`JsonBody`]'s.
#[derive(Debug, Clone)]
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_bytes(req, state).await.map(RawBody)
    }
}

/// Reads the body within the size limit and before its deadline (see
/// [`BodyDeadline`]), mapping rejections to API errors.
pub(crate) async fn read_bytes<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<axum::body::Bytes, ApiError> {
    let deadline = req.extensions().get::<BodyDeadline>().copied();
    let read = axum::body::Bytes::from_request(req, state);
    let read = match deadline {
        Some(BodyDeadline(at)) => match tokio::time::timeout_at(at, read).await {
            Ok(read) => read,
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    "the request body did not arrive in time (body_read_timeout_ms)",
                ))
            }
        },
        None => read.await,
    };
    match read {
        Ok(bytes) => Ok(bytes),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is larger than the server's limit (max_body_bytes)",
            ))
        }
        Err(rejection) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unreadable_body",
            rejection.body_text(),
        )),
    }
}

/// Deserializes a whole number written as an integer or as a float with no
/// fraction (`3` or `3.0`): JSON Schema's `integer` admits both, so a
/// client that writes `3.0` sent a valid request.
pub mod whole_number {
    use serde::de::{self, Deserializer, Visitor};

    struct Whole;

    impl Visitor<'_> for Whole {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a non-negative whole number")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("{v} is negative")))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
            // Exactly representable whole numbers only (below 2^53).
            if v >= 0.0 && v.fract() == 0.0 && v < 9_007_199_254_740_992.0 {
                Ok(v as u64)
            } else {
                Err(E::custom(format!("{v} is not a non-negative whole number")))
            }
        }
    }

    /// One whole number.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        deserializer.deserialize_any(Whole)
    }

    /// An optional whole number.
    pub fn option<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
        #[derive(serde::Deserialize)]
        struct Wrapped(#[serde(deserialize_with = "deserialize")] u64);
        Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|Wrapped(v)| v))
    }

    /// A list of whole numbers.
    pub fn list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u64>, D::Error> {
        #[derive(serde::Deserialize)]
        struct Wrapped(#[serde(deserialize_with = "deserialize")] u64);
        Ok(Vec::<Wrapped>::deserialize(deserializer)?
            .into_iter()
            .map(|Wrapped(v)| v)
            .collect())
    }

    use serde::Deserialize;

    #[cfg(test)]
    mod tests {
        #[derive(serde::Deserialize)]
        struct Shape {
            #[serde(deserialize_with = "super::list")]
            shape: Vec<u64>,
        }

        #[test]
        fn whole_floats_are_whole_numbers() {
            let shape = |text: &str| serde_json::from_str::<Shape>(text).map(|s| s.shape);
            assert_eq!(shape(r#"{"shape": [3, 4.0, 0]}"#).unwrap(), [3, 4, 0]);
            assert!(shape(r#"{"shape": [1.5]}"#).is_err());
            assert!(shape(r#"{"shape": [-1]}"#).is_err());
            assert!(shape(r#"{"shape": [1e300]}"#).is_err());
            assert!(shape(r#"{"shape": ["3"]}"#).is_err());
        }
    }
}
