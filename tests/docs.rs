//! The documentation in step with the code. Every page under `docs/` is reachable from the README,
//! and every relative link and every mention of a page with an anchor anywhere in the repository
//! (code comments too) resolves. The pages list exactly what the code has: the condition reasons
//! of `api::Reason`, the flags of `--help`, the metric families a running manager serves, the
//! fields of the CRD, the endpoint rules' decisions, and, for every admission rule, the message
//! that validating the row's example produces.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use common::fake_api::{self, FakeApi};
use serde_json::{Value, json};
use telemetry_manager::api::{self, Protocol, Reason};
use telemetry_manager::cli::validate::{check_documents, report_pipeline};
use telemetry_manager::cli::{self, input};
use telemetry_manager::validation::{Settings, endpoint};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(relative: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(relative))
        .unwrap_or_else(|err| panic!("{relative}: {err}"))
}

// Reading the pages: just enough Markdown for what they contain.

/// The lines of a page outside fenced code blocks.
fn prose_lines(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// A line's heading level and title, if it is a heading.
fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|c| *c == '#').count();
    let title = line[level..].strip_prefix(' ')?;
    (1..=6).contains(&level).then_some((level, title.trim()))
}

/// Splits inline text into code spans (`true`) and the text between them (`false`), as
/// CommonMark does: a span opened by N backticks ends at the next run of exactly N.
fn inline_parts(text: &str) -> Vec<(bool, String)> {
    let mut parts = Vec::new();
    let mut plain = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('`') {
        plain.push_str(&rest[..start]);
        let run = rest[start..].chars().take_while(|c| *c == '`').count();
        let fence = "`".repeat(run);
        let after = &rest[start + run..];
        let closing = after.char_indices().map(|(i, _)| i).find(|&i| {
            after[i..].starts_with(&fence)
                && !after[i + run..].starts_with('`')
                && (i == 0 || !after[..i].ends_with('`'))
        });
        match closing {
            Some(end) => {
                parts.push((false, std::mem::take(&mut plain)));
                let content = &after[..end];
                let content = match content.strip_prefix(' ').and_then(|c| c.strip_suffix(' ')) {
                    Some(inner) if !inner.trim().is_empty() => inner,
                    _ => content,
                };
                parts.push((true, content.to_string()));
                rest = &after[end + run..];
            }
            None => {
                plain.push_str(&fence);
                rest = after;
            }
        }
    }
    plain.push_str(rest);
    parts.push((false, plain));
    parts
}

fn code_spans(text: &str) -> Vec<String> {
    inline_parts(text)
        .into_iter()
        .filter_map(|(code, part)| code.then_some(part))
        .collect()
}

fn without_code_spans(text: &str) -> String {
    inline_parts(text)
        .into_iter()
        .filter_map(|(code, part)| (!code).then_some(part))
        .collect()
}

/// GitHub's anchor for a heading: the rendered text in lower case, spaces turned into hyphens,
/// punctuation dropped.
fn slug(title: &str) -> String {
    let mut text = String::new();
    for (_, part) in inline_parts(title) {
        text.push_str(&part);
    }
    text.to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a page's headings; a repeated heading gets `-1`, `-2`, … as on GitHub.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    for (_, title) in prose_lines(text).into_iter().filter_map(heading) {
        let base = slug(title);
        let count = seen.entry(base.clone()).or_insert(0);
        anchors.insert(match *count {
            0 => base.clone(),
            n => format!("{base}-{n}"),
        });
        *count += 1;
    }
    anchors
}

/// The targets of a page's inline links, `[text](target)`, outside code.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose_lines(text) {
        let line = without_code_spans(line);
        let mut rest = line.as_str();
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(after[..end].to_string());
            rest = &after[end + 1..];
        }
    }
    targets
}

