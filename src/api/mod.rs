//! The `TracePipeline` API (docs/reference/tracepipeline.md): group `telemetry.kyma-project.io`,
//! versions `v1beta1` (storage) and `v1alpha1` (served, deprecated). Both versions share every type
//! below; they differ only in the OTLP output, where `v1alpha1` lacks `compression`.

mod reason;
pub mod v1alpha1;
pub mod v1beta1;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

pub use reason::Reason;

pub const GROUP: &str = "telemetry.kyma-project.io";
pub const KIND: &str = "TracePipeline";
pub const PLURAL: &str = "tracepipelines";
/// The CRD name and the qualified resource used in API error messages.
pub const RESOURCE: &str = "tracepipelines.telemetry.kyma-project.io";
pub const STORAGE_VERSION: &str = "v1beta1";
pub const DEPRECATED_VERSION: &str = "v1alpha1";
pub const V1ALPHA1_DEPRECATION_WARNING: &str = "telemetry.kyma-project.io/v1alpha1 TracePipeline is deprecated; use telemetry.kyma-project.io/v1beta1";

/// The multi-version CRD: `v1beta1` stored, `v1alpha1` served and deprecated. Both schemas are
/// generated from the Rust types, so the CRD and the validation engine cannot disagree.
pub fn crd() -> CustomResourceDefinition {
    let merged = kube::core::crd::merge_crds(
        vec![
            v1beta1::TracePipeline::crd(),
            v1alpha1::TracePipeline::crd(),
        ],
        STORAGE_VERSION,
    )
    .expect("both versions are generated from the same group, kind and scope");
    let mut value = serde_json::to_value(merged).expect("a CRD serialises to JSON");
    strip_nulls(&mut value);
    serde_json::from_value(value)
        .expect("removing `nullable` and null enum values keeps a valid CRD")
}

/// schemars marks every `Option` field `nullable` and lists `null` among an optional enum's
/// values. Both go:
/// - The API server keeps an explicit `null` in a nullable field, so `has(self.value)` would be
///   true for `value: null` and the CEL rules would misfire; without `nullable` the API server
///   prunes nulls, as it does for the reference CRD.
/// - A `null` enum value is refused by the client-side validation of kubectl and Helm on
///   Kubernetes 1.24 (`unknown object type "nil"`); an absent field never needs it.
fn strip_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove("nullable");
            if let Some(serde_json::Value::Array(values)) = map.get_mut("enum") {
                values.retain(|v| !v.is_null());
            }
            map.values_mut().for_each(strip_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// A value given either inline or as a reference to a key of a Secret.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.value) && has(self.valueFrom))").message("Only one of 'value' or 'valueFrom' can be set"))]
pub struct ValueType {
    /// The value as plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    // Boxed (also in `Header`): readers move values by value, three Strings are a lot to move.
    /// The value as a reference to a resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<Box<ValueFromSource>>,
}

/// Where a value comes from when it is not given inline.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ValueFromSource {
    /// Refers to the value of a specific key in a Secret. You must provide `name` and `namespace`
    /// of the Secret, as well as the name of the `key`.
    pub secret_key_ref: SecretKeyRef,
}

/// Selects a key of a Secret in a given namespace. Secrets may live in any namespace.
#[derive(
    KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub struct SecretKeyRef {
    /// The name of the Secret containing the referenced value.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The name of the namespace containing the Secret with the referenced value.
    #[schemars(length(min = 1))]
    pub namespace: String,
    /// The name of the key of the Secret holding the referenced value.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// The OTLP transport protocol.
#[derive(JsonSchema, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Grpc,
    Http,
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        string_variant(
            deserializer,
            &[("grpc", Protocol::Grpc), ("http", Protocol::Http)],
        )
    }
}

/// Compression of the exported payload.
#[derive(JsonSchema, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Zstd,
}

