//! Every naming rule on strings, in one place: the Mixpanel event names the
//! naming convention gives event types, the Rust names of the generated code
//! (type, builder and constant names), and what the schema validator accepts
//! as a type or field name. Codegen turns these strings into identifiers;
//! `schema sync` uses them to name new event types.

/// Words Rust reserves (strict, reserved and edition-2024 keywords): field and
/// type names are used as identifiers as they are, so these are rejected
/// rather than escaped, which keeps the generated API plain.
pub const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
];

/// Type names the generated code defines itself (the enum over all event
/// types and its variant for unknown ones), so no event type may take them.
pub const RESERVED_TYPE_NAMES: &[&str] = &["Event", "UnknownEvent"];

/// Field names the generated structs use themselves: `unknown` holds the
/// fields the glossary does not know.
pub const RESERVED_FIELD_NAMES: &[&str] = &["unknown"];

/// `users.messages.rcs.Click` -> "RCS Click": segment display names (unknown
/// segments title-cased, empty ones left out), then the record name split at
/// case changes.
pub fn convention_name<'a>(event_type: &str, display: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut segments = event_type.split('.').peekable();
    while let Some(segment) = segments.next() {
        if segments.peek().is_none() {
            parts.push(split_camel(segment));
        } else {
            match display(segment) {
                Some("") => {}
                Some(name) => parts.push(name.to_owned()),
                None => parts.push(title_case(segment)),
            }
        }
    }
    parts.join(" ")
}

/// `agentconsole` -> "Agentconsole": how the naming convention shows a
/// segment it has no display name for (and the display name `schema sync`
/// proposes for a new segment).
pub fn title_case(segment: &str) -> String {
    let mut chars = segment.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `InboundReceive` -> "Inbound Receive".
fn split_camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_uppercase() && prev_lower {
            out.push(' ');
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        out.push(c);
    }
    out
}

/// The Rust type name of an event type, as the existing names are formed: each
/// namespace segment's display name in UpperCamelCase ("Push Notification" ->
/// `PushNotification`, "SMS" -> `Sms`, "In-App Message" -> `InAppMessage`;
/// empty display names are left out, segments without one are title-cased),
/// then the record name.
pub fn rust_type_name<'a>(event_type: &str, display: impl Fn(&str) -> Option<&'a str>) -> String {
    let (namespace, record) = event_type.rsplit_once('.').unwrap_or(("", event_type));
    let mut out = String::new();
    for segment in namespace.split('.').filter(|s| !s.is_empty()) {
        let shown = match display(segment) {
            Some(name) => name.to_owned(),
            None => title_case(segment),
        };
        for word in shown.split(|c: char| !c.is_ascii_alphanumeric()) {
            let mut chars = word.chars();
            let Some(first) = chars.next() else { continue };
            out.extend(first.to_uppercase());
            let rest = chars.as_str();
            // Acronyms read as words in Rust names: "SMS" -> `Sms`.
            if word.chars().all(|c| !c.is_ascii_lowercase()) {
                out.push_str(&rest.to_ascii_lowercase());
            } else {
                out.push_str(rest);
            }
        }
    }
    out.push_str(record);
    out
}

/// `EmailOpen` -> `EmailOpenBuilder`: the generated builder of an event type.
pub fn builder_name(type_name: &str) -> String {
    format!("{type_name}Builder")
}

/// `EmailOpen` -> `EMAIL_OPEN_INFO`: the generated `EventTypeInfo` constant.
pub fn info_const_name(type_name: &str) -> String {
    format!("{}_INFO", heck::AsShoutySnakeCase(type_name))
}

/// `EmailOpen` -> `EMAIL_OPEN_FIELDS`: the generated `FieldInfo` table.
pub fn fields_const_name(type_name: &str) -> String {
    format!("{}_FIELDS", heck::AsShoutySnakeCase(type_name))
}

/// A snake_case Rust identifier that is not a keyword: `[a-z_][a-z0-9_]*`,
/// not `_` alone.
pub fn is_snake_case_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name != "_"
        && !RUST_KEYWORDS.contains(&name)
}

/// An UpperCamelCase Rust identifier that is not a keyword, spelled the way
/// heck would spell it (so `SMSSend` is rejected for `SmsSend`): the shape the
/// generated constant names can be derived from without collisions.
pub fn is_upper_camel_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('A'..='Z'))
        && chars.all(|c| c.is_ascii_alphanumeric())
        && heck::AsUpperCamelCase(name).to_string() == name
        && !RUST_KEYWORDS.contains(&name)
}

/// A field name the glossary accepts: it becomes a struct field as it is.
pub fn is_field_name(name: &str) -> bool {
    is_snake_case_identifier(name) && !RESERVED_FIELD_NAMES.contains(&name)
}

/// A `rust_name` the glossary accepts: UpperCamelCase and not taken by the
/// generated code.
pub fn is_type_name(name: &str) -> bool {
    is_upper_camel_identifier(name) && !RESERVED_TYPE_NAMES.contains(&name)
}

