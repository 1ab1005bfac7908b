//! consul-template's functions, rendered through Vault agent templates.

use std::collections::BTreeMap;

use serde_json::json;

use super::super::{TemplateError, render_template, render_vault_template};

const SECRET: &str = "s3cr3t-Value!";

fn secrets(data: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    BTreeMap::from([("secret/data/app".to_string(), json!({ "data": { "data": data } }))])
}

fn wrap(body: &str) -> String {
    format!("{{{{ with secret \"secret/data/app\" }}}}{body}{{{{ end }}}}")
}

/// Renders `body` inside `with secret "secret/data/app"`, so `.Data.data`
/// is `data`.
fn vault(body: &str, data: serde_json::Value) -> String {
    let out = render_vault_template("t", &wrap(body), &secrets(&data)).unwrap_or_else(|e| panic!("{body:?}: {e}"));
    String::from_utf8(out).expect("text")
}

fn vault_error(body: &str, data: serde_json::Value) -> TemplateError {
    match render_vault_template("t", &wrap(body), &secrets(&data)) {
        Ok(out) => panic!("{body:?} rendered {:?}", String::from_utf8_lossy(&out)),
        Err(e) => e,
    }
}

fn eso(template: &str) -> Result<String, TemplateError> {
    let data = BTreeMap::from([("s".to_string(), b"a,b".to_vec())]);
    render_template("k", template, &data).map(|out| String::from_utf8(out).expect("text"))
}

