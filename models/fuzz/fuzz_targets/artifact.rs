//! Model artifact files through `ModelArtifact::from_bytes`, and what loads
//! through the compiled scorer, TreeSHAP and drift (see `../chain.rs` for
//! the input layout: byte 0 chooses a raw file or a payload framed with a
//! correct header and checksum).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../chain.rs"]
mod chain;
#[path = "../../../serving/tests/support/fixture.rs"]
mod fixture;

fuzz_target!(|data: &[u8]| {
    chain::artifact(data);
});
