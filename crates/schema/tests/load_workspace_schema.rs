use std::path::Path;

#[test]
fn the_workspace_schema_loads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let glossary = currents_schema::load(&root).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(glossary.events.len(), 97);
    let open = glossary
        .event("users.messages.email.Open")
        .expect("email open");
    assert_eq!(open.mixpanel_name, "Email Open");
    assert_eq!(open.rust_name, "EmailOpen");
}

/// The rust_name of every event type is what the naming rule derives, so
/// types `schema sync` adds are named like the existing ones.
#[test]
fn rust_names_follow_the_naming_rule() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let glossary = currents_schema::load(&root).unwrap_or_else(|e| panic!("{e}"));
    for ev in &glossary.events {
        assert_eq!(
            glossary.rust_type_name(&ev.event_type),
            ev.rust_name,
            "{}",
            ev.event_type
        );
    }
    assert_eq!(
        glossary.rust_type_name("users.messages.fax.Send"),
        "FaxSend"
    );
}
