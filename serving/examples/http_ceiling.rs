//! The ceiling of the HTTP stack `presage-serve` is built on: the same axum
//! router type, tokio runtime and body handling, with no model behind it.
//! `POST /predict/{model}` reads the whole body and answers a fixed JSON
//! document the size of a real prediction response; `GET /readyz` answers
//! 200 so the benchmark can wait for it like for `presage-serve`.
//!
//! `bench/serve/run.sh --only axum-ceiling,presage` loads it with wrk beside
//! `presage-serve`, so the share of the request cost that is HTTP (and not
//! parsing, scoring or segmenting) is measured rather than guessed.
//!
//! ```text
//! cargo run --release -p presage-serving --example http_ceiling -- 127.0.0.1:0
//! ```

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

/// A response of the same shape and length as a single-row prediction.
const RESPONSE: &str = r#"{"user_id":"7590-VHVEG","model":"churn","version":1,"probability":0.6281912803649902,"segment":"at_risk","onboarding":{"flow":"concierge","attributes":{"call_within_hours":24}},"warnings":[]}"#;

async fn predict(body: Bytes) -> impl IntoResponse {
    std::hint::black_box(&body);
    ([(header::CONTENT_TYPE, "application/json")], RESPONSE)
}

fn main() -> std::io::Result<()> {
    let listen: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned())
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        println!("listening on http://{}", listener.local_addr()?);
        let app = Router::new()
            .route("/predict/{model}", post(predict))
            .route("/readyz", get(|| async { "ready" }));
        axum::serve(listener, app).await
    })
}
