//! Source objects read straight from their JSON text into typed views, as leniently as reading
//! them through `serde_json::Value` lookups: a field of an unexpected type reads as absent
//! instead of failing the page, since a source's quirk in one field must not cost the object.
//!
//! Each type here accepts any JSON value: it keeps what it is for and turns everything else
//! into its default, so a struct made only of them, with `#[serde(default)]`, reads any object.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

/// A string, borrowed from the source's text where it has no escapes; `None` for any other
/// value.
#[derive(Debug, Default)]
pub(crate) struct Text<'a>(pub Option<Cow<'a, str>>);

impl Text<'_> {
    /// The string as the source wrote it.
    pub(crate) fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The string trimmed, unless that leaves nothing.
    pub(crate) fn non_blank(&self) -> Option<String> {
        self.get().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
    }
}

/// A boolean; `None` for any other value.
#[derive(Debug, Default)]
pub(crate) struct Flag(pub Option<bool>);

impl Flag {
    /// True only for `true`.
    pub(crate) fn is_true(&self) -> bool {
        self.0 == Some(true)
    }
}

/// The items of an array, each read leniently; empty for any other value.
#[derive(Debug)]
pub(crate) struct Many<T>(pub Vec<T>);

impl<T> Default for Many<T> {
    fn default() -> Self {
        Many(Vec::new())
    }
}

/// An object read as `T`; `T::default()` for any other value.
#[derive(Debug, Default)]
pub(crate) struct Object<T>(pub T);

/// Whether a key is there at all, whatever its value (even `null`).
#[derive(Debug, Default)]
pub(crate) struct Present(pub bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(deserializer)?;
        Ok(Present(true))
    }
}

/// Reads a source object as `T`. The typed read refuses only a key written twice, which
/// `Value` accepts (the last one winning): such an object is read again through a `Value`
/// kept in `held`, so it maps as it did before. Anything but an object reads as `T::default()`.
pub(crate) fn read<'a, T>(raw: &'a RawValue, held: &'a mut Option<Value>) -> T
where
    T: Deserialize<'a> + Default,
{
    if let Ok(Object(object)) = serde_json::from_str::<Object<T>>(raw.get()) {
        return object;
    }
    let Ok(value) = serde_json::from_str(raw.get()) else { return T::default() };
    let value: &'a Value = held.insert(value);
    Object::<T>::deserialize(value).map(|o| o.0).unwrap_or_default()
}

/// What one lenient type keeps of a JSON value; every other value is skipped and reads as
/// the default.
trait Keep<'de>: Default {
    fn string(_: Cow<'de, str>) -> Self {
        Self::default()
    }

    fn boolean(_: bool) -> Self {
        Self::default()
    }

    fn sequence<A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Self::default())
    }

    fn object<A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Self::default())
    }
}

impl<'de: 'a, 'a> Keep<'de> for Text<'a> {
    fn string(s: Cow<'de, str>) -> Self {
        Text(Some(s))
    }
}

impl Keep<'_> for Flag {
    fn boolean(b: bool) -> Self {
        Flag(Some(b))
    }
}

impl<'de, T: Deserialize<'de>> Keep<'de> for Many<T> {
    fn sequence<A: SeqAccess<'de>>(mut seq: A) -> Result<Self, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Many(items))
    }
}

impl<'de, T: Deserialize<'de> + Default> Keep<'de> for Object<T> {
    fn object<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map)).map(Object)
    }
}

/// Hands each kind of JSON value to what `T` keeps of it.
struct Lenient<T>(PhantomData<T>);