impl<'de> Deserialize<'de> for Compression {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        string_variant(
            deserializer,
            &[
                ("none", Compression::None),
                ("gzip", Compression::Gzip),
                ("snappy", Compression::Snappy),
                ("zstd", Compression::Zstd),
            ],
        )
    }
}

/// Reads an enum from its string, as the schema declares it. serde's derived enums also take
/// the map form (`{"grpc": null}`), which the schema rejects; the types must not be laxer.
fn string_variant<'de, D: Deserializer<'de>, T: Copy + 'static>(
    deserializer: D,
    variants: &'static [(&'static str, T)],
) -> Result<T, D::Error> {
    struct Variants<T: 'static>(&'static [(&'static str, T)]);

    impl<T: Copy> Visitor<'_> for Variants<T> {
        type Value = T;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            let names: Vec<&str> = self.0.iter().map(|(name, _)| *name).collect();
            write!(f, "one of {}", names.join(", "))
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
            self.0
                .iter()
                .find(|(name, _)| *name == text)
                .map(|(_, variant)| *variant)
                .ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self))
        }
    }

    deserializer.deserialize_str(Variants(variants))
}

/// Reads `null` as the default (an empty list or map): the schema treats `null` as an absent
/// field, so the types must accept it too.
pub(crate) fn null_as_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    deserializer: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Authentication against the backend. At most one method can be set.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(has(self.basic) && has(self.oauth2))").message("Only one authentication method can be specified"))]
pub struct AuthenticationOptions {
    /// Activates `Basic` authentication for the destination; user and password are sent as an
    /// `Authorization: Basic` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<BasicAuthOptions>,
    /// Activates OAuth2 client-credentials authentication for the destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2Options>,
}

/// User and password for `Basic` authentication.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct BasicAuthOptions {
    /// The basic auth user name, inline or from a Secret.
    #[x_kube(validation = Rule::new("has(self.value) || has(self.valueFrom)").message("'user' must have 'value' or 'valueFrom' set"))]
    pub user: ValueType,
    /// The basic auth password, inline or from a Secret.
    #[x_kube(validation = Rule::new("has(self.value) || has(self.valueFrom)").message("'password' must have 'value' or 'valueFrom' set"))]
    pub password: ValueType,
}

/// OAuth2 client-credentials settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2Options {
    /// The OAuth2 token endpoint URL, inline or from a Secret.
    #[serde(rename = "tokenURL")]
    #[x_kube(
        validation = Rule::new("has(self.value) || has(self.valueFrom)").message("'tokenURL' must have 'value' or 'valueFrom' set"),
        validation = Rule::new("!has(self.value) || size(self.value) == 0 || isURL(self.value)").message("'tokenURL' must be a valid URL")
    )]
    pub token_url: ValueType,
    /// The OAuth2 client ID, inline or from a Secret.
    #[serde(rename = "clientID")]
    #[x_kube(validation = Rule::new("has(self.value) || has(self.valueFrom)").message("'clientID' must have 'value' or 'valueFrom' set"))]
    pub client_id: ValueType,
    /// The OAuth2 client secret, inline or from a Secret.
    #[x_kube(validation = Rule::new("has(self.value) || has(self.valueFrom)").message("'clientSecret' must have 'value' or 'valueFrom' set"))]
    pub client_secret: ValueType,
    /// Optional OAuth2 scopes to request.
    #[serde(
        default,
        deserialize_with = "crate::api::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub scopes: Vec<String>,
    /// Optional additional parameters sent to the token endpoint.
    #[serde(
        default,
        deserialize_with = "crate::api::null_as_default",
        skip_serializing_if = "std::collections::BTreeMap::is_empty"
    )]
    pub params: std::collections::BTreeMap<String, String>,
}

/// A custom header added to every export request.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!(has(self.value) && has(self.valueFrom))").message("Only one of 'value' or 'valueFrom' can be set"),
    validation = Rule::new("has(self.value) || has(self.valueFrom)").message("'headers' must have 'value' or 'valueFrom' set")
)]
pub struct Header {
    /// The header name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// An optional prefix of the header value, separated from the value by one space
    /// (for example `Bearer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The header value as plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The header value as a reference to a resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<Box<ValueFromSource>>,
}

