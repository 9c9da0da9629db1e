//! Inputs for the connectors' property tests (each source's `proptests.rs`): any JSON value,
//! and a page's body arriving broken.

use proptest::prelude::*;
use serde_json::Value;

/// Any JSON value, a few levels deep, with keys that are sometimes among `keys` (not empty), the
/// ones a page uses.
pub(crate) fn any_json(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    let key = prop_oneof![prop::sample::select(keys).prop_map(str::to_string), "\\PC{0,8}"].boxed();
    leaf.prop_recursive(3, 32, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map(key.clone(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A page's body as it may arrive broken: arbitrary bytes, or a valid `page` with one byte
/// changed. (Cut short is a property of its own: it must fail, not read less.)
pub(crate) fn damaged(page: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = page.len();
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        (0..len.max(1), any::<u8>()).prop_map(move |(at, byte)| {
            let mut changed = page.clone();
            if let Some(b) = changed.get_mut(at) {
                *b = byte;
            }
            changed
        }),
    ]
}
