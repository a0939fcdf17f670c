//! What validation returns: field errors shaped like Kubernetes' own (`field.Error`), so the
//! webhook and the CLI print them the way kubectl prints built-in validation errors.

use std::fmt;

/// The Kubernetes error type of a field error (`k8s.io/apimachinery/pkg/util/validation/field`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    Required,
    NotSupported { supported: Vec<String> },
    Invalid,
    TypeInvalid { expected: &'static str },
    NotFound,
    Forbidden,
    Duplicate,
    UnknownField,
    Internal,
}

impl FieldErrorKind {
    /// The text kubectl prints before the detail.
    pub fn label(&self) -> &'static str {
        match self {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::NotSupported { .. } => "Unsupported value",
            FieldErrorKind::Invalid | FieldErrorKind::TypeInvalid { .. } => "Invalid value",
            FieldErrorKind::NotFound => "Not found",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::UnknownField => "Unknown field",
            FieldErrorKind::Internal => "Internal error",
        }
    }

    /// The `StatusCause.reason` the API server uses for this kind.
    pub fn cause_reason(&self) -> &'static str {
        match self {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::NotSupported { .. } => "FieldValueNotSupported",
            FieldErrorKind::Invalid | FieldErrorKind::UnknownField => "FieldValueInvalid",
            FieldErrorKind::TypeInvalid { .. } => "FieldValueTypeInvalid",
            FieldErrorKind::NotFound => "FieldValueNotFound",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::Internal => "InternalError",
        }
    }
}

/// Which product rule an error comes from; the reconciler maps it to a condition reason
/// (docs/reference/status.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cause {
    /// The structural schema or one of its CEL rules.
    Schema,
    /// A referenced Secret or key is missing.
    SecretMissing,
    /// A referenced Secret key holds something that is not text.
    SecretValueInvalid,
    /// An endpoint that breaks the endpoint rules.
    EndpointInvalid,
    /// An expired certificate.
    TlsCertificateExpired,
    /// TLS material: PEM that does not parse, a key that does not match, a CA that is not one.
    TlsConfigurationInvalid,
    /// A transform statement or condition, or a filter condition, that the gateway's collector
    /// would refuse.
    OttlInvalid,
    /// A CREATE beyond `--max-pipelines`.
    PipelineLimit,
    /// Two pipeline names that map to the same environment-variable suffix.
    NameCollision,
    /// The API server failed while a Secret was read.
    Lookup,
}

/// One error at one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field path as kubectl prints it (`spec.output.otlp.endpoint`); empty for the object.
    pub path: String,
    pub kind: FieldErrorKind,
    /// The offending value, already quoted for printing; `None` when it must not be shown
    /// (values read from Secrets) or has no useful form.
    pub value: Option<String>,
    /// What is wrong and how to fix it.
    pub detail: String,
    pub cause: Cause,
}

impl FieldError {
    pub fn new(
        path: impl Into<String>,
        kind: FieldErrorKind,
        detail: impl Into<String>,
        cause: Cause,
    ) -> Self {
        FieldError {
            path: path.into(),
            kind,
            value: None,
            detail: detail.into(),
            cause,
        }
    }

    /// Attach the offending value, rendered the way Kubernetes renders it (strings quoted).
    pub fn with_value(mut self, value: impl Into<String>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// The error without its path, as `StatusCause.message` carries it.
    pub fn body(&self) -> String {
        let mut out = self.kind.label().to_string();
        if let Some(value) = &self.value {
            out.push_str(": ");
            out.push_str(value);
        }
        if let FieldErrorKind::NotSupported { supported } = &self.kind {
            let quoted: Vec<String> = supported.iter().map(|s| quote(s)).collect();
            out.push_str(": supported values: ");
            out.push_str(&quoted.join(", "));
        }
        if !self.detail.is_empty() {
            out.push_str(": ");
            out.push_str(&self.detail);
        }
        out
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.body())
        } else {
            write!(f, "{}: {}", self.path, self.body())
        }
    }
}

/// A warning that admits the object but should be shown to the user (`Warning: …` in kubectl).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub message: String,
    pub kind: WarningKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WarningKind {
    DeprecatedVersion,
    InsecureSkipVerify,
    /// A certificate expires within 14 days; `not_after` is its expiry (Unix seconds).
    CertificateExpiresSoon {
        not_after: i64,
    },
    /// A Secret is missing and the `warn` policy admits the pipeline anyway.
    SecretMissing,
}

/// The outcome of validating one pipeline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub errors: Vec<FieldError>,
    pub warnings: Vec<Warning>,
}

impl Report {
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// The message the API server would give for these errors:
    /// `tracepipelines.telemetry.kyma-project.io "name" is invalid: <errors>`, several errors in
    /// brackets, as `apierrors.NewInvalid` formats them.
    pub fn invalid_message(&self, name: &str) -> String {
        let errors: Vec<String> = self.errors.iter().map(ToString::to_string).collect();
        let joined = match errors.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        format!(
            "{} {} is invalid: {}",
            crate::api::RESOURCE,
            quote(name),
            joined
        )
    }
}

/// A string quoted the way Go's `%q` quotes it, which is how Kubernetes prints values.
pub fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serialises")
}
