//! The feature spec read two ways gives the same numbers: the polars build
//! of the training table (`extract::build`) and the per-user state of
//! `presage_models::feature_spec::state`, fed one user's events in time
//! order, agree on every event feature of every user of the shipped
//! synthetic extract, bit for bit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use presage_data::extract::source::{Events, EVENT, TS, UID};
use presage_data::extract::spec::ExtractSpec;
use presage_data::extract::users::{Users, SIGNUP};
use presage_data::table::{table_from_frame, ColumnData};
use presage_models::feature_spec::catalog::event_features;
use presage_models::feature_spec::state::{Event, FeatureState};
use presage_models::feature_spec::window::UserWindow;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text_column(frame: &DataFrame, name: &str) -> Vec<String> {
    let c = frame.column(name).unwrap().cast(&DataType::String).unwrap();
    c.str()
        .unwrap()
        .iter()
        .map(|v| v.unwrap().to_owned())
        .collect()
}

fn i64_column(frame: &DataFrame, name: &str) -> Vec<i64> {
    let c = frame.column(name).unwrap().cast(&DataType::Int64).unwrap();
    c.i64().unwrap().iter().map(|v| v.unwrap()).collect()
}

/// One user's events: (time, name, property values in `properties` order).
type UserEvents = Vec<(i64, String, Vec<Option<f64>>)>;

#[test]
fn per_user_state_reproduces_the_built_table() {
    let config = repo().join("datasets/configs/churn.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let spec = ExtractSpec::from_config(&text, &config, None, None)
        .unwrap()
        .expect("the config has an [extract] section");
    let fs = &spec.feature_spec;
    let built = presage_data::extract::build(&spec, &config).unwrap();
    let table = table_from_frame(&built.frame, &config).unwrap();

    // The raw events, normalised as the builder reads them.
    let mut events = Events::open(&spec).unwrap();
    let users = Users::load(&spec, &mut events, &config).unwrap();
    let properties: Vec<String> = fs.features.properties().into_iter().cloned().collect();
    let mut select = vec![col(UID).cast(DataType::String), col(TS), col(EVENT)];
    select.extend(
        properties
            .iter()
            .map(|p| col(p.as_str()).cast(DataType::Float64)),
    );
    let raw = events.frame.clone().select(select).collect().unwrap();
    let uids = text_column(&raw, UID);
    let times = i64_column(&raw, TS);
    let names_col = raw.column(EVENT).unwrap().str().unwrap().clone();
    let props: Vec<Vec<Option<f64>>> = properties
        .iter()
        .map(|p| raw.column(p).unwrap().f64().unwrap().iter().collect())
        .collect();
    let mut by_user: HashMap<String, UserEvents> = HashMap::new();
    for (r, uid) in uids.iter().enumerate() {
        let Some(name) = names_col.get(r) else {
            continue;
        };
        let values = props.iter().map(|p| p[r]).collect();
        by_user
            .entry(uid.clone())
            .or_default()
            .push((times[r], name.to_owned(), values));
    }
    let mut event_names: Vec<String> = names_col.iter().flatten().map(str::to_owned).collect();
    event_names.sort();
    event_names.dedup();
    let catalog = event_features(fs, &event_names).unwrap();

    let signups: HashMap<String, i64> = text_column(&users.keys, UID)
        .into_iter()
        .zip(i64_column(&users.keys, SIGNUP))
        .collect();
    let id_column = &spec.extract.user_id;
    let ids: Vec<String> = match &table.column(id_column).unwrap().data {
        ColumnData::Text(v) => v.iter().map(|s| s.clone().unwrap()).collect(),
        ColumnData::Numeric(v) => v.iter().map(|x| format!("{x}")).collect(),
    };
    let columns: Vec<(usize, &Vec<f64>)> = catalog
        .iter()
        .enumerate()
        .filter_map(|(i, f)| match &table.column(&f.name)?.data {
            ColumnData::Numeric(v) => Some((i, v)),
            ColumnData::Text(_) => panic!("{} is not numeric", f.name),
        })
        .collect();
    assert!(
        columns.len() >= 10,
        "only {} event features in the table",
        columns.len()
    );
    assert!(ids.len() > 100, "only {} users", ids.len());

    let mut compared = 0usize;
    for (row, id) in ids.iter().enumerate() {
        let window = UserWindow::new(fs, signups[id]).unwrap();
        let mut state = FeatureState::new(&catalog, window);
        let mut events = by_user.remove(id).unwrap_or_default();
        // The order the builder sums in: time, name, then property values
        // (missing last).
        events.sort_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)).then_with(|| {
                a.2.iter()
                    .zip(&b.2)
                    .map(|(x, y)| match (x, y) {
                        (Some(x), Some(y)) => x.total_cmp(y),
                        (Some(_), None) => std::cmp::Ordering::Less,
                        (None, Some(_)) => std::cmp::Ordering::Greater,
                        (None, None) => std::cmp::Ordering::Equal,
                    })
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
        });
        for (at_us, name, values) in &events {
            let present: Vec<(&str, f64)> = properties
                .iter()
                .zip(values)
                .filter_map(|(p, v)| Some((p.as_str(), (*v)?)))
                .collect();
            state
                .observe(
                    &catalog,
                    &Event {
                        name,
                        at_us: *at_us,
                        properties: &present,
                    },
                )
                .unwrap();
        }
        let values = state.values(&catalog);
        for (i, column) in &columns {
            let offline = column[row];
            let online = values[*i].unwrap_or(f64::NAN);
            assert!(
                offline.to_bits() == online.to_bits() || (offline.is_nan() && online.is_nan()),
                "user {id}, {}: built table {offline}, per-user state {online}",
                catalog[*i].name
            );
            compared += 1;
        }
    }
    assert!(compared > 1000, "{compared} values compared");
}
