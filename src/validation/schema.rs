//! Structural checks against the CRD's own OpenAPI schema (SPEC §3.1, first rows): types,
//! required fields, enums, minimum lengths and fields the schema does not declare. The schema is
//! the one `telemetry-manager crd` prints, so offline answers match the API server's.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

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

/// A field path built only when an error needs it: checking a valid object allocates nothing.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
    Key(&'a Path<'a>, &'a str),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Field(parent, name) => {
                let parent = parent.render();
                if parent.is_empty() {
                    name.to_string()
                } else {
                    format!("{parent}.{name}")
                }
            }
            Path::Index(parent, index) => format!("{}[{index}]", parent.render()),
            Path::Key(parent, key) => format!("{}[{key}]", parent.render()),
        }
    }
}

/// The schema of a served version's whole object.
pub fn root(version: &str) -> Option<&'static JSONSchemaProps> {
    schemas().get(version)
}

/// Check one object against `root` while it is deserialized from `input`: JSON text or an
/// already parsed `serde_json::Value`. The check reads the input once and builds nothing, so a
/// valid object costs no allocation; errors are collected, not returned at the first.
pub fn check<'de, D: Deserializer<'de>>(
    input: D,
    root: &JSONSchemaProps,
) -> Result<Vec<FieldError>, D::Error> {
    let mut errors = Vec::new();
    let seed = Check {
        schema: root,
        path: Path::Root,
        ignored: &SERVER_OWNED,
        errors: &mut errors,
    };
    seed.deserialize(input)?;
    // Input key order must not change the report.
    errors.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(errors)
}

/// Whether a value was present; `null` counts as absent, because the API server prunes nulls
/// from non-nullable fields before validating.
enum Presence {
    Present,
    Null,
}

struct Check<'s, 'p, 'e> {
    schema: &'s JSONSchemaProps,
    path: Path<'p>,
    /// Keys of this object that are not checked (the server-owned top-level fields).
    ignored: &'s [&'s str],
    errors: &'e mut Vec<FieldError>,
}

impl<'de> DeserializeSeed<'de> for Check<'_, '_, '_> {
    type Value = Presence;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Presence, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Check<'_, '_, '_> {
    fn expected(&self) -> &str {
        self.schema.type_.as_deref().unwrap_or_default()
    }

    /// Record a type mismatch, unless the schema has no type to match.
    fn mismatch(self, actual: &'static str) -> Presence {
        let expected = match self.expected() {
            "object" => "object",
            "array" => "array",
            "string" => "string",
            "boolean" => "boolean",
            "integer" => "integer",
            "number" => "number",
            _ => return Presence::Present,
        };
        if !(expected == "number" && actual == "integer") {
            self.errors.push(type_error(self.path, actual, expected));
        }
        Presence::Present
    }
}

/// Reads a map key, borrowed where the input allows.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

impl<'de> Visitor<'de> for Check<'_, '_, '_> {
    type Value = Presence;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a value of type {}", self.expected())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Presence, A::Error> {
        if self.expected() != "object" {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(self.mismatch("object"));
        }
        let schema = self.schema;
        let errors = self.errors;
        let path = self.path;
        let required = schema.required.as_deref().unwrap_or_default();
        // A bit per required field (the schema has far fewer than 64 per object).
        let mut seen: u64 = 0;
        while let Some(key) = map.next_key_seed(Key)? {
            let key = key.as_ref();
            if self.ignored.contains(&key) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let property = schema.properties.as_ref().and_then(|p| p.get(key));
            let presence = if let Some(property) = property {
                let path = Path::Field(&path, key);
                map.next_value_seed(Check {
                    schema: property,
                    path,
                    ignored: &[],
                    errors: &mut *errors,
                })?
            } else if let Some(JSONSchemaPropsOrBool::Schema(values)) =
                &schema.additional_properties
            {
                let path = Path::Key(&path, key);
                map.next_value_seed(Check {
                    schema: values,
                    path,
                    ignored: &[],
                    errors: &mut *errors,
                })?
            } else {
                map.next_value::<IgnoredAny>()?;
                let known = schema
                    .properties
                    .iter()
                    .flat_map(|p| p.keys().map(String::as_str));
                let detail = unknown_field_detail(key, known);
                let path = Path::Field(&path, key).render();
                errors.push(FieldError::new(
                    path,
                    FieldErrorKind::UnknownField,
                    detail,
                    Cause::Schema,
                ));
                Presence::Present
            };
            if let (Presence::Present, Some(index)) =
                (presence, required.iter().position(|r| r == key))
            {
                seen |= 1 << (index % 64);
            }
        }
        for (_, name) in required
            .iter()
            .enumerate()
            .filter(|(i, _)| seen & (1 << (i % 64)) == 0)
        {
            let path = Path::Field(&path, name).render();
            errors.push(FieldError::new(
                path,
                FieldErrorKind::Required,
                "",
                Cause::Schema,
            ));
        }
        Ok(Presence::Present)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Presence, A::Error> {
        let items = match (self.expected(), &self.schema.items) {
            ("array", Some(JSONSchemaPropsOrArray::Schema(items))) => items,
            ("array", _) => {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                return Ok(Presence::Present);
            }
            _ => {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                return Ok(self.mismatch("array"));
            }
        };
        let mut index = 0;
        loop {
            let path = Path::Index(&self.path, index);
            let element = Check {
                schema: items,
                path,
                ignored: &[],
                errors: &mut *self.errors,
            };
            if seq.next_element_seed(element)?.is_none() {
                return Ok(Presence::Present);
            }
            index += 1;
        }
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Presence, E> {
        if self.expected() != "string" {
            return Ok(self.mismatch("string"));
        }
        check_string(text, self.schema, self.path, self.errors);
        Ok(Presence::Present)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Presence, E> {
        Ok(if self.expected() == "boolean" {
            Presence::Present
        } else {
            self.mismatch("boolean")
        })
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Presence, E> {
        Ok(if self.expected() == "integer" {
            Presence::Present
        } else {
            self.mismatch("integer")
        })
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Presence, E> {
        Ok(if self.expected() == "integer" {
            Presence::Present
        } else {
            self.mismatch("integer")
        })
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Presence, E> {
        Ok(if self.expected() == "number" {
            Presence::Present
        } else {
            self.mismatch("number")
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<Presence, E> {
        Ok(Presence::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Presence, E> {
        Ok(Presence::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Presence, D::Error> {
        deserializer.deserialize_any(self)
    }
}

fn check_string(
    text: &str,
    schema: &JSONSchemaProps,
    path: Path<'_>,
    errors: &mut Vec<FieldError>,
) {
    if let Some(allowed) = &schema.enum_
        && !allowed.iter().any(|v| v.0.as_str() == Some(text))
    {
        let supported: Vec<String> = allowed
            .iter()
            .filter_map(|v| v.0.as_str().map(str::to_string))
            .collect();
        {
            errors.push(
                FieldError::new(
                    path.render(),
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
        let path = path.render();
        errors.push(
            FieldError::new(
                &path,
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

fn type_error(path: Path<'_>, actual: &'static str, expected: &'static str) -> FieldError {
    let path = path.render();
    let shown = if path.is_empty() {
        "body"
    } else {
        path.as_str()
    };
    let detail = format!(
        "{shown} in body must be of type {expected}: {}",
        quote(actual)
    );
    FieldError::new(
        path,
        FieldErrorKind::TypeInvalid { expected },
        detail,
        Cause::Schema,
    )
    .with_value(quote(actual))
}
