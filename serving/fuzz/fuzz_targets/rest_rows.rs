//! `POST /predict/{model}` and `/predict/{model}/batch` bodies through the
//! REST row parser (see `../chain.rs` for the input layout).

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use presage_serving::store::LoadedVersion;

#[path = "../chain.rs"]
mod chain;
#[path = "../../tests/support/fixture.rs"]
mod fixture;

static MODEL: LazyLock<LoadedVersion> = LazyLock::new(chain::model);

fuzz_target!(|data: &[u8]| {
    let _ = chain::rest_rows(&MODEL, data);
});
