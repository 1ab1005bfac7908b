//! End-to-end behaviour of `render_template`, one construct per test.

use std::collections::BTreeMap;

use std::time::Duration;

use super::{Limits, TemplateError, render_template, render_template_with_budget, render_template_with_limits};

const SECRET: &str = "s3cr3t-Value!";

fn data() -> BTreeMap<String, Vec<u8>> {
    [
        ("password", SECRET),
        ("user", "admin"),
        ("empty", ""),
        ("json", r#"{"db":{"host":"h","port":5432},"tags":["a","b"],"on":true}"#),
        ("b64", "aGVsbG8="),
        ("padded", "  x  "),
        ("multi", "l1\nl2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
    .collect()
}

fn render(template: &str) -> String {
    let out = render_template("key", template, &data()).unwrap_or_else(|e| panic!("{template:?}: {e}"));
    String::from_utf8(out).expect("test templates render text")
}

fn error(template: &str) -> TemplateError {
    match render_template("key", template, &data()) {
        Ok(out) => panic!("{template:?} rendered {out:?}"),
        Err(e) => e,
    }
}

fn parse_error(template: &str) -> (usize, usize, String) {
    match error(template) {
        TemplateError::Parse { name, line, column, reason } => {
            assert_eq!(name, "key");
            (line, column, reason)
        }
        other => panic!("{template:?}: expected a parse error, got {other:?}"),
    }
}

fn exec_error(template: &str) -> (usize, usize, String) {
    match error(template) {
        TemplateError::Exec { name, line, column, reason } => {
            assert_eq!(name, "key");
            (line, column, reason)
        }
        other => panic!("{template:?}: expected an exec error, got {other:?}"),
    }
}

#[test]
fn text_and_fields() {
    assert_eq!(render("plain text"), "plain text");
    assert_eq!(render(""), "");
    assert_eq!(render("u={{ .user }}, p={{.password}}"), format!("u=admin, p={SECRET}"));
    assert_eq!(render("{{ $.user }}"), "admin");
    assert_eq!(render("{{ (fromJson .json).db.host }}:{{ (fromJson .json).db.port }}"), "h:5432");
}

#[test]
fn missing_keys_render_empty() {
    assert_eq!(render("[{{ .nope }}]"), "[]");
    assert_eq!(render("[{{ .nope.deeper }}]"), "[]");
    assert_eq!(render("{{ if .nope }}y{{ else }}n{{ end }}"), "n");
    assert_eq!(render(r#"{{ eq .nope "" }}"#), "true");
}

#[test]
fn field_of_a_string_is_an_error() {
    let (line, column, reason) = exec_error("{{ .user.name }}");
    assert_eq!((line, column), (1, 4));
    assert_eq!(reason, "can't evaluate field name in type string");
}

#[test]
fn comments_and_trimming() {
    assert_eq!(render("a {{/* note */}} b"), "a  b");
    assert_eq!(render("a {{- /* note */ -}} b"), "ab");
    assert_eq!(render("a  \n {{- .user -}} \n\t b"), "aadminb");
    assert_eq!(render("a {{- .user }} b"), "aadmin b");
    assert_eq!(render("a {{ .user -}} b"), "a adminb");
    assert_eq!(render("{{ 3 }}-{{-4}}"), "3--4");
    assert_eq!(render("x\n{{- range list 1 2 }}\n  - {{ . }}\n{{- end }}\n"), "x\n  - 1\n  - 2\n");
}

#[test]
fn literals() {
    assert_eq!(render(r#"{{ "a\tb\"c\\" }}"#), "a\tb\"c\\");
    assert_eq!(render(r#"{{ "\u00e9\x41\101" }}"#), "éAA");
    assert_eq!(render("{{ `raw\\n{{` }}"), "raw\\n{{");
    assert_eq!(render("{{ 42 }} {{ -7 }} {{ 1.5 }} {{ 0x10 }} {{ 1e3 }} {{ 'a' }}"), "42 -7 1.5 16 1000 97");
    assert_eq!(render("{{ true }} {{ false }}"), "true false");
}

#[test]
fn variables() {
    assert_eq!(render("{{ $x := .user }}{{ $x }}"), "admin");
    assert_eq!(render("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}"), "2");
    assert_eq!(render("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}"), "2");
    assert_eq!(render("{{ $x := 1 }}{{ if true }}{{ $x := 2 }}{{ $x }}{{ end }}{{ $x }}"), "21");
    assert_eq!(render("{{ with $v := .user }}{{ $v }}{{ end }}"), "admin");
    assert_eq!(render("{{ range list 1 }}{{ $.user }}{{ end }}"), "admin");
}

#[test]
fn undefined_variables_fail_to_parse() {
    let (line, column, reason) = parse_error("ok\n  {{ $nope }}");
    assert_eq!((line, column), (2, 6));
    assert_eq!(reason, "undefined variable \"$nope\"");
    assert_eq!(parse_error("{{ $y = 1 }}").2, "undefined variable \"$y\"");
    assert_eq!(parse_error("{{ if true }}{{ $x := 1 }}{{ end }}{{ $x }}").2, "undefined variable \"$x\"");
}

#[test]
fn pipelines_and_parens() {
    assert_eq!(render("{{ .user | upper }}"), "ADMIN");
    assert_eq!(render("{{ .user | upper | lower | quote }}"), "\"admin\"");
    assert_eq!(render(r#"{{ .user | printf "%s-%s" "x" }}"#), "x-admin");
    assert_eq!(render(r#"{{ printf "%s:%s" (.user | upper) (lower "B") }}"#), "ADMIN:b");
    assert_eq!(render("{{ (list 1 2 3 | len) }}"), "3");
    assert_eq!(render(r#"{{ (dict "a" (dict "b" "c")).a.b }}"#), "c");
    assert_eq!(render(r#"{{ $d := dict "k" "v" }}{{ $d.k }}"#), "v");
}

#[test]
fn if_else_chains() {
    let t = r#"{{ if eq .user "root" }}r{{ else if eq .user "admin" }}a{{ else }}o{{ end }}"#;
    assert_eq!(render(t), "a");
    assert_eq!(render("{{ if .empty }}y{{ else }}n{{ end }}"), "n");
    assert_eq!(render("{{ if .user }}y{{ end }}"), "y");
    assert_eq!(render("{{ if 0 }}y{{ else if 0.0 }}z{{ else if list }}l{{ else if dict }}d{{ else }}n{{ end }}"), "n");
    assert_eq!(render("{{ if 1 }}{{ if false }}x{{ else }}nested{{ end }}{{ end }}"), "nested");
}

#[test]
fn with_blocks() {
    assert_eq!(render("{{ with .user }}<{{ . }}>{{ end }}"), "<admin>");
    assert_eq!(render("{{ with .empty }}x{{ else }}none{{ end }}"), "none");
    assert_eq!(render(r#"{{ with .empty }}x{{ else with .user }}{{ . }}{{ end }}"#), "admin");
    assert_eq!(render("{{ with fromJson .json }}{{ .db.host }}{{ end }}"), "h");
}

#[test]
fn range_forms() {
    assert_eq!(render("{{ range list 1 2 3 }}{{ . }},{{ end }}"), "1,2,3,");
    assert_eq!(render("{{ range $i, $v := list \"a\" \"b\" }}{{ $i }}={{ $v }};{{ end }}"), "0=a;1=b;");
    assert_eq!(render("{{ range $v := list \"a\" \"b\" }}{{ $v }}{{ end }}"), "ab");
    let map = r#"{{ range $k, $v := dict "z" 1 "a" 2 "m" 3 }}{{ $k }}{{ $v }} {{ end }}"#;
    assert_eq!(render(map), "a2 m3 z1 ");
    assert_eq!(render("{{ range list }}x{{ else }}empty{{ end }}"), "empty");
    assert_eq!(render("{{ range .nope }}x{{ else }}empty{{ end }}"), "empty");
    assert_eq!(render("{{ range (fromJson .json).tags }}{{ . }}{{ end }}"), "ab");
    assert_eq!(render("{{ range 3 }}{{ . }}{{ end }}"), "012");
    assert_eq!(
        render(
            "{{ range list 1 2 3 4 }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ if eq . 4 }}{{ break }}{{ end }}{{ . }}{{ end }}"
        ),
        "13"
    );
    assert_eq!(exec_error("{{ range .user }}{{ end }}").2, "range can't iterate over string");
    assert_eq!(parse_error("{{ break }}").2, "{{break}} outside {{range}}");
}

#[test]
fn logic() {
    assert_eq!(render("{{ and 1 0 2 }} {{ and 1 2 }} {{ or 0 \"\" }} {{ or 0 \"x\" }}"), "0 2  x");
    assert_eq!(render("{{ not .empty }} {{ not .user }}"), "true false");
    // `and` stops at the first false argument, so the failing call never runs.
    assert_eq!(render("{{ and false (fail \"boom\") }}"), "false");
    assert_eq!(render("{{ or .user (fail \"boom\") }}"), "admin");
    assert_eq!(render("{{ .user | and true }}"), "admin");
}

#[test]
fn comparisons() {
    assert_eq!(render(r#"{{ eq .user "admin" }} {{ eq .user "x" "admin" }} {{ ne 1 2 }}"#), "true true true");
    assert_eq!(render("{{ lt 1 2 }} {{ le 2 2 }} {{ gt 1.5 1 }} {{ ge \"b\" \"a\" }}"), "true true true true");
    assert_eq!(render("{{ eq 1 1.0 }} {{ eq true true }}"), "true true");
    assert_eq!(exec_error(r#"{{ eq 1 "1" }}"#).2, "eq: incompatible types for comparison");
    assert_eq!(exec_error("{{ lt true false }}").2, "lt: invalid type for comparison");
}

#[test]
fn len_index_print() {
    assert_eq!(render("{{ len .user }} {{ len (list 1 2) }} {{ len (dict) }}"), "5 2 0");
    assert_eq!(
        render(r#"{{ index (list "a" "b") 1 }} {{ index . "user" }} {{ index (dict "a" (list 7)) "a" 0 }}"#),
        "b admin 7"
    );
    assert_eq!(exec_error("{{ index (list 1) 5 }}").2, "index: index out of range");
    assert_eq!(render(r#"{{ print "a" "b" 1 2 true }}"#), "ab1 2 true");
    assert_eq!(render(r#"{{ println "a" 1 }}"#), "a 1\n");
    assert_eq!(render(r#"{{ printf "%s=%d %v %q" "n" 5 (list 1 "x") .user }}"#), "n=5 [1 x] \"admin\"");
    assert_eq!(render(r#"{{ printf "%05.1f|%-4s|" 2.25 "ab" }}"#), "002.2|ab  |");
}

#[test]
fn encoding_functions() {
    assert_eq!(render("{{ .user | b64enc }}"), "YWRtaW4=");
    assert_eq!(render("{{ .b64 | b64dec }}"), "hello");
    assert_eq!(exec_error("{{ .user | b64dec }}").2, "b64dec: input is not valid base64");
    let mut binary = data();
    binary.insert("bin".into(), vec![0xff, 0x00, 0xfe]);
    assert_eq!(render_template("k", "{{ .bin | b64enc }}", &binary).unwrap(), b"/wD+");
}

#[test]
fn json_functions() {
    assert_eq!(render(r#"{{ dict "u" .user "n" 1 "l" (list true) | toJson }}"#), r#"{"l":[true],"n":1,"u":"admin"}"#);
    assert_eq!(render(r#"{{ "<a&b>" | toJson }}"#), r#""\u003ca\u0026b\u003e""#);
    assert_eq!(render(r#"{{ "<a>" | toRawJson }}"#), r#""<a>""#);
    assert_eq!(render(r#"{{ dict "a" 1 | toPrettyJson }}"#), "{\n  \"a\": 1\n}");
    assert_eq!(render("{{ (fromJson .json).on }} {{ (fromJson .json).tags }}"), "true [a b]");
    assert_eq!(
        render("{{ .json | fromJson | toJson }}"),
        r#"{"db":{"host":"h","port":5432},"on":true,"tags":["a","b"]}"#
    );
    assert_eq!(exec_error("{{ .user | fromJson }}").2, "fromJson: input is not valid JSON");
}

#[test]
fn string_functions() {
    assert_eq!(render("{{ upper .user }} {{ lower \"AbC\" }} [{{ trim .padded }}]"), "ADMIN abc [x]");
    assert_eq!(
        render(r#"{{ .user | trimPrefix "ad" }} {{ .user | trimSuffix "in" }} {{ trimAll "-" "--x--" }}"#),
        "min adm x"
    );
    assert_eq!(render(r#"{{ .user | replace "a" "A" }} {{ replace "." "_" "a.b.c" }}"#), "Admin a_b_c");
    assert_eq!(render(r#"{{ quote .user 1 }} {{ squote .user }} {{ quote .nope }}"#), "\"admin\" \"1\" 'admin' ");
    assert_eq!(
        render(r#"{{ .user | contains "dm" }} {{ .user | hasPrefix "ad" }} {{ .user | hasSuffix "x" }}"#),
        "true true false"
    );
    assert_eq!(render(r#"{{ (split "," "a,b")._1 }} {{ splitList "," "a,b" | join "+" }}"#), "b a+b");
    assert_eq!(render(r#"{{ splitList "" "ab" }} {{ contains "" "x" }}"#), "[a b] true");
    assert_eq!(render(r#"{{ repeat 3 "ab" }} {{ nospace " a b " }} {{ toString 12 }}"#), "ababab ab 12");
}

#[test]
fn indentation() {
    assert_eq!(render("{{ .multi | indent 2 }}"), "  l1\n  l2");
    assert_eq!(render("key:{{ .multi | nindent 4 }}"), "key:\n    l1\n    l2");
}

#[test]
fn defaults_and_collections() {
    assert_eq!(
        render(r#"{{ .nope | default "d" }} {{ .empty | default "e" }} {{ .user | default "x" }}"#),
        "d e admin"
    );
    assert_eq!(render(r#"{{ default "d" 0 }} {{ coalesce .nope .empty .user }} {{ empty .empty }}"#), "d admin true");
    assert_eq!(render(r#"{{ ternary "y" "n" true }}{{ ternary "y" "n" false }}"#), "yn");
    assert_eq!(render(r#"{{ list 1 "a" }} {{ dict "b" 2 "a" }}"#), "[1 a] map[a: b:2]");
    assert_eq!(
        render(r#"{{ get (dict "a" 1) "a" }}[{{ get (dict) "a" }}] {{ hasKey . "user" }} {{ hasKey . "x" }}"#),
        "1[] true false"
    );
    assert_eq!(render(r#"{{ keys (dict "b" 1 "a" 2) }} {{ list "b" "a" | sortAlpha }}"#), "[a b] [a b]");
    assert_eq!(render(r#"{{ required "need user" .user }}"#), "admin");
}

#[test]
fn required_and_fail_report_literal_messages() {
    let (line, column, reason) = exec_error("\n\n  {{ required \"host is required\" .host }}");
    assert_eq!((line, column), (3, 6));
    assert_eq!(reason, "required: host is required");
    assert_eq!(exec_error(r#"{{ fail "stop here" }}"#).2, "fail: stop here");
    assert_eq!(exec_error(r#"{{ .empty | required "empty!" }}"#).2, "required: empty!");
}

#[test]
fn errors_never_contain_data_values() {
    let leaks = [
        "{{ .password | fail }}",
        "{{ fail .password }}",
        "{{ required .password .missing }}",
        r#"{{ printf "%s" .password | fail }}"#,
        r#"{{ $p := .password }}{{ required "x" .missing }}"#,
        "{{ .password | b64dec }}",
        "{{ .password | fromJson }}",
        r#"{{ eq .password 1 }}"#,
        "{{ .password.field }}",
        "{{ range .password }}{{ end }}",
        "{{ index (list 1) .password }}",
        r#"{{ .password | indent .password }}"#,
    ];
    for template in leaks {
        let err = error(template);
        let text = err.to_string();
        assert!(!text.contains(SECRET), "{template:?} leaked: {text}");
        assert!(!format!("{err:?}").contains(SECRET), "{template:?} leaked in Debug");
        assert!(text.contains("\"key\""), "{template:?}: {text} does not name the key");
    }
    assert_eq!(
        error("{{ .password | fail }}").to_string(),
        "template \"key\": execution error at 1:16: fail: message withheld because it is not a string literal in the template"
    );
}

#[test]
fn unknown_functions_fail_to_parse() {
    let (line, column, reason) = parse_error("a\nb {{ .user | frobnicate }}");
    assert_eq!((line, column), (2, 14));
    assert_eq!(reason, "function \"frobnicate\" not defined");
    assert_eq!(error("{{ nope }}").to_string(), "template \"key\": parse error at 1:4: function \"nope\" not defined");
}

#[test]
fn parse_error_positions() {
    assert_eq!(parse_error("ab {{ .user"), (1, 4, "unclosed action".to_string()));
    assert_eq!(parse_error("{{ if .user }}x"), (1, 4, "unexpected end of template: {{if}} has no {{end}}".to_string()));
    assert_eq!(parse_error("x{{ end }}"), (1, 5, "unexpected {{end}}".to_string()));
    assert_eq!(parse_error("{{ else }}").2, "unexpected {{else}}");
    assert_eq!(parse_error("{{ }}").2, "missing value for command");
    assert_eq!(parse_error("{{ if }}{{ end }}").2, "missing value for if");
    assert_eq!(parse_error("{{ (upper .user }}").2, "unclosed left paren");
    assert_eq!(parse_error("{{ .user 1 }}").2, "only a function can take arguments");
    assert_eq!(parse_error("{{ .user | .user }}").2, "non-function in pipeline stage 2");
    assert_eq!(parse_error("{{ nil }}").2, "nil is not a command");
    assert_eq!(parse_error("{{ template \"x\" }}").2, "{{template}} is not supported");
    assert_eq!(parse_error("{{ \"abc }}").2, "unterminated quoted string");
    assert_eq!(parse_error("{{/* open").2, "unclosed comment");
    assert_eq!(
        parse_error("{{ range list }}{{ else }}{{ else }}{{ end }}").2,
        "expected {{end}} after {{else}} of {{range}}"
    );
}

#[test]
fn exec_error_positions_point_at_the_call() {
    let (line, column, reason) = exec_error("line one\n  x {{ upper (list 1) }}");
    assert_eq!((line, column), (2, 8));
    assert_eq!(reason, "upper: expected string, got []interface {}");
    assert_eq!(exec_error("{{ upper 1 2 }}").2, "upper: wrong number of args: want 1 got 2");
    assert_eq!(exec_error(r#"{{ "a" | indent "2" }}"#).2, "indent: expected int, got string");
}

#[test]
fn output_is_bounded() {
    assert_eq!(exec_error(r#"{{ repeat 2000000 "x" }}"#).2, "repeat: result too large");
    assert!(exec_error(r#"{{ range 1000 }}{{ repeat 2000 "x" }}{{ end }}"#).2.contains("1 MiB"));
    let busy = "{{ range 1000000 }}{{ range 1000000 }}{{ end }}{{ end }}";
    let err = render_template_with_budget("key", busy, &data(), Duration::from_secs(600)).unwrap_err();
    assert!(err.to_string().ends_with("template ran more than 10000000 steps"), "{err}");
}

#[test]
fn a_render_has_a_wall_clock_budget() {
    let busy = "{{ range 1000000 }}{{ range 1000000 }}{{ end }}{{ end }}";
    // The default budgets stop it: the second, or on an idle machine that
    // runs an empty loop fast, the step limit first. Which one comes first
    // depends on the machine's speed, so both are accepted here; the
    // wording of the time budget is checked below with budgets a machine
    // cannot outrun.
    assert_eq!(Limits::default().time, Duration::from_secs(1));
    let stopped = exec_error(busy).2;
    assert!(
        stopped == "template ran longer than 1s" || stopped == "template ran more than 10000000 steps",
        "{stopped}"
    );
    let short = render_template_with_budget("key", busy, &data(), Duration::from_millis(50)).unwrap_err();
    assert!(short.to_string().ends_with("template ran longer than 50ms"), "{short}");
    // Each call reads the clock, so slow calls stop the render too.
    let slow = r#"{{ $j := repeat 100000 "[1]," | printf "[%s0]" }}{{ range 1000 }}{{ $x := fromJson $j }}{{ end }}"#;
    // (No memory bound here: a fast machine could reach 64 MiB first.)
    let limits = Limits { time: Duration::from_millis(100), memory: usize::MAX };
    let err = render_template_with_limits("key", slow, &data(), limits).unwrap_err();
    assert!(err.to_string().contains("template ran longer than 100ms"), "{err}");
}

#[test]
fn a_render_has_a_memory_budget() {
    let limits = Limits { memory: 4 << 20, ..Limits::default() };
    let copies = r#"{{ $s := repeat 500000 "x" }}{{ range 100 }}{{ $t := $s }}{{ end }}"#;
    let err = render_template_with_limits("key", copies, &data(), limits).unwrap_err();
    assert!(err.to_string().ends_with("template used more than 4 MiB of memory"), "{err}");
    // A doubling list hits the budget long before it is large.
    let doubling = "{{ $l := list 1 }}{{ range 100 }}{{ $l = list $l $l }}{{ end }}";
    assert!(exec_error(doubling).2.contains("template used more than 64 MiB of memory"));
}

#[test]
fn sizes_from_the_template_are_bounded_before_allocating() {
    // Once a panic ("capacity overflow") that took the operator down.
    assert_eq!(
        exec_error(r#"{{ printf "%99999999999999999999d" 1 | len }}"#).2,
        "printf: width or precision larger than 1 MiB"
    );
    assert_eq!(
        exec_error(r#"{{ printf "%.99999999999999999999f" 1.5 }}"#).2,
        "printf: width or precision larger than 1 MiB"
    );
    assert_eq!(exec_error(r#"{{ printf "%1048576d%1048576d" 1 2 }}"#).2, "printf: result would be larger than 1 MiB");
    assert_eq!(exec_error(r#"{{ indent 9223372036854775807 "a" }}"#).2, "indent: result would be larger than 1 MiB");
    assert_eq!(exec_error(r#"{{ nindent 2000 (repeat 1000 "\n") }}"#).2, "nindent: result would be larger than 1 MiB");
    assert_eq!(exec_error(r#"{{ repeat 9223372036854775807 "ab" }}"#).2, "repeat: result too large");
    let big = r#"{{ $s := repeat 1000000 "a" }}"#;
    for (call, name) in [
        ("replace \"\" \"xx\" $s", "replace"),
        ("replace \"a\" \"aa\" $s", "replace"),
        ("b64enc $s", "b64enc"),
        ("quote (repeat 300000 \"\\x01\")", "quote"),
        ("toJson (list $s $s)", "toJson"),
        ("toPrettyJson (splitList \",\" (repeat 150000 \"xxxxx,\"))", "toPrettyJson"),
        ("toYaml (list $s $s)", "toYaml"),
        ("join \",\" (list $s $s)", "join"),
        ("print $s $s", "print"),
        ("println $s $s", "println"),
        ("printf \"%x\" $s", "printf"),
        ("toString (list $s $s)", "toString"),
        // ɐ (two bytes) upper-cases to Ɐ (three), as Go's simple mapping does.
        ("upper (repeat 400000 \"ɐ\")", "upper"),
    ] {
        let template = format!("{big}{{{{ {call} }}}}");
        let reason = exec_error(&template).2;
        assert_eq!(reason, format!("{name}: result would be larger than 1 MiB"), "{call}");
    }
    assert!(
        exec_error(r#"{{ splitList "" (repeat 1000000 "a") }}"#)
            .2
            .starts_with("splitList: result would have more than")
    );
    let output = r#"{{ $s := repeat 1000000 "a" }}{{ list $s $s }}"#;
    assert_eq!(exec_error(output).2, "result would be larger than 1 MiB");
}

#[test]
fn values_nest_only_so_deep() {
    let deep = "{{ $l := list }}{{ range 200 }}{{ $l = list $l }}{{ end }}{{ $l | toJson }}";
    assert_eq!(exec_error(deep).2, "list: lists and maps nest more than 128 levels deep");
    let json = format!("{{{{ fromJson `{}{}` }}}}", "[".repeat(100), "]".repeat(100));
    assert!(render_template("key", &json, &data()).is_ok());
    let dicts = "{{ $d := dict }}{{ range 200 }}{{ $d = dict \"a\" $d }}{{ end }}";
    assert!(exec_error(dicts).2.contains("nest more than 128 levels deep"));
}

#[test]
fn malformed_pipelines_are_parse_errors_not_panics() {
    assert_eq!(parse_error("{{ | }}").2, "missing command in command");
    assert_eq!(parse_error("{{ 1 | | len }}").2, "missing command in command");
    assert_eq!(parse_error("{{ if | }}{{ end }}").2, "missing command in if");
    assert_eq!(parse_error("{{ (|) }}").2, "missing command in parenthesized pipeline");
    // What the fuzzer made of the seeds on main's engine, where both panicked.
    assert_eq!(parse_error("*A0{{000 (00|0((01|0 (00|0(printf(|000}}").2, "missing command in parenthesized pipeline");
    assert_eq!(parse_error(r#"{{ toRawJson|||l|e|qse .user "root" }}"#).2, "missing command in command");
}

#[test]
fn errors_about_limits_hold_no_data() {
    for template in [
        "{{ printf \"%99999999999d\" .password }}",
        "{{ .password | repeat 999999999 }}",
        "{{ .password | indent 99999999 }}",
        "{{ $p := .password }}{{ range 100 }}{{ $p = list $p $p }}{{ end }}",
    ] {
        let err = error(template).to_string();
        assert!(!err.contains(SECRET), "{err}");
    }
}

#[test]
fn eso_style_templates() {
    let t = "{\n  \"auths\": {\n    \"registry\": {\n      \"auth\": \"{{ printf \"%s:%s\" .user .password | b64enc }}\"\n    }\n  }\n}";
    let want = format!("{{\n  \"auths\": {{\n    \"registry\": {{\n      \"auth\": \"{}\"\n    }}\n  }}\n}}", {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{SECRET}"))
    });
    assert_eq!(render(t), want);
    let conn = "postgres://{{ .user }}:{{ .password | urlSafe }}";
    assert_eq!(parse_error(conn).2, "function \"urlSafe\" not defined");
    let yaml = "config:\n{{- range $k, $v := (fromJson .json).db }}\n  {{ $k }}: {{ $v }}\n{{- end }}";
    assert_eq!(render(yaml), "config:\n  host: h\n  port: 5432");
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let parens = format!("{{{{ {}1{} }}}}", "(".repeat(5000), ")".repeat(5000));
    assert_eq!(parse_error(&parens).2, "nested more than 100 levels deep");
    let ifs = format!("{}x{}", "{{ if 1 }}".repeat(5000), "{{ end }}".repeat(5000));
    assert_eq!(parse_error(&ifs).2, "nested more than 100 levels deep");
    let ok = format!("{}x{}", "{{ if 1 }}".repeat(50), "{{ end }}".repeat(50));
    assert_eq!(render(&ok), "x");
}

#[test]
fn keys_that_are_not_identifiers() {
    let mut data = data();
    data.insert("tls.crt".into(), b"CERT".to_vec());
    data.insert("my-key".into(), b"v".to_vec());
    let out = render_template("k", r#"{{ index . "tls.crt" }}/{{ index $ "my-key" | upper }}"#, &data).unwrap();
    assert_eq!(out, b"CERT/V");
    assert!(matches!(render_template("k", "{{ .my-key }}", &data), Err(TemplateError::Parse { .. })));
}

#[test]
fn dot_and_root_inside_blocks() {
    let t = r#"{{ with dict "a" (list "x" "y") }}{{ range .a }}{{ . }}{{ $.user }}{{ end }}{{ end }}"#;
    assert_eq!(render(t), "xadminyadmin");
    assert_eq!(render("{{ range $i, $c := list \"a\" }}{{ $i }}{{ $c }}{{ end }}{{ . | len }}"), "0a7");
}

#[test]
fn crlf_is_trimmed_too() {
    assert_eq!(render("a\r\n{{- .user -}}\r\nb"), "aadminb");
}

#[test]
fn binary_values_pass_through_unchanged() {
    let keystore = vec![0x30, 0x82, 0xff, 0x00, 0xc3];
    let data = [("ks".to_string(), keystore.clone())].into_iter().collect();
    assert_eq!(render_template("key", "{{ .ks }}", &data).unwrap(), keystore);
    let encoded = render_template("key", "{{ .ks | b64enc }}", &data).unwrap();
    let data = [("b64".to_string(), encoded)].into_iter().collect();
    assert_eq!(render_template("key", "{{ .b64 | b64dec }}", &data).unwrap(), keystore);
}

#[test]
fn yaml_functions_read_and_write_config_files() {
    let config = "db:\n  host: db.internal\n  port: 5432\n".as_bytes().to_vec();
    let data = [("config".to_string(), config)].into_iter().collect();
    let port = render_template("key", "{{ (fromYaml .config).db.port }}", &data).unwrap();
    assert_eq!(port, b"5432");
    let nested = render_template("key", "app:\n  {{- .config | fromYaml | toYaml | nindent 2 }}", &data).unwrap();
    assert_eq!(String::from_utf8(nested).unwrap(), "app:\n  db:\n    host: db.internal\n    port: 5432");
}

#[test]
fn index_on_data_in_place_matches_index_on_a_copy() {
    let mut data = data();
    data.insert("tls.crt".into(), b"CERT".to_vec());
    for (template, want) in [
        (r#"{{ index . "tls.crt" }}"#, Ok("CERT")),
        (r#"{{ index . "nope" }}|{{ index $ "user" }}"#, Ok("|admin")),
        (r#"{{ $j := fromJson .json }}{{ index $j "tags" 1 }}{{ index $j.db "port" }}"#, Ok("b5432")),
        (r#"{{ $j := fromJson .json }}{{ index $j "tags" 5 }}"#, Err("index: index out of range")),
        (r#"{{ index . "user" 0 }}"#, Ok("97")),
        (r#"{{ index . "user" 9 }}"#, Err("index: index out of range")),
        (r#"{{ index . "nope" "deeper" }}"#, Err("index: index of nil")),
        (r#"{{ index . 1 }}"#, Err("index: can't index item of type map[string]interface {} with int")),
        (r#"{{ "user" | index . }}"#, Ok("admin")),
        (r#"{{ index .user.x 1 }}"#, Err("can't evaluate field x in type string")),
    ] {
        let got = render_template("key", template, &data);
        match want {
            Ok(want) => assert_eq!(String::from_utf8(got.unwrap()).unwrap(), want, "{template}"),
            Err(reason) => match got {
                Err(TemplateError::Exec { reason: got, .. }) => assert_eq!(got, reason, "{template}"),
                other => panic!("{template}: {other:?}"),
            },
        }
    }
    // A megabyte of data indexed a thousand times stays within the budget.
    data.insert("big".into(), vec![b'x'; 1 << 20]);
    let many = r#"{{ range 1000 }}{{ $c := index $ "tls.crt" }}{{ end }}ok"#;
    assert_eq!(render_template("key", many, &data).unwrap(), b"ok");
}

#[test]
fn printing_and_testing_data_copy_nothing() {
    let mut data = data();
    data.insert("big".into(), vec![b'x'; 1 << 20]);
    // 200 copies of 1 MiB would be over the 64 MiB budget.
    let tests = r#"{{ range 200 }}{{ if $.big }}{{ else }}no{{ end }}{{ end }}ok"#;
    assert_eq!(render_template("key", tests, &data).unwrap(), b"ok");
    let prints = r#"{{ .big }}"#;
    assert_eq!(render_template("key", prints, &data).unwrap().len(), 1 << 20);
    assert_eq!(render("{{ if .nope }}y{{ else if .user }}{{ . }}{{ end }}").len(), render("{{ . }}").len());
    assert_eq!(exec_error("{{ if .user.x }}{{ end }}").2, "can't evaluate field x in type string");
}

#[test]
fn vault_agent_templates_read_secrets_as_consul_template_does() {
    let template =
        "{{- with secret \"secret/data/web\" -}}user={{ .Data.data.user }} lease={{ .LeaseDuration }}{{- end }}";
    assert_eq!(super::vault_template_paths(template), vec!["secret/data/web".to_string()]);
    let secrets = BTreeMap::from([(
        "secret/data/web".to_string(),
        serde_json::json!({"data": {"data": {"user": "u1"}, "metadata": {"version": 3}}, "lease_duration": 0}),
    )]);
    let out = super::render_vault_template("web", template, &secrets).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "user=u1 lease=0");
    // The injector's default template prints each key of .Data as Go does.
    let default =
        "{{ with secret \"secret/data/web\" }}{{ range $k, $v := .Data }}{{ $k }}: {{ $v }}\n{{ end }}{{ end }}";
    let out = super::render_vault_template("web", default, &secrets).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "data: map[user:u1]\nmetadata: map[version:3]\n");
    let error =
        super::render_vault_template("w", "{{ secret \"pki/issue/x\" \"common_name=a\" }}", &secrets).unwrap_err();
    assert!(error.to_string().contains("no answer was read"), "{error}");
}