#[test]
fn to_json_is_go_json_marshal() {
    assert_eq!(vault("{{ .Data.data | toJSON }}", json!({"b": "<1>", "a": 2})), r#"{"a":2,"b":"\u003c1\u003e"}"#);
    let data = json!({"s": "a&b", "n": 2, "f": 2.5, "c": "\u{8}\u{c}\u{1}\n\u{2028}", "l": [true, null]});
    assert_eq!(vault("{{ toJSON .Data.data.s }}", data.clone()), r#""a\u0026b""#);
    assert_eq!(vault("{{ toJSON .Data.data.n }}", data.clone()), "2");
    assert_eq!(vault("{{ toJSON .Data.data.f }}", data.clone()), "2.5");
    assert_eq!(vault("{{ toJSON .Data.data.c }}", data.clone()), r#""\b\f\u0001\n\u2028""#);
    assert_eq!(vault("{{ toJSON .Data.data.l }}", data.clone()), "[true,null]");
    assert_eq!(vault("{{ toJSON .Data.data.missing }}", data), "null");
}

#[test]
fn to_json_pretty_indents_by_two_spaces() {
    let data = json!({"b": [1, "<x>"], "a": {}, "c": []});
    assert_eq!(
        vault("{{ .Data.data | toJSONPretty }}", data.clone()),
        "{\n  \"a\": {},\n  \"b\": [\n    1,\n    \"\\u003cx\\u003e\"\n  ],\n  \"c\": []\n}"
    );
    assert_eq!(vault("{{ toJSONPretty .Data.data.b }}", data), "[\n  1,\n  \"\\u003cx\\u003e\"\n]");
}

#[test]
fn unescaped_json_keeps_html_characters() {
    let data = json!({"a": "<&>", "b": [1]});
    assert_eq!(vault("{{ .Data.data | toUnescapedJSON }}", data.clone()), r#"{"a":"<&>","b":[1]}"#);
    assert_eq!(
        vault("{{ .Data.data | toUnescapedJSONPretty }}", data),
        "{\n  \"a\": \"<&>\",\n  \"b\": [\n    1\n  ]\n}"
    );
}

#[test]
fn case_mapping_is_one_character_each_as_in_go() {
    let data = json!({"s": "héllo straße", "t": "ÀB İ"});
    assert_eq!(vault("{{ .Data.data.s | toUpper }}", data.clone()), "HÉLLO STRAßE");
    assert_eq!(vault("{{ .Data.data.t | toLower }}", data), "àb i");
}

#[test]
fn trims() {
    let data = json!({"s": " \t x y \n", "p": "xxaxx"});
    assert_eq!(vault("[{{ .Data.data.s | trimSpace }}]", data.clone()), "[x y]");
    assert_eq!(vault("{{ .Data.data.p | trim \"x\" }}", data.clone()), "a");
    assert_eq!(vault("{{ .Data.data.p | trimPrefix \"x\" }}", data.clone()), "xaxx");
    assert_eq!(vault("{{ .Data.data.p | trimSuffix \"xx\" }}", data), "xxa");
}

#[test]
fn replace_all_is_strings_replace_all() {
    let data = json!({"s": "a-b-c"});
    assert_eq!(vault("{{ .Data.data.s | replaceAll \"-\" \"_\" }}", data.clone()), "a_b_c");
    assert_eq!(vault("{{ replaceAll \"\" \"-\" \"abc\" }}", data), "-a-b-c-");
}

#[test]
fn split_trims_and_returns_a_list() {
    let data = json!({"csv": "a,b,,c", "blank": "  ", "padded": " a,b \n"});
    assert_eq!(vault("{{ split \",\" .Data.data.csv }}", data.clone()), "[a b  c]");
    assert_eq!(vault("{{ index (split \",\" .Data.data.csv) 3 }}", data.clone()), "c");
    assert_eq!(vault("{{ split \",\" .Data.data.blank }} {{ len (split \",\" \"\") }}", data.clone()), "[] 0");
    assert_eq!(vault("{{ range split \",\" .Data.data.padded }}[{{ . }}]{{ end }}", data.clone()), "[a][b]");
    assert_eq!(vault("{{ split \"\" \"ab\" }}", data.clone()), "[a b]");
    assert_eq!(vault("{{ .Data.data.csv | split \",\" | join \";\" }}", data), "a;b;;c");
}

#[test]
fn split_to_map_keeps_pairs_with_the_separator() {
    assert_eq!(vault("{{ splitToMap \",\" \"=\" \"a=1,b=x=2,c\" }}", json!({})), "map[a:1 b:x=2]");
    assert_eq!(vault("{{ len (splitToMap \",\" \"=\" \" \") }}", json!({})), "0");
}

#[test]
fn join_takes_a_list_of_strings() {
    let data = json!({"l": ["x", "y"], "n": [1, 2], "s": SECRET});
    assert_eq!(vault("{{ .Data.data.l | join \", \" }}", data.clone()), "x, y");
    assert_eq!(vault("[{{ .Data.data.missing | join \",\" }}]", data.clone()), "[]");
    let e = vault_error("{{ .Data.data.n | join \",\" }}", data.clone()).to_string();
    assert!(e.contains("expected list of strings, got an element of type json.Number"), "{e}");
    let e = vault_error("{{ .Data.data.s | join \",\" }}", data).to_string();
    assert!(e.contains("expected list, got string") && !e.contains(SECRET), "{e}");
}

#[test]
fn contains_searches_lists_and_strings() {
    let data = json!({"roles": ["dev", "admin"], "s": "hello", "nums": [1, 2], "fl": [1.5]});
    assert_eq!(vault("{{ .Data.data.roles | contains \"admin\" }}", data.clone()), "true");
    assert_eq!(vault("{{ .Data.data.roles | contains \"adm\" }}", data.clone()), "false");
    assert_eq!(vault("{{ .Data.data.s | contains \"ell\" }}", data.clone()), "true");
    // Numbers in Vault's data are json.Numbers, of neither kind.
    assert_eq!(
        vault("{{ contains 2 .Data.data.nums }} {{ contains \"2\" .Data.data.nums }}", data.clone()),
        "false false"
    );
    assert_eq!(vault("{{ contains 1.5 .Data.data.fl }} {{ contains 1 .Data.data.fl }}", data.clone()), "false false");
    // Numbers a template makes itself are ints and floats.
    assert_eq!(vault("{{ contains 2 (\"[1,2]\" | parseJSON) }}", data.clone()), "false");
    assert_eq!(vault("{{ contains 2.0 (\"[1,2]\" | parseJSON) }}", data.clone()), "true");
    assert_eq!(vault("{{ contains \"x\" .Data.data.missing }}", data.clone()), "false");
    assert_eq!(vault("{{ in .Data.data.roles \"dev\" }}", data), "true");
}

#[test]
fn contains_some_of_a_list() {
    let data = json!({"roles": ["dev", "admin"], "some": ["admin", "ops"], "all": ["dev", "admin"]});
    let body = "{{ $r := .Data.data.roles }}{{ $s := .Data.data.some }}{{ $a := .Data.data.all }}\
        {{ $r | containsAll $s }} {{ $r | containsAll $a }} \
        {{ $r | containsAny $s }} {{ $r | containsAny (split \",\" \"x,y\") }} \
        {{ $r | containsNone $s }} {{ $r | containsNone (split \",\" \"x\") }} \
        {{ $r | containsNotAll $s }} {{ $r | containsNotAll $a }}";
    assert_eq!(vault(body, data.clone()), "false true true false false true true false");
    let e = vault_error("{{ containsAny \"a\" .Data.data.roles }}", data).to_string();
    assert!(e.contains("expected list, got string"), "{e}");
}

#[test]
fn base64_like_go_encoding() {
    let data = json!({"s": "hello?>", "std": "aGVsbG8/Pg==", "url": "aGVsbG8_Pg==", "wrapped": "aGVs\r\nbG8=", "secret": SECRET});
    assert_eq!(vault("{{ .Data.data.s | base64Encode }}", data.clone()), "aGVsbG8/Pg==");
    assert_eq!(vault("{{ .Data.data.s | base64URLEncode }}", data.clone()), "aGVsbG8_Pg==");
    assert_eq!(vault("{{ .Data.data.std | base64Decode }}", data.clone()), "hello?>");
    assert_eq!(vault("{{ .Data.data.url | base64URLDecode }}", data.clone()), "hello?>");
    // Go skips line breaks and, not being Strict, non-zero trailing bits.
    assert_eq!(vault("{{ .Data.data.wrapped | base64Decode }}", data.clone()), "hello");
    assert_eq!(vault("{{ base64Decode \"YR==\" }}", data.clone()), "a");
    for bad in
        ["{{ base64Decode \"YQ\" }}", "{{ base64URLDecode .Data.data.std }}", "{{ base64Decode .Data.data.secret }}"]
    {
        let e = vault_error(bad, data.clone()).to_string();
        assert!(e.contains("not valid base64") && !e.contains(SECRET), "{e}");
    }
    let e = vault_error("{{ base64Encode 3 }}", data).to_string();
    assert!(e.contains("expected string, got int"), "{e}");
}

#[test]
fn parse_json_and_scalars() {
    let data = json!({"j": "{\"k\":[1,2],\"s\":\"x\"}", "bad": SECRET});
    assert_eq!(vault("{{ (parseJSON .Data.data.j).k }} {{ (.Data.data.j | parseJSON).s }}", data.clone()), "[1 2] x");
    assert_eq!(vault("{{ parseJSON \"\" }}", data.clone()), "map[]");
    let e = vault_error("{{ parseJSON .Data.data.bad }}", data.clone()).to_string();
    assert!(e.contains("not valid JSON") && !e.contains(SECRET), "{e}");
    assert_eq!(
        vault(
            "{{ parseInt \"-42\" }} {{ parseInt \"+7\" }} {{ parseInt \"\" }} {{ parseBool \"T\" }} {{ parseBool \"\" }} {{ parseFloat \"2.5\" }}",
            data.clone()
        ),
        "-42 7 0 true false 2.5"
    );
    assert_eq!(vault("{{ if gt (parseInt \"10\") 9 }}big{{ end }}", data.clone()), "big");
    for bad in [
        "{{ parseInt .Data.data.bad }}",
        "{{ parseInt \"99999999999999999999\" }}",
        "{{ parseBool .Data.data.bad }}",
        "{{ parseFloat .Data.data.bad }}",
        "{{ parseFloat \"1e400\" }}",
    ] {
        let e = vault_error(bad, data.clone()).to_string();
        assert!(!e.contains(SECRET) && (e.contains("invalid syntax") || e.contains("out of range")), "{e}");
    }
}

#[test]
fn indent_skips_empty_lines() {
    let data = json!({"s": "a\n\nb\n", "secret": SECRET});
    assert_eq!(vault("{{ indent 2 .Data.data.s }}", data.clone()), "  a\n\n  b\n");
    assert_eq!(vault("{{ .Data.data.s | indent 0 }}", data.clone()), "a\n\nb\n");
    assert_eq!(vault("[{{ indent 4 \"\" }}]", data.clone()), "[]");
    let e = vault_error("{{ indent -1 .Data.data.secret }}", data.clone()).to_string();
    assert!(e.contains("indent value must be a positive integer") && !e.contains(SECRET), "{e}");
    let e = vault_error("{{ indent 2000000 .Data.data.s }}", data).to_string();
    assert!(e.contains("larger than 1 MiB"), "{e}");
}

#[test]
fn hashes() {
    let data = json!({"empty": "", "abc": "abc", "k": "k".repeat(100), "a1000": "a".repeat(1000), "x55": "x".repeat(55), "x56": "x".repeat(56), "x64": "x".repeat(64)});
    let cases = [
        ("empty", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("a1000", "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"),
        ("x55", "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"),
        ("x56", "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e"),
        ("x64", "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"),
    ];
    for (key, want) in cases {
        assert_eq!(vault(&format!("{{{{ .Data.data.{key} | sha256Hex }}}}"), data.clone()), want, "{key}");
    }
    assert_eq!(
        vault("{{ hmacSHA256Hex \"The quick brown fox jumps over the lazy dog\" \"key\" }}", data.clone()),
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    );
    assert_eq!(
        vault("{{ hmacSHA256Hex \"msg\" .Data.data.k }}", data),
        "bd56a1782c2830e8abc6ed866a57a1230661e650b84c62f7ee3accc5fa5af491"
    );
}

#[test]
fn go_builtins_stay() {
    let data = json!({"s": "x", "l": ["a", "b"]});
    let body = "{{ printf \"%s-%d\" .Data.data.s 3 }} {{ index .Data.data.l 1 }} {{ len .Data.data.l }} \
        {{ if and (eq .Data.data.s \"x\") (not false) (ne 1 2) }}ok{{ end }} {{ print 1 2 }} {{ or \"\" \"y\" }}";
    assert_eq!(vault(body, data), "x-3 b 2 ok 1 2 y");
}

#[test]
fn sprig_only_with_its_prefix() {
    let data = json!({"a": "<x>"});
    assert_eq!(vault("{{ \"hi\" | sprig_b64enc }} {{ sprig_upper \"a\" }}", data.clone()), "aGk= A");
    assert_eq!(vault("{{ sprig_split \",\" \"a,b\" }} {{ sprig_indent 2 \"\" }}|", data.clone()), "map[_0:a _1:b]   |");
    assert_eq!(vault("{{ .Data.data | sprig_toJson }}", data.clone()), r#"{"a":"\u003cx\u003e"}"#);
    assert_eq!(vault("{{ .Data.data | sprig_toRawJson }}", data.clone()), r#"{"a":"<x>"}"#);
    for name in ["b64enc", "upper", "toJson", "sprig_toYaml", "sprig_required", "sprig_env", "filterPEM", "sprig_"] {
        let e = vault_error(&format!("{{{{ {name} \"x\" }}}}"), data.clone());
        assert!(matches!(&e, TemplateError::Parse { reason, .. } if reason.contains("not defined")), "{name}: {e}");
    }
}

#[test]
fn reaching_outside_is_refused_at_parse() {
    for (body, why) in [
        ("{{ env \"HOME\" }}", "environment"),
        ("{{ if false }}{{ mustEnv \"HOME\" }}{{ end }}", "environment"),
        ("{{ plugin \"/bin/sh\" \"-c\" \"id\" }}", "run programs"),
        ("{{ writeToFile \"/tmp/x\" \"\" \"\" \"0644\" }}", "write files"),
        ("{{ file \"/etc/passwd\" }}", "read files"),
        ("{{ timestamp }}", "every render"),
        ("{{ toTitle \"a\" }}", "title casing"),
        ("{{ key \"a/b\" }}", "not Consul"),
        ("{{ $p := \"secret/data/app\" }}{{ secret $p }}", "literal string"),
    ] {
        let e = vault_error(body, json!({}));
        assert!(
            matches!(&e, TemplateError::Parse { reason, .. } if reason.contains("is not supported") && reason.contains(why)),
            "{body}: {e}"
        );
    }
}

#[test]
fn large_inputs_fail_without_panicking() {
    let big = "a,".repeat(600_000);
    let data = json!({"big": big, "mid": "abcdefg,".repeat(100_000), "mib": "é".repeat(400_000)});
    let e = vault_error("{{ .Data.data.big | base64Encode }}", data.clone()).to_string();
    assert!(e.contains("larger than 1 MiB"), "{e}");
    let e = vault_error("{{ .Data.data.big | split \"\" }}", data.clone()).to_string();
    assert!(e.contains("more than"), "{e}");
    assert_eq!(vault("{{ len (.Data.data.mid | split \",\") }}", data.clone()), "100001");
    assert_eq!(vault("{{ len (.Data.data.mib | toUpper) }}", data.clone()), "800000");
    let e = vault_error("{{ .Data.data.big | replaceAll \",\" \"-----\" }}", data.clone()).to_string();
    assert!(e.contains("larger than 1 MiB"), "{e}");
    let search = "{{ $n := .Data.data.mid | split \",\" }}{{ .Data.data.big | containsAny $n }}";
    let e = vault_error(search, data).to_string();
    assert!(e.contains("100001 needles in a haystack of size 1200000 is too much searching"), "{e}");
}

#[test]
fn eso_dialect_is_unchanged() {
    assert_eq!(eso("{{ .s | split \",\" }}").unwrap(), "map[_0:a _1:b]");
    assert_eq!(eso("{{ \"x\" | b64enc }} {{ indent 2 \"\" }}|").unwrap(), "eA==   |");
    assert_eq!(eso("{{ \"a\" | contains \"a\" }}").unwrap(), "true");
    assert_eq!(eso("{{ list \"a\" \"b\" | join \",\" }}").unwrap(), "a,b");
    for name in ["toJSON", "base64Encode", "trimSpace", "sprig_b64enc", "env", "plugin", "sha256Hex"] {
        let e = eso(&format!("{{{{ {name} \"x\" }}}}")).unwrap_err();
        assert!(matches!(&e, TemplateError::Parse { reason, .. } if reason.contains("not defined")), "{name}: {e}");
    }
    // toJson keeps Go's pre-1.22 escapes there, as before.
    assert_eq!(eso("{{ printf \"%c\" 8 | toJson }}").unwrap(), r#""\u0008""#);
}

#[test]
fn regexes_replace_and_match_as_go_does_within_the_budget() {
    let data = json!({"s": "a<b>c", "big": "ab".repeat(300_000)});
    assert_eq!(vault("{{ .Data.data.s | regexReplaceAll \"([<>])\" \"($1)\" }}", data.clone()), "a(<)b(>)c");
    assert_eq!(vault("{{ .Data.data.s | regexReplaceAll \"(?P<x>b)\" \"${x}${x}\" }}", data.clone()), "a<bb>c");
    assert_eq!(
        vault("{{ regexMatch \"^a<\" .Data.data.s }} {{ regexMatch \"^z\" .Data.data.s }}", data.clone()),
        "true false"
    );
    // Each match growing the text, or one `$0` per match of the whole.
    let e = vault_error("{{ .Data.data.big | regexReplaceAll \"a\" \"aaaa\" }}", data.clone()).to_string();
    assert!(e.contains("too long"), "{e}");
    let e = vault_error("{{ .Data.data.big | regexReplaceAll \"^\" \"$0$0$0$0$0\" }}", data.clone()).to_string();
    assert!(e.contains("too long") || e.contains("larger than"), "{e}");
    let e = vault_error("{{ .Data.data.s | regexReplaceAll \"(\" \"x\" }}", data).to_string();
    assert!(e.contains("error parsing regexp"), "{e}");
}

/// Data as a Vault KV answer holds it: strings that YAML would read as
/// something else, a PEM, numbers (json.Numbers), JSON in a string.
fn encoder_data() -> serde_json::Value {
    json!({
        "user": "app user", "dsn": "host: db:5432", "quote": "it's \"quoted\"",
        "pem": "-----BEGIN X-----\nAAAA\n-----END X-----\n", "port": 5432, "ratio": 1.5, "on": "yes",
        "empty": "", "nested": "{\"b\": [1, 2.5, \"x y\"], \"a\": {\"k\": null}}", "list": ["a", 1, true, null],
    })
}

// The expected outputs of the two tests below were produced by
// openbao-template v1.0.1's toYAML / toTOML (yaml.v2 v2.4.0 / BurntSushi
// toml v1.5.0) over the same data decoded with UseNumber.

#[test]
fn to_yaml_is_yaml_v2() {
    let data = encoder_data();
    assert_eq!(
        vault("{{ .Data.data | toYAML }}", data.clone()),
        "dsn: 'host: db:5432'\nempty: \"\"\nlist:\n- a\n- 1\n- true\n- null\n\
         nested: '{\"b\": [1, 2.5, \"x y\"], \"a\": {\"k\": null}}'\n\"on\": \"yes\"\n\
         pem: |\n  -----BEGIN X-----\n  AAAA\n  -----END X-----\nport: 5432\nquote: it's \"quoted\"\nratio: 1.5\n\
         user: app user"
    );
    assert_eq!(
        vault("{{ .Data.data.nested | parseJSON | toYAML }}", data.clone()),
        "a:\n  k: null\nb:\n- 1\n- 2.5\n- x y"
    );
    assert_eq!(
        vault("{{ .Data.data.port | toYAML }}|{{ .Data.data.pem | toYAML }}", data),
        "5432||\n  -----BEGIN X-----\n  AAAA\n  -----END X-----"
    );
}

#[test]
fn to_toml_is_burntsushi_toml() {
    let mut data = encoder_data();
    let list = data.as_object_mut().and_then(|m| m.remove("list"));
    assert_eq!(
        vault("{{ .Data.data | toTOML }}", data.clone()),
        "dsn = \"host: db:5432\"\nempty = \"\"\nnested = \"{\\\"b\\\": [1, 2.5, \\\"x y\\\"], \\\"a\\\": {\\\"k\\\": null}}\"\n\
         on = \"yes\"\npem = \"-----BEGIN X-----\\nAAAA\\n-----END X-----\\n\"\nport = 5432\n\
         quote = \"it's \\\"quoted\\\"\"\nratio = 1.5\nuser = \"app user\""
    );
    // parseJSON's numbers are float64s: `1.0`.
    assert_eq!(vault("{{ .Data.data.nested | parseJSON | toTOML }}", data.clone()), "b = [1.0, 2.5, \"x y\"]\n\n[a]");
    assert_eq!(
        vault("{{ .Data.data.port | toTOML }}|{{ .Data.data.user | toTOML }}", data.clone()),
        "5432|\"app user\""
    );
    // Go's encoder refuses a nil in a list, nil itself, and a list of
    // maps at the top; the reasons name no value.
    data["list"] = list.expect("list");
    for (body, reason) in [
        ("{{ .Data.data | toTOML }}", "nil element"),
        ("{{ .Data.data.missing | toTOML }}", "nil value"),
        ("{{ sprig_list (sprig_dict \"a\" .Data.data.user) | toTOML }}", "top-level values must be"),
    ] {
        let e = vault_error(body, data.clone()).to_string();
        assert!(e.contains(reason) && !e.contains("app user"), "{body}: {e}");
    }
}

#[test]
fn yaml_and_toml_stay_within_the_output_budget() {
    let data = json!({"big": "x".repeat(600_000), "n": 1});
    for f in ["toYAML", "toTOML"] {
        let body = format!("{{{{ sprig_list .Data.data.big .Data.data.big | {f} }}}}");
        let e = vault_error(&body, data.clone()).to_string();
        assert!(e.contains("larger than 1 MiB"), "{f}: {e}");
    }
    // toYAML is not the ESO dialect's helm-style toYaml, nor there.
    let e = eso("{{ toYAML .s }}").unwrap_err();
    assert!(matches!(&e, TemplateError::Parse { reason, .. } if reason.contains("not defined")), "{e}");
}
