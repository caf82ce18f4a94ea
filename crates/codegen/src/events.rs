//! `crates/events/src/generated/events.rs`: one struct and builder per event
//! type, the `Event` enum, and the glossary's run-time metadata.

use proc_macro2::TokenStream;
use quote::quote;

use currents_schema::{EventType, Field, FieldType, Glossary};

use crate::docs::{doc_attrs, event_doc, field_doc};
use crate::naming::{
    as_i64, builder_ident, field_ident, field_type, field_type_variant, fields_ident, info_ident,
    is_borrowed, type_ident,
};

pub fn generate(glossary: &Glossary) -> TokenStream {
    let structs = glossary.events.iter().map(event_struct);
    let event_enum = event_enum(glossary);
    let metadata = metadata(glossary);
    quote! {
        use serde::de::MapAccess;
        use crate::record::{self, EventRecord, EventTypeInfo, FieldInfo, FieldMap, FieldType, RecordBuilder, SerdeMap};
        use crate::UnknownFields;

        #metadata
        #event_enum
        #(#structs)*
    }
}

/// The event's fields as the Rust types hold them: optional when the input
/// may lack them ([`EventType::required_on_input`]), and `time` always `i64`
/// so a JSON `time` beyond the Avro `int` range reaches the `/import` time
/// rules (as `time_in_future`) instead of failing to decode. The run-time
/// metadata keeps the writer schema's own types and nullability.
pub(crate) fn rust_fields(event: &EventType) -> Vec<Field> {
    event
        .fields
        .iter()
        .map(|f| {
            let mut field = f.clone();
            field.nullable = !event.required_on_input(f);
            if field.name == "time" {
                field.ty = FieldType::Long;
            }
            field
        })
        .collect()
}

/// Fields the writer schema requires that the Rust type holds as optional.
fn relaxed_fields(event: &EventType) -> Vec<&Field> {
    event
        .fields
        .iter()
        .filter(|f| !f.nullable && !event.required_on_input(f))
        .collect()
}