/// The lines under the heading titled `title`, up to the next heading of the same or a higher
/// level.
fn section(text: &str, title: &str) -> String {
    let lines = prose_lines(text);
    let start = lines
        .iter()
        .position(|line| heading(line).is_some_and(|(_, t)| t == title))
        .unwrap_or_else(|| panic!("no heading {title:?}"));
    let level = heading(lines[start]).unwrap().0;
    lines[start + 1..]
        .iter()
        .take_while(|line| heading(line).is_none_or(|(l, _)| l > level))
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }
}

/// A table row's cells; `\|` is a pipe inside a cell.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut cells = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cells.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
    }
    cells.into_iter().map(|c| c.trim().to_string()).collect()
}

fn tables(text: &str) -> Vec<Table> {
    let mut tables = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    for line in prose_lines(text).into_iter().chain([""]) {
        if line.trim_start().starts_with('|') {
            block.push(line);
            continue;
        }
        if block.len() >= 2 {
            tables.push(Table {
                header: cells(block[0]),
                rows: block[2..].iter().map(|row| cells(row)).collect(),
            });
        }
        block.clear();
    }
    tables
}

/// The single code span that makes up a whole cell or title, if it is one.
fn only_code_span(text: &str) -> Option<String> {
    let spans = code_spans(text);
    (spans.len() == 1 && without_code_spans(text).trim().is_empty()).then(|| spans[0].clone())
}

/// What one set has that the other lacks, for assertion messages.
fn difference(documented: &BTreeSet<String>, actual: &BTreeSet<String>) -> String {
    let missing: Vec<&String> = actual.difference(documented).collect();
    let extra: Vec<&String> = documented.difference(actual).collect();
    format!("not documented: {missing:?}; documented but not in the code: {extra:?}")
}

// Links and anchors.

/// `base/target` with `.` and `..` resolved; `None` when it leaves the repository.
fn resolve(base: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

fn directory_of(file: &str) -> &str {
    file.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The mentions of a page in `docs/` in any text, with their anchor: `docs/<page>.md#<anchor>`.
fn page_mentions(text: &str) -> Vec<(String, Option<String>)> {
    let path_char = |c: char| c.is_ascii_alphanumeric() || "._/-".contains(c);
    let mut mentions = Vec::new();
    for (index, _) in text.match_indices("docs/") {
        if text[..index].chars().next_back().is_some_and(path_char) {
            continue;
        }
        let rest = &text[index..];
        let end = rest.find(|c: char| !path_char(c)).unwrap_or(rest.len());
        let path = rest[..end].trim_end_matches('.');
        if !path.ends_with(".md") {
            continue;
        }
        let anchor = rest[path.len()..].strip_prefix('#').map(|after| {
            after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect::<String>()
        });
        mentions.push((path.to_string(), anchor));
    }
    mentions
}

/// Whether `path` (with `anchor`) exists among `files`, else what is wrong.
fn missing(
    files: &BTreeMap<String, String>,
    directories: &BTreeSet<&str>,
    path: &str,
    anchor: Option<&str>,
) -> Option<String> {
    if !files.contains_key(path) && !directories.contains(path) {
        return Some(format!("{path}: no such file"));
    }
    match (anchor, files.get(path)) {
        (Some(anchor), Some(text)) if !anchors(text).contains(anchor) => {
            Some(format!("{path}#{anchor}: no such heading"))
        }
        _ => None,
    }
}

/// Broken links, broken mentions and unreachable pages in `files` (repository-relative path to
/// text).
fn link_problems(files: &BTreeMap<String, String>) -> Vec<String> {
    let directories: BTreeSet<&str> = files
        .keys()
        .flat_map(|file| {
            file.match_indices('/')
                .map(move |(index, _)| &file[..index])
        })
        .collect();
    // A link is also a mention: the same problem is reported once.
    let mut problems = BTreeSet::new();
    let mut linked: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (file, text) in files {
        if file.ends_with(".md") {
            for target in link_targets(text) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, anchor) = match target.split_once('#') {
                    Some((path, anchor)) => (path, Some(anchor)),
                    None => (target.as_str(), None),
                };
                let resolved = if path.is_empty() {
                    Some(file.clone())
                } else {
                    resolve(directory_of(file), path)
                };
                let Some(resolved) = resolved else {
                    problems.insert(format!("{file}: {target} leaves the repository"));
                    continue;
                };
                if let Some(problem) = missing(files, &directories, &resolved, anchor) {
                    problems.insert(format!("{file}: {problem}"));
                }
                linked.entry(file.as_str()).or_default().push(resolved);
            }
        }
        for (path, anchor) in page_mentions(text) {
            if let Some(problem) = missing(files, &directories, &path, anchor.as_deref()) {
                problems.insert(format!("{file}: {problem}"));
            }
        }
    }
    let mut reached = BTreeSet::from(["README.md".to_string()]);
    let mut queue = vec!["README.md".to_string()];
    while let Some(page) = queue.pop() {
        for target in linked.get(page.as_str()).into_iter().flatten() {
            if target.ends_with(".md") && reached.insert(target.clone()) {
                queue.push(target.clone());
            }
        }
    }
    for file in files.keys() {
        if file.starts_with("docs/") && file.ends_with(".md") && !reached.contains(file) {
            problems.insert(format!("{file}: not reachable by links from README.md"));
        }
    }
    problems.into_iter().collect()
}

