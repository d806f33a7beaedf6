//! Property tests for the scorers and TreeSHAP.
//!
//! Random valid ensembles (trees up to depth 6 over 1..=8 features, numeric
//! and categorical splits with codes spanning several bitset words, random
//! missing routing, leaf values from tiny to huge, any link) are scored on
//! random rows full of edge cases (`NaN`, `±inf`, the unseen-category code
//! `-1`, out-of-dictionary codes, fractional codes, values equal to or one
//! ulp either side of a split threshold, codes taken from split sets).
//!
//! Properties:
//! 1. the compiled scorer equals the reference walk bit for bit;
//! 2. batch scoring equals per-row scoring bit for bit (several blocks);
//! 3. SHAP contributions sum to the raw score, and unused features get 0.
//!
//! Malformed trees must be rejected by `CompiledEnsemble::new`.

use presage_models::compiled::*;
use presage_models::ensemble::*;
use presage_models::shap::*;
use presage_models::tree::*;
use proptest::collection::vec;
use proptest::prelude::*;

/// A tree before flattening; feature indices are reduced modulo the
/// ensemble's feature count when it is built.
#[derive(Debug, Clone)]
enum Shape {
    Leaf {
        value: f64,
        cover: f64,
    },
    Split {
        feature: u8,
        threshold: f64,
        codes: Vec<u32>,
        missing_left: bool,
        /// Multiplies the children's cover sum (inconsistent covers).
        cover_scale: Option<f64>,
        left: Box<Shape>,
        right: Box<Shape>,
    },
}

/// Everything needed to build one random ensemble.
#[derive(Debug, Clone)]
struct EnsembleSpec {
    n_features: usize,
    categorical: Vec<bool>,
    shapes: Vec<Shape>,
    base_score: f64,
    link: Link,
    /// Node numbering: 0 pre-order, 1 pre-order right first, 2 breadth first.
    layout: u8,
}

/// A row value, possibly tied to the ensemble's splits.
#[derive(Debug, Clone, Copy)]
enum Cell {
    /// A literal value.
    Value(f64),
    /// The `k`-th threshold (numeric) or set code (categorical) used on this
    /// feature, nudged by `-1`, `0` or `+1` ulp (or code).
    Split(usize, i8),
}

fn signed(magnitude: impl Strategy<Value = f64>) -> impl Strategy<Value = f64> {
    (magnitude, any::<bool>()).prop_map(|(m, negative)| if negative { -m } else { m })
}

fn leaf_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => -10.0..10.0f64,
        1 => Just(0.0),
        1 => Just(-0.0),
        1 => signed(1e-300..1e-250f64),
        1 => signed(1e-320..1e-310f64),
        1 => signed(1e10..1e15f64),
        1 => signed(1e100..1e150f64),
    ]
}

fn cover() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => 0.0..1000.0f64,
        1 => Just(0.0),
        1 => 1e-300..1e-200f64,
    ]
}

fn threshold() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => (-40i32..40).prop_map(|k| f64::from(k) * 0.25),
        2 => -1e6..1e6f64,
        1 => Just(-0.0),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
    ]
}

fn codes() -> impl Strategy<Value = Vec<u32>> {
    vec(prop_oneof![9 => 0u32..70, 1 => 0u32..200], 0..40)
}

fn shape() -> impl Strategy<Value = Shape> {
    let leaf = (leaf_value(), cover()).prop_map(|(value, cover)| Shape::Leaf { value, cover });
    leaf.prop_recursive(6, 64, 2, |inner| {
        (
            any::<u8>(),
            threshold(),
            codes(),
            any::<bool>(),
            prop::option::weighted(0.2, 0.5..1.5f64),
            inner.clone(),
            inner,
        )
            .prop_map(
                |(feature, threshold, codes, missing_left, cover_scale, left, right)| {
                    Shape::Split {
                        feature,
                        threshold,
                        codes,
                        missing_left,
                        cover_scale,
                        left: Box::new(left),
                        right: Box::new(right),
                    }
                },
            )
    })
}

fn link() -> impl Strategy<Value = Link> {
    prop_oneof![
        Just(Link::Logit),
        Just(Link::Probability),
        Just(Link::Identity)
    ]
}

