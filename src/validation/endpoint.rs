//! The endpoint rules (docs/reference/tracepipeline.md#endpoint-rules), as a pure function over the
//! resolved endpoint value.

use std::fmt;

use crate::api::Protocol;

/// Why an endpoint is rejected. Messages never repeat the value: it may come from a Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointProblem {
    Empty,
    MissingHost,
    InvalidHost,
    MissingPort,
    InvalidPort,
    TooManyColons,
    GrpcPath,
    UnsupportedScheme,
    OAuth2WithoutTls,
}

impl fmt::Display for EndpointProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndpointProblem::Empty => "failed to resolve value; set a non-empty endpoint",
            EndpointProblem::MissingHost => "missing host; use host:port, for example backend.example.com:4317",
            EndpointProblem::InvalidHost => "invalid host; the host must not contain spaces or control characters",
            EndpointProblem::MissingPort => {
                "missing port; gRPC endpoints need an explicit port, for example backend.example.com:4317"
            }
            EndpointProblem::InvalidPort => "invalid port; the port must be a number from 1 to 65535",
            EndpointProblem::TooManyColons => {
                "too many colons; use host:port, and brackets around IPv6 addresses ([2001:db8::1]:4317)"
            }
            EndpointProblem::GrpcPath => {
                "gRPC endpoints cannot contain paths; remove the path (even a trailing '/'), or use protocol http"
            }
            EndpointProblem::UnsupportedScheme => {
                "unsupported scheme; HTTP endpoints must start with http:// or https://"
            }
            EndpointProblem::OAuth2WithoutTls => {
                "OAuth2 authentication requires TLS when using gRPC protocol; use an https:// endpoint or none, and do not set tls.insecure"
            }
        })
    }
}

/// The parts of an endpoint, split the way the endpoint rules ask: a value without `://` has no
/// scheme.
#[derive(Debug, PartialEq, Eq)]
struct Parts<'a> {
    scheme: Option<&'a str>,
    /// `None` without a colon, `Some("")` for a trailing colon.
    port: Option<&'a str>,
    /// Everything after the authority: path, query and fragment.
    rest: &'a str,
}

fn split(value: &str) -> Result<Parts<'_>, EndpointProblem> {
    let (scheme, remainder) = match value.split_once("://") {
        Some((scheme, remainder)) => (Some(scheme), remainder),
        None => (None, value),
    };
    let authority_end = remainder.find(['/', '?', '#']).unwrap_or(remainder.len());
    let (authority, rest) = remainder.split_at(authority_end);
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host_port)| host_port);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or(EndpointProblem::InvalidHost)?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or(EndpointProblem::InvalidHost)?,
                ),
            ),
        }
    } else {
        match host_port.matches(':').count() {
            0 => (host_port, None),
            1 => host_port
                .split_once(':')
                .map(|(h, p)| (h, Some(p)))
                .expect("one colon"),
            _ => return Err(EndpointProblem::TooManyColons),
        }
    };
    if let Some(port) = port
        && !port.is_empty()
        && !(port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p > 0))
    {
        return Err(EndpointProblem::InvalidPort);
    }
    if host.is_empty() {
        return Err(EndpointProblem::MissingHost);
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(EndpointProblem::InvalidHost);
    }
    Ok(Parts { scheme, port, rest })
}

