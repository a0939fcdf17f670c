//! When a reconcile pass starts (docs/architecture.md#reconciliation). The first change after a
//! quiet period starts a pass at once (leading edge); changes that arrive while a pass runs, or
//! within the coalesce window after it ends, are handled by one follow-up pass when the window
//! closes. A burst of changes therefore costs a few passes, never one per change, and a single
//! change is reconciled without waiting.
//!
//! A pure state machine: the controller reports changes and finished passes with the time they
//! happened, and asks what to do.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    Running,
    /// A pass ended; changes until `until` wait for it.
    Settling {
        until: Instant,
    },
}

/// What the controller should do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Start a pass; the oldest change it handles has waited this long.
    Start { waited: Duration },
    /// Nothing to do before this time (`None`: before the next change).
    Wait(Option<Instant>),
}

#[derive(Clone, Debug)]
pub struct Trigger {
    window: Duration,
    phase: Phase,
    /// When the oldest change not yet handled by a pass arrived.
    pending: Option<Instant>,
}

impl Trigger {
    pub fn new(window: Duration) -> Self {
        Trigger {
            window,
            phase: Phase::Idle,
            pending: None,
        }
    }

    /// A change arrived at `at`.
    pub fn change(&mut self, at: Instant) {
        self.pending = Some(self.pending.map_or(at, |oldest| oldest.min(at)));
    }

    /// Decide at `now`; a `Start` means the pass runs from now until [`Trigger::finished`].
    pub fn decide(&mut self, now: Instant) -> Decision {
        if let Phase::Settling { until } = self.phase
            && now >= until
        {
            self.phase = Phase::Idle;
        }
        match (self.phase, self.pending) {
            (Phase::Idle, Some(oldest)) => {
                self.phase = Phase::Running;
                self.pending = None;
                Decision::Start {
                    waited: now.saturating_duration_since(oldest),
                }
            }
            (Phase::Settling { until }, Some(_)) => Decision::Wait(Some(until)),
            (Phase::Idle | Phase::Running | Phase::Settling { .. }, _) => Decision::Wait(None),
        }
    }

    /// The pass started by the last `Start` ended at `now`.
    pub fn finished(&mut self, now: Instant) {
        self.phase = Phase::Settling {
            until: now + self.window,
        };
    }

    /// Forget everything (this replica stopped leading): the next change starts a pass at once.
    pub fn reset(&mut self) {
        self.phase = Phase::Idle;
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_millis(100);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_change_after_a_quiet_period_starts_a_pass_at_once() {
        let t0 = Instant::now();
        let mut trigger = Trigger::new(WINDOW);
        assert_eq!(trigger.decide(t0), Decision::Wait(None));
        trigger.change(t0);
        assert_eq!(trigger.decide(t0), Decision::Start { waited: ms(0) });
        trigger.finished(t0 + ms(30));
        // Long after the window: again at once.
        trigger.change(t0 + ms(5000));
        assert_eq!(
            trigger.decide(t0 + ms(5000)),
            Decision::Start { waited: ms(0) }
        );
    }

    #[test]
    fn changes_during_a_pass_and_its_window_make_one_follow_up_pass() {
        let t0 = Instant::now();
        let mut trigger = Trigger::new(WINDOW);
        trigger.change(t0);
        assert_eq!(trigger.decide(t0), Decision::Start { waited: ms(0) });
        // While the pass runs.
        trigger.change(t0 + ms(10));
        trigger.change(t0 + ms(20));
        assert_eq!(trigger.decide(t0 + ms(20)), Decision::Wait(None));
        trigger.finished(t0 + ms(50));
        // Within the window after it.
        trigger.change(t0 + ms(60));
        assert_eq!(
            trigger.decide(t0 + ms(60)),
            Decision::Wait(Some(t0 + ms(150)))
        );
        assert_eq!(
            trigger.decide(t0 + ms(150)),
            Decision::Start { waited: ms(140) },
            "one pass for the three changes; the oldest waited since 10 ms"
        );
        trigger.finished(t0 + ms(180));
        assert_eq!(trigger.decide(t0 + ms(400)), Decision::Wait(None));
    }

    #[test]
    fn a_window_without_changes_ends_quietly() {
        let t0 = Instant::now();
        let mut trigger = Trigger::new(WINDOW);
        trigger.change(t0);
        trigger.decide(t0);
        trigger.finished(t0 + ms(10));
        assert_eq!(trigger.decide(t0 + ms(20)), Decision::Wait(None));
        trigger.change(t0 + ms(200));
        assert_eq!(
            trigger.decide(t0 + ms(200)),
            Decision::Start { waited: ms(0) }
        );
    }

    #[test]
    fn a_burst_of_changes_costs_a_handful_of_passes() {
        // 1000 changes, one every millisecond, and passes of 20 ms: the controller loop as it
        // runs, with time as numbers.
        let t0 = Instant::now();
        let mut trigger = Trigger::new(WINDOW);
        let changes: Vec<Instant> = (0..1000).map(|i| t0 + ms(i)).collect();
        let mut next_change = 0;
        let mut now = t0;
        let mut passes = 0;
        let mut longest_wait = Duration::ZERO;
        while next_change < changes.len() || trigger.pending.is_some() {
            while next_change < changes.len() && changes[next_change] <= now {
                trigger.change(changes[next_change]);
                next_change += 1;
            }
            match trigger.decide(now) {
                Decision::Start { waited } => {
                    passes += 1;
                    longest_wait = longest_wait.max(waited);
                    now += ms(20);
                    trigger.finished(now);
                }
                Decision::Wait(until) => {
                    let arrival = changes.get(next_change).copied();
                    now = [until, arrival].into_iter().flatten().min().unwrap();
                }
            }
        }
        // One pass per pass-plus-window (120 ms) of the second the burst lasts, plus the first.
        assert!((8..=10).contains(&passes), "{passes} passes");
        assert!(longest_wait <= ms(120), "{longest_wait:?}");
    }

    #[test]
    fn reset_forgets_pending_changes_and_the_window() {
        let t0 = Instant::now();
        let mut trigger = Trigger::new(WINDOW);
        trigger.change(t0);
        trigger.decide(t0);
        trigger.finished(t0 + ms(10));
        trigger.change(t0 + ms(20));
        trigger.reset();
        assert_eq!(trigger.decide(t0 + ms(20)), Decision::Wait(None));
        trigger.change(t0 + ms(30));
        assert_eq!(
            trigger.decide(t0 + ms(30)),
            Decision::Start { waited: ms(0) }
        );
    }
}