fn event_struct(event: &EventType) -> TokenStream {
    let name = type_ident(event);
    let builder = builder_ident(event);
    let info = info_ident(event);
    let doc = doc_attrs(&event_doc(event));
    assert!(
        event.fields.iter().any(is_borrowed),
        "{}: every event has text fields (such as `id`), which carry the struct's lifetime",
        event.event_type
    );
    let rust = rust_fields(event);
    let relaxed = relaxed_fields(event);
    let fields = rust.iter().map(|f| {
        let ident = field_ident(f);
        let ty = field_type(f, &quote!('a));
        let mut lines = field_doc(f);
        if relaxed.iter().any(|r| r.name == f.name) {
            lines.push(String::new());
            lines.push(
                " Required by the Avro writer schema; optional here because the Braze profile \
                 does not use it, so input without it still maps (counted as a `missing_field` \
                 warning)."
                    .to_owned(),
            );
        }
        let doc = doc_attrs(&lines);
        let skip = f
            .nullable
            .then(|| quote!(#[serde(skip_serializing_if = "::std::option::Option::is_none")]));
        quote!(#doc #skip pub #ident: #ty,)
    });
    let slots = rust.iter().map(|f| {
        let ident = field_ident(f);
        let ty = field_type(f, &quote!('de));
        quote!(#ident: ::std::option::Option<#ty>,)
    });
    let owned = rust.iter().map(|f| {
        let ident = field_ident(f);
        match (is_borrowed(f), f.nullable) {
            (true, false) => quote!(#ident: ::std::borrow::Cow::Owned(self.#ident.into_owned()),),
            (true, true) => {
                quote!(#ident: self.#ident.map(|v| ::std::borrow::Cow::Owned(v.into_owned())),)
            }
            (false, _) => quote!(#ident: self.#ident,),
        }
    });
    // Every key the builder reads, with what it does: the fields under
    // their names (and Custom HTTP names), the wrappers, `event_type`. A
    // key's position is its slot; `owners` names the field of each field key.
    let mut keyed: Vec<(String, TokenStream)> = Vec::new();
    let mut owners: Vec<&Field> = Vec::new();
    for f in &rust {
        for arm in field_arms(event, f) {
            keyed.push(arm);
            owners.push(f);
        }
    }
    keyed.extend(
        ["user", "properties"]
            .into_iter()
            .filter(|w| {
                event
                    .fields
                    .iter()
                    .all(|f| f.name != *w && f.http_key() != *w)
            })
            .map(|w| {
                (
                    w.to_owned(),
                    quote!(record::visit_nested(self, key, map, |b| &mut b.unknown)),
                )
            }),
    );
    if event.fields.iter().all(|f| f.name != "event_type") {
        keyed.push(("event_type".to_owned(), quote!(record::skip_value(map))));
    }
    let slot_number = |slot: usize| u16::try_from(slot).expect("fewer than 65536 fields");
    let slot_of = str_switch(
        quote!(key),
        keyed
            .iter()
            .enumerate()
            .map(|(slot, (key, _))| {
                let slot = slot_number(slot);
                (key.clone(), quote!(Some(#slot)))
            })
            .collect(),
        quote!(None),
    );
    // The slots (every key of each) of the fields lent to decoders that
    // read them themselves.
    let lent_arms: Vec<TokenStream> = rust
        .iter()
        .filter_map(|f| {
            let kind = match lent_field(f)? {
                LentField::Text => quote!(Text),
                LentField::NullableText => quote!(NullableText),
                LentField::Long => quote!(Long),
                LentField::NullableLong => quote!(NullableLong),
                LentField::Bool => quote!(Bool),
                LentField::NullableBool => quote!(NullableBool),
            };
            let slots = (owners.iter().enumerate())
                .filter(|(_, owner)| owner.name == f.name)
                .map(|(slot, _)| slot_number(slot));
            let ident = field_ident(f);
            Some(quote!(#(#slots)|* => Some(record::FieldMut::#kind(&mut self.#ident)),))
        })
        .collect();
    // A key the glossary does not know: its value is kept as is.
    let keep_unknown = quote!({
        let value = map.next_value()?;
        self.unknown.push(key, value);
        Ok(())
    });
    let visit_by_key = str_switch(quote!(key), keyed.clone(), keep_unknown.clone());
    let slot_arms = keyed.iter().enumerate().map(|(slot, (_, body))| {
        let slot = slot_number(slot);
        quote!(#slot => #body,)
    });
    let finish = rust.iter().map(|f| {
        let ident = field_ident(f);
        let name = &f.name;
        if f.nullable {
            quote!(#ident: self.#ident.flatten(),)
        } else {
            quote!(#ident: record::required(self.#ident, #name)?,)
        }
    });

    let missing = relaxed.iter().map(|f| {
        let ident = field_ident(f);
        let name = &f.name;
        quote!(if self.#ident.is_none() { f(#name); })
    });
    quote! {
        #doc
        #[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
        pub struct #name<'a> {
            #(#fields)*
            /// Fields present in the input that the glossary does not know.
            #[serde(flatten)]
            pub unknown: UnknownFields,
        }

        impl #name<'_> {
            /// The same event owning all of its text.
            pub fn into_owned(self) -> #name<'static> {
                #name {
                    #(#owned)*
                    unknown: self.unknown,
                }
            }
        }

        impl #name<'_> {
            /// Calls `f` with each field the writer schema requires that this
            /// event lacks (only fields the Braze profile does not use can be).
            pub fn for_each_missing_field(&self, f: &mut impl FnMut(&'static str)) {
                #(#missing)*
                let _ = f;
            }
        }

        impl EventRecord for #name<'_> {
            const INFO: &'static EventTypeInfo = &#info;
            fn unknown_fields(&self) -> &UnknownFields {
                &self.unknown
            }
        }

        #[doc = concat!(" Collects the fields of a [`", stringify!(#name), "`] from a [`FieldMap`](crate::FieldMap).")]
        #[derive(Default)]
        pub struct #builder<'de> {
            #(#slots)*
            unknown: UnknownFields,
        }

        impl<'de> RecordBuilder<'de> for #builder<'de> {
            type Record = #name<'de>;
            fn slot(key: &str) -> ::std::option::Option<u16> {
                #slot_of
            }
            fn visit_slot<A: FieldMap<'de>>(&mut self, slot: u16, key: &str, map: &mut A) -> ::std::result::Result<(), A::Error> {
                match slot {
                    #(#slot_arms)*
                    _ => #keep_unknown,
                }
            }
            fn visit_value<A: FieldMap<'de>>(&mut self, key: &str, map: &mut A) -> ::std::result::Result<(), A::Error> {
                // The fields' readers inline, not `visit_slot(slot(key))`:
                // the second jump costs the JSON path ~4% of its time.
                #visit_by_key
            }
            fn finish<E: serde::de::Error>(self) -> ::std::result::Result<#name<'de>, E> {
                Ok(#name {
                    #(#finish)*
                    unknown: self.unknown,
                })
            }
            #[inline]
            fn field_mut(&mut self, slot: u16) -> ::std::option::Option<record::FieldMut<'_, 'de>> {
                match slot {
                    #(#lent_arms)*
                    _ => None,
                }
            }
        }
    }
}

/// A field a builder lends to decoders (`field_mut`): borrowed text (read
/// by `set_str` or `set_nullable_str`), an integer or a boolean (read by
/// `set_field`).
enum LentField {
    Text,
    NullableText,
    Long,
    NullableLong,
    Bool,
    NullableBool,
}

/// Whether the builder lends `field`; the one rule for both the builder's
/// readers and the slots it lends.
fn lent_field(field: &Field) -> Option<LentField> {
    let kind = match (field.ty, field.nullable) {
        _ if field.json => return None,
        (FieldType::String, false) => LentField::Text,
        (FieldType::String, true) => LentField::NullableText,
        (FieldType::Long, false) => LentField::Long,
        (FieldType::Long, true) => LentField::NullableLong,
        (FieldType::Boolean, false) => LentField::Bool,
        (FieldType::Boolean, true) => LentField::NullableBool,
        _ => return None,
    };
    debug_assert_eq!(
        matches!(kind, LentField::Text | LentField::NullableText),
        is_borrowed(field)
    );
    Some(kind)
}

/// The keys one field is read under (its name, and its HTTP name), each
/// with the code reading it.
fn field_arms(event: &EventType, field: &Field) -> Vec<(String, TokenStream)> {
    let ident = field_ident(field);
    let name = &field.name;
    let reader = |key: &str| {
        let is_wrapper = key == "properties" || key == "user";
        if field.json && !field.nullable && is_wrapper {
            // Flat shape: JSON text. Custom HTTP shape: the wrapper object.
            quote!(record::visit_text_or_nested(self, #name, map, |b| &mut b.#ident))
        } else if field.json && field.nullable {
            quote!(record::set_nullable_json_text(&mut self.#ident, #name, map))
        } else if field.json {
            quote!(record::set_json_text(&mut self.#ident, #name, map))
        } else if field.ty == FieldType::Float && field.nullable {
            quote!(record::set_nullable_f32(&mut self.#ident, #name, map))
        } else if field.ty == FieldType::Float {
            quote!(record::set_f32(&mut self.#ident, #name, map))
        } else {
            match lent_field(field) {
                Some(LentField::NullableText) => {
                    quote!(record::set_nullable_str(&mut self.#ident, #name, map))
                }
                Some(LentField::Text) => quote!(record::set_str(&mut self.#ident, #name, map)),
                _ => quote!(record::set_field(&mut self.#ident, #name, map)),
            }
        }
    };
    let mut keys = vec![field.name.clone()];
    if let Some(http) = &field.http_name
        && event.fields.iter().all(|f| &f.name != http)
    {
        keys.push(http.clone());
    }
    keys.into_iter()
        .map(|key| {
            let body = reader(&key);
            (key, body)
        })
        .collect()
}

/// A `match` on the string `scrutinee` that switches on its length first:
/// rustc tests string patterns one after another, so a 40-key match costs
/// ~20 length checks before the one comparison that counts; a jump on the
/// length leaves the few keys of that length.
fn str_switch(
    scrutinee: TokenStream,
    arms: Vec<(String, TokenStream)>,
    default: TokenStream,
) -> TokenStream {
    let mut by_len: std::collections::BTreeMap<usize, Vec<(String, TokenStream)>> =
        std::collections::BTreeMap::new();
    for (key, body) in arms {
        by_len.entry(key.len()).or_default().push((key, body));
    }
    let buckets = by_len.into_iter().map(|(len, arms)| {
        let arms = arms.into_iter().map(|(key, body)| quote!(#key => #body,));
        quote!(#len => match #scrutinee { #(#arms)* _ => #default },)
    });
    quote! {
        match #scrutinee.len() {
            #(#buckets)*
            _ => #default,
        }
    }
}

fn event_enum(glossary: &Glossary) -> TokenStream {
    let variants = glossary.events.iter().map(|e| {
        let name = type_ident(e);
        let doc = format!(" `{}`", e.event_type);
        quote!(#[doc = #doc] #name(#name<'a>),)
    });
    let names: Vec<_> = glossary.events.iter().map(type_ident).collect();
    let builders: Vec<_> = glossary.events.iter().map(builder_ident).collect();
    let types: Vec<_> = glossary
        .events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    let indices: Vec<usize> = (0..glossary.events.len()).collect();
    let type_position = str_switch(
        quote!(event_type),
        types
            .iter()
            .zip(&indices)
            .map(|(ty, i)| ((*ty).to_owned(), quote!(Some(#i))))
            .collect(),
        quote!(None),
    );
    let times = glossary.events.iter().map(|e| {
        let name = type_ident(e);
        let time = rust_fields(e)
            .iter()
            .find(|f| f.name == "time")
            .map_or(FieldType::Long, |f| f.ty);
        let value = as_i64(time, quote!(e.time));
        quote!(Event::#name(e) => #value,)
    });
    quote! {
        /// A Currents event of any type. Its text is borrowed from the input
        /// it was decoded from where it can be (`Event<'static>`: owned).
        #[derive(Debug, Clone, PartialEq, serde::Serialize)]
        #[serde(untagged)]
        pub enum Event<'a> {
            #(#variants)*
            /// An event type this glossary does not know; every field kept.
            Unknown(crate::UnknownEvent),
        }

        impl Event<'_> {
            /// The same event owning all of its text.
            pub fn into_owned(self) -> Event<'static> {
                match self {
                    #(Event::#names(e) => Event::#names(e.into_owned()),)*
                    Event::Unknown(e) => Event::Unknown(e),
                }
            }

            /// The Currents event type, e.g. `users.messages.email.Open`.
            pub fn event_type(&self) -> &str {
                match self {
                    #(Event::#names(_) => #types,)*
                    Event::Unknown(e) => &e.event_type,
                }
            }

            /// The event's globally unique `id`.
            pub fn id(&self) -> &str {
                match self {
                    #(Event::#names(e) => &e.id,)*
                    Event::Unknown(e) => e.id(),
                }
            }

            /// The event's `time` (UNIX seconds).
            pub fn time(&self) -> i64 {
                match self {
                    #(#times)*
                    Event::Unknown(e) => e.time(),
                }
            }

            /// Calls `f` with each field the writer schema requires that the
            /// input left out (see [`EmailOpen::for_each_missing_field`]).
            pub fn for_each_missing_field(&self, mut f: impl FnMut(&'static str)) {
                match self {
                    #(Event::#names(e) => e.for_each_missing_field(&mut f),)*
                    Event::Unknown(_) => {}
                }
            }

            /// Fields the glossary does not know (all fields for unknown types).
            pub fn unknown_fields(&self) -> &UnknownFields {
                match self {
                    #(Event::#names(e) => &e.unknown,)*
                    Event::Unknown(e) => &e.fields,
                }
            }

            /// The position of the event's type in [`EVENT_TYPES`]; `None` for
            /// unknown types (a cheap key for counting by type).
            pub fn type_index(&self) -> ::std::option::Option<usize> {
                match self {
                    #(Event::#names(_) => Some(#indices),)*
                    Event::Unknown(_) => None,
                }
            }

            /// Glossary metadata of the event's type; `None` for unknown types.
            pub fn info(&self) -> ::std::option::Option<&'static EventTypeInfo> {
                match self {
                    #(Event::#names(_) => Some(#names::INFO),)*
                    Event::Unknown(_) => None,
                }
            }

            /// Builds the event of type `event_type` from the remaining entries of
            /// `map` (flat storage shape or Custom HTTP `user`/`properties` shape).
            pub fn from_map<'de, A: MapAccess<'de>>(event_type: &str, map: A) -> ::std::result::Result<Event<'de>, A::Error> {
                Event::from_fields(event_type, SerdeMap(map))
            }

            /// [`Event::from_map`] from a [`FieldMap`], which may read keys and
            /// text without serde's visitor calls.
            pub fn from_fields<'de, A: FieldMap<'de>>(event_type: &str, map: A) -> ::std::result::Result<Event<'de>, A::Error> {
                match Event::type_position(event_type) {
                    #(Some(#indices) => record::build_record::<#builders<'de>, A>(map).map(Event::#names),)*
                    _ => crate::UnknownEvent::from_map(event_type, map).map(Event::Unknown),
                }
            }

            /// The position of `event_type` in [`EVENT_TYPES`].
            #[inline]
            fn type_position(event_type: &str) -> ::std::option::Option<usize> {
                #type_position
            }

            /// The slots of a writer schema's fields, named in order by
            /// `keys`, for the builder of `event_type`; `None` for a type the
            /// glossary does not know.
            pub(crate) fn plan_fields<'k>(event_type: &str, keys: impl Iterator<Item = &'k str>) -> ::std::option::Option<record::FieldPlan> {
                let event = Event::type_position(event_type)?;
                let fields = match event {
                    #(#indices => record::plan_fields::<#builders>(keys),)*
                    _ => return None,
                };
                Some(record::FieldPlan { event, fields })
            }

            /// Builds the event of type `plan.event` from a record planned
            /// for it, boxed (as decoders hand events on) as it is made:
            /// an event moved into a box afterwards is one more copy of it,
            /// and so is `Box::new(event)`, which builds it on the stack first.
            pub(crate) fn from_planned<'de, P: record::PlannedRecord<'de>>(plan: &record::FieldPlan, record: P) -> ::std::result::Result<Box<Event<'de>>, P::Error> {
                match plan.event {
                    #(#indices => record.build::<#builders<'de>>().map(|e| Box::write(Box::new_uninit(), Event::#names(e))),)*
                    _ => Err(serde::de::Error::custom("field plan of no known event type")),
                }
            }
        }

        #(
            impl<'a> From<#names<'a>> for Event<'a> {
                fn from(event: #names<'a>) -> Event<'a> {
                    Event::#names(event)
                }
            }
        )*
    }
}

fn metadata(glossary: &Glossary) -> TokenStream {
    let field_tables = glossary.events.iter().map(|e| {
        let table = fields_ident(e);
        let fields = e.fields.iter().map(|f| {
            let name = &f.name;
            let ty = field_type_variant(f.ty);
            let nullable = f.nullable;
            let pii = f.pii;
            let json = f.json;
            let avro = f.avro;
            let http_key = f.http_key();
            let doc = f.doc.trim();
            quote!(FieldInfo { name: #name, ty: #ty, nullable: #nullable, pii: #pii, json: #json, avro: #avro, http_key: #http_key, doc: #doc },)
        });
        let info = info_ident(e);
        let event_type = &e.event_type;
        let rust_name = &e.rust_name;
        let category = e.category.as_str();
        let channel = match &e.channel {
            Some(c) => quote!(Some(#c)),
            None => quote!(None),
        };
        let avro = e.avro;
        let doc = e.doc.trim();
        quote! {
            const #table: &[FieldInfo] = &[#(#fields)*];
            const #info: EventTypeInfo = EventTypeInfo {
                event_type: #event_type,
                rust_name: #rust_name,
                category: #category,
                channel: #channel,
                avro: #avro,
                doc: #doc,
                fields: #table,
            };
        }
    });
    let infos = glossary.events.iter().map(info_ident);
    let user_fields = &glossary.http_user_fields;
    quote! {
        /// Every event type of the glossary, sorted by event type.
        pub static EVENT_TYPES: &[EventTypeInfo] = &[#(#infos,)*];

        /// Fields the Custom HTTP connector nests under `user`.
        pub const HTTP_USER_FIELDS: &[&str] = &[#(#user_fields,)*];

        #(#field_tables)*
    }
}
