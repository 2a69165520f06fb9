//! The committed JSON Schema must match the types it is generated from.

#[test]
fn committed_schema_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/cobox.schema.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let generated = cobox_schema::json_schema::schema_text();
    assert!(
        committed == generated,
        "schema/cobox.schema.json is stale; regenerate it with\n\n    cargo run -p coboxctl -- schema > schema/cobox.schema.json\n"
    );
}

#[test]
fn schema_describes_every_section_and_rejects_unknown_keys() {
    let schema = cobox_schema::json_schema::schema();
    let props = schema["properties"].as_object().unwrap();
    let keys: Vec<&str> = props.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "admins", "api", "device", "network", "seed", "space", "storage", "version"
        ]
    );
    assert_eq!(schema["additionalProperties"], false);
    for (name, def) in schema["$defs"].as_object().unwrap() {
        if def["type"] == "object" {
            assert_eq!(
                def["additionalProperties"], false,
                "{name} accepts unknown keys"
            );
        }
    }
}