fn spec(n_features: usize) -> impl Strategy<Value = EnsembleSpec> {
    (
        vec(any::<bool>(), n_features),
        vec(shape(), 0..20), // past LANES (8) trees: full and partial tree groups
        prop_oneof![4 => -5.0..5.0f64, 1 => Just(0.0), 1 => signed(1e10..1e15f64)],
        link(),
        0u8..3,
    )
        .prop_map(
            move |(categorical, shapes, base_score, link, layout)| EnsembleSpec {
                n_features,
                categorical,
                shapes,
                base_score,
                link,
                layout,
            },
        )
}

fn cell() -> impl Strategy<Value = Cell> {
    prop_oneof![
        4 => (any::<usize>(), -1i8..=1).prop_map(|(k, nudge)| Cell::Split(k, nudge)),
        4 => (0u32..70).prop_map(|c| Cell::Value(f64::from(c))),
        2 => (-40i32..40).prop_map(|k| Cell::Value(f64::from(k) * 0.25)),
        1 => (0u32..200).prop_map(|c| Cell::Value(f64::from(c) + 0.5)),
        1 => (-1e6..1e6f64).prop_map(Cell::Value),
        1 => any::<f64>().prop_map(Cell::Value),
        1 => prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(-1.0),
            Just(500.0),
            Just(-0.0),
            Just(0.0),
            Just(f64::from(u32::MAX)),
            Just(f64::from(u32::MAX) + 1.0),
        ]
        .prop_map(Cell::Value),
    ]
}

/// An ensemble spec with `rows` rows of cells.
fn case(rows: std::ops::Range<usize>) -> impl Strategy<Value = (EnsembleSpec, Vec<Vec<Cell>>)> {
    (1usize..=8).prop_flat_map(move |n| (spec(n), vec(vec(cell(), n), rows.clone())))
}

/// Flattens `shape` into nodes with the root at index 0.
fn flatten(shape: &Shape, spec: &EnsembleSpec) -> Tree {
    // First assign indices, then fill nodes in.
    let mut order: Vec<&Shape> = Vec::new();
    match spec.layout {
        2 => {
            order.push(shape);
            let mut head = 0;
            while head < order.len() {
                if let Shape::Split { left, right, .. } = order[head] {
                    order.push(left);
                    order.push(right);
                }
                head += 1;
            }
        }
        layout => {
            let mut stack = vec![shape];
            while let Some(s) = stack.pop() {
                order.push(s);
                if let Shape::Split { left, right, .. } = s {
                    if layout == 1 {
                        stack.push(left);
                        stack.push(right);
                    } else {
                        stack.push(right);
                        stack.push(left);
                    }
                }
            }
        }
    }
    let index_of = |s: &Shape| order.iter().position(|o| std::ptr::eq(*o, s)).unwrap() as u32;
    let mut nodes: Vec<Node> = order
        .iter()
        .map(|s| match s {
            Shape::Leaf { value, cover } => Node::Leaf {
                value: *value,
                cover: *cover,
            },
            Shape::Split {
                feature,
                threshold,
                codes,
                missing_left,
                left,
                right,
                ..
            } => {
                let feature = u32::from(*feature) % spec.n_features as u32;
                let rule = if spec.categorical[feature as usize] {
                    let mut left = codes.clone();
                    left.sort_unstable();
                    left.dedup();
                    SplitRule::Categorical {
                        left,
                        missing_left: *missing_left,
                    }
                } else {
                    SplitRule::Numeric {
                        threshold: *threshold,
                        missing_left: *missing_left,
                    }
                };
                Node::Split {
                    feature,
                    rule,
                    left: index_of(left),
                    right: index_of(right),
                    gain: 1.0,
                    cover: 0.0,
                }
            }
        })
        .collect();
    // Covers bottom-up: a split covers the sum of its children (optionally
    // scaled to make covers inconsistent). Children come later in all layouts.
    for i in (0..nodes.len()).rev() {
        if let (Node::Split { left, right, .. }, Shape::Split { cover_scale, .. }) =
            (&nodes[i], order[i])
        {
            let sum = nodes[*left as usize].cover() + nodes[*right as usize].cover();
            let total = sum * cover_scale.unwrap_or(1.0);
            if let Node::Split { cover, .. } = &mut nodes[i] {
                *cover = total;
            }
        }
    }
    Tree { nodes }
}

fn build(spec: &EnsembleSpec) -> Ensemble {
    Ensemble {
        n_features: spec.n_features,
        base_score: spec.base_score,
        trees: spec.shapes.iter().map(|s| flatten(s, spec)).collect(),
        link: spec.link,
    }
}

