//! Parses predict request bodies straight into model rows.
//!
//! One pass over the JSON with a schema-aware `DeserializeSeed`, instead of
//! a map of `Value`s that would allocate a string per feature name and
//! value: feature names are borrowed from the body and looked up in the
//! model's schema, and each value is written into its slot of the row.
//!
//! Each schema feature is looked up by name (once: a feature sent twice is a
//! 422 `duplicate_feature`): numbers for numeric features,
//! strings (categories) for categorical ones. A wrong type is a 422 naming
//! the feature. Absent features are scored as missing and listed in
//! `warnings`; `null` is missing too (the caller said so, no warning). An
//! unseen category is scored as the model scores unseen categories and
//! listed in `warnings`. Unknown features are listed in `warnings` and
//! ignored, or rejected with 422 when the server runs with `strict = true`.
//! When the caller asks for explanations, the values as sent are kept too,
//! for the `reasons`.
//!
//! Sizes are checked while parsing, before anything grows from them: a batch
//! stops at `max_batch_rows + 1` rows and a row at `max_features_per_row + 1`
//! keys, each answered 422 without reading further. Warnings are bounded per
//! row: past [`LISTED`] missing (or unknown) features the rest are counted in
//! one summary warning, so a batch of empty rows answers with one short line
//! per row instead of one line per feature per row.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use presage_models::schema::UNSEEN_CATEGORY;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;
use serde_json::Value;

use crate::error::ApiError;
use crate::store::LoadedVersion;

/// A row ready to score and what the caller should know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedRow {
    /// Values in schema order.
    pub row: Vec<f64>,
    /// Non-fatal problems (missing, unknown features, unseen categories).
    pub warnings: Vec<String>,
    /// The values as sent, in schema order (null where absent), when kept
    /// for explanations.
    pub sent: Option<Vec<Value>>,
}

/// One parsed user.
#[derive(Debug)]
pub struct ParsedUser {
    /// `user_id` as sent (string or number), if any.
    pub user_id: Option<Value>,
    /// The encoded row and its warnings.
    pub encoded: EncodedRow,
}

/// A key borrowed from the body when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Missing or unknown features named one by one in a row's warnings; past
/// this many, one summary warning names these and counts the rest.
pub const LISTED: usize = 3;

/// How a body is parsed: the size limits and the options of the request.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    /// Reject unknown features instead of warning.
    pub strict: bool,
    /// Keep the values as sent (for explanations).
    pub keep_values: bool,
    /// Most rows in a batch (the parser stops at one more).
    pub max_rows: usize,
    /// Most keys in one `features` object (the parser stops at one more).
    pub max_features: usize,
}

/// Parsing state shared by the seeds: the model, the options, and the first
/// API error met (serde errors cannot carry it, so it is kept here).
struct Context<'m> {
    model: &'m LoadedVersion,
    options: ParseOptions,
    error: RefCell<Option<ApiError>>,
}

impl Context<'_> {
    fn fail<E: de::Error>(&self, error: ApiError) -> E {
        let message = error.message.clone();
        self.error.borrow_mut().get_or_insert(error);
        E::custom(message)
    }
}

/// What a feature value turned out to be.
enum Cell<'de> {
    Number(serde_json::Number),
    Text(Cow<'de, str>),
    Null,
    Other(&'static str),
}

struct CellVisitor;

impl<'de> Visitor<'de> for CellVisitor {
    type Value = Cell<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number, a string or null")
    }
    fn visit_f64<E>(self, v: f64) -> Result<Cell<'de>, E> {
        // JSON numbers are finite, so this is always `Some`.
        Ok(serde_json::Number::from_f64(v).map_or(Cell::Null, Cell::Number))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Cell<'de>, E> {
        Ok(Cell::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Cell<'de>, E> {
        Ok(Cell::Number(v.into()))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cell<'de>, E> {
        Ok(Cell::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Cell<'de>, E> {
        Ok(Cell::Text(Cow::Owned(v.to_string())))
    }
    fn visit_unit<E>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Null)
    }
    fn visit_none<E>(self) -> Result<Cell<'de>, E> {
        Ok(Cell::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Cell<'de>, E> {
        Ok(Cell::Other("a boolean"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Cell<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Cell::Other("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Cell<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Cell::Other("an object"))
    }
}

impl<'de> de::Deserialize<'de> for Cell<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CellVisitor)
    }
}

