//! Leader election with a `coordination.k8s.io/v1` Lease
//! (docs/operations.md#high-availability-and-leader-election): only the holder reconciles and
//! writes status. A failed renewal ends leadership at once, and one that does not finish within
//! the renew deadline (shorter than the Lease's duration) too, so this replica stops writing
//! before another can take the Lease over. Shutdown releases the Lease so another replica takes
//! over without waiting for it to expire.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// How long a Lease stays valid without renewal (`--lease-duration`).
    pub duration: Duration,
    /// The holder stops leading when no renewal succeeded for this long
    /// (`--lease-renew-deadline`); shorter than `duration`.
    pub renew_deadline: Duration,
    /// How often the holder renews, and the others check (`--lease-retry-period`); shorter than
    /// `renew_deadline`.
    pub retry: Duration,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeaseTimingError {
    #[error("--lease-duration must be a whole number of seconds, at least 1s (got {0:?})")]
    Duration(Duration),
    #[error(
        "--lease-renew-deadline ({renew_deadline:?}) must be shorter than --lease-duration ({duration:?}), so that a leader that cannot renew stops writing before its Lease expires"
    )]
    RenewDeadline {
        renew_deadline: Duration,
        duration: Duration,
    },
    #[error(
        "--lease-retry-period ({retry:?}) must be shorter than --lease-renew-deadline ({renew_deadline:?}), so that a renewal is tried before the deadline"
    )]
    Retry {
        retry: Duration,
        renew_deadline: Duration,
    },
}

impl LeaseSettings {
    /// The timings make sense together: a Lease holds whole seconds, and retry < renew
    /// deadline < duration.
    pub fn check_timings(&self) -> Result<(), LeaseTimingError> {
        if self.duration < Duration::from_secs(1) || self.duration.subsec_nanos() != 0 {
            return Err(LeaseTimingError::Duration(self.duration));
        }
        if self.renew_deadline >= self.duration {
            return Err(LeaseTimingError::RenewDeadline {
                renew_deadline: self.renew_deadline,
                duration: self.duration,
            });
        }
        if self.retry >= self.renew_deadline || self.retry.is_zero() {
            return Err(LeaseTimingError::Retry {
                retry: self.retry,
                renew_deadline: self.renew_deadline,
            });
        }
        Ok(())
    }
}

/// What to do with the Lease as it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseAction {
    Create,
    Renew,
    TakeOver,
    /// Another replica holds a valid Lease.
    Follow {
        holder: String,
    },
}

/// The pure decision: create a missing Lease, renew our own, take over an expired or released
/// one, else follow.
pub fn decide(lease: Option<&Lease>, identity: &str, now: Timestamp) -> LeaseAction {
    let Some(spec) = lease.and_then(|l| l.spec.as_ref()) else {
        return if lease.is_some() {
            LeaseAction::TakeOver
        } else {
            LeaseAction::Create
        };
    };
    let holder = spec.holder_identity.clone().unwrap_or_default();
    if holder == identity {
        return LeaseAction::Renew;
    }
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    let expired = spec
        .renew_time
        .as_ref()
        .is_none_or(|renewed| renewed.0 + duration < now);
    if holder.is_empty() || expired {
        LeaseAction::TakeOver
    } else {
        LeaseAction::Follow { holder }
    }
}

fn lease(
    settings: &LeaseSettings,
    previous: Option<&Lease>,
    action: &LeaseAction,
    now: Timestamp,
) -> Lease {
    let old = previous.and_then(|l| l.spec.clone()).unwrap_or_default();
    let transitions =
        old.lease_transitions.unwrap_or(0) + i32::from(*action == LeaseAction::TakeOver);
    Lease {
        metadata: ObjectMeta {
            name: Some(settings.name.clone()),
            namespace: Some(settings.namespace.clone()),
            resource_version: previous.and_then(|l| l.metadata.resource_version.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(settings.identity.clone()),
            lease_duration_seconds: Some(settings.duration.as_secs().max(1) as i32),
            acquire_time: if *action == LeaseAction::Renew {
                old.acquire_time
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }),
    }
}

/// One round: returns whether this replica leads afterwards.
pub async fn try_lead(api: &Api<Lease>, settings: &LeaseSettings) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let current = api.get_opt(&settings.name).await?;
    let action = decide(current.as_ref(), &settings.identity, now);
    let result = match action {
        LeaseAction::Follow { .. } => return Ok(false),
        LeaseAction::Create => {
            api.create(&PostParams::default(), &lease(settings, None, &action, now))
                .await
        }
        LeaseAction::Renew | LeaseAction::TakeOver => {
            // Conditional on resourceVersion: of two replicas taking over, one wins.
            api.replace(
                &settings.name,
                &PostParams::default(),
                &lease(settings, current.as_ref(), &action, now),
            )
            .await
        }
    };
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_conflict() || status.is_already_exists() => {
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

/// Give the Lease up if we hold it, so that another replica takes over at once.
pub async fn release(api: &Api<Lease>, settings: &LeaseSettings) -> Result<(), kube::Error> {
    let Some(mut current) = api.get_opt(&settings.name).await? else {
        return Ok(());
    };
    let Some(spec) = current.spec.as_mut() else {
        return Ok(());
    };
    if spec.holder_identity.as_deref() != Some(settings.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    api.replace(&settings.name, &PostParams::default(), &current)
        .await
        .map(|_| ())
}

/// Hold or follow the Lease until `shutdown`, publishing leadership on `leading`; then release
/// it.
pub async fn run(
    client: kube::Client,
    settings: LeaseSettings,
    leading: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    // When the last successful round started: the renewTime it wrote is no earlier, so the
    // Lease is valid at least until then plus its duration.
    let mut renewed: Option<Instant> = None;
    loop {
        let started = Instant::now();
        let deadline = match renewed {
            Some(at) if *leading.borrow() => at + settings.renew_deadline,
            _ => started + settings.renew_deadline,
        };
        let leads = match tokio::time::timeout_at(deadline, try_lead(&api, &settings)).await {
            Ok(Ok(leads)) => leads,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "Lease renewal failed; stopping all writes until it succeeds");
                false
            }
            Err(_) => {
                tracing::warn!(
                    renew_deadline = ?settings.renew_deadline,
                    "Lease renewal did not finish within the renew deadline; stopping all writes until it succeeds"
                );
                false
            }
        };
        if leads {
            renewed = Some(started);
        }
        if *leading.borrow() != leads {
            tracing::info!(leading = leads, identity = %settings.identity, "leadership changed");
            leading.send_replace(leads);
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.retry) => {}
            _ = shutdown.cancelled() => break,
        }
    }
    leading.send_replace(false);
    if let Err(err) = release(&api, &settings).await {
        tracing::warn!(error = %err, "could not release the Lease; another replica takes over when it expires");
    }
}
