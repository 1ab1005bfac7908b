//! Vault agent templates render byte for byte as OpenBao's agent rendered
//! them (testdata/vault-agent, recorded from `bao agent`; see its README).

use std::collections::BTreeMap;
use std::path::Path;

fn testdata(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/vault-agent").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn vault_agent_templates_render_as_bao_agent_renders_them() {
    let response: serde_json::Value = serde_json::from_str(&testdata("response.json")).unwrap();
    let secrets = BTreeMap::from([("secret/data/app".to_string(), response)]);
    let ours = vaultsync_template::render_vault_template("oracle", &testdata("template.tmpl"), &secrets).unwrap();
    let expected = testdata("bao-agent.out");
    let ours = String::from_utf8(ours).unwrap();
    for (n, (a, b)) in ours.lines().zip(expected.lines()).enumerate() {
        assert_eq!(a, b, "line {}", n + 1);
    }
    assert_eq!(ours, expected);
}

#[test]
fn a_field_of_nothing_fails_as_it_fails_in_the_vault_agent() {
    let secrets = BTreeMap::from([("secret/data/app".to_string(), serde_json::json!({"data": {}}))]);
    let template = r#"{{ with secret "secret/data/app" }}{{ .Data.nothing.deeper }}{{ end }}"#;
    let error = vaultsync_template::render_vault_template("t", template, &secrets).unwrap_err().to_string();
    assert!(error.contains("nil pointer evaluating interface {}.deeper"), "{error}");
}
