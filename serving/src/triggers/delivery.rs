//! Delivery of trigger messages to the webhook: HTTP POST of the message
//! JSON with `X-Presage-Signature` and `X-Presage-Idempotency-Key`, retried
//! on any failure (no answer, a timeout, or a status outside 2xx) with
//! exponential backoff and full jitter (a random wait between zero and
//! `min(retry_max, retry_initial * 2^attempt)`, so receivers that come back
//! are not hit by every retry at once), and put in the dead letter after
//! `max_attempts`.

use std::time::Duration;

use super::message::{signature, Message};
use super::TriggerConfig;

/// The webhook client.
#[derive(Debug, Clone)]
pub struct Webhook {
    client: reqwest::Client,
}

impl Webhook {
    /// A client with the configured timeout.
    pub fn new(config: &TriggerConfig) -> Webhook {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("presage-serve/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with a timeout and a user agent builds");
        Webhook { client }
    }

    /// One attempt; `Err` says why it failed.
    pub async fn post(&self, config: &TriggerConfig, message: &Message) -> Result<(), String> {
        let body = serde_json::to_vec(message).expect("messages serialize");
        let answer = self
            .client
            .post(config.webhook_url.clone())
            .header("Content-Type", "application/json")
            .header(
                "X-Presage-Signature",
                signature(&config.webhook_secret, &body),
            )
            .header("X-Presage-Idempotency-Key", &message.idempotency_key)
            .body(body)
            .send()
            .await
            .map_err(|e| without_url(&e))?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {status}"))
        }
    }
}

/// A reqwest error without the URL (it may carry a token in its query):
/// its kind and its innermost cause.
fn without_url(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    let mut cause = None;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = Some(s.to_string());
        source = s.source();
    }
    format!("{what}: {}", cause.as_deref().unwrap_or("no detail"))
}

/// The wait before retry `attempt` (1 = the first retry): full jitter over
/// the capped exponential, from `unit` in [0, 1).
pub fn backoff(config: &TriggerConfig, attempt: u32, unit: f64) -> Duration {
    let ceiling = config
        .retry_initial
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(config.retry_max);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_below_it() {
        let config = TriggerConfig {
            dir: "x".into(),
            webhook_url: "http://127.0.0.1:1/".parse().unwrap(),
            webhook_secret: "0123456789abcdef".into(),
            max_attempts: 8,
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_millis(1000),
            timeout: Duration::from_secs(1),
        };
        let near_one = 0.999_999;
        let ceilings: Vec<u128> = (1..=6)
            .map(|a| backoff(&config, a, near_one).as_millis())
            .collect();
        assert_eq!(ceilings, [99, 199, 399, 799, 999, 999]);
        assert_eq!(backoff(&config, 3, 0.0), Duration::ZERO);
        assert_eq!(backoff(&config, 3, 0.5), Duration::from_millis(200));
    }
}
