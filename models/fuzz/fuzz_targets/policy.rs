//! Segment policy files (`SegmentPolicy::parse`) and rule conditions
//! (`rule::Condition::parse`) against the fixture's schema.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use presage_models::artifact::ModelArtifact;

#[path = "../chain.rs"]
mod chain;
#[path = "../../../serving/tests/support/fixture.rs"]
mod fixture;

static FIXTURE: LazyLock<ModelArtifact> = LazyLock::new(chain::fixture);

fuzz_target!(|data: &[u8]| {
    chain::policy(&FIXTURE, data);
});
