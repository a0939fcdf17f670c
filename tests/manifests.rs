//! The development webhook registration matches the server's routes and
//! docs/operations.md#webhook-registration.

use std::collections::BTreeSet;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use serde_json::Value;
use telemetry_manager::admission::Endpoint;

#[test]
fn local_webhook_registration_points_at_every_route() {
    let text = std::fs::read_to_string("manifests/dev/local-webhooks.yaml").unwrap();
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    assert_eq!(documents.len(), 2);
    let validating: ValidatingWebhookConfiguration =
        serde_json::from_value(documents[0].clone()).unwrap();
    let mutating: MutatingWebhookConfiguration =
        serde_json::from_value(documents[1].clone()).unwrap();
    assert_eq!(
        validating.metadata.name.as_deref(),
        Some("telemetry-validating-webhook.kyma-project.io")
    );
    assert_eq!(
        mutating.metadata.name.as_deref(),
        Some("telemetry-mutating-webhook.kyma-project.io")
    );

    let mut urls = BTreeSet::new();
    let validating_hooks = validating.webhooks.unwrap();
    let mutating_hooks = mutating.webhooks.unwrap();
    let common = validating_hooks
        .iter()
        .map(|w| {
            (
                &w.client_config,
                &w.rules,
                &w.failure_policy,
                &w.side_effects,
                w.timeout_seconds,
                &w.admission_review_versions,
                &w.match_policy,
            )
        })
        .chain(mutating_hooks.iter().map(|w| {
            (
                &w.client_config,
                &w.rules,
                &w.failure_policy,
                &w.side_effects,
                w.timeout_seconds,
                &w.admission_review_versions,
                &w.match_policy,
            )
        }));
    for (client, rules, failure, side_effects, timeout, versions, match_policy) in common {
        let url = client.url.clone().unwrap();
        assert!(client.ca_bundle.is_none(), "the manager injects the CA");
        let rule = &rules.as_ref().unwrap()[0];
        let version = rule.api_versions.as_ref().unwrap()[0].clone();
        assert!(
            url.contains(&format!("-{version}-")),
            "{url} serves {version}"
        );
        assert_eq!(
            rule.operations.as_deref(),
            Some(&["CREATE".to_string(), "UPDATE".to_string()][..])
        );
        assert_eq!(
            rule.resources.as_deref(),
            Some(&["tracepipelines".to_string()][..])
        );
        assert_eq!(failure.as_deref(), Some("Fail"));
        assert_eq!(side_effects, "None");
        assert_eq!(timeout, Some(10));
        assert_eq!(versions, &vec!["v1".to_string()]);
        assert_eq!(match_policy.as_deref(), Some("Exact"));
        urls.insert(url);
    }
    let routes: BTreeSet<String> = Endpoint::ALL
        .iter()
        .map(|e| format!("https://127.0.0.1:9443{}", e.path()))
        .collect();
    assert_eq!(urls, routes);
}