/// Seed for a `features` object.
struct FeaturesSeed<'c, 'm> {
    context: &'c Context<'m>,
    field: &'c str,
}

impl<'de> DeserializeSeed<'de> for FeaturesSeed<'_, '_> {
    type Value = EncodedRow;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<EncodedRow, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FeaturesSeed<'_, '_> {
    type Value = EncodedRow;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of feature values")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EncodedRow, A::Error> {
        let model = self.context.model;
        let schema = &model.artifact.schema;
        let mut row = vec![f64::NAN; schema.len()];
        let mut given = vec![false; schema.len()];
        let options = self.context.options;
        let mut sent = options.keep_values.then(|| vec![Value::Null; schema.len()]);
        let mut unseen = Vec::new();
        let mut unknown = Vec::new();
        let mut unknown_count = 0usize;
        let mut keys = 0usize;
        while let Some(Key(name)) = map.next_key::<Key>()? {
            keys += 1;
            if keys > options.max_features {
                return Err(self.context.fail(ApiError::invalid(
                    "too_many_features",
                    format!(
                        "more than {} features in one row (max_features_per_row); this model has {}",
                        options.max_features,
                        schema.len()
                    ),
                    self.field,
                )));
            }
            let Some(&position) = model.positions.get(name.as_ref()) else {
                if options.strict {
                    return Err(self.context.fail(ApiError::invalid(
                        "unknown_feature",
                        format!("'{name}' is not a feature of this model (the server runs with strict = true)"),
                        format!("{}.{name}", self.field),
                    )));
                }
                // Ignored, but still a feature value: a number, a string or null.
                let cell: Cell = map.next_value()?;
                if let Cell::Other(got) = cell {
                    return Err(self.context.fail(ApiError::invalid(
                        "wrong_type",
                        format!("feature values are numbers, strings or null; '{name}' is {got}"),
                        format!("{}.{name}", self.field),
                    )));
                }
                unknown_count += 1;
                if unknown.len() < LISTED {
                    unknown.push(name.into_owned());
                }
                continue;
            };
            if std::mem::replace(&mut given[position], true) {
                return Err(self.context.fail(ApiError::invalid(
                    "duplicate_feature",
                    format!("feature '{name}' is sent twice; send each feature once"),
                    format!("{}.{name}", self.field),
                )));
            }
            let cell: Cell = map.next_value()?;
            if let Some(sent) = sent.as_mut() {
                sent[position] = match &cell {
                    Cell::Number(n) => Value::Number(n.clone()),
                    Cell::Text(t) => Value::String(t.to_string()),
                    Cell::Null | Cell::Other(_) => Value::Null,
                };
            }
            let lookup = model.categories[position].as_ref();
            row[position] = match (lookup, cell) {
                (_, Cell::Null) => f64::NAN,
                (None, Cell::Number(x)) => x.as_f64().unwrap_or(f64::NAN),
                (Some(lookup), Cell::Text(text)) => match lookup.get(text.as_ref()) {
                    Some(code) => f64::from(*code),
                    None => {
                        unseen.push(position);
                        UNSEEN_CATEGORY
                    }
                },
                (None, other) => {
                    let got = describe(&other);
                    return Err(self.context.fail(ApiError::invalid(
                        "wrong_type",
                        format!("feature '{name}' is numeric; got {got}"),
                        format!("{}.{name}", self.field),
                    )));
                }
                (Some(_), other) => {
                    let got = describe(&other);
                    return Err(self.context.fail(ApiError::invalid(
                        "wrong_type",
                        format!("feature '{name}' is categorical (a string); got {got}"),
                        format!("{}.{name}", self.field),
                    )));
                }
            };
        }
        // Warnings: unseen categories and unknown features by name, then
        // missing features in schema order; long lists are summarised.
        let mut named: Vec<(String, String)> = unseen
            .iter()
            .map(|&p| {
                let name = schema.features[p].name.clone();
                (
                    name.clone(),
                    format!("unseen category for '{name}', scored as an unseen category"),
                )
            })
            .collect();
        if unknown_count > LISTED {
            named.push((
                unknown[0].clone(),
                summary(unknown_count, &unknown, "unknown features", "ignored"),
            ));
        } else {
            named.extend(
                unknown
                    .into_iter()
                    .map(|name| (name.clone(), format!("unknown feature '{name}' ignored"))),
            );
        }
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let mut warnings: Vec<String> = named.into_iter().map(|(_, w)| w).collect();
        let missing: Vec<&str> = schema
            .features
            .iter()
            .zip(&given)
            .filter(|(_, given)| !**given)
            .map(|(feature, _)| feature.name.as_str())
            .collect();
        if missing.len() > LISTED {
            warnings.push(summary(
                missing.len(),
                &missing[..LISTED],
                "features missing",
                "scored as missing",
            ));
        } else {
            warnings.extend(
                missing
                    .iter()
                    .map(|name| format!("missing feature '{name}' scored as missing")),
            );
        }
        Ok(EncodedRow {
            row,
            warnings,
            sent,
        })
    }
}

