//! The contract between generated event types and the decoders: every event
//! type has a builder fed one `(key, value)` at a time from any serde map, so
//! JSON (flat or Custom HTTP nested) and Avro records share one code path.

use std::borrow::Cow;
use std::fmt;
use std::ptr;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::UnknownFields;

/// The glossary's field types; defined in `currents-core`, which the schema
/// loader and codegen share, so the runtime and the build agree on them.
pub use currents_core::FieldType;

/// What the glossary says about one field, available at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldInfo {
    pub name: &'static str,
    pub ty: FieldType,
    pub nullable: bool,
    pub pii: bool,
    /// The string holds JSON-encoded text.
    pub json: bool,
    /// Present in the Avro writer schema (false: HTTP / glossary only).
    pub avro: bool,
    /// Key of the field in Custom HTTP payloads.
    pub http_key: &'static str,
    pub doc: &'static str,
}

/// What the glossary says about one event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTypeInfo {
    pub event_type: &'static str,
    pub rust_name: &'static str,
    pub category: &'static str,
    pub channel: Option<&'static str>,
    /// False for legacy types with no Avro writer schema.
    pub avro: bool,
    pub doc: &'static str,
    pub fields: &'static [FieldInfo],
}

impl EventTypeInfo {
    pub fn field(&self, name: &str) -> Option<&'static FieldInfo> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// A typed Currents event record (one generated struct per event type).
pub trait EventRecord: Sized {
    const INFO: &'static EventTypeInfo;
    fn unknown_fields(&self) -> &UnknownFields;
}

/// Collects one record's fields; generated for each event type. Text is
/// borrowed from the input (`'de`) when the deserializer can lend it.
pub trait RecordBuilder<'de>: Default {
    type Record;
    /// The slot the builder reads `key` into, `None` for keys the glossary
    /// does not know. A decoder that knows the keys ahead (an Avro writer
    /// schema) looks each up once per file and then calls
    /// [`RecordBuilder::visit_slot`] for every record.
    fn slot(key: &str) -> Option<u16>;
    /// Reads the value of the field in `slot` (found for `key` by
    /// [`RecordBuilder::slot`]) from `map`; a slot that names no field keeps
    /// the value as the unknown field `key`.
    fn visit_slot<A: FieldMap<'de>>(
        &mut self,
        slot: u16,
        key: &str,
        map: &mut A,
    ) -> Result<(), A::Error>;
    /// Reads the value for `key` from `map` into the matching field; keys the
    /// glossary does not know are kept as unknown fields.
    fn visit_value<A: FieldMap<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error>;
    /// Checks that every required field was present.
    fn finish<E: de::Error>(self) -> Result<Self::Record, E>;
    /// The field in `slot` when a decoder may store its value itself: text
    /// borrowed from the input, an `i64` or a `bool`, each maybe nullable
    /// (an Avro writer schema says ahead which fields hold what, and a
    /// decoder reading them straight from the block skips the builder's
    /// serde reader); `None` for every other slot, and by default.
    #[inline]
    fn field_mut(&mut self, slot: u16) -> Option<FieldMut<'_, 'de>> {
        let _ = slot;
        None
    }
}

