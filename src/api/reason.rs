//! The reasons of the TracePipeline conditions (docs/reference/status.md), in one list: the status
//! decisions can only give a reason from it, and a test compares it with the documentation.

/// Declares [`Reason`] with one variant per reason, written exactly as Kubernetes shows it, and
/// [`Reason::ALL`].
macro_rules! reasons {
    ($($(#[doc = $doc:literal])* $reason:ident,)*) => {
        /// The `reason` of a condition.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Reason {
            $($(#[doc = $doc])* $reason,)*
        }

        impl Reason {
            /// Every reason, grouped by condition type.
            pub const ALL: &[Reason] = &[$(Reason::$reason),*];

            /// The reason as it appears in the condition and its Event.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$reason => stringify!($reason),)*
                }
            }
        }
    };
}

reasons! {
    /// ConfigurationGenerated True: the pipeline is part of the gateway's configuration.
    GatewayConfigured,
    /// ConfigurationGenerated True: configured, but a certificate expires within 14 days.
    TLSCertificateAboutToExpire,
    /// ConfigurationGenerated False: a referenced Secret or key does not exist.
    ReferencedSecretMissing,
    /// ConfigurationGenerated False: the endpoint breaks the endpoint rules.
    EndpointInvalid,
    /// ConfigurationGenerated False: a certificate has expired.
    TLSCertificateExpired,
    /// ConfigurationGenerated False: TLS material that does not parse or does not fit together.
    TLSConfigurationInvalid,
    /// ConfigurationGenerated False: the pipeline is beyond `--max-pipelines`.
    MaxPipelinesExceeded,
    /// ConfigurationGenerated False: a transform or filter holds OTTL that the gateway's collector
    /// would refuse.
    OTTLSpecInvalid,
    /// ConfigurationGenerated False: any other admission rule, or the API server failed while
    /// Secrets were read.
    ValidationFailed,
    /// GatewayHealthy True: the newest gateway pods are all ready.
    GatewayReady,
    /// GatewayHealthy True: gateway pods are starting or being replaced, none is failing.
    RolloutInProgress,
    /// GatewayHealthy False: the gateway Deployment is missing, or a pod cannot run.
    GatewayNotReady,
    /// TelemetryFlowHealthy True: no problem seen in the flow window.
    FlowHealthy,
    /// TelemetryFlowHealthy False: the pipeline is not part of the gateway.
    ConfigurationNotGenerated,
    /// TelemetryFlowHealthy Unknown: the gateway's metrics could not be read.
    GatewayProbingFailed,
    /// TelemetryFlowHealthy False: spans are dropped and none is delivered.
    GatewayAllTelemetryDataDropped,
    /// TelemetryFlowHealthy False: spans are dropped while others are delivered.
    GatewaySomeTelemetryDataDropped,
    /// TelemetryFlowHealthy False: the gateway refuses spans at its memory limit.
    GatewayThrottling,
    /// TelemetryFlowHealthy False: nothing is delivered while batches wait in the queue.
    GatewayExportStalled,
    /// TelemetryFlowHealthy False: the export queue is more than 80 % full.
    GatewayBufferFillingUp,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
