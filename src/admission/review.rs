//! AdmissionReview v1 on the wire: the request fields the webhooks read, and a response that
//! always echoes the request's `uid` and `apiVersion` and carries the JSON patch as base64, as the
//! API documents (docs/reference/tracepipeline.md#defaults).

use std::borrow::Cow;

use base64::Engine;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusCause, StatusDetails};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::validation::{OnePassPipeline, ParsedPipeline, Report};

pub const API_VERSIONS: [&str; 2] = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"];

/// The AdmissionReview envelope around a request read as `R`.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct ReviewIn<'a, R> {
    #[serde(borrow)]
    api_version: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    request: Option<R>,
}

impl<'a, R> ReviewIn<'a, R> {
    /// Read a review from `body`, which must be UTF-8 JSON (RFC 8259); checking the body once
    /// spares the reader checking each string.
    fn read(body: &'a [u8]) -> Result<Self, DecodeError>
    where
        R: Deserialize<'a>,
    {
        let text = std::str::from_utf8(body)
            .map_err(|e| DecodeError::NotJson(format!("the body is not UTF-8: {e}")))?;
        serde_json::from_str(text).map_err(|e| DecodeError::NotJson(e.to_string()))
    }

    /// The apiVersion and the request, if this is a review of a supported version.
    fn checked(self) -> Result<(Cow<'a, str>, R), DecodeError> {
        if !API_VERSIONS.contains(&self.api_version.as_ref()) {
            return Err(DecodeError::ApiVersion(self.api_version.into_owned()));
        }
        if self.kind != "AdmissionReview" {
            return Err(DecodeError::Kind(self.kind.into_owned()));
        }
        let request = self.request.ok_or(DecodeError::NoRequest)?;
        Ok((self.api_version, request))
    }
}

/// The parts of `AdmissionReview.request` the webhooks use, borrowed from the request body.
#[derive(Deserialize, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest<'a> {
    #[serde(borrow)]
    pub uid: Cow<'a, str>,
    pub operation: Operation,
    #[serde(default, borrow)]
    pub name: Cow<'a, str>,
    /// Kept as JSON text: the validating webhook reads it without building a JSON tree.
    #[serde(default, borrow)]
    pub object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub old_object: Option<&'a RawValue>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

/// A body that is not an AdmissionReview: answered with HTTP 400.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("the request body is not an AdmissionReview: {0}")]
    NotJson(String),
    #[error("unsupported AdmissionReview apiVersion {0:?}; expected admission.k8s.io/v1")]
    ApiVersion(String),
    #[error("expected kind AdmissionReview, got {0:?}")]
    Kind(String),
    #[error("the AdmissionReview has no request")]
    NoRequest,
}

/// A decoded AdmissionReview: its apiVersion (echoed in the answer) and its request.
#[derive(Debug, Clone)]
pub struct Review<'a> {
    pub api_version: Cow<'a, str>,
    pub request: AdmissionRequest<'a>,
}

pub fn decode(body: &[u8]) -> Result<Review<'_>, DecodeError> {
    let (api_version, request) = ReviewIn::<AdmissionRequest>::read(body)?.checked()?;
    Ok(Review {
        api_version,
        request,
    })
}

/// A review whose objects were read and schema-checked as TracePipelines while the review was
/// decoded: one pass over the body for the common request.
pub struct ReadReview<'a> {
    /// The review, without the object texts.
    pub review: Review<'a>,
    /// `None` when the request carries no object (DELETE).
    pub pipeline: Option<Box<ParsedPipeline>>,
    /// The object before an UPDATE, if it reads as a valid pipeline.
    pub old: Option<Box<ParsedPipeline>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadRequestIn<'a> {
    #[serde(borrow)]
    uid: Cow<'a, str>,
    operation: Operation,
    #[serde(default, borrow)]
    name: Cow<'a, str>,
    #[serde(default)]
    object: Option<OnePassPipeline>,
    #[serde(default)]
    old_object: Option<OnePassPipeline>,
    #[serde(default)]
    dry_run: Option<bool>,
}

/// Decode a review in one pass, reading its objects as TracePipelines. `None` when the object
/// is there but breaks the schema, or the body is no review: [`decode`] then reads it again,
/// and the validation passes write the report or the answer says what is wrong.
pub fn decode_read(body: &[u8]) -> Option<ReadReview<'_>> {
    let (api_version, request) = ReviewIn::<ReadRequestIn>::read(body)
        .and_then(ReviewIn::checked)
        .ok()?;
    let pipeline = match request.object {
        None => None,
        Some(OnePassPipeline(None)) => return None,
        Some(OnePassPipeline(Some(pipeline))) => Some(pipeline),
    };
    let old = request.old_object.and_then(|old| old.0);
    Some(ReadReview {
        review: Review {
            api_version,
            request: AdmissionRequest {
                uid: request.uid,
                operation: request.operation,
                name: request.name,
                object: None,
                old_object: None,
                dry_run: request.dry_run,
            },
        },
        pipeline,
        old,
    })
}

