//! Conditions on feature values, written as text in segment policies and
//! rule segments: `feature op value` (`<`, `<=`, `>`, `>=`, `==`, `!=`;
//! categories quoted), `feature is missing`, `feature is present`, joined
//! with `and`. A condition is checked against a [`FeatureSchema`] when it
//! is parsed, so a misspelt feature, an unknown category or a bad operator
//! is an error at load time, never a rule that silently never matches.

use crate::schema::{FeatureKind, FeatureSchema};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// The test one clause applies to one feature value.
#[derive(Debug, Clone, PartialEq)]
enum Test {
    /// Numeric comparison.
    Number(Op, f64),
    /// Category (code) equality or inequality.
    Category(Op, f64),
    /// The value is missing.
    Missing,
    /// The value is present.
    Present,
}

/// One `feature op value` clause.
#[derive(Debug, Clone, PartialEq)]
struct Clause {
    feature: usize,
    test: Test,
}

/// Why a condition does not parse: what is wrong and how to write it (the
/// caller adds which rule of which file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RuleError {
    /// The explanation.
    pub message: String,
}

/// A parsed condition: every clause must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    clauses: Vec<Clause>,
}

impl Condition {
    /// Parses `text` against `schema`; the error says what is wrong and how
    /// to write it.
    pub fn parse(text: &str, schema: &FeatureSchema) -> Result<Condition, RuleError> {
        let clauses = text
            .split(" and ")
            .map(|clause| parse_clause(clause, schema))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| RuleError { message })?;
        Ok(Condition { clauses })
    }

    /// Whether `row` (feature values in schema order; categories as codes,
    /// missing as NaN) satisfies every clause.
    pub fn matches(&self, row: &[f64]) -> bool {
        self.clauses.iter().all(|c| c.matches(row[c.feature]))
    }

    /// The features the condition reads (schema indices).
    pub fn features(&self) -> impl Iterator<Item = usize> + '_ {
        self.clauses.iter().map(|c| c.feature)
    }
}

impl Clause {
    fn matches(&self, x: f64) -> bool {
        let compare = |op: Op, v: f64| match op {
            Op::Lt => x < v,
            Op::Le => x <= v,
            Op::Gt => x > v,
            Op::Ge => x >= v,
            Op::Eq => x == v,
            Op::Ne => !x.is_nan() && x != v,
        };
        match self.test {
            Test::Missing => x.is_nan(),
            Test::Present => !x.is_nan(),
            Test::Number(op, v) | Test::Category(op, v) => compare(op, v),
        }
    }
}

/// Parses `feature op value` against the schema.
fn parse_clause(text: &str, schema: &FeatureSchema) -> Result<Clause, String> {
    let text = text.trim();
    let known = || schema.names().collect::<Vec<_>>().join(", ");
    let (name, rest) = text
        .split_once(char::is_whitespace)
        .ok_or("expected `feature op value`")?;
    let feature = schema
        .index_of(name)
        .ok_or_else(|| format!("unknown feature '{name}' (known: {})", known()))?;
    let rest = rest.trim();
    match rest {
        "is missing" => {
            return Ok(Clause {
                feature,
                test: Test::Missing,
            })
        }
        "is present" => {
            return Ok(Clause {
                feature,
                test: Test::Present,
            })
        }
        _ => {}
    }
    let (op, value) = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ]
    .iter()
    .find_map(|(symbol, op)| rest.strip_prefix(symbol).map(|v| (*op, v.trim())))
    .ok_or_else(|| {
        format!("unknown operator in '{rest}'; use <, <=, >, >=, ==, != or `is missing`")
    })?;
    if value.is_empty() {
        return Err("missing value after the operator".into());
    }
    match &schema.features[feature].kind {
        FeatureKind::Numeric => {
            let v: f64 = value
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| format!("'{name}' is numeric; '{value}' is not a number"))?;
            Ok(Clause {
                feature,
                test: Test::Number(op, v),
            })
        }
        FeatureKind::Categorical { categories } => {
            if !matches!(op, Op::Eq | Op::Ne) {
                return Err(format!(
                    "'{name}' is categorical; use == or != with a quoted category"
                ));
            }
            let category = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or_else(|| {
                    format!(
                        "'{name}' is categorical; quote the category, e.g. {name} == \"{}\"",
                        categories.first().map_or("value", String::as_str)
                    )
                })?;
            let code = categories
                .iter()
                .position(|c| c == category)
                .ok_or_else(|| {
                    format!(
                        "'{category}' is not a category of '{name}' (known: {})",
                        categories.join(", ")
                    )
                })?;
            Ok(Clause {
                feature,
                test: Test::Category(op, code as f64),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Feature, FeatureHistogram, FeatureStats};

    fn schema() -> FeatureSchema {
        let feature = |name: &str, kind| Feature {
            name: name.into(),
            kind,
            stats: FeatureStats {
                rows: 1,
                missing: 0,
                min: 0.0,
                max: 1.0,
                mean: 0.5,
            },
            histogram: FeatureHistogram {
                edges: vec![],
                counts: vec![1],
                missing: 0,
            },
        };
        FeatureSchema {
            features: vec![
                feature("hours", FeatureKind::Numeric),
                feature(
                    "plan",
                    FeatureKind::Categorical {
                        categories: vec!["free".into(), "pro".into()],
                    },
                ),
            ],
        }
    }

    #[test]
    fn clauses_joined_with_and_must_all_hold() {
        let c = Condition::parse(r#"hours <= 72 and plan == "pro""#, &schema()).unwrap();
        assert!(c.matches(&[10.0, 1.0]));
        assert!(!c.matches(&[10.0, 0.0]));
        assert!(!c.matches(&[80.0, 1.0]));
        assert!(!c.matches(&[f64::NAN, 1.0]));
        assert_eq!(c.features().collect::<Vec<_>>(), [0, 1]);
        let missing = Condition::parse("hours is missing", &schema()).unwrap();
        assert!(missing.matches(&[f64::NAN, 0.0]) && !missing.matches(&[1.0, 0.0]));
        let ne = Condition::parse("hours != 3", &schema()).unwrap();
        assert!(!ne.matches(&[f64::NAN, 0.0]), "missing is not 'different'");
    }

    #[test]
    fn mistakes_are_errors_that_say_what_to_write() {
        let err = |text: &str| Condition::parse(text, &schema()).unwrap_err().message;
        assert!(err("hour <= 72").contains("unknown feature 'hour' (known: hours, plan)"));
        assert!(err("hours =< 72").contains("unknown operator"));
        assert!(err("hours <= soon").contains("'hours' is numeric"));
        assert!(err("plan == pro").contains("quote the category"));
        assert!(err(r#"plan == "gold""#).contains("'gold' is not a category of 'plan'"));
        assert!(err(r#"plan < "pro""#).contains("use == or !="));
        assert!(err("hours <= 1 and").contains("'1 and' is not a number"));
        assert!(err("hours <= 1 and  and plan is missing").contains("expected `feature op value`"));
    }
}
