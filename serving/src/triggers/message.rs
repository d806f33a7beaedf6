//! What a trigger sends: one JSON object per firing, its idempotency key,
//! and the `X-Presage-Signature` that lets the receiver check it came from
//! this server.
//!
//! The signature is `sha256=` followed by the lower-case hex HMAC-SHA256
//! of the exact body bytes, keyed with `[triggers] webhook_secret`, the
//! scheme GitHub and Stripe webhooks use, so receivers verify it the same
//! way (compare in constant time).

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One firing of a trigger for a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Message {
    /// The same for every delivery of this firing: deduplicate on it.
    pub idempotency_key: String,
    /// The trigger's name in the policy file.
    pub trigger: String,
    /// Its kind: `segment_change`, `probability` or `no_event`.
    pub on: String,
    /// Model name.
    pub model: String,
    /// Model version that scored.
    pub version: u64,
    /// The user.
    pub user_id: String,
    /// The segment before the events that fired it (for `no_event`, the
    /// segment now).
    pub segment_before: String,
    /// The segment now.
    pub segment: String,
    /// The probability now.
    pub probability: f64,
    /// The segment's onboarding payload (`flow`, `attributes`).
    pub onboarding: serde_json::Value,
    /// Why it fired, in words.
    pub reason: String,
    /// When it fired (RFC 3339, UTC).
    pub fired_at: String,
    /// For `no_event`: the deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<String>,
    /// For `no_event`: how late it fired (the server was down or busy at
    /// the deadline), in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_seconds: Option<f64>,
}

/// A key derived from the parts that identify one firing: 32 hex digits
/// of their SHA-256 (parts are separated by a NUL, which ids cannot hold
/// ambiguously since every part is length-prefixed).
pub fn idempotency_key(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    hex(&hash.finalize()[..16])
}

/// The `X-Presage-Signature` header value of `body`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_published_hmac_sha256_vector() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn keys_separate_their_parts() {
        assert_ne!(idempotency_key(&["ab", "c"]), idempotency_key(&["a", "bc"]));
        assert_eq!(idempotency_key(&["a"]).len(), 32);
    }
}