/// A builder's field, lent by [`RecordBuilder::field_mut`]. A decoder
/// writing into it must store what the builder's reader (`set_str`,
/// `set_nullable_str`, `set_field`) would have stored, and only where
/// the field is still empty.
#[derive(Debug)]
#[non_exhaustive]
pub enum FieldMut<'b, 'de> {
    /// Text the record requires.
    Text(&'b mut Option<Cow<'de, str>>),
    /// Text that may be `null`.
    NullableText(&'b mut Option<Option<Cow<'de, str>>>),
    /// An integer the record requires (`time`, say).
    Long(&'b mut Option<i64>),
    /// An integer that may be `null`.
    NullableLong(&'b mut Option<Option<i64>>),
    /// A boolean the record requires.
    Bool(&'b mut Option<bool>),
    /// A boolean that may be `null`.
    NullableBool(&'b mut Option<Option<bool>>),
}

impl FieldMut<'_, '_> {
    /// Which kind of field this is.
    pub(crate) fn kind(&self) -> FieldKind {
        match self {
            FieldMut::Text(_) => FieldKind::Text,
            FieldMut::NullableText(_) => FieldKind::NullableText,
            FieldMut::Long(_) => FieldKind::Long,
            FieldMut::NullableLong(_) => FieldKind::NullableLong,
            FieldMut::Bool(_) => FieldKind::Bool,
            FieldMut::NullableBool(_) => FieldKind::NullableBool,
        }
    }

    /// Where the field lies in its builder: a field lent under two slots
    /// (its name and its Custom HTTP name) is one field.
    fn address(&self) -> *const () {
        match self {
            FieldMut::Text(field) => ptr::from_ref(&**field).cast(),
            FieldMut::NullableText(field) => ptr::from_ref(&**field).cast(),
            FieldMut::Long(field) => ptr::from_ref(&**field).cast(),
            FieldMut::NullableLong(field) => ptr::from_ref(&**field).cast(),
            FieldMut::Bool(field) => ptr::from_ref(&**field).cast(),
            FieldMut::NullableBool(field) => ptr::from_ref(&**field).cast(),
        }
    }
}

/// The kinds of [`FieldMut`], for a plan made once per writer schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldKind {
    Text,
    NullableText,
    Long,
    NullableLong,
    Bool,
    NullableBool,
}

/// The map the builders read an event's fields from: a serde map whose
/// keys and text values can also be read without serde's visitor calls.
/// Any serde map is one through [`SerdeMap`], with the default methods; a
/// decoder that reads keys and strings straight from its input (the fast
/// JSON path, where these calls are most of the work) overrides them, and
/// must then read exactly what the defaults read.
///
/// ```
/// use currents_events::{Event, SerdeMap};
/// use serde::de::value::MapDeserializer;
///
/// let serde_json::Value::Object(fields) = serde_json::json!({
///     "id": "e1", "time": 1700000000, "user_id": "b1", "email_address": "a@b.c",
/// }) else {
///     unreachable!()
/// };
/// let map = MapDeserializer::<_, serde_json::Error>::new(fields.into_iter());
/// let event = Event::from_fields("users.messages.email.Open", SerdeMap(map))?;
/// assert_eq!(event.event_type(), "users.messages.email.Open");
/// # Ok::<(), serde_json::Error>(())
/// ```
pub trait FieldMap<'de>: MapAccess<'de> {
    /// The next key, or `None` at the end of the map.
    #[inline]
    fn next_field(&mut self) -> Result<Option<FieldKey<'de>>, Self::Error> {
        self.next_key()
    }

    /// The next value as a string.
    #[inline]
    fn next_text(&mut self) -> Result<Cow<'de, str>, Self::Error> {
        self.next_value::<Text<'de>>().map(|t| t.0)
    }

    /// The next value as a string or `null`.
    #[inline]
    fn next_nullable_text(&mut self) -> Result<Option<Cow<'de, str>>, Self::Error> {
        self.next_value::<Option<Text<'de>>>()
            .map(|t| t.map(|t| t.0))
    }

    /// The next value as a Custom HTTP wrapper (`user`, `properties`): an
    /// object whose entries are more fields of the same record. `null`
    /// carries nothing; any other value is kept as an unknown field `key`.
    #[inline]
    fn next_nested<B: RecordBuilder<'de>>(
        &mut self,
        builder: &mut B,
        key: &str,
        unknown: fn(&mut B) -> &mut UnknownFields,
    ) -> Result<(), Self::Error> {
        self.next_value_seed(Nested {
            builder,
            key,
            unknown,
        })
    }
}

impl<'de, M: FieldMap<'de> + ?Sized> FieldMap<'de> for &mut M {
    #[inline]
    fn next_field(&mut self) -> Result<Option<FieldKey<'de>>, Self::Error> {
        (**self).next_field()
    }
    #[inline]
    fn next_text(&mut self) -> Result<Cow<'de, str>, Self::Error> {
        (**self).next_text()
    }
    #[inline]
    fn next_nullable_text(&mut self) -> Result<Option<Cow<'de, str>>, Self::Error> {
        (**self).next_nullable_text()
    }
    #[inline]
    fn next_nested<B: RecordBuilder<'de>>(
        &mut self,
        builder: &mut B,
        key: &str,
        unknown: fn(&mut B) -> &mut UnknownFields,
    ) -> Result<(), Self::Error> {
        (**self).next_nested(builder, key, unknown)
    }
}

/// Any serde map as a [`FieldMap`] (every value read through serde).
pub struct SerdeMap<A>(pub A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for SerdeMap<A> {
    type Error = A::Error;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(seed)
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> FieldMap<'de> for SerdeMap<A> {}

/// Builds a record from the remaining entries of `map`.
pub fn build_record<'de, B: RecordBuilder<'de>, A: FieldMap<'de>>(
    mut map: A,
) -> Result<B::Record, A::Error> {
    let mut builder = B::default();
    visit_entries(&mut builder, &mut map)?;
    builder.finish()
}

/// The builder slot of each field of a writer schema, resolved once for
/// the schema's event type (see [`RecordBuilder::slot`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldPlan {
    /// The event type's position in [`crate::EVENT_TYPES`].
    pub(crate) event: usize,
    /// For the writer's n-th field, where its value goes.
    pub(crate) fields: Box<[PlannedField]>,
}

