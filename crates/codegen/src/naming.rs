//! Identifiers and Rust types of the generated code. The naming rules
//! themselves (what a builder or constant is called) are in
//! `currents_core::naming`; this module only turns their strings into tokens.

use currents_core::naming;
use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

use currents_schema::{EventType, Field, FieldType};

pub fn ident(name: &str) -> Ident {
    Ident::new(name, Span::call_site())
}

/// Struct field identifier. Field names are validated snake_case identifiers
/// that are not keywords, so they are used as they are.
pub fn field_ident(field: &Field) -> Ident {
    ident(&field.name)
}

/// Type names are validated UpperCamelCase identifiers (`rust_name`).
pub fn type_ident(event: &EventType) -> Ident {
    ident(&event.rust_name)
}

pub fn builder_ident(event: &EventType) -> Ident {
    ident(&naming::builder_name(&event.rust_name))
}

pub fn info_ident(event: &EventType) -> Ident {
    ident(&naming::info_const_name(&event.rust_name))
}

pub fn fields_ident(event: &EventType) -> Ident {
    ident(&naming::fields_const_name(&event.rust_name))
}

/// The Rust type of a field's value, without `Option` for nullability.
/// Paths are spelled in full so no event or field name can shadow them.
pub fn value_type(ty: FieldType) -> TokenStream {
    match ty {
        FieldType::String => quote!(::std::string::String),
        FieldType::Int => quote!(i32),
        FieldType::Long => quote!(i64),
        FieldType::Float => quote!(f32),
        FieldType::Boolean => quote!(bool),
        FieldType::StringArray => quote!(::std::vec::Vec<::std::string::String>),
        FieldType::NullableStringArray => {
            quote!(::std::vec::Vec<::std::option::Option<::std::string::String>>)
        }
    }
}

/// Whether a field's value is text borrowed from the input when it can be
/// (`Cow<'a, str>`): plain strings. JSON-text fields and arrays are owned.
pub fn is_borrowed(field: &Field) -> bool {
    field.ty == FieldType::String && !field.json
}

/// The Rust type of a struct field; `lifetime` is what borrowed text lives for.
pub fn field_type(field: &Field, lifetime: &TokenStream) -> TokenStream {
    let value = if is_borrowed(field) {
        quote!(::std::borrow::Cow<#lifetime, str>)
    } else {
        value_type(field.ty)
    };
    if field.nullable {
        quote!(::std::option::Option<#value>)
    } else {
        value
    }
}

pub fn field_type_variant(ty: FieldType) -> TokenStream {
    match ty {
        FieldType::String => quote!(FieldType::String),
        FieldType::Int => quote!(FieldType::Int),
        FieldType::Long => quote!(FieldType::Long),
        FieldType::Float => quote!(FieldType::Float),
        FieldType::Boolean => quote!(FieldType::Boolean),
        FieldType::StringArray => quote!(FieldType::StringArray),
        FieldType::NullableStringArray => quote!(FieldType::NullableStringArray),
    }
}

/// `expr` (an integer field's value) as `i64`, without a no-op conversion.
pub fn as_i64(ty: FieldType, expr: TokenStream) -> TokenStream {
    match ty {
        FieldType::Long => expr,
        _ => quote!(i64::from(#expr)),
    }
}
