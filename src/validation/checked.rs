//! One pass over an object's JSON text that reads the typed spec and checks it against the
//! schema at the same time: the webhook's path for valid objects. It only detects that the text
//! breaks the schema (or holds something it does not read); the caller then runs the full
//! check, which writes the report, so errors come from one place.
//!
//! The check wraps the JSON deserializer: every value the typed read asks for passes through
//! [`Checked`], which knows the schema node of that value, and every visit the JSON reader makes
//! passes through [`Wrap`], which compares what was found with the node before handing it on.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, EnumAccess, IgnoredAny, MapAccess, SeqAccess,
    Visitor,
};

use super::schema::{self, Node, Type};
use super::{ApiVersion, HeadMetadata, ParsedPipeline, version_of};
use crate::api::{self, v1alpha1, v1beta1};

/// What the wrappers learn while the typed read runs.
struct State<'s> {
    /// A value breaks the schema, or was skipped unchecked.
    broken: Cell<bool>,
    /// The value just read was `null` (absent, for required fields).
    null: Cell<bool>,
    /// The schema of the value after the key just read, and that key's required bit.
    next_value: Cell<Option<(&'s Node, u64)>>,
}

impl State<'_> {
    fn new() -> Self {
        State {
            broken: Cell::new(false),
            null: Cell::new(false),
            next_value: Cell::new(None),
        }
    }

    fn break_if(&self, broken: bool) {
        if broken {
            self.broken.set(true);
        }
    }
}

/// Read a TracePipeline object from JSON text in one pass: its identity, then its spec checked
/// against the schema of the version it names. `None` leaves the object to the full check: it
/// breaks the schema, names another kind or version, lacks a name, or puts `spec` before
/// `apiVersion` and `kind` (the API server sorts keys, so its objects never do).
pub fn read_pipeline(text: &str) -> Option<ParsedPipeline> {
    let mut input = serde_json::Deserializer::from_str(text);
    let OnePassPipeline(parsed) = OnePassPipeline::deserialize(&mut input).ok()?;
    input.end().ok()?;
    parsed.map(|parsed| *parsed)
}

/// A TracePipeline object read as in [`read_pipeline`], as a field of a larger document (the
/// AdmissionReview's `request.object`). `None`, or a failed read of the whole document, leaves
/// the object to the full check.
///
/// Boxed, so that the documents around it move a pointer, not the pipeline.
pub struct OnePassPipeline(pub Option<Box<ParsedPipeline>>);

impl<'de> Deserialize<'de> for OnePassPipeline {
    fn deserialize<D: Deserializer<'de>>(input: D) -> Result<Self, D::Error> {
        input.deserialize_map(ObjectVisitor).map(OnePassPipeline)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Option<Box<ParsedPipeline>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a TracePipeline object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut api_version: Option<&'de str> = None;
        let mut kind: Option<&'de str> = None;
        let mut metadata: Option<HeadMetadata<'de>> = None;
        let mut spec = None;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "apiVersion" if api_version.is_none() => api_version = Some(map.next_value()?),
                "kind" if kind.is_none() => kind = Some(map.next_value()?),
                "metadata" if metadata.is_none() => metadata = Some(map.next_value()?),
                "spec" if spec.is_none() => {
                    let Some(version) = api_version
                        .filter(|_| kind == Some(api::KIND))
                        .and_then(version_of)
                    else {
                        return Ok(None);
                    };
                    let Some(node) = schema::root(version.name()).and_then(|r| r.property("spec"))
                    else {
                        return Ok(None);
                    };
                    let state = State::new();
                    let read: v1beta1::TracePipelineSpec = match version {
                        ApiVersion::V1Beta1 => map.next_value_seed(checked_seed(node, &state))?,
                        ApiVersion::V1Alpha1 => map
                            .next_value_seed(checked_seed::<v1alpha1::TracePipelineSpec>(
                                node, &state,
                            ))?
                            .into(),
                    };
                    if state.broken.get() {
                        return Ok(None);
                    }
                    spec = Some((version, read));
                }
                "status" => {
                    map.next_value::<IgnoredAny>()?;
                }
                _ => return Ok(None),
            }
        }
        let Some((version, spec)) = spec else {
            return Ok(None);
        };
        let metadata = metadata.unwrap_or_default();
        let name = metadata.name.unwrap_or_default();
        let root = schema::root(version.name()).expect("both served versions have a schema");
        let seen = root.required_bit("spec");
        if (name.is_empty() && metadata.generate_name.is_none())
            || root.missing_required(seen).next().is_some()
        {
            return Ok(None);
        }
        Ok(Some(Box::new(ParsedPipeline {
            name: name.into_owned(),
            version,
            spec,
        })))
    }
}

