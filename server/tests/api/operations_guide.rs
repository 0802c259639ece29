//! The operations guide's configuration table holds every key the server reads, with the
//! variable that sets it and the default the code has: a key added to `Config` and not to
//! the guide, or a default changed in one place only, fails here.

use std::collections::BTreeMap;

use serde_json::Value;
use unlock_server::config::Config;

const GUIDE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../docs/operations.md"
));
const TABLE_HEADER: &str = "| key | environment variable | default | meaning |";
/// Keys whose default is drawn at start, so the guide describes it in words.
const DRAWN_AT_START: [&str; 1] = ["outbox.instance_id"];

/// Every leaf of the defaults as `section.key` → value.
fn keys_of(value: &Value, prefix: &str, into: &mut BTreeMap<String, Value>) {
    let Value::Object(fields) = value else {
        into.insert(prefix.to_owned(), value.clone());
        return;
    };
    for (name, field) in fields {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        keys_of(field, &key, into);
    }
}

/// The guide's rows: key → (variable, default), each cell as written.
fn guide_rows() -> BTreeMap<String, (String, String)> {
    let table = GUIDE
        .split_once(TABLE_HEADER)
        .expect("the guide's configuration table")
        .1;
    table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line
                .split(" | ")
                .map(|c| c.trim_matches('|').trim())
                .collect();
            assert!(cells.len() >= 4, "a row of four cells: {line}");
            (
                cells[0].trim_matches('`').to_owned(),
                (cells[1].trim_matches('`').to_owned(), cells[2].to_owned()),
            )
        })
        .collect()
}

/// How the guide writes a default value.
fn written(value: &Value) -> String {
    match value {
        Value::Null => "unset".to_owned(),
        Value::String(text) => format!("`{text}`"),
        other => format!("`{other}`"),
    }
}

#[test]
fn every_configuration_key_is_in_the_guide_with_its_variable_and_default() {
    let defaults = serde_json::to_value(Config::default()).expect("the defaults as JSON");
    let mut keys = BTreeMap::new();
    keys_of(&defaults, "", &mut keys);
    let rows = guide_rows();

    let in_code: Vec<&String> = keys.keys().collect();
    let in_guide: Vec<&String> = rows.keys().collect();
    assert_eq!(in_guide, in_code, "the guide's keys and the code's");
    for (key, value) in &keys {
        let (variable, default) = &rows[key];
        assert_eq!(
            *variable,
            format!("UNLOCK_{}", key.replace('.', "__").to_uppercase()),
            "{key}"
        );
        if DRAWN_AT_START.contains(&key.as_str()) {
            assert!(!default.starts_with('`'), "{key}: {default}");
        } else {
            assert_eq!(*default, written(value), "{key}");
        }
    }
}