/// The values split on for `feature`: numeric thresholds (`false`) and set
/// codes (`true`).
fn split_values(ensemble: &Ensemble, feature: usize) -> Vec<(f64, bool)> {
    let mut values = Vec::new();
    for tree in &ensemble.trees {
        for node in &tree.nodes {
            if let Node::Split {
                feature: f, rule, ..
            } = node
            {
                if *f as usize == feature {
                    match rule {
                        SplitRule::Numeric { threshold, .. } => values.push((*threshold, false)),
                        SplitRule::Categorical { left, .. } => {
                            values.extend(left.iter().map(|c| (f64::from(*c), true)))
                        }
                    }
                }
            }
        }
    }
    values
}

/// Resolves cells into a row of values.
fn resolve(ensemble: &Ensemble, cells: &[Cell]) -> Vec<f64> {
    cells
        .iter()
        .enumerate()
        .map(|(feature, cell)| match *cell {
            Cell::Value(x) => x,
            Cell::Split(k, nudge) => {
                let values = split_values(ensemble, feature);
                if values.is_empty() {
                    return f64::NAN;
                }
                let (x, is_code) = values[k % values.len()];
                match (nudge, is_code) {
                    (0, _) => x,
                    (-1, true) => x - 1.0,
                    (1, true) => x + 1.0,
                    (-1, false) => x.next_down(),
                    _ => x.next_up(),
                }
            }
        })
        .collect()
}

/// Absolute tolerance for a contribution sum: 1e-9 relative to the scale of
/// the terms summed (the raw score can cancel far below them) plus 1e-9.
fn tolerance(ensemble: &Ensemble, raw: f64) -> f64 {
    let terms: f64 = ensemble.base_score.abs()
        + ensemble
            .trees
            .iter()
            .map(|t| {
                t.nodes
                    .iter()
                    .map(|n| {
                        if let Node::Leaf { value, .. } = n {
                            value.abs()
                        } else {
                            0.0
                        }
                    })
                    .fold(0.0, f64::max)
            })
            .sum::<f64>();
    1e-9 * raw.abs().max(terms) + 1e-9
}