#[test]
fn every_page_is_reachable_and_every_link_and_mention_resolves() {
    let root = Path::new(ROOT);
    let files: BTreeMap<String, String> = common::repository_files()
        .into_iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(&path).ok()?;
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            Some((relative, text))
        })
        .collect();
    let pages = files
        .keys()
        .filter(|f| f.starts_with("docs/") && f.ends_with(".md"))
        .count();
    assert!(pages >= 7, "found {pages} pages under docs/");
    let problems = link_problems(&files);
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The link check finds a missing file, a missing heading, a broken mention in code and a page
/// that nothing links to. (The paths are built from pieces, so that this file does not mention
/// pages that do not exist.)
#[test]
fn link_check_reports_what_is_broken() {
    let page = |name: &str| format!("{}/{name}", "docs");
    let files = BTreeMap::from([
        (
            "README.md".to_string(),
            format!(
                "[a]({a}) [b]({a}#nowhere) [c]({gone}) [d](#first-commands)\n\n## First commands\n",
                a = page("a.md"),
                gone = page("gone.md")
            ),
        ),
        (
            page("a.md"),
            "# A\n\n```sh\n# not a heading\n```\n".to_string(),
        ),
        (page("orphan.md"), "# Orphan\n".to_string()),
        (
            "src/lib.rs".to_string(),
            format!("//! See {a}#a and {a}#not-a-heading.\n", a = page("a.md")),
        ),
    ]);
    let problems = link_problems(&files);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    for expected in [
        format!("README.md: {}#nowhere: no such heading", page("a.md")),
        format!("README.md: {}: no such file", page("gone.md")),
        format!(
            "src/lib.rs: {}#not-a-heading: no such heading",
            page("a.md")
        ),
        format!(
            "{}: not reachable by links from README.md",
            page("orphan.md")
        ),
    ] {
        assert!(problems.contains(&expected), "{expected} in {problems:#?}");
    }
}

#[test]
fn anchors_are_githubs() {
    assert_eq!(
        slug("Endpoint, TLS material and Secrets"),
        "endpoint-tls-material-and-secrets"
    );
    assert_eq!(slug("`GatewayConfigured`"), "gatewayconfigured");
    assert_eq!(
        slug("High availability and leader election"),
        "high-availability-and-leader-election"
    );
    assert_eq!(
        slug("Command line: checking pipelines"),
        "command-line-checking-pipelines"
    );
    assert_eq!(
        anchors("# A\n## Same\n## Same\n```\n## In code\n```\n"),
        BTreeSet::from(["a".into(), "same".into(), "same-1".into()])
    );
    assert_eq!(code_spans("`a` and `` b`c ``"), ["a", "b`c"]);
}

// Reasons.

