//! Structural checks against the CRD's own OpenAPI schema (the first rows of
//! docs/reference/tracepipeline.md#admission-rules): types, required fields, enums, minimum lengths
//! and fields the schema does not declare. The schema is the one `telemetry-manager crd` prints, so
//! offline answers match the API server's.

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
pub const SERVER_OWNED: [&str; 4] = ["apiVersion", "kind", "metadata", "status"];

/// The OpenAPI `type` of a schema node; `Untyped` accepts every value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    Object,
    Array,
    String,
    Boolean,
    Integer,
    Number,
    Untyped,
}

impl Type {
    fn of(name: Option<&str>) -> Type {
        match name {
            Some("object") => Type::Object,
            Some("array") => Type::Array,
            Some("string") => Type::String,
            Some("boolean") => Type::Boolean,
            Some("integer") => Type::Integer,
            Some("number") => Type::Number,
            _ => Type::Untyped,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Type::Object => "object",
            Type::Array => "array",
            Type::String => "string",
            Type::Boolean => "boolean",
            Type::Integer => "integer",
            Type::Number => "number",
            Type::Untyped => "",
        }
    }

    /// Whether a value of type `actual` is valid where this type is expected.
    pub fn accepts(self, actual: Type) -> bool {
        self == Type::Untyped || self == actual || (self == Type::Number && actual == Type::Integer)
    }
}

/// A schema node with only what structural validation reads, compiled once from the CRD: a
/// check walks a few small vectors instead of the OpenAPI types' maps of large structs.
#[derive(Debug)]
pub struct Node {
    pub type_: Type,
    /// Sorted by name, as the error messages list them.
    properties: Vec<Property>,
    /// The properties' names in a compact form, searched before a name is compared.
    keys: Vec<NameKey>,
    required: Vec<String>,
    additional: Option<Box<Node>>,
    items: Option<Box<Node>>,
    allowed: Option<Vec<String>>,
    min_length: Option<usize>,
}

impl Node {
    fn compile(schema: &JSONSchemaProps) -> Node {
        let boxed = |schema: &JSONSchemaProps| Box::new(Node::compile(schema));
        let properties: Vec<Property> = schema
            .properties
            .iter()
            .flatten()
            .map(|(name, property)| Property {
                name: name.clone(),
                node: Node::compile(property),
                required_bit: required_bit(schema.required.as_deref().unwrap_or_default(), name),
            })
            .collect();
        Node {
            type_: Type::of(schema.type_.as_deref()),
            keys: properties.iter().map(|p| NameKey::of(&p.name)).collect(),
            properties,
            required: schema.required.clone().unwrap_or_default(),
            additional: match &schema.additional_properties {
                Some(JSONSchemaPropsOrBool::Schema(values)) => Some(boxed(values)),
                _ => None,
            },
            items: match &schema.items {
                Some(JSONSchemaPropsOrArray::Schema(items)) => Some(boxed(items)),
                _ => None,
            },
            allowed: schema.enum_.as_ref().map(|values| {
                values
                    .iter()
                    .filter_map(|v| v.0.as_str().map(str::to_string))
                    .collect()
            }),
            min_length: schema.min_length.map(|min| min.max(0) as usize),
        }
    }

    /// The schema of a declared field.
    pub fn property(&self, name: &str) -> Option<&Node> {
        self.declared(name).map(|p| &p.node)
    }

    fn declared(&self, name: &str) -> Option<&Property> {
        let key = NameKey::of(name);
        self.keys
            .iter()
            .zip(&self.properties)
            .find(|(k, p)| {
                **k == key
                    && (name.len() <= NameKey::PREFIX
                        || NameKey::rest(&p.name) == NameKey::rest(name))
            })
            .map(|(_, p)| p)
    }

