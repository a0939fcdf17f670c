//! Cost of checking OTTL: one transform item of ten statements and two conditions, and one filter
//! item of three conditions, as a user might write them.
//!
//! `cargo bench --bench ottl` (options: `-- --rounds N --iterations N`). Results go to
//! BENCHMARKS.md.

use std::hint::black_box;
use std::time::Instant;

use telemetry_manager::ottl::{check_filter, check_transform};

// The manager's allocator (src/main.rs), so that allocation costs are as in production.
#[global_allocator]
static ALLOCATOR: telemetry_manager::allocator::MiMalloc = telemetry_manager::allocator::MiMalloc;

const STATEMENTS: [&str; 10] = [
    r#"set(span.attributes["env"], "prod")"#,
    r#"set(resource.attributes["k8s.cluster.name"], "c1") where resource.attributes["k8s.cluster.name"] == nil"#,
    r#"delete_key(span.attributes, "password")"#,
    r#"truncate_all(span.attributes, 256)"#,
    r#"replace_pattern(span.name, "/users/[0-9]+", "/users/{id}")"#,
    r#"set(span.status.code, STATUS_CODE_ERROR) where span.attributes["http.status_code"] >= 500"#,
    r#"keep_keys(span.attributes, ["http.method", "http.route", "http.status_code"])"#,
    r#"set(span.attributes["upper"], ToUpperCase(span.name)) where not IsMatch(span.name, "^GET")"#,
    r#"set(span.attributes["duration_ns"], span.end_time_unix_nano - span.start_time_unix_nano)"#,
    r#"merge_maps(span.attributes, ParseJSON("{\"a\":1}"), "upsert")"#,
];

const CONDITIONS: [&str; 2] = [
    r#"span.kind == SPAN_KIND_SERVER and resource.attributes["k8s.namespace.name"] != "kube-system""#,
    r#"IsMatch(span.attributes["http.route"], ".*/api/.*")"#,
];

const FILTERS: [&str; 3] = [
    r#"span.name == "GET /healthz""#,
    r#"IsMatch(span.attributes["http.route"], ".*/metrics")"#,
    r#"span.attributes["http.status_code"] < 400 and span.kind == SPAN_KIND_CLIENT"#,
];

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Median over rounds of the mean time of one call, in microseconds.
fn measure(rounds: usize, iterations: usize, mut call: impl FnMut()) -> f64 {
    let mut means = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..iterations {
            call();
        }
        means.push(start.elapsed().as_secs_f64() * 1e6 / iterations as f64);
    }
    median(means)
}

fn main() {
    let arg = |name: &str, default: usize| -> usize {
        std::env::args()
            .skip_while(|a| a != name)
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let rounds = arg("--rounds", 30);
    let iterations = arg("--iterations", 2000);
    let statements: Vec<String> = STATEMENTS.iter().map(|s| s.to_string()).collect();
    let conditions: Vec<String> = CONDITIONS.iter().map(|s| s.to_string()).collect();
    let filters: Vec<String> = FILTERS.iter().map(|s| s.to_string()).collect();
    check_transform(&conditions, &statements).expect("the transform item is valid");
    check_filter(&filters).expect("the filter item is valid");

    let transform = measure(rounds, iterations, || {
        black_box(check_transform(
            black_box(&conditions),
            black_box(&statements),
        ))
        .ok();
    });
    let filter = measure(rounds, iterations, || {
        black_box(check_filter(black_box(&filters))).ok();
    });
    let without_regex: Vec<String> = statements
        .iter()
        .filter(|s| !s.contains("pattern") && !s.contains("IsMatch"))
        .cloned()
        .collect();
    let plain = measure(rounds, iterations, || {
        black_box(check_transform(&[], black_box(&without_regex))).ok();
    });
    println!("transform item, 10 statements + 2 conditions: {transform:.1} µs");
    println!("filter item, 3 conditions:                    {filter:.1} µs");
    println!(
        "transform item, {} statements without regexes:  {plain:.1} µs",
        without_regex.len()
    );
}
