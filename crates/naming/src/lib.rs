//! The naming convention that gives Currents event types their Mixpanel
//! event names when the glossary documents none, shared by the schema
//! validator (names written in the schema must follow it) and the runtime
//! (event types Braze adds later are named by it).

/// `users.messages.rcs.Click` -> "RCS Click": segment display names (unknown
/// segments title-cased), then the record name split at case changes.
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

fn title_case(segment: &str) -> String {
    let mut chars = segment.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn convention_names() {
        let display = |s: &str| match s {
            "users" | "messages" => Some(""),
            "rcs" => Some("RCS"),
            "inappmessage" => Some("In-App Message"),
            _ => None,
        };
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
    }
}
