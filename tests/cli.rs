//! `telemetry-manager validate`: exit codes, messages per broken example, Secrets from the input,
//! and no panic on any input bytes.

use crate::common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{from_secret, pipeline};
use proptest::prelude::*;
use serde_json::{Value, json};
use telemetry_manager::cli::input;
use telemetry_manager::cli::validate::{INVALID, UNREADABLE, VALID, validate_documents};
use telemetry_manager::validation::{self, Context, ResolvedSecrets, SecretLookup, Settings};

fn manager(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_telemetry-manager"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.unwrap_or_default()).unwrap();
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn examples_exit_1_with_one_precise_line_per_broken_example() {
    let output = manager(&["validate", "-f", "examples/"], None);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("Warning: "))
        .collect();
    let mut broken: Vec<String> = std::fs::read_dir("examples")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("invalid-"))
        .collect();
    broken.sort();
    assert_eq!(errors.len(), broken.len(), "{stderr}");
    for (line, file) in errors.iter().zip(&broken) {
        assert!(
            line.starts_with(&format!(
                "examples/{file} (document 1): tracepipelines.telemetry.kyma-project.io \""
            )),
            "{line}"
        );
        assert!(
            line.contains("\" is invalid: spec.") || line.contains("\" is invalid: [spec."),
            "{line}"
        );
    }
    assert!(stderr.contains(
        r#"examples/invalid-grpc-endpoint-with-path.yaml (document 1): tracepipelines.telemetry.kyma-project.io "grpc-with-path" is invalid: spec.output.otlp.endpoint: Invalid value: "https://otlp.example.com:4317/v1/traces": OTLP output endpoint invalid: gRPC endpoints cannot contain paths"#
    ));
    let stdout = text(&output.stdout);
    let valid = std::fs::read_dir("examples").unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("valid-")
    });
    assert_eq!(stdout.lines().count(), valid.count(), "{stdout}");
    assert!(stdout.contains("tracepipeline.telemetry.kyma-project.io/backend-http valid (examples/valid-http-basic-auth.yaml)"));
}

#[test]
fn valid_examples_exit_0() {
    let output = manager(
        &[
            "validate",
            "-f",
            "examples/valid-grpc.yaml",
            "-f",
            "examples/valid-http-basic-auth.yaml",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
}

#[test]
fn warn_policy_admits_a_missing_secret() {
    let output = manager(
        &[
            "validate",
            "--secret-ref-policy",
            "warn",
            "-f",
            "examples/invalid-missing-secret.yaml",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stderr).starts_with("Warning: examples/invalid-missing-secret.yaml (document 1): spec.output.otlp.endpoint.valueFrom.secretKeyRef: Secret \"does-not-exist\""));
}

#[test]
fn stdin_is_read_with_dash() {
    let yaml = std::fs::read("examples/valid-grpc.yaml").unwrap();
    let output = manager(&["validate", "-f", "-"], Some(&yaml));
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        text(&output.stdout),
        "tracepipeline.telemetry.kyma-project.io/jaeger valid (<stdin>)\n"
    );
}

#[test]
fn unreadable_input_exits_2_with_a_clear_message() {
    let missing = manager(&["validate", "-f", "does/not/exist.yaml"], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing.stderr).starts_with("error: does/not/exist.yaml: cannot read: "),
        "{}",
        text(&missing.stderr)
    );

    let yaml = manager(&["validate", "-f", "-"], Some(b"spec: [unclosed\n"));
    assert_eq!(yaml.status.code(), Some(2));
    assert!(
        text(&yaml.stderr).starts_with("error: <stdin>: not valid YAML: "),
        "{}",
        text(&yaml.stderr)
    );

    let binary = manager(&["validate", "-f", "-"], Some(&[0xff, 0x00, 0xfe, 0x80]));
    assert_eq!(binary.status.code(), Some(2));
    assert_eq!(
        text(&binary.stderr),
        "error: <stdin>: not UTF-8 text; manifests must be YAML or JSON\n"
    );

    let empty_dir = std::env::temp_dir().join(format!("tm-empty-{}", std::process::id()));
    std::fs::create_dir_all(&empty_dir).unwrap();
    let output = manager(&["validate", "-f", empty_dir.to_str().unwrap()], None);
    std::fs::remove_dir(&empty_dir).unwrap();
    assert_eq!(output.status.code(), Some(2));
}

fn run(documents: &[input::Document], settings: Settings) -> (u8, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let code = runtime
        .block_on(validate_documents(
            documents, settings, 0, &mut out, &mut err,
        ))
        .unwrap();
    (code, text(&out), text(&err))
}