    /// The value under `key` of an object: its schema (a declared field's, else that of
    /// additional properties) and its bit among the required fields (0 if not required).
    /// `None` for a field the schema does not declare.
    pub fn field(&self, key: &str) -> Option<Field<'_>> {
        match self.declared(key) {
            Some(property) => Some(Field {
                node: &property.node,
                declared: true,
                required_bit: property.required_bit,
            }),
            None => self.additional.as_deref().map(|node| Field {
                node,
                declared: false,
                required_bit: self.required_bit(key),
            }),
        }
    }

    /// The schema of an array's elements; `None` when the schema does not constrain them.
    pub fn items(&self) -> Option<&Node> {
        self.items.as_deref()
    }

    /// The bit that marks `key` as present in a [`Node::missing_required`] set; 0 if `key` is
    /// not required.
    pub fn required_bit(&self, key: &str) -> u64 {
        required_bit(&self.required, key)
    }

    /// The required fields whose bits are not in `seen`.
    pub fn missing_required(&self, seen: u64) -> impl Iterator<Item = &str> {
        self.required
            .iter()
            .enumerate()
            .filter(move |(i, _)| seen & (1 << (i % 64)) == 0)
            .map(|(_, name)| name.as_str())
    }

    /// What is wrong with a string value here, if anything.
    pub fn string_problem(&self, text: &str) -> Option<StringProblem<'_>> {
        if let Some(allowed) = &self.allowed
            && !allowed.iter().any(|v| v == text)
        {
            return Some(StringProblem::NotAllowed(allowed));
        }
        match self.min_length {
            Some(min) if text.chars().count() < min => Some(StringProblem::TooShort(min)),
            _ => None,
        }
    }
}

/// A name's length and first eight bytes: equal for equal names, and different for nearly
/// all others, so that a lookup reads one small array instead of every name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NameKey {
    len: usize,
    prefix: u64,
}

impl NameKey {
    const PREFIX: usize = 8;

    /// What two names with equal keys can still differ in: the bytes after the prefix.
    fn rest(name: &str) -> &[u8] {
        name.as_bytes().get(NameKey::PREFIX..).unwrap_or_default()
    }

    fn of(name: &str) -> NameKey {
        let prefix = match name.as_bytes().first_chunk::<{ NameKey::PREFIX }>() {
            Some(head) => u64::from_le_bytes(*head),
            // Byte by byte rather than a copy of the head: a copy of unknown length calls memcpy.
            None => name.bytes().enumerate().fold(0u64, |prefix, (i, byte)| {
                prefix | u64::from(byte) << (8 * i)
            }),
        };
        NameKey {
            len: name.len(),
            prefix,
        }
    }
}

#[derive(Debug)]
struct Property {
    name: String,
    node: Node,
    required_bit: u64,
}

/// Where an object's key leads.
#[derive(Clone, Copy)]
pub struct Field<'a> {
    pub node: &'a Node,
    /// A declared field, not one of the additional properties.
    pub declared: bool,
    pub required_bit: u64,
}

/// A bit per required field (the schema has far fewer than 64 per object); 0 if not required.
fn required_bit(required: &[String], key: &str) -> u64 {
    required
        .iter()
        .position(|r| r == key)
        .map_or(0, |index| 1 << (index % 64))
}

pub enum StringProblem<'a> {
    NotAllowed(&'a [String]),
    TooShort(usize),
}

fn schemas() -> &'static BTreeMap<String, Node> {
    static SCHEMAS: OnceLock<BTreeMap<String, Node>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        crate::api::crd()
            .spec
            .versions
            .into_iter()
            .filter_map(|v| Some((v.name, Node::compile(&v.schema?.open_api_v3_schema?))))
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
pub fn root(version: &str) -> Option<&'static Node> {
    schemas().get(version)
}