fn checked_seed<'s, 'de, T: Deserialize<'de>>(
    node: &'s Node,
    state: &'s State<'s>,
) -> CheckedSeed<'s, PhantomData<T>> {
    CheckedSeed {
        seed: PhantomData,
        node,
        role: Role::Value,
        state,
    }
}

/// Whether the wrapped input is a value or an object's key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Value,
    /// A key of an object whose schema is the node.
    Key,
}

/// A deserializer that checks what it reads against `node`.
struct Checked<'s, D> {
    input: D,
    node: &'s Node,
    role: Role,
    state: &'s State<'s>,
}

impl<'s, D> Checked<'s, D> {
    fn wrap<V>(&self, visitor: V) -> Wrap<'s, V> {
        Wrap {
            visitor,
            node: self.node,
            role: self.role,
            state: self.state,
        }
    }
}

macro_rules! forward {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            let visitor = self.wrap(visitor);
            self.input.$method(visitor)
        }
    )*};
}

impl<'de, 's, D: Deserializer<'de>> Deserializer<'de> for Checked<'s, D> {
    type Error = D::Error;

    forward!(
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_string
        deserialize_bytes deserialize_byte_buf deserialize_option deserialize_unit deserialize_seq
        deserialize_map deserialize_identifier
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.wrap(visitor);
        self.input.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.wrap(visitor);
        self.input.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.wrap(visitor);
        self.input.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.wrap(visitor);
        self.input.deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.wrap(visitor);
        self.input.deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.wrap(visitor);
        self.input.deserialize_enum(name, variants, visitor)
    }

    /// A value the typed read skips is not checked: a field the schema does not declare, or
    /// one the types lack. Either way the full check must look at it.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.state.broken.set(true);
        self.input.deserialize_ignored_any(visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.input.is_human_readable()
    }
}

/// A visitor that checks what the JSON reader found before handing it to the typed read.
struct Wrap<'s, V> {
    visitor: V,
    node: &'s Node,
    role: Role,
    state: &'s State<'s>,
}

impl<'s, V> Wrap<'s, V> {
    /// Note a non-null value of type `actual`; only strings can be keys.
    fn found(&self, actual: Type) {
        self.state.null.set(false);
        self.state
            .break_if(self.role == Role::Key || !self.node.type_.accepts(actual));
    }

    fn found_str(&self, text: &str) {
        self.state.null.set(false);
        match self.role {
            Role::Key => {
                let next = self
                    .node
                    .field(text)
                    .map(|field| (field.node, field.required_bit));
                self.state.break_if(next.is_none());
                self.state.next_value.set(next);
            }
            Role::Value => self.state.break_if(
                !self.node.type_.accepts(Type::String)
                    || (self.node.type_ == Type::String
                        && self.node.string_problem(text).is_some()),
            ),
        }
    }

