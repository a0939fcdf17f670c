//! Structural checks against the CRD's own OpenAPI schema (SPEC §3.1, first rows): types,
//! required fields, enums, minimum lengths and fields the schema does not declare. The schema is
//! the one `telemetry-manager crd` prints, so offline answers match the API server's.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value;

use super::report::{Cause, FieldError, FieldErrorKind, quote};

/// Top-level fields the API server owns or validates itself.
const SERVER_OWNED: [&str; 4] = ["apiVersion", "kind", "metadata", "status"];

fn schemas() -> &'static BTreeMap<String, JSONSchemaProps> {
    static SCHEMAS: OnceLock<BTreeMap<String, JSONSchemaProps>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        crate::api::crd()
            .spec
            .versions
            .into_iter()
            .filter_map(|v| Some((v.name, v.schema?.open_api_v3_schema?)))
            .collect()
    })
}

/// Check a TracePipeline object of the given version; `None` when the version is not served.
pub fn check(object: &Value, version: &str) -> Option<Vec<FieldError>> {
    let root = schemas().get(version)?;
    let mut errors = Vec::new();
    match object.as_object() {
        Some(fields) => check_object(fields, root, "", &SERVER_OWNED, &mut errors),
        None => errors.push(type_error("", object, "object")),
    }
    Some(errors)
}

fn check_value(value: &Value, schema: &JSONSchemaProps, path: &str, errors: &mut Vec<FieldError>) {
    match schema.type_.as_deref() {
        Some("object") => match value.as_object() {
            Some(fields) => check_object(fields, schema, path, &[], errors),
            None => errors.push(type_error(path, value, "object")),
        },
        Some("array") => match value.as_array() {
            Some(items) => {
                if let Some(JSONSchemaPropsOrArray::Schema(item_schema)) = &schema.items {
                    for (index, item) in items.iter().enumerate() {
                        check_value(item, item_schema, &format!("{path}[{index}]"), errors);
                    }
                }
            }
            None => errors.push(type_error(path, value, "array")),
        },
        Some("string") => match value.as_str() {
            Some(text) => check_string(text, schema, path, errors),
            None => errors.push(type_error(path, value, "string")),
        },
        Some("boolean") if !value.is_boolean() => errors.push(type_error(path, value, "boolean")),
        Some("integer") if !(value.is_i64() || value.is_u64()) => {
            errors.push(type_error(path, value, "integer"))
        }
        _ => {}
    }
}

fn check_object(
    fields: &serde_json::Map<String, Value>,
    schema: &JSONSchemaProps,
    path: &str,
    ignored: &[&str],
    errors: &mut Vec<FieldError>,
) {
    let empty = BTreeMap::new();
    let properties = schema.properties.as_ref().unwrap_or(&empty);
    for required in schema.required.iter().flatten() {
        if fields.get(required).is_none_or(Value::is_null) {
            errors.push(FieldError::new(
                join(path, required),
                FieldErrorKind::Required,
                "",
                Cause::Schema,
            ));
        }
    }
    for (key, value) in fields {
        // The API server prunes nulls from non-nullable fields before validating.
        if value.is_null() || ignored.contains(&key.as_str()) {
            continue;
        }
        if let Some(property) = properties.get(key) {
            check_value(value, property, &join(path, key), errors);
        } else if let Some(JSONSchemaPropsOrBool::Schema(values)) = &schema.additional_properties {
            check_value(value, values, &format!("{path}[{key}]"), errors);
        } else {
            let detail = unknown_field_detail(key, properties.keys().map(String::as_str));
            errors.push(FieldError::new(
                join(path, key),
                FieldErrorKind::UnknownField,
                detail,
                Cause::Schema,
            ));
        }
    }
}

fn check_string(text: &str, schema: &JSONSchemaProps, path: &str, errors: &mut Vec<FieldError>) {
    if let Some(allowed) = &schema.enum_ {
        let supported: Vec<String> = allowed
            .iter()
            .filter_map(|v| v.0.as_str().map(str::to_string))
            .collect();
        if !supported.iter().any(|s| s == text) {
            errors.push(
                FieldError::new(
                    path,
                    FieldErrorKind::NotSupported { supported },
                    "",
                    Cause::Schema,
                )
                .with_value(quote(text)),
            );
            return;
        }
    }
    if let Some(min) = schema.min_length
        && (text.chars().count() as i64) < min
    {
        errors.push(
            FieldError::new(
                path,
                FieldErrorKind::Invalid,
                format!("{path} in body should be at least {min} chars long"),
                Cause::Schema,
            )
            .with_value(quote(text)),
        );
    }
}

/// Suggest the declared field closest to a misspelt one, else list the declared fields.
fn unknown_field_detail<'a>(key: &str, known: impl Iterator<Item = &'a str>) -> String {
    let known: Vec<&str> = known.collect();
    let closest = known
        .iter()
        .map(|candidate| {
            (
                edit_distance(&key.to_lowercase(), &candidate.to_lowercase()),
                *candidate,
            )
        })
        .min();
    match closest {
        Some((distance, candidate)) if distance <= 2 => {
            format!(
                "field not declared in schema; did you mean {}?",
                quote(candidate)
            )
        }
        _ if known.is_empty() => "field not declared in schema".to_string(),
        _ => format!(
            "field not declared in schema; declared fields are {}",
            known.join(" | ")
        ),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

fn type_error(path: &str, value: &Value, expected: &'static str) -> FieldError {
    let actual = json_type(value);
    let shown = if path.is_empty() { "body" } else { path };
    FieldError::new(
        path,
        FieldErrorKind::TypeInvalid { expected },
        format!(
            "{shown} in body must be of type {expected}: {}",
            quote(actual)
        ),
        Cause::Schema,
    )
    .with_value(quote(actual))
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
