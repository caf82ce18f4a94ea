//! `crates/mixpanel/src/generated/mappers.rs`: one `MapToMixpanel` impl per
//! event type, plus the field library and naming tables for unknown types.

use proc_macro2::TokenStream;
use quote::quote;

use currents_schema::{DISTINCT_ID, EventType, Field, FieldType, Glossary, Mapping, NamePart};

use crate::docs::mapper_doc;
use crate::naming::{as_i64, field_ident, ident, type_ident};

pub fn generate(glossary: &Glossary) -> TokenStream {
    let partner_id = &glossary.partner_id;
    let segments = glossary.segments.iter().map(|(s, d)| quote!((#s, #d),));
    let library = glossary.library.iter().map(|f| {
        let name = &f.name;
        let braze = option(f.braze_property());
        let full = option(f.full_property());
        let pii = f.pii;
        quote!(LibraryField { name: #name, braze: #braze, full: #full, pii: #pii },)
    });
    let mappings = glossary.events.iter().map(|e| {
        let event_type = &e.event_type;
        let mixpanel_name = &e.mixpanel_name;
        let by_convention = e.name_by_convention;
        let fields = e.fields.iter().map(|f| {
            let name = &f.name;
            let braze = option(f.braze_property());
            let full = option(f.full_property());
            let expand = option(match &f.mixpanel {
                Mapping::Expand(prefix) => Some(prefix.as_str()),
                _ => None,
            });
            let note = option(f.note.as_deref());
            quote!(FieldMapping { name: #name, braze: #braze, full: #full, expand: #expand, note: #note },)
        });
        quote!(EventMapping { event_type: #event_type, mixpanel_name: #mixpanel_name, name_by_convention: #by_convention, fields: &[#(#fields)*] },)
    });
    // Properties the mappers can write themselves: an unknown input field of
    // the same name must not produce a second key.
    let mut reserved: std::collections::BTreeSet<&str> = [
        "token",
        "$partner_id",
        "distinct_id",
        "$insert_id",
        "time",
        "braze_event_id",
        "$user_id",
        "$device_id",
        "ip",
    ]
    .into();
    for field in glossary
        .library
        .iter()
        .chain(glossary.events.iter().flat_map(|e| &e.fields))
    {
        if let Mapping::Rename(to) = &field.mixpanel {
            reserved.insert(to);
        }
        if let Some(full) = &field.full_name {
            reserved.insert(full);
        }
    }
    let reserved = reserved.into_iter();
    let names: Vec<_> = glossary.events.iter().map(type_ident).collect();
    let mappers = glossary.events.iter().map(mapper);
    quote! {
        use currents_events::*;
        use crate::map::{self, MapOptions, MapToMixpanel, Profile, SkipReason};
        use crate::sink::{PropertySink, key};
        use super::{EventMapping, FieldMapping, LibraryField};

        /// `$partner_id` of every mapped event.
        pub const PARTNER_ID: &str = #partner_id;

        /// Display names of event-type segments for the naming convention, sorted.
        pub static SEGMENTS: &[(&str, &str)] = &[#(#segments)*];

        /// The field library's mapping, sorted by field name: applied to fields of
        /// event types the glossary does not know.
        pub static LIBRARY: &[LibraryField] = &[#(#library)*];

        /// Property names the mappers write under names that are not the field's
        /// own (standard properties, renames, full-profile names), sorted.
        pub static RESERVED_PROPERTIES: &[&str] = &[#(#reserved,)*];

        /// The mapping of every event type, sorted by event type.
        pub static EVENT_MAPPINGS: &[EventMapping] = &[#(#mappings)*];

        /// Dispatches to the event type's mapper (the PII policy is applied
        /// once, by `map_into`).
        impl MapToMixpanel for Event<'_> {
            fn map_fields<S: PropertySink>(&self, options: &MapOptions, sink: &mut S) -> ::std::result::Result<(), SkipReason> {
                match self {
                    #(Event::#names(e) => e.map_fields(options, sink),)*
                    Event::Unknown(e) => e.map_fields(options, sink),
                }
            }
        }

        #(#mappers)*
    }
}

fn option(value: Option<&str>) -> TokenStream {
    match value {
        Some(v) => quote!(Some(#v)),
        None => quote!(None),
    }
}

fn mapper(event: &EventType) -> TokenStream {
    let name = type_ident(event);
    let doc = mapper_doc(event);
    let fields = crate::events::rust_fields(event);
    let Some(distinct) = fields
        .iter()
        .find(|f| f.braze_property() == Some(DISTINCT_ID))
    else {
        return quote! {
            #[doc = #doc]
            /// The type has no external user ID, so Braze's connector sends none of its events.
            impl MapToMixpanel for #name<'_> {
                fn map_fields<S: PropertySink>(&self, _: &MapOptions, _: &mut S) -> ::std::result::Result<(), SkipReason> {
                    Err(SkipReason::NoExternalUserId)
                }
            }
        };
    };
    let text_value = |field: &Field| {
        let ident = field_ident(field);
        if field.nullable {
            quote!(self.#ident.as_deref())
        } else {
            quote!(Some(&*self.#ident))
        }
    };
    let distinct_value = text_value(distinct);
    let distinct_pii = distinct.pii;
    let device_value = fields
        .iter()
        .find(|f| f.name == "device_id" && f.ty == FieldType::String)
        .map_or(quote!(None), text_value);
    let event_name = event_name(event);
    let id = quote!(&self.id);
    let time = as_i64(
        fields
            .iter()
            .find(|f| f.name == "time")
            .map_or(FieldType::Long, |f| f.ty),
        quote!(self.time),
    );
    let properties: Vec<TokenStream> = fields
        .iter()
        .filter(|f| f.name != "id" && f.name != "time" && f.name != distinct.name)
        .map(field_properties)
        .collect();
    let needs_profile = event.fields.iter().any(|f| {
        f.braze_property() != f.full_property() && !matches!(f.mixpanel, Mapping::Expand(_))
    });
    let full = needs_profile.then(|| quote!(let full = options.profile == Profile::Full;));
    quote! {
        #[doc = #doc]
        impl MapToMixpanel for #name<'_> {
            fn map_fields<S: PropertySink>(&self, options: &MapOptions, sink: &mut S) -> ::std::result::Result<(), SkipReason> {
                let identity = map::identity(options, #distinct_value, #distinct_pii, #device_value)?;
                #full
                #event_name
                map::standard_properties(sink, options, &identity, #id, #time);
                #(#properties)*
                map::unknown_fields(sink, options, &self.unknown);
                Ok(())
            }
        }
    }
}

fn event_name(event: &EventType) -> TokenStream {
    let parts = event.name_parts();
    if let [NamePart::Text(text)] = parts.as_slice() {
        return quote!(sink.event_name(#text););
    }
    let pushes = parts.iter().map(|part| match part {
        NamePart::Text(text) => quote!(name.push_str(#text);),
        NamePart::Field(field) => {
            let ident = ident(field);
            quote!(name.push_str(&self.#ident);)
        }
    });
    quote! {
        let mut name = ::std::string::String::new();
        #(#pushes)*
        sink.event_name(&name);
    }
}

/// The statements writing one field's property (or properties).
fn field_properties(field: &Field) -> TokenStream {
    let ident = field_ident(field);
    if let Mapping::Expand(prefix) = &field.mixpanel {
        let name = &field.name;
        let pii = field.pii;
        return if field.nullable {
            quote!(if let Some(v) = &self.#ident { map::expand_properties(sink, #prefix, #name, v, #pii); })
        } else {
            quote!(map::expand_properties(sink, #prefix, #name, &self.#ident, #pii);)
        };
    }
    let braze = field.braze_property();
    let full = field.full_property();
    if braze == full {
        return braze.map(|p| emit(field, p, None)).unwrap_or_default();
    }
    match (braze, full) {
        (Some(b), Some(f)) => {
            let in_full = emit(field, f, None);
            let in_braze = emit(field, b, None);
            quote!(if full { #in_full } else { #in_braze })
        }
        (None, Some(f)) => emit(field, f, Some(quote!(full))),
        (Some(b), None) => emit(field, b, Some(quote!(!full))),
        (None, None) => quote!(),
    }
}

/// Writes the field under `property`, only when `condition` holds if given.
fn emit(field: &Field, property: &str, condition: Option<TokenStream>) -> TokenStream {
    let ident = field_ident(field);
    let pii = field.pii;
    // Encoded at compile time, unless the name needs a JSON escape (the
    // macro refuses those).
    let property = if property.bytes().any(currents_core::json::is_escaped) {
        quote!(crate::sink::Key::new(#property))
    } else {
        quote!(key!(#property))
    };
    let call = match field.ty {
        FieldType::String => quote!(sink.str(#property, v, #pii)),
        FieldType::Int | FieldType::Long => {
            let value = as_i64(field.ty, quote!(*v));
            quote!(sink.i64(#property, #value, #pii))
        }
        FieldType::Float => quote!(sink.f32(#property, *v, #pii)),
        FieldType::Boolean => quote!(sink.bool(#property, *v, #pii)),
        FieldType::StringArray => quote!(sink.strs(#property, v, #pii)),
        FieldType::NullableStringArray => quote!(sink.opt_strs(#property, v, #pii)),
    };
    match (field.nullable, condition) {
        (true, None) => quote!(if let Some(v) = &self.#ident { #call; }),
        (true, Some(condition)) => quote!(if #condition && let Some(v) = &self.#ident { #call; }),
        (false, None) => quote!({ let v = &self.#ident; #call; }),
        (false, Some(condition)) => quote!(if #condition { let v = &self.#ident; #call; }),
    }
}