    fn inner<D>(&self, input: D) -> Checked<'s, D> {
        Checked {
            input,
            node: self.node,
            role: self.role,
            state: self.state,
        }
    }
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<V::Value, E> {
        self.found(Type::Boolean);
        self.visitor.visit_bool(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<V::Value, E> {
        self.found(Type::Integer);
        self.visitor.visit_i64(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<V::Value, E> {
        self.found(Type::Integer);
        self.visitor.visit_u64(v)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<V::Value, E> {
        self.found(Type::Number);
        self.visitor.visit_f64(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        self.found_str(v);
        self.visitor.visit_str(v)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<V::Value, E> {
        self.found_str(v);
        self.visitor.visit_borrowed_str(v)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<V::Value, E> {
        self.found_str(&v);
        self.visitor.visit_string(v)
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.state.null.set(true);
        self.visitor.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.state.null.set(true);
        self.visitor.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, input: D) -> Result<V::Value, D::Error> {
        let input = self.inner(input);
        self.visitor.visit_some(input)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, input: D) -> Result<V::Value, D::Error> {
        let input = self.inner(input);
        self.visitor.visit_newtype_struct(input)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.found(Type::Array);
        let items = match (self.node.type_, self.node.items()) {
            (Type::Array, Some(items)) => items,
            // Elements the schema does not describe are left to the full check.
            _ => {
                self.state.broken.set(true);
                self.node
            }
        };
        let value = self.visitor.visit_seq(CheckedSeq {
            seq,
            items,
            state: self.state,
        });
        self.state.null.set(false);
        value
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.found(Type::Object);
        self.state.break_if(self.node.type_ != Type::Object);
        let value = self.visitor.visit_map(CheckedMap {
            map,
            node: self.node,
            seen: 0,
            state: self.state,
        });
        self.state.null.set(false);
        value
    }

    /// The API's enums read strings only, so an enum access here is a shape the schema forbids.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.state.broken.set(true);
        self.visitor.visit_enum(data)
    }
}

struct CheckedSeed<'s, S> {
    seed: S,
    node: &'s Node,
    role: Role,
    state: &'s State<'s>,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for CheckedSeed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, input: D) -> Result<S::Value, D::Error> {
        self.seed.deserialize(Checked {
            input,
            node: self.node,
            role: self.role,
            state: self.state,
        })
    }
}

struct CheckedSeq<'s, A> {
    seq: A,
    items: &'s Node,
    state: &'s State<'s>,
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for CheckedSeq<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.seq.next_element_seed(CheckedSeed {
            seed,
            node: self.items,
            role: Role::Value,
            state: self.state,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        self.seq.size_hint()
    }
}

struct CheckedMap<'s, A> {
    map: A,
    node: &'s Node,
    /// Required bits of the fields present so far.
    seen: u64,
    state: &'s State<'s>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for CheckedMap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.state.next_value.set(None);
        let key = self.map.next_key_seed(CheckedSeed {
            seed,
            node: self.node,
            role: Role::Key,
            state: self.state,
        })?;
        if key.is_none() {
            self.state
                .break_if(self.node.missing_required(self.seen).next().is_some());
        }
        Ok(key)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        let Some((node, required_bit)) = self.state.next_value.take() else {
            // An undeclared field: already marked broken; let the typed read skip it.
            return self.map.next_value_seed(seed);
        };
        let value = self.map.next_value_seed(CheckedSeed {
            seed,
            node,
            role: Role::Value,
            state: self.state,
        })?;
        if !self.state.null.get() {
            self.seen |= required_bit;
        }
        Ok(value)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::read_pipeline;
    use crate::validation::parse;

    /// A pipeline that sets every field of the schema.
    fn full(version: &str) -> Value {
        let secret = json!({"secretKeyRef": {"name": "s", "namespace": "n", "key": "k"}});
        let mut otlp = json!({
            "protocol": "http",
            "endpoint": {"value": "https://backend:4318"},
            "path": "/v1/traces",
            "authentication": {"oauth2": {
                "tokenURL": {"value": "https://token"},
                "clientID": {"valueFrom": secret},
                "clientSecret": {"value": "secret"},
                "scopes": ["a", "b"],
                "params": {"audience": "x"}
            }},
            "headers": [{"name": "X-A", "prefix": "p", "value": "1"}, {"name": "X-B", "valueFrom": secret}],
            "tls": {"insecure": false, "insecureSkipVerify": false,
                    "ca": {"value": "c"}, "cert": {"valueFrom": secret}, "key": {"valueFrom": secret}}
        });
        if version == "v1beta1" {
            otlp["compression"] = json!("gzip");
        }
        json!({
            "apiVersion": format!("telemetry.kyma-project.io/{version}"),
            "kind": "TracePipeline",
            "metadata": {"name": "full", "labels": {"a": "b"}, "managedFields": [{"manager": "kubectl"}]},
            "spec": {
                "output": {"otlp": otlp},
                "transform": [{"conditions": ["c"], "statements": ["s"]}],
                "filter": [{"conditions": ["c"]}]
            },
            "status": {"conditions": []}
        })
    }

    /// Every path to a value in `value`, outermost first.
    fn paths(value: &Value, prefix: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
        out.push(prefix.clone());
        match value {
            Value::Object(map) => map.iter().for_each(|(k, v)| {
                prefix.push(json!(k));
                paths(v, prefix, out);
                prefix.pop();
            }),
            Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| {
                prefix.push(json!(i));
                paths(v, prefix, out);
                prefix.pop();
            }),
            _ => {}
        }
    }

    /// Replace the value at `path` (or remove it, or add an unknown sibling field).
    fn mutate(object: &mut Value, path: &[Value], replacement: Option<Value>) {
        let Some((last, parents)) = path.split_last() else {
            if let Some(value) = replacement {
                *object = value;
            }
            return;
        };
        let mut parent = &mut *object;
        for step in parents {
            parent = match step {
                Value::String(key) => &mut parent[key.as_str()],
                _ => &mut parent[step.as_u64().unwrap() as usize],
            };
        }
        match (parent, last, replacement) {
            (Value::Object(map), Value::String(key), None) => {
                map.remove(key);
            }
            (Value::Object(map), Value::String(key), Some(value)) => {
                map.insert(key.clone(), value);
            }
            (Value::Array(items), Value::Number(index), None) => {
                items.remove(index.as_u64().unwrap() as usize);
            }
            (Value::Array(items), Value::Number(index), Some(value)) => {
                items[index.as_u64().unwrap() as usize] = value;
            }
            _ => {}
        }
    }

    fn replacement() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            Just(Some(Value::Null)),
            Just(Some(json!(0))),
            Just(Some(json!(-1.5))),
            Just(Some(json!(true))),
            Just(Some(json!(""))),
            Just(Some(json!("x"))),
            Just(Some(json!("grpc"))),
            Just(Some(json!("zstd"))),
            Just(Some(json!({}))),
            Just(Some(json!([]))),
            Just(Some(json!(["x"]))),
            Just(Some(json!({"unknown": 1}))),
            Just(Some(json!({"grpc": null}))),
            Just(Some(json!({"value": "v"}))),
        ]
    }

    /// The one-pass reader against the full check on the same object.
    fn agree(object: &Value) -> Result<(), TestCaseError> {
        let text = object.to_string();
        let full = parse(object);
        match read_pipeline(&text) {
            Some(read) => prop_assert_eq!(Ok(read), full, "one pass accepted {}", text),
            // The API server's objects come with sorted keys, so every valid one takes the
            // single pass; otherwise the webhook would be slow for no reason.
            None => prop_assert!(full.is_err(), "one pass refused a valid object: {}", text),
        }
        Ok(())
    }

    #[test]
    fn valid_objects_take_one_pass() {
        for version in ["v1beta1", "v1alpha1"] {
            let object = full(version);
            assert!(read_pipeline(&object.to_string()).is_some());
            assert_eq!(
                read_pipeline(&object.to_string()).map(Ok),
                Some(parse(&object))
            );
        }
    }

    #[test]
    fn unsorted_keys_are_left_to_the_full_check() {
        let object = full("v1beta1");
        let text = format!(
            r#"{{"spec":{},"apiVersion":"telemetry.kyma-project.io/v1beta1","kind":"TracePipeline","metadata":{{"name":"a"}}}}"#,
            object["spec"]
        );
        assert!(read_pipeline(&text).is_none());
        assert_eq!(crate::validation::parse_json(&text).unwrap().name, "a");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Up to three edits anywhere in a full pipeline: whenever the single pass accepts the
        /// object, the full check accepts it and reads the same pipeline.
        #[test]
        fn one_pass_agrees_with_the_full_check(
            beta in any::<bool>(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), replacement()), 1..4),
        ) {
            let mut object = full(if beta { "v1beta1" } else { "v1alpha1" });
            for (at, value) in edits {
                let mut all = Vec::new();
                paths(&object, &mut Vec::new(), &mut all);
                let path = at.get(&all).clone();
                mutate(&mut object, &path, value);
            }
            agree(&object)?;
        }
    }
}