/// Check a resolved endpoint for the given protocol
/// (docs/reference/tracepipeline.md#endpoint-rules).
pub fn check(
    value: &str,
    protocol: Protocol,
    oauth2: bool,
    tls_insecure: bool,
) -> Result<(), EndpointProblem> {
    if value.is_empty() {
        return Err(EndpointProblem::Empty);
    }
    let parts = split(value)?;
    let scheme = parts.scheme.map(str::to_ascii_lowercase);
    match protocol {
        Protocol::Grpc => {
            if parts.port.is_none_or(str::is_empty) {
                return Err(EndpointProblem::MissingPort);
            }
            if !parts.rest.is_empty() {
                return Err(EndpointProblem::GrpcPath);
            }
            if oauth2 && (scheme.as_deref() == Some("http") || tls_insecure) {
                return Err(EndpointProblem::OAuth2WithoutTls);
            }
        }
        Protocol::Http => {
            if !matches!(scheme.as_deref(), Some("http" | "https")) {
                return Err(EndpointProblem::UnsupportedScheme);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::EndpointProblem::*;
    use super::*;

    /// The endpoint table of docs/reference/tracepipeline.md#endpoint-rules, one row per endpoint:
    /// (endpoint, grpc result, http result).
    #[test]
    fn spec_endpoint_table() {
        type Row = (
            &'static str,
            Result<(), EndpointProblem>,
            Result<(), EndpointProblem>,
        );
        let table: &[Row] = &[
            ("https://foo.bar:4317/", Err(GrpcPath), Ok(())),
            ("example.com:8080", Ok(()), Err(UnsupportedScheme)),
            ("http://example.com:8080", Ok(()), Ok(())),
            ("example.com", Err(MissingPort), Err(UnsupportedScheme)),
            ("example.com:", Err(MissingPort), Err(UnsupportedScheme)),
            ("example.com:/", Err(MissingPort), Err(UnsupportedScheme)),
            ("http://example.com", Err(MissingPort), Ok(())),
            ("https://example.com", Err(MissingPort), Ok(())),
            ("example.com:8o8o", Err(InvalidPort), Err(InvalidPort)),
            ("example.com:80:80", Err(TooManyColons), Err(TooManyColons)),
            ("rand://example.com:8080", Ok(()), Err(UnsupportedScheme)),
        ];
        for (endpoint, grpc, http) in table {
            assert_eq!(
                &check(endpoint, Protocol::Grpc, false, false),
                grpc,
                "grpc {endpoint}"
            );
            assert_eq!(
                &check(endpoint, Protocol::Http, false, false),
                http,
                "http {endpoint}"
            );
        }
    }

    #[test]
    fn empty_value_fails_to_resolve() {
        assert_eq!(check("", Protocol::Grpc, false, false), Err(Empty));
        assert_eq!(check("", Protocol::Http, false, false), Err(Empty));
    }

    #[test]
    fn oauth2_over_grpc_needs_tls() {
        assert_eq!(
            check("http://backend:4317", Protocol::Grpc, true, false),
            Err(OAuth2WithoutTls)
        );
        assert_eq!(
            check("backend:4317", Protocol::Grpc, true, true),
            Err(OAuth2WithoutTls)
        );
        assert_eq!(
            check("https://backend:4317", Protocol::Grpc, true, false),
            Ok(())
        );
        assert_eq!(check("backend:4317", Protocol::Grpc, true, false), Ok(()));
        // Only gRPC carries this rule (docs/reference/tracepipeline.md#endpoint-rules).
        assert_eq!(
            check("http://backend:4318", Protocol::Http, true, true),
            Ok(())
        );
    }

    #[test]
    fn ipv6_userinfo_ports_and_hosts() {
        assert_eq!(
            check("[2001:db8::1]:4317", Protocol::Grpc, false, false),
            Ok(())
        );
        assert_eq!(
            check("https://[::1]/otlp", Protocol::Http, false, false),
            Ok(())
        );
        assert_eq!(
            check("[::1]", Protocol::Grpc, false, false),
            Err(MissingPort)
        );
        assert_eq!(
            check("[::1:4317", Protocol::Grpc, false, false),
            Err(InvalidHost)
        );
        assert_eq!(
            check("https://user:pw@host:443", Protocol::Http, false, false),
            Ok(())
        );
        assert_eq!(
            check("host:0", Protocol::Grpc, false, false),
            Err(InvalidPort)
        );
        assert_eq!(
            check("host:65536", Protocol::Grpc, false, false),
            Err(InvalidPort)
        );
        assert_eq!(
            check("host:+80", Protocol::Grpc, false, false),
            Err(InvalidPort)
        );
        assert_eq!(
            check(":4317", Protocol::Grpc, false, false),
            Err(MissingHost)
        );
        assert_eq!(
            check("http://", Protocol::Http, false, false),
            Err(MissingHost)
        );
        assert_eq!(
            check("bad host:4317", Protocol::Grpc, false, false),
            Err(InvalidHost)
        );
        assert_eq!(
            check("HTTPS://example.com", Protocol::Http, false, false),
            Ok(())
        );
        assert_eq!(
            check("host:4317?x=1", Protocol::Grpc, false, false),
            Err(GrpcPath)
        );
    }
}