fn yaml_of(objects: &[Value]) -> String {
    objects
        .iter()
        .map(|o| serde_saphyr::to_string(o).unwrap())
        .collect::<Vec<_>>()
        .join("---\n")
}

#[test]
fn secrets_resolve_from_data_and_string_data() {
    let objects = [
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ns"},
               "data": {"endpoint": "YmFja2VuZDo0MzE3"}, "stringData": {"user": "u"}}),
        pipeline(
            "p",
            json!({"endpoint": from_secret("ns", "s", "endpoint"),
            "authentication": {"basic": {"user": from_secret("ns", "s", "user"), "password": from_secret("ns", "s", "password")}}}),
        ),
    ];
    let documents = input::parse("test", yaml_of(&objects).as_bytes()).unwrap();
    let (code, _, err) = run(&documents, Settings::default());
    assert_eq!(code, INVALID);
    assert_eq!(
        err,
        "test (document 2): tracepipelines.telemetry.kyma-project.io \"p\" is invalid: spec.output.otlp.authentication.basic.password.valueFrom.secretKeyRef: Not found: Secret \"s\" in namespace \"ns\" has no key \"password\"; add the key to the Secret or fix the reference\n"
    );
}

#[test]
fn broken_secret_manifests_are_reported() {
    let documents = input::parse(
        "test",
        b"apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {k: '***not base64***'}\n",
    )
    .unwrap();
    let (code, _, err) = run(&documents, Settings::default());
    assert_eq!(code, INVALID);
    assert!(
        err.starts_with("test (document 1): Secret cannot be read: "),
        "{err}"
    );
}

#[test]
fn the_sixth_pipeline_exceeds_the_default_limit() {
    let objects: Vec<Value> = (1..=6)
        .map(|i| pipeline(&format!("p{i}"), json!({"endpoint": {"value": "b:4317"}})))
        .collect();
    let documents = input::parse("test", yaml_of(&objects).as_bytes()).unwrap();
    let (code, out, err) = run(&documents, Settings::default());
    assert_eq!(code, INVALID);
    assert_eq!(out.lines().count(), 5);
    assert!(err.starts_with("test (document 6): tracepipelines.telemetry.kyma-project.io \"p6\" is invalid: Forbidden: Maximum pipeline count limit exceeded: 5 TracePipelines exist"), "{err}");
    let (code, out, _) = run(
        &documents,
        Settings {
            max_pipelines: 0,
            ..Settings::default()
        },
    );
    assert_eq!((code, out.lines().count()), (VALID, 6));
}