/// The shape of a Currents event type: dotted lowercase alphanumeric segments
/// (at least one), then an UpperCamel record name, e.g.
/// `users.messages.email.Open`.
pub fn is_event_type(name: &str) -> bool {
    let segments: Vec<&str> = name.split('.').collect();
    let Some((record, namespace)) = segments.split_last() else {
        return false;
    };
    !namespace.is_empty()
        && namespace.iter().all(|s| {
            s.starts_with(|c: char| c.is_ascii_lowercase())
                && s.chars().all(|c| c.is_ascii_alphanumeric())
        })
        && record.starts_with(|c: char| c.is_ascii_uppercase())
        && record.chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Display names as `schemas/currents.toml` has them (a subset).
    fn display(segment: &str) -> Option<&'static str> {
        match segment {
            "users" | "messages" => Some(""),
            "rcs" => Some("RCS"),
            "sms" => Some("SMS"),
            "pushnotification" => Some("Push Notification"),
            "inappmessage" => Some("In-App Message"),
            "behaviors" => Some(""),
            _ => None,
        }
    }

    #[test]
    fn convention_names() {
        assert_eq!(
            convention_name("users.messages.rcs.Click", display),
            "RCS Click"
        );
        assert_eq!(
            convention_name("users.messages.inappmessage.InboundReceive", display),
            "In-App Message Inbound Receive"
        );
        assert_eq!(
            convention_name("users.messages.fax.Send", display),
            "Fax Send"
        );
        assert_eq!(convention_name("users.UserOrphan", display), "User Orphan");
        assert_eq!(convention_name("Odd", display), "Odd");
    }

    #[test]
    fn title_cases() {
        assert_eq!(title_case("agentconsole"), "Agentconsole");
        assert_eq!(title_case("x"), "X");
        assert_eq!(title_case(""), "");
        assert_eq!(title_case("émail"), "Émail");
    }

    #[test]
    fn rust_type_names() {
        assert_eq!(
            rust_type_name("users.messages.sms.Delivery", display),
            "SmsDelivery"
        );
        assert_eq!(
            rust_type_name("users.messages.pushnotification.Open", display),
            "PushNotificationOpen"
        );
        assert_eq!(
            rust_type_name("users.messages.inappmessage.Click", display),
            "InAppMessageClick"
        );
        assert_eq!(
            rust_type_name("users.messages.fax.Send", display),
            "FaxSend"
        );
        assert_eq!(
            rust_type_name("users.behaviors.Location", display),
            "Location"
        );
        assert_eq!(
            rust_type_name("agentconsole.AgentExecuted", display),
            "AgentconsoleAgentExecuted"
        );
        assert_eq!(rust_type_name("Bare", display), "Bare");
    }

    #[test]
    fn generated_item_names() {
        assert_eq!(builder_name("EmailOpen"), "EmailOpenBuilder");
        assert_eq!(info_const_name("EmailOpen"), "EMAIL_OPEN_INFO");
        assert_eq!(fields_const_name("EmailOpen"), "EMAIL_OPEN_FIELDS");
        assert_eq!(info_const_name("Sms2Delivery"), "SMS2_DELIVERY_INFO");
        assert_eq!(fields_const_name("Location"), "LOCATION_FIELDS");
    }

    #[test]
    fn field_names() {
        for ok in ["id", "user_id", "_private", "a1", "abort_type"] {
            assert!(is_field_name(ok), "{ok}");
        }
        for bad in [
            "", "_", "Id", "user-id", "1a", "type", "self", "gen", "unknown", "ünï",
        ] {
            assert!(!is_field_name(bad), "{bad}");
        }
        // `unknown` is a fine identifier, only taken by the generated code.
        assert!(is_snake_case_identifier("unknown"));
        assert!(!is_snake_case_identifier("match"));
    }

    #[test]
    fn type_names() {
        for ok in ["EmailOpen", "Location", "SmsDelivery", "Sms2Delivery", "X"] {
            assert!(is_type_name(ok), "{ok}");
        }
        for bad in [
            "",
            "emailOpen",
            "SMSDelivery",
            "Email_Open",
            "Email Open",
            "Self",
            "Event",
            "UnknownEvent",
        ] {
            assert!(!is_type_name(bad), "{bad}");
        }
        // Reserved names are fine identifiers, only taken by the generated code.
        assert!(is_upper_camel_identifier("Event"));
    }

    #[test]
    fn event_types() {
        for ok in [
            "users.messages.email.Open",
            "users.UserOrphan",
            "agentconsole.AgentExecuted",
        ] {
            assert!(is_event_type(ok), "{ok}");
        }
        for bad in [
            "Open",
            "users.messages.email.open",
            "Users.Open",
            "users..Open",
            "users.messages-x.Open",
            "users.Open.",
            "",
        ] {
            assert!(!is_event_type(bad), "{bad}");
        }
    }
}