impl<'de, T: Keep<'de>> Visitor<'de> for Lenient<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<T, E> {
        Ok(T::string(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<T, E> {
        Ok(T::string(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<T, E> {
        Ok(T::string(Cow::Owned(s)))
    }

    fn visit_bool<E>(self, b: bool) -> Result<T, E> {
        Ok(T::boolean(b))
    }

    fn visit_i64<E>(self, _: i64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_u64<E>(self, _: u64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_f64<E>(self, _: f64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_unit<E>(self) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_none<E>(self) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<T, A::Error> {
        T::sequence(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::object(map)
    }
}

fn lenient<'de, D: Deserializer<'de>, T: Keep<'de>>(deserializer: D) -> Result<T, D::Error> {
    deserializer.deserialize_any(Lenient(PhantomData))
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        lenient(deserializer)
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        lenient(deserializer)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Many<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        lenient(deserializer)
    }
}

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        lenient(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Sample<'a> {
        #[serde(borrow)]
        name: Text<'a>,
        enabled: Flag,
        #[serde(borrow)]
        tags: Many<Text<'a>>,
        #[serde(borrow)]
        inner: Object<Inner<'a>>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Inner<'a> {
        #[serde(borrow)]
        id: Text<'a>,
    }

    fn sample(json: &str) -> Sample<'_> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn text_keeps_strings_and_reads_anything_else_as_absent() {
        assert_eq!(sample(r#"{"name": "Ada"}"#).name.get(), Some("Ada"));
        assert!(matches!(sample(r#"{"name": "Ada"}"#).name.0, Some(Cow::Borrowed(_))));
        assert_eq!(sample(r#"{"name": "A\u0064a"}"#).name.get(), Some("Ada"));
        for other in ["null", "5", "-1.5", "true", r#"{"a": [1, {"b": "c"}]}"#, r#"["x", ["y"]]"#] {
            let json = format!(r#"{{"name": {other}, "enabled": true}}"#);
            let s = sample(&json);
            assert_eq!(s.name.get(), None, "{other}");
            assert_eq!(s.enabled.0, Some(true), "what follows {other} is still read");
        }
        assert_eq!(sample("{}").name.get(), None);
    }

    #[test]
    fn non_blank_trims_and_drops_empty_strings() {
        assert_eq!(sample(r#"{"name": "  Ada "}"#).name.non_blank().as_deref(), Some("Ada"));
        assert_eq!(sample(r#"{"name": "  "}"#).name.non_blank(), None);
        assert_eq!(sample(r#"{"name": "  "}"#).name.get(), Some("  "));
    }

    #[test]
    fn flags_arrays_and_objects_are_as_lenient() {
        let s = sample(r#"{"enabled": "yes", "tags": ["a", 1, null, "b", {"c": 1}], "inner": {"id": "i1"}}"#);
        assert_eq!(s.enabled.0, None);
        assert!(!s.enabled.is_true());
        assert_eq!(
            s.tags.0.iter().map(Text::get).collect::<Vec<_>>(),
            [Some("a"), None, None, Some("b"), None]
        );
        assert_eq!(s.inner.0.id.get(), Some("i1"));
        let s = sample(r#"{"tags": "a", "inner": ["i1"]}"#);
        assert!(s.tags.0.is_empty());
        assert_eq!(s.inner.0.id.get(), None);
        assert_eq!(sample(r#"{"inner": null, "tags": {"a": "b"}}"#).inner.0.id.get(), None);
    }

    #[test]
    fn anything_but_an_object_reads_as_the_default() {
        for other in [r#""x""#, "[1]", "null", "3"] {
            let raw = RawValue::from_string(other.to_owned()).unwrap();
            let mut held = None;
            let s: Sample = read(&raw, &mut held);
            assert_eq!(s.name.get(), None, "{other}");
        }
    }

    #[test]
    fn a_key_written_twice_keeps_its_last_value() {
        let raw =
            RawValue::from_string(r#"{"name": "first", "inner": {"id": "i1"}, "name": "last"}"#.to_owned())
                .unwrap();
        let mut held = None;
        let s: Sample = read(&raw, &mut held);
        assert_eq!((s.name.get(), s.inner.0.id.get()), (Some("last"), Some("i1")));
    }
}