#[test]
fn status_page_documents_every_reason_and_no_other() {
    let page = read("docs/reference/status.md");
    let documented: BTreeSet<String> = prose_lines(&page)
        .into_iter()
        .filter_map(heading)
        .filter(|(level, _)| *level == 3)
        .filter_map(|(_, title)| only_code_span(title))
        .collect();
    let actual: BTreeSet<String> = Reason::ALL.iter().map(|r| r.as_str().to_string()).collect();
    assert_eq!(actual.len(), Reason::ALL.len(), "a reason is listed twice");
    assert!(documented == actual, "{}", difference(&documented, &actual));
}

// Flags.

/// The long flags of `telemetry-manager <command> --help`, without `--help`.
fn help_flags(command: &str) -> BTreeSet<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_telemetry-manager"))
        .args([command, "--help"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{command} --help");
    let help = String::from_utf8(output.stdout).unwrap();
    help.lines()
        .map(str::trim_start)
        .filter(|line| {
            line.starts_with("--")
                || (line.len() > 3 && line.starts_with('-') && line[2..].starts_with(", --"))
        })
        .filter_map(|line| {
            line.split([' ', ','])
                .find(|token| token.starts_with("--"))
                .map(str::to_string)
        })
        .filter(|flag| flag != "--help")
        .collect()
}

/// The long flags in the first column of the `flag` tables of a page's section.
fn documented_flags(page: &str, title: &str) -> BTreeSet<String> {
    tables(&section(&read(page), title))
        .into_iter()
        .filter(|t| t.column("flag") == Some(0))
        .flat_map(|t| t.rows)
        .flat_map(|row| code_spans(&row[0]))
        .filter(|span| span.starts_with("--"))
        .collect()
}

#[test]
fn flag_tables_list_exactly_the_flags_of_help() {
    for (page, title, command) in [
        ("docs/operations.md", "Flags", "run"),
        ("docs/cli.md", "`validate`", "validate"),
        ("docs/cli.md", "`render`", "render"),
        ("docs/cli.md", "`crd`", "crd"),
    ] {
        let documented = documented_flags(page, title);
        let actual = help_flags(command);
        assert!(
            documented == actual,
            "{page}, {title}, `{command}`: {}",
            difference(&documented, &actual)
        );
    }
    assert!(
        help_flags("run").contains("--flow-window"),
        "the help is read"
    );
}

// Metrics.

const PIPELINE: &str = "/apis/telemetry.kyma-project.io/v1beta1/tracepipelines/backend";
const CA_SECRET: &str = "/api/v1/namespaces/telemetry/secrets/telemetry-webhook-cert";

async fn eventually(what: &str, api: &Arc<Mutex<FakeApi>>, check: impl Fn(&FakeApi) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check(&api.lock().unwrap()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Send `request` over a connection `io` and return the status and body.
async fn exchange<IO>(io: IO, request: http::Request<String>) -> (u16, String)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Every metric family of a real scrape of `telemetry-manager run`, after it reconciled a
/// pipeline, probed the gateway and answered an admission request, so that every family has a
/// series.
async fn scraped_families() -> BTreeSet<String> {
    telemetry_manager::tls::install_crypto_provider();
    let api = Arc::new(Mutex::new(FakeApi::default()));
    api.lock().unwrap().insert(
        PIPELINE,
        json!({"apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline",
               "metadata": {"name": "backend"},
               "spec": {"output": {"otlp": {"protocol": "grpc", "endpoint": {"value": "backend.example.com:4317"}}}}}),
    );
    let address = fake_api::serve(api.clone()).await;
    let kubeconfig =
        std::env::temp_dir().join(format!("tm-docs-kubeconfig-{}", std::process::id()));
    fake_api::kubeconfig(address, &kubeconfig);
    let (webhook, metrics, health) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let mut manager = Command::new(env!("CARGO_BIN_EXE_telemetry-manager"))
        .args([
            "run",
            "--webhook-addr",
            &format!("127.0.0.1:{webhook}"),
            "--metrics-addr",
            &format!("127.0.0.1:{metrics}"),
            "--health-addr",
            &format!("127.0.0.1:{health}"),
            "--namespace",
            "telemetry",
            "--identity",
            "manager-0",
            "--shutdown-delay",
            "0s",
            "--webhook-extra-san",
            "127.0.0.1",
            "--flow-poll-interval",
            "1s",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("POD_NAMESPACE")
        .env_remove("POD_NAME")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // The flow condition is written after a pass and a probe.
    eventually("the pipeline's flow condition", &api, |s| {
        s.objects[PIPELINE]["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "TelemetryFlowHealthy"))
    })
    .await;
    eventually("the CA Secret", &api, |s| s.objects.contains_key(CA_SECRET)).await;
    let ca = {
        use base64::Engine;
        let encoded = api.lock().unwrap().objects[CA_SECRET]["data"]["ca.crt"]
            .as_str()
            .unwrap()
            .to_string();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap(),
        )
        .unwrap()
    };
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "docs", "operation": "CREATE", "name": "p", "object": {
            "apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline",
            "metadata": {"name": "p"}, "spec": {"output": {"otlp": {"endpoint": {"value": "b:4317"}}}}}}
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", webhook)).await;
        let server_name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let tls = match tcp {
            Ok(tcp) => common::tls_client(&ca, &[], &[])
                .connect(server_name, tcp)
                .await
                .ok(),
            Err(_) => None,
        };
        if let Some(tls) = tls {
            let request = http::Request::post(
                "/mutate-telemetry-kyma-project-io-v1beta1-tracepipeline?timeout=10s",
            )
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .body(review.to_string())
            .unwrap();
            assert_eq!(exchange(tls, request).await.0, 200);
            break;
        }
        assert!(Instant::now() < deadline, "the webhook did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", metrics))
        .await
        .unwrap();
    let request = http::Request::get("/metrics")
        .header("host", "127.0.0.1")
        .body(String::new())
        .unwrap();
    let (status, text) = exchange(tcp, request).await;
    assert_eq!(status, 200);
    assert!(common::terminate(&mut manager).await.success());
    std::fs::remove_file(&kubeconfig).unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn metrics_page_lists_exactly_the_families_the_manager_serves() {
    let documented: BTreeSet<String> = tables(&read("docs/reference/metrics.md"))
        .into_iter()
        .filter(|t| t.column("metric") == Some(0))
        .flat_map(|t| t.rows)
        .filter_map(|row| only_code_span(&row[0]))
        .collect();
    let served = scraped_families().await;
    assert!(
        served.contains("telemetry_webhook_requests_total"),
        "{served:?}"
    );
    assert!(documented == served, "{}", difference(&documented, &served));
}

// Admission messages.

/// The time the examples are validated at, 2030-01-01, so that expiry dates stay the same.
fn validation_time() -> i64 {
    common::unix(2030, 1, 1)
}

/// PEM for the placeholders of the examples, made now: no private key is committed.
fn placeholder_pems() -> Vec<(&'static str, String)> {
    let server = {
        let mut params = rcgen::CertificateParams::new(vec!["otlp.example.com".into()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "otlp.example.com");
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2099, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    };
    vec![
        (
            "PEM_CLIENT_CERTIFICATE",
            common::self_signed("client.example.com", (2099, 1, 1), false).cert,
        ),
        (
            "PEM_OTHER_KEY",
            common::self_signed("other.example.com", (2099, 1, 1), false).key,
        ),
        ("PEM_SERVER_CERTIFICATE", server),
        (
            "PEM_EXPIRED_CA",
            common::self_signed("expired-ca", (2021, 1, 1), true).cert,
        ),
        (
            "PEM_EXPIRING_CA",
            common::self_signed("expiring-ca", (2030, 1, 8), true).cert,
        ),
    ]
}

/// The settings of an example's header line `# telemetry-manager validate …`, read by the real
/// command line; the defaults without one.
fn example_settings(path: &str, text: &str) -> Settings {
    let Some(line) = text
        .lines()
        .find_map(|l| l.strip_prefix("# telemetry-manager "))
    else {
        return Settings::default();
    };
    let arguments = std::iter::once("telemetry-manager").chain(line.split_whitespace());
    let parsed = cli::Cli::try_parse_from(arguments).unwrap_or_else(|e| panic!("{path}: {e}"));
    let cli::Command::Validate(args) = parsed.command else {
        panic!("{path}: the header line must be a validate command");
    };
    assert_eq!(
        args.files,
        [PathBuf::from(path)],
        "{path}: the header validates another file"
    );
    Settings {
        secret_ref_policy: args.secret_ref_policy,
        max_pipelines: args.max_pipelines,
    }
}

/// What `validate` prints for an example (standard output and error together).
async fn validate_example(path: &str, pems: &[(&str, String)]) -> String {
    let mut text = read(path);
    let settings = example_settings(path, &text);
    for (placeholder, pem) in pems {
        text = text.replace(placeholder, &serde_json::to_string(pem).unwrap());
    }
    let documents = input::parse(path, text.as_bytes()).unwrap();
    let checked = check_documents(&documents, settings, validation_time()).await;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    for problem in &checked.problems {
        writeln!(err, "{problem}").unwrap();
    }
    for pipeline in &checked.pipelines {
        report_pipeline(pipeline, &mut out, &mut err).unwrap();
    }
    out.extend(err);
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn admission_rule_messages_are_what_validating_their_examples_prints() {
    const PAGE: &str = "docs/reference/tracepipeline.md";
    let pems = placeholder_pems();
    let mut cited = BTreeSet::new();
    let mut rows = 0;
    for table in tables(&read(PAGE)) {
        let (Some(message), Some(example)) = (table.column("message"), table.column("example"))
        else {
            continue;
        };
        for row in &table.rows {
            rows += 1;
            let targets = link_targets(&row[example]);
            let [target] = targets.as_slice() else {
                panic!("{PAGE}: one example per row: {row:?}");
            };
            let path = resolve(directory_of(PAGE), target).unwrap();
            assert!(path.starts_with("tests/fixtures/docs/"), "{path}");
            let messages = code_spans(&row[message]);
            assert!(!messages.is_empty(), "{PAGE}: no message quoted: {row:?}");
            let output = validate_example(&path, &pems).await;
            for quoted in messages {
                assert!(
                    output.contains(&quoted),
                    "{PAGE} quotes\n  {quoted}\nbut validating {path} prints\n{output}"
                );
            }
            cited.insert(path);
        }
    }
    assert!(rows >= 40, "found {rows} rules");
    let examples: BTreeSet<String> = std::fs::read_dir(Path::new(ROOT).join("tests/fixtures/docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .map(|name| format!("tests/fixtures/docs/{name}"))
        .collect();
    let uncited: Vec<&String> = examples.difference(&cited).collect();
    assert!(uncited.is_empty(), "examples no rule cites: {uncited:?}");
}

// The endpoint table.

#[test]
fn endpoint_table_is_what_the_endpoint_rules_decide() {
    let rules = section(&read("docs/reference/tracepipeline.md"), "Endpoint rules");
    let table = tables(&rules)
        .into_iter()
        .find(|t| t.column("endpoint") == Some(0))
        .expect("the endpoint table");
    assert!(table.rows.len() >= 11);
    for row in &table.rows {
        let value = only_code_span(&row[0]).expect("an endpoint in code");
        for (column, protocol) in [("`grpc`", Protocol::Grpc), ("`http`", Protocol::Http)] {
            let expected = &row[table.column(column).expect(column)];
            let decided = match endpoint::check(&value, protocol, false, false) {
                Ok(()) => "ok".to_string(),
                Err(problem) => problem.to_string().split(';').next().unwrap().to_string(),
            };
            assert_eq!(&decided, expected, "{value} with {column}");
        }
    }
}

// Fields.

/// The field paths under `node` (`a.b`, `list[].c`). With `stop_at_values`, a value (`value` or
/// `valueFrom`) or a Secret reference (`secretKeyRef`) is one field, documented once on its own.
fn field_paths(node: &Value, prefix: &str, stop_at_values: bool, paths: &mut BTreeSet<String>) {
    if node["type"] == "array" {
        field_paths(
            &node["items"],
            &format!("{prefix}[]"),
            stop_at_values,
            paths,
        );
        return;
    }
    let Some(properties) = node["properties"].as_object() else {
        return;
    };
    let names: BTreeSet<&str> = properties.keys().map(String::as_str).collect();
    let value_like = names == BTreeSet::from(["value", "valueFrom"])
        || names == BTreeSet::from(["secretKeyRef"]);
    if stop_at_values && value_like {
        return;
    }
    for (name, child) in properties {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        paths.insert(path.clone());
        field_paths(child, &path, stop_at_values, paths);
    }
}

/// The first-column fields of the `field` table of a section, with the row's text.
fn documented_fields(title: &str) -> BTreeMap<String, String> {
    let text = section(&read("docs/reference/tracepipeline.md"), title);
    let table = tables(&text)
        .into_iter()
        .find(|t| t.column("field") == Some(0))
        .unwrap_or_else(|| panic!("a field table under {title}"));
    table
        .rows
        .iter()
        .map(|row| {
            let field = only_code_span(&row[0]).unwrap_or_else(|| panic!("{row:?}"));
            (field, row.join(" | "))
        })
        .collect()
}

#[test]
fn fields_tables_list_every_field_of_the_crd() {
    let crd = serde_json::to_value(api::crd()).unwrap();
    let mut by_version = BTreeMap::new();
    for version in crd["spec"]["versions"].as_array().unwrap() {
        let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
        let mut paths = BTreeSet::new();
        field_paths(spec, "", true, &mut paths);
        by_version.insert(version["name"].as_str().unwrap().to_string(), paths);
    }
    let (beta, alpha) = (&by_version["v1beta1"], &by_version["v1alpha1"]);
    let all: BTreeSet<String> = beta.union(alpha).cloned().collect();
    let beta_only: BTreeSet<String> = beta.difference(alpha).cloned().collect();
    assert!(!beta_only.is_empty(), "v1alpha1 lacks compression");

    let documented = documented_fields("Fields");
    let names: BTreeSet<String> = documented.keys().cloned().collect();
    assert!(names == all, "{}", difference(&names, &all));
    let marked: BTreeSet<String> = documented
        .iter()
        .filter(|(_, row)| row.contains("v1beta1 only"))
        .map(|(field, _)| field.clone())
        .collect();
    assert!(
        marked == beta_only,
        "rows marked v1beta1 only: {}",
        difference(&marked, &beta_only)
    );

    let storage = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == api::STORAGE_VERSION)
        .unwrap();
    let endpoint = &storage["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["output"]
        ["properties"]["otlp"]["properties"]["endpoint"];
    let mut value_type = BTreeSet::new();
    field_paths(endpoint, "", false, &mut value_type);
    let documented: BTreeSet<String> = documented_fields("Values from Secrets")
        .into_keys()
        .collect();
    assert!(
        documented == value_type,
        "{}",
        difference(&documented, &value_type)
    );
}

// The kubectl transcripts.

/// Every `kubectl apply -f examples/…` denial quoted in the README and the docs ends in what
/// validating that example prints, so the transcripts cannot drift from the webhook's messages.
#[tokio::test]
async fn quoted_kubectl_denials_are_what_validating_the_example_prints() {
    const DENIED: &str = "denied the request: ";
    let mut quoted = 0;
    for path in common::repository_files() {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !name.ends_with(".md") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let Some(rest) =
                line.strip_prefix("Error from server (Invalid): error when creating \"")
            else {
                continue;
            };
            let (example, _) = rest.split_once('"').unwrap();
            let (_, message) = line
                .split_once(DENIED)
                .unwrap_or_else(|| panic!("{}: no {DENIED:?} in {line}", path.display()));
            let output = validate_example(example, &[]).await;
            assert!(
                output.contains(message),
                "{} quotes\n  {message}\nbut validating {example} prints\n{output}",
                path.display()
            );
            quoted += 1;
        }
    }
    assert!(quoted >= 2, "found {quoted} transcripts");
}