/// Where one writer field's value goes in the builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlannedField {
    /// A key the glossary does not know: kept as an unknown field.
    Unknown,
    /// Read by the builder (`visit_slot`).
    Slot(u16),
    /// The first key of a field a decoder may store itself
    /// ([`RecordBuilder::field_mut`]), and what the field holds.
    Direct(u16, FieldKind),
}

/// The [`FieldPlan::fields`] of a writer schema whose fields are named, in
/// order, by `keys`, for builder `B`.
pub(crate) fn plan_fields<'de, 'k, B: RecordBuilder<'de>>(
    keys: impl Iterator<Item = &'k str>,
) -> Box<[PlannedField]> {
    // A field is known by where it lies in a builder: a field has a slot
    // for each of its keys (its name, its Custom HTTP name).
    let mut probe = B::default();
    let mut seen: Vec<*const ()> = Vec::new();
    keys.map(|key| {
        let Some(slot) = B::slot(key) else {
            return PlannedField::Unknown;
        };
        let Some(field) = probe.field_mut(slot) else {
            return PlannedField::Slot(slot);
        };
        // The field's second key goes through the builder, which reports
        // the field as given twice.
        let address = field.address();
        if seen.contains(&address) {
            return PlannedField::Slot(slot);
        }
        seen.push(address);
        PlannedField::Direct(slot, field.kind())
    })
    .collect()
}

/// A record whose fields a decoder has planned (see [`FieldPlan`]) and can
/// build into the builder of the plan's event type.
pub(crate) trait PlannedRecord<'de> {
    type Error: de::Error;
    fn build<B: RecordBuilder<'de>>(self) -> Result<B::Record, Self::Error>;
}

/// Feeds every remaining entry of `map` to `builder`.
pub fn visit_entries<'de, B: RecordBuilder<'de>, A: FieldMap<'de>>(
    builder: &mut B,
    map: &mut A,
) -> Result<(), A::Error> {
    while let Some(key) = map.next_field()? {
        builder.visit_value(key.as_str(), map)?;
    }
    Ok(())
}

/// A field's key, borrowed from the input when it can be.
pub enum FieldKey<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl FieldKey<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            FieldKey::Borrowed(s) => s,
            FieldKey::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for FieldKey<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = FieldKey<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(FieldKey::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(FieldKey::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(FieldKey::Owned(v))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Stores a field value read from `map`, rejecting a second occurrence and
/// naming the field in type errors.
pub fn set_field<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    slot: &mut Option<T>,
    name: &'static str,
    map: &mut A,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    let value = map.next_value::<T>().map_err(|e| in_field(name, e))?;
    *slot = Some(value);
    Ok(())
}

/// An error met reading the value of field `name`, saying so.
#[cold]
fn in_field<E: de::Error>(name: &str, error: E) -> E {
    de::Error::custom(format_args!("field `{name}`: {error}"))
}

/// Text borrowed from the input when the deserializer lends it (JSON
/// without escapes), else owned.
pub(crate) struct Text<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// [`set_field`] for a text field (see `Text`).
pub fn set_str<'de, A: FieldMap<'de>>(
    slot: &mut Option<Cow<'de, str>>,
    name: &'static str,
    map: &mut A,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_text().map_err(|e| in_field(name, e))?);
    Ok(())
}

/// [`set_field`] for a nullable text field.
pub fn set_nullable_str<'de, A: FieldMap<'de>>(
    slot: &mut Option<Option<Cow<'de, str>>>,
    name: &'static str,
    map: &mut A,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    *slot = Some(map.next_nullable_text().map_err(|e| in_field(name, e))?);
    Ok(())
}

/// A float field's value: a finite number within `f32` (serde would turn
/// 1e39 into infinity, which JSON cannot carry: it would be written as `null`).
fn finite_f32<E: de::Error>(value: f64, name: &'static str) -> Result<f32, E> {
    let narrow = value as f32;
    if narrow.is_finite() {
        Ok(narrow)
    } else {
        Err(de::Error::custom(format_args!(
            "field `{name}`: {value} is not a finite 32-bit float"
        )))
    }
}

/// [`set_field`] for a float field (see `finite_f32`).
pub fn set_f32<'de, A: MapAccess<'de>>(
    slot: &mut Option<f32>,
    name: &'static str,
    map: &mut A,
) -> Result<(), A::Error> {
    let mut value: Option<f64> = None;
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    set_field(&mut value, name, map)?;
    *slot = value.map(|v| finite_f32(v, name)).transpose()?;
    Ok(())
}

/// [`set_field`] for a nullable float field (see `finite_f32`).
pub fn set_nullable_f32<'de, A: MapAccess<'de>>(
    slot: &mut Option<Option<f32>>,
    name: &'static str,
    map: &mut A,
) -> Result<(), A::Error> {
    let mut value: Option<Option<f64>> = None;
    if slot.is_some() {
        return Err(de::Error::duplicate_field(name));
    }
    set_field(&mut value, name, map)?;
    *slot = value
        .map(|v| v.map(|v| finite_f32(v, name)).transpose())
        .transpose()?;
    Ok(())
}

