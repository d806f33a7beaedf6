//! Single-row scoring and TreeSHAP with a warmed-up workspace allocate
//! nothing: a counting global allocator sees zero allocations while they run.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use presage_models::compiled::CompiledEnsemble;
use presage_models::ensemble::{Ensemble, Link};
use presage_models::shap::ShapWorkspace;
use presage_models::tree::{Node, SplitRule, Tree};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn split(feature: u32, rule: SplitRule, left: u32, right: u32) -> Node {
    Node::Split {
        feature,
        rule,
        left,
        right,
        gain: 1.0,
        cover: 10.0,
    }
}

fn leaf(value: f64) -> Node {
    Node::Leaf { value, cover: 5.0 }
}

fn ensemble() -> Ensemble {
    let numeric = Tree {
        nodes: vec![
            split(
                0,
                SplitRule::Numeric {
                    threshold: 0.5,
                    missing_left: false,
                },
                1,
                2,
            ),
            leaf(-0.25),
            split(
                1,
                SplitRule::Numeric {
                    threshold: 3.0,
                    missing_left: true,
                },
                3,
                4,
            ),
            leaf(0.5),
            leaf(1.0),
        ],
    };
    let categorical = Tree {
        nodes: vec![
            split(
                2,
                SplitRule::Categorical {
                    left: vec![1, 4, 70],
                    missing_left: true,
                },
                1,
                2,
            ),
            leaf(0.125),
            leaf(-0.5),
        ],
    };
    Ensemble {
        n_features: 3,
        base_score: -0.1,
        trees: vec![numeric, categorical],
        link: Link::Logit,
    }
}

#[test]
fn single_row_scoring_and_explanations_do_not_allocate() {
    let ensemble = ensemble();
    let compiled = CompiledEnsemble::new(&ensemble).unwrap();
    let rows = [
        [0.7, 2.0, 4.0],
        [f64::NAN, 9.0, -1.0],
        [0.1, f64::NAN, 70.0],
        [1.0, 3.0, f64::NAN],
    ];
    let mut workspace = ShapWorkspace::new();
    let mut contributions = [0.0; 4];
    // Warm up the workspace (it grows to the deepest tree once).
    workspace.contributions_into(&ensemble, &rows[0], &mut contributions);

    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let mut total = 0.0;
    for row in &rows {
        total += compiled.predict(row);
        total += compiled.raw_score(row);
        workspace.contributions_into(&ensemble, row, &mut contributions);
        total += contributions.iter().sum::<f64>();
    }
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert!(total.is_finite());
    assert_eq!(
        after - before,
        0,
        "single-row scoring allocated {} times",
        after - before
    );
}