impl Header {
    /// The header's value in the shape every other value has.
    pub fn value_type(&self) -> ValueType {
        ValueType {
            value: self.value.clone(),
            value_from: self.value_from.clone(),
        }
    }
}

/// TLS settings for the connection to the backend.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.cert) == has(self.key)").message("Can define either both 'cert' and 'key', or neither"))]
pub struct OutputTls {
    /// Send requests in plaintext instead of TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// Skip verification of the server certificate (not recommended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    /// A CA certificate (PEM) to verify the server certificate with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<ValueType>,
    /// A client certificate (PEM) for mutual TLS; requires `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<ValueType>,
    /// The private key (PEM) of the client certificate; requires `cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<ValueType>,
}

/// One group of OTTL statements, run by the gateway on the pipeline's spans, with the context
/// (span, span event, resource or scope) inferred from the paths it uses.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct TransformSpec {
    /// OTTL conditions, ORed together, that select the spans the statements apply to.
    #[serde(
        default,
        deserialize_with = "crate::api::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<String>,
    /// OTTL statements that transform the selected spans.
    #[serde(
        default,
        deserialize_with = "crate::api::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub statements: Vec<String>,
}

/// One group of OTTL conditions; the gateway drops the pipeline's spans that match any of them.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterSpec {
    /// OTTL conditions, ORed together; a span matching any of them is dropped.
    #[serde(
        default,
        deserialize_with = "crate::api::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<String>,
}

/// The observed state of a TracePipeline.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct TracePipelineStatus {
    /// The conditions `ConfigurationGenerated`, `GatewayHealthy` and `TelemetryFlowHealthy`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// `S(x)` (docs/reference/gateway.md#environment-variables): the suffix of a pipeline's
/// environment variables in the gateway, uppercase with `.` and `-` turned into `_`. Two names
/// with the same suffix would collide.
pub fn env_var_suffix(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii() {
                char::from(env_var_byte(c as u8))
            } else {
                c
            }
        })
        .collect()
}

/// Whether two names have the same [`env_var_suffix`], without building either: the webhook
/// compares a new name with every existing one.
pub fn same_env_var_suffix(a: &str, b: &str) -> bool {
    // The mapping changes ASCII bytes into ASCII bytes only, so equal suffixes mean equal lengths
    // and byte-wise equal mappings.
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| env_var_byte(x) == env_var_byte(y))
}

/// The suffix's rule for one byte: non-ASCII bytes stay as they are.
fn env_var_byte(byte: u8) -> u8 {
    match byte {
        b'.' | b'-' => b'_',
        other => other.to_ascii_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{env_var_suffix, same_env_var_suffix};

    #[test]
    fn names_differing_in_dots_dashes_and_case_share_a_suffix() {
        assert!(same_env_var_suffix("my-pipe.a", "my.pipe-a"));
        assert!(same_env_var_suffix("Ab", "aB"));
        assert!(!same_env_var_suffix("my-pipe", "my-pipes"));
        assert!(!same_env_var_suffix("a_b", "a-c"));
        assert!(same_env_var_suffix("ä-x", "ä.x"));
        assert!(!same_env_var_suffix("ä", "Ä"));
    }

    proptest! {
        #[test]
        fn same_suffix_agrees_with_the_suffixes(
            a in "[a-zA-Z0-9._ä-]{0,6}",
            b in "[a-zA-Z0-9._ä-]{0,6}",
        ) {
            prop_assert_eq!(
                same_env_var_suffix(&a, &b),
                env_var_suffix(&a) == env_var_suffix(&b)
            );
            let twin: String = a
                .chars()
                .map(|c| match c {
                    '.' => '-',
                    '-' => '.',
                    c => c.to_ascii_lowercase(),
                })
                .collect();
            prop_assert!(same_env_var_suffix(&a, &twin));
        }
    }
}