/// Like [`set_field`] for fields holding JSON text: accepts the text, or the
/// JSON value itself (as Custom HTTP sends `custom_properties`).
pub fn set_json_text<'de, A: MapAccess<'de>>(
    slot: &mut Option<String>,
    name: &'static str,
    map: &mut A,
) -> Result<(), A::Error> {
    let mut text: Option<JsonText> = None;
    set_field(&mut text, name, map)?;
    *slot = text.map(|t| t.0);
    Ok(())
}

/// Nullable variant of [`set_json_text`].
pub fn set_nullable_json_text<'de, A: MapAccess<'de>>(
    slot: &mut Option<Option<String>>,
    name: &'static str,
    map: &mut A,
) -> Result<(), A::Error> {
    let mut text: Option<Option<JsonText>> = None;
    set_field(&mut text, name, map)?;
    *slot = text.map(|t| t.map(|t| t.0));
    Ok(())
}

/// Required field value, or a "missing field" error naming it.
pub fn required<T, E: de::Error>(slot: Option<T>, name: &'static str) -> Result<T, E> {
    slot.ok_or_else(|| de::Error::missing_field(name))
}

/// Skips a value the record does not keep (such as the `event_type` key).
pub fn skip_value<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    map.next_value::<IgnoredAny>().map(drop)
}

/// Reads a Custom HTTP `user` or `properties` object: its entries belong to the
/// record itself. A non-object value is kept as an unknown field.
pub fn visit_nested<'de, B: RecordBuilder<'de>, A: FieldMap<'de>>(
    builder: &mut B,
    key: &str,
    map: &mut A,
    unknown: fn(&mut B) -> &mut UnknownFields,
) -> Result<(), A::Error> {
    map.next_nested(builder, key, unknown)
}

/// The default [`FieldMap::next_nested`], for a value that is not an object.
pub(crate) struct Nested<'b, B> {
    builder: &'b mut B,
    key: &'b str,
    unknown: fn(&mut B) -> &mut UnknownFields,
}

impl<'de, B: RecordBuilder<'de>> DeserializeSeed<'de> for Nested<'_, B> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'b, B> Nested<'b, B> {
    pub(crate) fn new(
        builder: &'b mut B,
        key: &'b str,
        unknown: fn(&mut B) -> &mut UnknownFields,
    ) -> Self {
        Nested {
            builder,
            key,
            unknown,
        }
    }
}

impl<'de, B: RecordBuilder<'de>> Visitor<'de> for Nested<'_, B> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of event fields")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        visit_entries(self.builder, &mut SerdeMap(map))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(()) // `"user": null` carries nothing
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        (self.unknown)(self.builder).push(self.key, serde_json::Value::String(v.to_owned()));
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        (self.unknown)(self.builder).push(self.key, v.into());
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        (self.unknown)(self.builder).push(self.key, v.into());
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        (self.unknown)(self.builder).push(self.key, v.into());
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        (self.unknown)(self.builder).push(self.key, v.into());
        Ok(())
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let value = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        (self.unknown)(self.builder).push(self.key, value);
        Ok(())
    }
}

/// JSON-encoded text: a string as it is, or any other JSON value re-encoded.
pub struct JsonText(pub String);

impl<'de> Deserialize<'de> for JsonText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(text) => Ok(JsonText(text)),
            other => Ok(JsonText(other.to_string())),
        }
    }
}

/// For a record with a JSON-text field named like a Custom HTTP wrapper
/// (`properties`): a string is that field's value, an object is the HTTP
/// `properties` wrapper whose entries belong to the record.
pub fn visit_text_or_nested<'de, B: RecordBuilder<'de>, A: FieldMap<'de>>(
    builder: &mut B,
    name: &'static str,
    map: &mut A,
    slot: fn(&mut B) -> &mut Option<String>,
) -> Result<(), A::Error> {
    map.next_value_seed(TextOrNested {
        builder,
        name,
        slot,
    })
}

struct TextOrNested<'b, B> {
    builder: &'b mut B,
    name: &'static str,
    slot: fn(&mut B) -> &mut Option<String>,
}

impl<'de, B: RecordBuilder<'de>> DeserializeSeed<'de> for TextOrNested<'_, B> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, B: RecordBuilder<'de>> Visitor<'de> for TextOrNested<'_, B> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "JSON text or an object of event fields for `{}`",
            self.name
        )
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        visit_entries(self.builder, &mut SerdeMap(map))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.visit_string(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        let slot = (self.slot)(self.builder);
        if slot.is_some() {
            return Err(de::Error::duplicate_field(self.name));
        }
        *slot = Some(v);
        Ok(())
    }
}