/// One warning for many features: `19 features missing, scored as missing:
/// 'a', 'b', 'c' and 16 more`.
fn summary(count: usize, first: &[impl AsRef<str>], what: &str, outcome: &str) -> String {
    let names: Vec<String> = first.iter().map(|n| format!("'{}'", n.as_ref())).collect();
    format!(
        "{count} {what}, {outcome}: {} and {} more",
        names.join(", "),
        count - first.len()
    )
}

fn describe(cell: &Cell) -> &'static str {
    match cell {
        Cell::Number(_) => "a number",
        Cell::Text(_) => "a string",
        Cell::Null => "null",
        Cell::Other(what) => what,
    }
}

/// Seed for one `{"user_id", "features"}` object.
struct UserSeed<'c, 'm> {
    context: &'c Context<'m>,
    /// Field prefix: `` for a single request, `rows[i].` in a batch.
    prefix: String,
}

impl<'de> DeserializeSeed<'de> for UserSeed<'_, '_> {
    type Value = ParsedUser;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ParsedUser, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for UserSeed<'_, '_> {
    type Value = ParsedUser;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with `features` and an optional `user_id`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ParsedUser, A::Error> {
        let mut user_id = None;
        let mut encoded = None;
        while let Some(Key(key)) = map.next_key::<Key>()? {
            match key.as_ref() {
                "user_id" => {
                    let value: Value = map.next_value()?;
                    if !matches!(value, Value::String(_) | Value::Number(_) | Value::Null) {
                        return Err(self.context.fail(ApiError::invalid(
                            "wrong_type",
                            "user_id must be a string or a number",
                            format!("{}user_id", self.prefix),
                        )));
                    }
                    user_id = (!value.is_null()).then_some(value);
                }
                "features" => {
                    let field = format!("{}features", self.prefix);
                    encoded = Some(map.next_value_seed(FeaturesSeed {
                        context: self.context,
                        field: &field,
                    })?);
                }
                other => return Err(de::Error::unknown_field(other, &["user_id", "features"])),
            }
        }
        let encoded = encoded.ok_or_else(|| de::Error::missing_field("features"))?;
        Ok(ParsedUser { user_id, encoded })
    }
}

/// Seed for a batch `{"rows": [...]}`.
struct BatchSeed<'c, 'm> {
    context: &'c Context<'m>,
}

impl<'de> DeserializeSeed<'de> for BatchSeed<'_, '_> {
    type Value = Vec<ParsedUser>;
    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Vec<ParsedUser>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BatchSeed<'_, '_> {
    type Value = Vec<ParsedUser>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with `rows`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<ParsedUser>, A::Error> {
        let mut rows = None;
        while let Some(Key(key)) = map.next_key::<Key>()? {
            if key != "rows" {
                return Err(de::Error::unknown_field(&key, &["rows"]));
            }
            rows = Some(map.next_value_seed(RowsSeed {
                context: self.context,
            })?);
        }
        rows.ok_or_else(|| de::Error::missing_field("rows"))
    }
}

struct RowsSeed<'c, 'm> {
    context: &'c Context<'m>,
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_, '_> {
    type Value = Vec<ParsedUser>;
    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Vec<ParsedUser>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_, '_> {
    type Value = Vec<ParsedUser>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of users")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<ParsedUser>, A::Error> {
        let max_rows = self.context.options.max_rows;
        let mut users = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(max_rows));
        while let Some(user) = seq.next_element_seed(UserSeed {
            context: self.context,
            prefix: format!("rows[{}].", users.len()),
        })? {
            if users.len() == max_rows {
                return Err(self.context.fail(ApiError::invalid(
                    "batch_too_large",
                    format!(
                        "more than {max_rows} rows; this server's limit is {max_rows} (max_batch_rows)"
                    ),
                    "rows",
                )));
            }
            users.push(user);
        }
        Ok(users)
    }
}

