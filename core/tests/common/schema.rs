//! spec/envelope.schema.json (the strict, as-sent form), for checking envelopes the client publishes.

use std::sync::OnceLock;

pub fn assert_sent_envelope_valid(json: &[u8]) {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/envelope.schema.json");
        let schema: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        jsonschema::draft202012::new(&schema).expect("envelope.schema.json compiles")
    });
    let instance: serde_json::Value = serde_json::from_slice(json).unwrap();
    let errors: Vec<String> = validator.iter_errors(&instance).map(|e| format!("{e} at {}", e.instance_path)).collect();
    assert!(errors.is_empty(), "published envelope violates the schema: {errors:?}\n{instance}");
}
