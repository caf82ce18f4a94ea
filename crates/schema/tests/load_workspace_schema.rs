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