/// The webhook's answer, before it is put on the wire.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    pub allowed: bool,
    pub status: Option<Status>,
    /// RFC 6902 JSON Patch as JSON bytes; base64-encoded on the wire.
    pub patch: Option<Vec<u8>>,
    pub warnings: Vec<String>,
}

impl Decision {
    pub fn allow() -> Self {
        Decision {
            allowed: true,
            ..Decision::default()
        }
    }

    /// Deny with HTTP-like code 422 and the field errors as causes, as the API server does for
    /// invalid objects, so kubectl prints them like built-in validation errors.
    pub fn invalid(name: &str, report: &Report) -> Self {
        let causes = report
            .errors
            .iter()
            .map(|e| StatusCause {
                field: (!e.path.is_empty()).then(|| e.path.clone()),
                message: Some(e.body()),
                reason: Some(e.kind.cause_reason().to_string()),
            })
            .collect();
        Decision {
            allowed: false,
            status: Some(Status {
                code: Some(422),
                message: Some(report.invalid_message(name)),
                reason: Some("Invalid".to_string()),
                status: Some("Failure".to_string()),
                details: Some(StatusDetails {
                    name: Some(name.to_string()),
                    group: Some(crate::api::GROUP.to_string()),
                    kind: Some(crate::api::KIND.to_string()),
                    causes: Some(causes),
                    ..StatusDetails::default()
                }),
                ..Status::default()
            }),
            patch: None,
            warnings: report.warnings.iter().map(|w| w.message.clone()).collect(),
        }
    }

    /// Deny because the webhook could not decide (e.g. the API server did not answer in time).
    pub fn internal_error(message: String) -> Self {
        Decision {
            allowed: false,
            status: Some(Status {
                code: Some(500),
                message: Some(message),
                reason: Some("InternalError".to_string()),
                status: Some("Failure".to_string()),
                ..Status::default()
            }),
            ..Decision::default()
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdmissionReviewOut<'a> {
    api_version: &'a str,
    kind: &'static str,
    response: AdmissionResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdmissionResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

/// The AdmissionReview response for `review`.
pub fn encode(api_version: &str, uid: &str, decision: &Decision) -> Vec<u8> {
    let out = AdmissionReviewOut {
        api_version,
        kind: "AdmissionReview",
        response: AdmissionResponseOut {
            uid,
            allowed: decision.allowed,
            status: decision.status.as_ref(),
            patch: decision
                .patch
                .as_ref()
                .map(|p| base64::engine::general_purpose::STANDARD.encode(p)),
            patch_type: decision.patch.as_ref().map(|_| "JSONPatch"),
            warnings: &decision.warnings,
        },
    };
    // Room for an allowing answer without a patch, so that the common case writes in place.
    let mut bytes = Vec::with_capacity(256);
    serde_json::to_writer(&mut bytes, &out).expect("the response types always serialise");
    bytes
}

/// Parse the API server's `?timeout=` (a Go duration such as `10s`, `1m30s` or `500ms`).
pub fn parse_go_duration(text: &str) -> Option<std::time::Duration> {
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_end..];
    }
    std::time::Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::Value;

    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("s"), None);
        assert_eq!(parse_go_duration("10x"), None);
    }

    #[test]
    fn patch_is_base64_on_the_wire_and_uid_is_echoed() {
        let decision = Decision {
            allowed: true,
            patch: Some(br#"[{"op":"add"}]"#.to_vec()),
            ..Decision::default()
        };
        let bytes = encode("admission.k8s.io/v1", "abc-123", &decision);
        let wire: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(wire["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(wire["kind"], "AdmissionReview");
        assert_eq!(wire["response"]["uid"], "abc-123");
        assert_eq!(wire["response"]["patchType"], "JSONPatch");
        assert_eq!(wire["response"]["patch"], "W3sib3AiOiJhZGQifV0=");
    }

    #[test]
    fn decode_rejects_what_is_not_a_review() {
        assert!(matches!(decode(b"{"), Err(DecodeError::NotJson(_))));
        assert!(matches!(decode(b""), Err(DecodeError::NotJson(_))));
        assert_eq!(
            decode(br#"{"apiVersion":"v1","kind":"Pod"}"#).unwrap_err(),
            DecodeError::ApiVersion("v1".into())
        );
        assert_eq!(
            decode(br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#).unwrap_err(),
            DecodeError::Kind("Pod".into())
        );
        assert_eq!(
            decode(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#)
                .unwrap_err(),
            DecodeError::NoRequest
        );
    }
}
