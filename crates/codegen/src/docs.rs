//! Rustdoc of the generated code. Glossary text is prose, not Markdown for
//! rustdoc: brackets in it (`[PII]`, `[DEPRECATED]`, `['M', 'F']`) would be
//! read as intra-doc links, so they are escaped.

use proc_macro2::TokenStream;
use quote::quote;

use currents_schema::{EventType, Field};

/// `text` as rustdoc source that renders as written: `[` and `]` outside
/// code spans escaped (inside a code span a backslash would show).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        match c {
            '`' => in_code = !in_code,
            '[' | ']' if !in_code => out.push('\\'),
            _ => {}
        }
        out.push(c);
    }
    out
}

/// `#[doc = ...]` attributes, one per line.
pub fn doc_attrs(lines: &[String]) -> TokenStream {
    quote!(#(#[doc = #lines])*)
}

/// Rustdoc of an event struct: the glossary doc, then its names.
pub fn event_doc(event: &EventType) -> Vec<String> {
    vec![
        format!(" {}", escape(event.doc.trim())),
        String::new(),
        format!(
            " Currents event type `{}`; Mixpanel event \"{}\".",
            event.event_type,
            escape(&event.mixpanel_name)
        ),
    ]
}

/// Rustdoc of a field: the glossary doc, marked as personal data the way the
/// glossary marks it (`[PII]`), then the note.
pub fn field_doc(field: &Field) -> Vec<String> {
    let mut lines = Vec::new();
    let pii = if field.pii { "\\[PII\\] " } else { "" };
    lines.push(format!(" {pii}{}", escape(field.doc.trim())));
    if let Some(note) = &field.note {
        lines.push(String::new());
        lines.push(format!(" Note: {}", escape(note.trim())));
    }
    lines
}

/// Rustdoc of a mapper impl.
pub fn mapper_doc(event: &EventType) -> String {
    format!(
        " `{}` → Mixpanel \"{}\".",
        event.event_type,
        escape(&event.mixpanel_name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_are_escaped_outside_code() {
        assert_eq!(escape("[DEPRECATED]"), "\\[DEPRECATED\\]");
        assert_eq!(escape("One of ['M', 'F']"), "One of \\['M', 'F'\\]");
        assert_eq!(escape("see `a[0]` and [x]"), "see `a[0]` and \\[x\\]");
        assert_eq!(escape("plain"), "plain");
    }
}