fn used_features(ensemble: &Ensemble) -> Vec<bool> {
    let mut used = vec![false; ensemble.n_features];
    for tree in &ensemble.trees {
        for node in &tree.nodes {
            if let Node::Split { feature, .. } = node {
                used[*feature as usize] = true;
            }
        }
    }
    used
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn scorer_compiled_matches_reference((spec, rows) in case(1..16)) {
        let ensemble = build(&spec);
        prop_assert!(ensemble.trees.iter().all(|t| t.depth() <= 6));
        let compiled = CompiledEnsemble::new(&ensemble).unwrap();
        prop_assert_eq!(compiled.n_features(), ensemble.n_features);
        prop_assert_eq!(compiled.n_trees(), ensemble.trees.len());
        for cells in &rows {
            let row = resolve(&ensemble, cells);
            let reference = ensemble.raw_score_reference(&row);
            let raw = compiled.raw_score(&row);
            prop_assert_eq!(raw.to_bits(), reference.to_bits(), "row {:?}: {} vs {}", row, raw, reference);
            let predicted = compiled.predict(&row);
            let expected = ensemble.link.apply(reference);
            prop_assert_eq!(predicted.to_bits(), expected.to_bits());
        }
    }

    #[test]
    fn scorer_batch_matches_per_row((spec, rows) in case(0..300)) {
        let ensemble = build(&spec);
        let compiled = CompiledEnsemble::new(&ensemble).unwrap();
        let rows: Vec<Vec<f64>> = rows.iter().map(|cells| resolve(&ensemble, cells)).collect();
        let flat: Vec<f64> = rows.concat();
        let batch = compiled.raw_scores(&flat);
        prop_assert_eq!(batch.len(), rows.len());
        let mut into = vec![f64::NAN; rows.len()];
        compiled.raw_scores_into(&flat, &mut into);
        let predicted = compiled.predict_batch(&flat);
        for (i, row) in rows.iter().enumerate() {
            let single = compiled.raw_score(row);
            prop_assert_eq!(batch[i].to_bits(), single.to_bits(), "row {} {:?}", i, row);
            prop_assert_eq!(into[i].to_bits(), single.to_bits());
            prop_assert_eq!(predicted[i].to_bits(), compiled.predict(row).to_bits());
        }
    }

    #[test]
    fn scorer_shap_sums_to_raw_score((spec, rows) in case(1..8)) {
        let ensemble = build(&spec);
        let used = used_features(&ensemble);
        let mut workspace = ShapWorkspace::new();
        let mut reused = vec![0.0; ensemble.n_features + 1];
        for cells in &rows {
            let row = resolve(&ensemble, cells);
            let phi = contributions(&ensemble, &row);
            prop_assert_eq!(phi.len(), ensemble.n_features + 1);
            prop_assert!(phi.iter().all(|v| v.is_finite()), "non-finite contributions {:?}", phi);
            let raw = ensemble.raw_score_reference(&row);
            let total: f64 = phi.iter().sum();
            prop_assert!(
                (total - raw).abs() <= tolerance(&ensemble, raw),
                "contributions sum to {}, raw score {} (row {:?}, phi {:?})", total, raw, row, phi
            );
            for (feature, used) in used.iter().enumerate() {
                if !used {
                    prop_assert_eq!(phi[feature].to_bits(), 0.0f64.to_bits());
                }
            }
            workspace.contributions_into(&ensemble, &row, &mut reused);
            prop_assert_eq!(
                reused.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                phi.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
    }
}

fn numeric_split(feature: u32, left: u32, right: u32) -> Node {
    Node::Split {
        feature,
        rule: SplitRule::Numeric {
            threshold: 0.5,
            missing_left: false,
        },
        left,
        right,
        gain: 1.0,
        cover: 2.0,
    }
}

fn leaf() -> Node {
    Node::Leaf {
        value: 1.0,
        cover: 1.0,
    }
}

fn single_tree(n_features: usize, nodes: Vec<Node>) -> Ensemble {
    Ensemble {
        n_features,
        base_score: 0.0,
        trees: vec![Tree::leaf(0.5, 1.0), Tree { nodes }],
        link: Link::Identity,
    }
}

#[test]
fn scorer_rejects_child_index_out_of_range() {
    let ensemble = single_tree(2, vec![numeric_split(0, 1, 3), leaf(), leaf()]);
    assert!(CompiledEnsemble::new(&ensemble).is_err());
}

#[test]
fn scorer_rejects_feature_out_of_range() {
    let ensemble = single_tree(2, vec![numeric_split(2, 1, 2), leaf(), leaf()]);
    assert!(CompiledEnsemble::new(&ensemble).is_err());
    let nested = single_tree(
        2,
        vec![
            numeric_split(0, 1, 2),
            leaf(),
            numeric_split(7, 3, 4),
            leaf(),
            leaf(),
        ],
    );
    assert!(CompiledEnsemble::new(&nested).is_err());
}

#[test]
fn scorer_rejects_cycles() {
    let self_loop = single_tree(1, vec![numeric_split(0, 0, 1), leaf()]);
    assert!(CompiledEnsemble::new(&self_loop).is_err());
    let back_edge = single_tree(
        1,
        vec![
            numeric_split(0, 1, 2),
            numeric_split(0, 0, 3),
            leaf(),
            leaf(),
        ],
    );
    assert!(CompiledEnsemble::new(&back_edge).is_err());
}

#[test]
fn scorer_rejects_shared_unreachable_and_empty_trees() {
    let shared = single_tree(1, vec![numeric_split(0, 1, 1), leaf()]);
    assert!(CompiledEnsemble::new(&shared).is_err());
    let unreachable = single_tree(1, vec![numeric_split(0, 1, 2), leaf(), leaf(), leaf()]);
    assert!(CompiledEnsemble::new(&unreachable).is_err());
    let empty = single_tree(1, vec![]);
    assert!(CompiledEnsemble::new(&empty).is_err());
}

#[test]
fn scorer_rejects_category_code_too_large_for_bitset() {
    let split = Node::Split {
        feature: 0,
        rule: SplitRule::Categorical {
            left: vec![3, u32::MAX],
            missing_left: false,
        },
        left: 1,
        right: 2,
        gain: 1.0,
        cover: 2.0,
    };
    let ensemble = single_tree(1, vec![split, leaf(), leaf()]);
    assert!(CompiledEnsemble::new(&ensemble).is_err());
}

#[test]
fn scorer_accepts_well_formed_tree() {
    let ensemble = single_tree(
        2,
        vec![
            numeric_split(1, 1, 2),
            leaf(),
            numeric_split(0, 3, 4),
            leaf(),
            leaf(),
        ],
    );
    let compiled = CompiledEnsemble::new(&ensemble).unwrap();
    let row = [1.0, 1.0];
    assert_eq!(
        compiled.raw_score(&row).to_bits(),
        ensemble.raw_score_reference(&row).to_bits()
    );
}