fn parse_with<T>(
    body: &[u8],
    model: &LoadedVersion,
    options: ParseOptions,
    run: impl FnOnce(
        &Context,
        &mut serde_json::Deserializer<serde_json::de::SliceRead>,
    ) -> Result<T, serde_json::Error>,
) -> Result<T, ApiError> {
    let context = Context {
        model,
        options,
        error: RefCell::new(None),
    };
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let result =
        run(&context, &mut deserializer).and_then(|value| deserializer.end().map(|()| value));
    match result {
        Ok(value) => Ok(value),
        Err(e) => Err(context.error.into_inner().unwrap_or_else(|| json_error(&e))),
    }
}

/// Maps a `serde_json` error like the `ApiJson` extractor does.
fn json_error(e: &serde_json::Error) -> ApiError {
    use axum::http::StatusCode;
    match e.classify() {
        serde_json::error::Category::Data => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("Failed to deserialize the JSON body into the target type: {e}"),
        ),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("Failed to parse the request body as JSON: {e}"),
        ),
    }
}

/// Parses a `POST /predict/{model}` body.
pub fn parse_user(
    body: &[u8],
    model: &LoadedVersion,
    options: ParseOptions,
) -> Result<ParsedUser, ApiError> {
    parse_with(body, model, options, |context, d| {
        UserSeed {
            context,
            prefix: String::new(),
        }
        .deserialize(d)
    })
}

/// Encodes features computed online, with `sent` ones (when given)
/// replacing them, exactly as [`parse_user`] encodes the same object sent
/// as JSON: same checks, warnings and kept values, without building a map
/// of owned keys or writing the values out and reading them back.
pub fn encode_features(
    online: &[(&str, Value)],
    sent: Option<&serde_json::Map<String, Value>>,
    user_id: Option<Value>,
    model: &LoadedVersion,
    options: ParseOptions,
) -> Result<ParsedUser, ApiError> {
    let context = Context {
        model,
        options,
        error: RefCell::new(None),
    };
    let seed = FeaturesSeed {
        context: &context,
        field: "features",
    };
    let online = online
        .iter()
        .filter(|(name, _)| sent.is_none_or(|sent| !sent.contains_key(*name)))
        .map(|(name, value)| (*name, value));
    let sent = sent
        .into_iter()
        .flat_map(|sent| sent.iter().map(|(name, value)| (name.as_str(), value)));
    let pairs = serde::de::value::MapDeserializer::<_, serde_json::Error>::new(online.chain(sent));
    match seed.deserialize(pairs) {
        Ok(encoded) => Ok(ParsedUser { user_id, encoded }),
        Err(e) => Err(context
            .error
            .into_inner()
            .unwrap_or_else(|| ApiError::invalid("invalid_body", e.to_string(), "features"))),
    }
}

/// Parses a `POST /predict/{model}/batch` body.
pub fn parse_batch(
    body: &[u8],
    model: &LoadedVersion,
    options: ParseOptions,
) -> Result<Vec<ParsedUser>, ApiError> {
    parse_with(body, model, options, |context, d| {
        BatchSeed { context }.deserialize(d)
    })
}