/// Check one object against `root` while it is deserialized from `input`: JSON text or an
/// already parsed `serde_json::Value`. The check reads the input once and builds nothing, so a
/// valid object costs no allocation; errors are collected, not returned at the first.
pub fn check<'de, D: Deserializer<'de>>(
    input: D,
    root: &Node,
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
    schema: &'s Node,
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
    /// Whether a value of type `actual` may stand here; records a mismatch if not.
    fn admits(&mut self, actual: Type) -> bool {
        let admitted = self.schema.type_.accepts(actual);
        if !admitted {
            let expected = self.schema.type_.name();
            self.errors
                .push(type_error(self.path, actual.name(), expected));
        }
        admitted
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
        write!(f, "a value of type {}", self.schema.type_.name())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Presence, A::Error> {
        if self.schema.type_ != Type::Object {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            self.admits(Type::Object);
            return Ok(Presence::Present);
        }
        let schema = self.schema;
        let errors = self.errors;
        let path = self.path;
        let mut seen: u64 = 0;
        while let Some(key) = map.next_key_seed(Key)? {
            let key = key.as_ref();
            if self.ignored.contains(&key) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let field = schema.field(key);
            let presence = if let Some(field) = field {
                let path = if field.declared {
                    Path::Field(&path, key)
                } else {
                    Path::Key(&path, key)
                };
                map.next_value_seed(Check {
                    schema: field.node,
                    path,
                    ignored: &[],
                    errors: &mut *errors,
                })?
            } else {
                map.next_value::<IgnoredAny>()?;
                let known = schema.properties.iter().map(|p| p.name.as_str());
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
            if let (Presence::Present, Some(field)) = (presence, field) {
                seen |= field.required_bit;
            }
        }
        for name in schema.missing_required(seen) {
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

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Presence, A::Error> {
        let items = match (self.schema.type_, self.schema.items()) {
            (Type::Array, Some(items)) => items,
            _ => {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                self.admits(Type::Array);
                return Ok(Presence::Present);
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

    fn visit_str<E: de::Error>(mut self, text: &str) -> Result<Presence, E> {
        if self.admits(Type::String) && self.schema.type_ == Type::String {
            check_string(text, self.schema, self.path, self.errors);
        }
        Ok(Presence::Present)
    }

    fn visit_bool<E: de::Error>(mut self, _: bool) -> Result<Presence, E> {
        self.admits(Type::Boolean);
        Ok(Presence::Present)
    }

    fn visit_i64<E: de::Error>(mut self, _: i64) -> Result<Presence, E> {
        self.admits(Type::Integer);
        Ok(Presence::Present)
    }

    fn visit_u64<E: de::Error>(mut self, _: u64) -> Result<Presence, E> {
        self.admits(Type::Integer);
        Ok(Presence::Present)
    }

    fn visit_f64<E: de::Error>(mut self, _: f64) -> Result<Presence, E> {
        self.admits(Type::Number);
        Ok(Presence::Present)
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

fn check_string(text: &str, schema: &Node, path: Path<'_>, errors: &mut Vec<FieldError>) {
    match schema.string_problem(text) {
        None => {}
        Some(StringProblem::NotAllowed(allowed)) => errors.push(
            FieldError::new(
                path.render(),
                FieldErrorKind::NotSupported {
                    supported: allowed.to_vec(),
                },
                "",
                Cause::Schema,
            )
            .with_value(quote(text)),
        ),
        Some(StringProblem::TooShort(min)) => {
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

#[cfg(test)]
mod tests {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;

    use super::{Node, Type};

    fn typed(type_: &str) -> JSONSchemaProps {
        JSONSchemaProps {
            type_: Some(type_.to_string()),
            ..JSONSchemaProps::default()
        }
    }

    /// Names that share a length and their first eight bytes are told apart by the rest.
    #[test]
    fn declared_fields_are_found_by_their_whole_name() {
        let declared = [
            ("a", "string"),
            ("insecure", "boolean"),
            ("insecureSkipVerify", "integer"),
            ("insecureSkipVerifx", "number"),
            ("insecureX", "array"),
        ];
        let node = Node::compile(&JSONSchemaProps {
            type_: Some("object".to_string()),
            properties: Some(
                declared
                    .iter()
                    .map(|(name, type_)| (name.to_string(), typed(type_)))
                    .collect(),
            ),
            ..JSONSchemaProps::default()
        });
        for (name, type_) in declared {
            let found = node.property(name).map(|n| n.type_);
            assert_eq!(found, Some(Type::of(Some(type_))), "{name}");
        }
        for unknown in [
            "",
            "b",
            "insecur",
            "insecureSkipVerifz",
            "insecureY",
            "Insecure",
        ] {
            assert!(node.property(unknown).is_none(), "{unknown}");
        }
    }
}