#[test]
fn colliding_names_and_lists_and_non_objects() {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [
        pipeline("a-b", json!({"endpoint": {"value": "b:4317"}})),
        pipeline("a.b", json!({"endpoint": {"value": "b:4317"}})),
    ]});
    let documents = input::parse(
        "test",
        format!("{}---\n42\n---\n", yaml_of(&[list])).as_bytes(),
    )
    .unwrap();
    let (code, out, err) = run(&documents, Settings::default());
    assert_eq!(code, INVALID);
    assert_eq!(
        out,
        "tracepipeline.telemetry.kyma-project.io/a-b valid (test)\n"
    );
    assert!(
        err.contains("test (document 2): not a Kubernetes object"),
        "{err}"
    );
    assert!(err.contains(r#""a.b" is invalid: metadata.name: Duplicate value: "a.b": collides with TracePipeline "a-b""#), "{err}");
}

#[test]
fn input_without_pipelines_says_so() {
    let documents = input::parse(
        "test",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    )
    .unwrap();
    let (code, _, err) = run(&documents, Settings::default());
    assert_eq!(
        (code, err.as_str()),
        (VALID, "no TracePipeline found in the input\n")
    );
}

/// Feed arbitrary input through the whole offline path; it must end in an exit code, never a panic.
fn validate_bytes(bytes: &[u8]) -> u8 {
    match input::parse("fuzz", bytes) {
        Err(_) => UNREADABLE,
        Ok(documents) => run(&documents, Settings::default()).0,
    }
}

fn example_texts() -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir("examples")
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_bytes_end_in_an_exit_code(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        prop_assert!(validate_bytes(&bytes) <= UNREADABLE);
    }

    #[test]
    fn yaml_like_text_ends_in_an_exit_code(text in "[-:{}\\[\\], \n#&*!|>'\"%@`a-zA-Z0-9._/]{0,300}") {
        prop_assert!(validate_bytes(text.as_bytes()) <= UNREADABLE);
    }

    /// Examples with a slice replaced by arbitrary text: near-valid manifests in every shape.
    #[test]
    fn mutated_examples_end_in_an_exit_code(
        index in 0usize..64, start in 0usize..2000, len in 0usize..40, insert in "\\PC{0,20}"
    ) {
        let texts = example_texts();
        let source = &texts[index % texts.len()];
        let start = source.char_indices().map(|(i, _)| i).nth(start % source.chars().count()).unwrap_or(0);
        let end = source[start..].char_indices().map(|(i, _)| start + i).nth(len).unwrap_or(source.len());
        let mutated = format!("{}{}{}", &source[..start], insert, &source[end..]);
        prop_assert!(validate_bytes(mutated.as_bytes()) <= UNREADABLE);
    }

    /// Arbitrary strings in every string field of a pipeline and in the Secret it reads.
    #[test]
    fn validate_never_panics_on_arbitrary_strings(s in proptest::collection::vec("\\PC{0,40}|-----BEGIN CERTIFICATE-----\n\\PC{0,40}\n-----END CERTIFICATE-----", 24)) {
        let object = json!({
            "apiVersion": "telemetry.kyma-project.io/v1beta1",
            "kind": "TracePipeline",
            "metadata": {"name": s[0]},
            "spec": {
                "output": {"otlp": {
                    "protocol": if s[1].len() % 2 == 0 { "grpc" } else { "http" },
                    "endpoint": {"value": s[2]},
                    "path": s[3],
                    "compression": s[4],
                    "authentication": {"oauth2": {
                        "tokenURL": {"value": s[5]},
                        "clientID": {"valueFrom": {"secretKeyRef": {"name": s[6], "namespace": s[7], "key": s[8]}}},
                        "clientSecret": {"value": s[9]},
                        "scopes": [s[10]],
                        "params": {s[11].clone(): s[12]}
                    }},
                    "headers": [{"name": s[13], "prefix": s[14], "value": s[15]}],
                    "tls": {"ca": {"value": s[16]}, "cert": {"value": s[17]},
                            "key": {"valueFrom": {"secretKeyRef": {"name": "k", "namespace": "n", "key": s[18]}}}}
                }},
                "transform": [{"conditions": [s[19]], "statements": [s[20]]}],
                "filter": [{"conditions": [s[21]]}]
            }
        });
        let mut secrets = ResolvedSecrets::default();
        secrets.insert(&s[7], &s[6], SecretLookup::Found([(s[8].clone(), s[22].as_bytes().to_vec())].into()));
        secrets.insert("n", "k", SecretLookup::Found([(s[18].clone(), s[23].as_bytes().to_vec())].into()));
        let others = vec![s[1].clone(), s[2].clone()];
        let mut relaxed = object.clone();
        relaxed["spec"]["output"]["otlp"].as_object_mut().unwrap().remove("compression");
        for object in [object, relaxed] {
            // The webhook reads JSON text, the CLI a parsed tree: both must see the same object.
            prop_assert_eq!(validation::parse(&object), validation::parse_json(&object.to_string()));
            match validation::parse(&object) {
                Err(report) => prop_assert!(!report.is_valid()),
                Ok(parsed) => {
                    let ctx = Context {
                        settings: Settings::default(),
                        now: 0,
                        cluster: Some(validation::ClusterState { secrets: &secrets, other_pipelines: &others, existing_pipelines: Some(1) }),
                    };
                    let report = validation::validate(&parsed, &ctx);
                    let _ = report.invalid_message(&parsed.name);
                }
            }
        }
    }
}

#[test]
fn run_refuses_lease_timings_that_do_not_nest_before_connecting() {
    let output = manager(
        &["run", "--namespace", "x", "--lease-renew-deadline", "9s"],
        None,
    );
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("--lease-renew-deadline (9s) must be shorter than --lease-duration (8s)"),
        "{stderr}"
    );
}

#[test]
fn render_leaves_out_a_pipeline_with_invalid_ottl_with_the_webhook_message() {
    let output = manager(
        &[
            "render",
            "-f",
            "examples/invalid-ottl.yaml",
            "-f",
            "examples/valid-grpc.yaml",
        ],
        None,
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            r#"tracepipelines.telemetry.kyma-project.io "ottl-typo" is invalid: spec.transform[0].statements[1]: Invalid value: "sett(span.attributes[\"tier\"], \"frontend\")": OTTL specification is invalid, invalid TransformSpec: column 1: unknown function "sett"; did you mean "set"?"#
        ),
        "{stderr}"
    );
    let stdout = text(&output.stdout);
    assert!(!stdout.contains("ottl-typo"), "{stdout}");
    assert!(stdout.contains("otlp_grpc/jaeger"), "{stdout}");
}
