//! The mutating webhook's defaulting (docs/reference/tracepipeline.md#defaults):
//! `spec.output.otlp.protocol` becomes `grpc` when absent or empty, and nothing else changes.

use json_patch::{AddOperation, Patch, PatchOperation};
use serde_json::Value;

/// The RFC 6902 operations that default `object`; empty when nothing needs defaulting, so a
/// second call on the patched object returns no operations.
pub fn default_patch(object: &Value) -> Patch {
    let Some(otlp) = object
        .pointer("/spec/output/otlp")
        .and_then(Value::as_object)
    else {
        // Without an OTLP output there is nothing to default; validation reports it.
        return Patch(vec![]);
    };
    let protocol_missing = match otlp.get("protocol") {
        None | Some(Value::Null) => true,
        Some(Value::String(protocol)) => protocol.is_empty(),
        Some(_) => false,
    };
    if !protocol_missing {
        return Patch(vec![]);
    }
    Patch(vec![PatchOperation::Add(AddOperation {
        path: "/spec/output/otlp/protocol"
            .parse()
            .expect("a constant, valid JSON pointer"),
        value: Value::String("grpc".to_string()),
    })])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pipeline(otlp: Value) -> Value {
        json!({"apiVersion": "telemetry.kyma-project.io/v1beta1", "kind": "TracePipeline",
               "metadata": {"name": "p"}, "spec": {"output": {"otlp": otlp}}})
    }

    #[test]
    fn defaults_absent_null_and_empty_protocol_to_grpc() {
        for otlp in [
            json!({"endpoint": {"value": "b:4317"}}),
            json!({"endpoint": {"value": "b:4317"}, "protocol": null}),
            json!({"endpoint": {"value": "b:4317"}, "protocol": ""}),
        ] {
            let mut object = pipeline(otlp);
            let patch = default_patch(&object);
            assert_eq!(
                serde_json::to_value(&patch).unwrap(),
                json!([{"op": "add", "path": "/spec/output/otlp/protocol", "value": "grpc"}])
            );
            json_patch::patch(&mut object, &patch).unwrap();
            assert_eq!(
                object.pointer("/spec/output/otlp/protocol"),
                Some(&json!("grpc"))
            );
            assert!(
                default_patch(&object).0.is_empty(),
                "idempotent: the second call patches nothing"
            );
        }
    }

    #[test]
    fn leaves_set_protocols_and_other_fields_alone() {
        for protocol in ["http", "grpc", "bogus"] {
            let object = pipeline(json!({"endpoint": {"value": "b:4317"}, "protocol": protocol}));
            assert!(default_patch(&object).0.is_empty(), "{protocol}");
        }
        assert!(default_patch(&json!({"spec": {}})).0.is_empty());
        assert!(default_patch(&json!("not an object")).0.is_empty());
    }
}
