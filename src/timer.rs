//! The one timer helper every driver's `select!` loop uses.

/// Sleeps until `deadline`, or forever when there is none (a sans-I/O core's
/// `poll_timeout` of `None`: nothing is due until some other input).
pub async fn sleep_until<T: Into<tokio::time::Instant>>(deadline: Option<T>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

use std::time::{Duration, Instant};

use log::{info, warn};

/// When to try again after kernel operations failed: 1 s after the first
/// failure, doubling up to 60 s (EBUSY, or a racing netifd, settle by
/// themselves). The first failure of a series and the recovery are logged
/// once each, so a lasting problem does not flood the log.
#[derive(Debug, Default)]
pub struct Retry {
    failures: u32,
    at: Option<Instant>,
}

impl Retry {
    pub const FIRST: Duration = Duration::from_secs(1);
    pub const MAX: Duration = Duration::from_secs(60);

    /// When the next attempt is due; `None` while things work.
    pub fn at(&self) -> Option<Instant> {
        self.at
    }

    /// The outcome of a round of operations: the error in words, or `None`
    /// when all succeeded. `who` starts the log lines ("tunnel", ...).
    pub fn settle(&mut self, now: Instant, error: Option<&str>, who: &str) {
        match error {
            Some(e) => {
                self.failures = self.failures.saturating_add(1);
                let delay = Retry::FIRST
                    .saturating_mul(1 << (self.failures - 1).min(10))
                    .min(Retry::MAX);
                if self.failures == 1 {
                    warn!("{who}: {e} (retrying, next in {}s)", delay.as_secs());
                }
                self.at = Some(now + delay);
            }
            None => {
                if self.failures > 0 {
                    info!("{who}: kernel operations succeed again");
                }
                self.failures = 0;
                self.at = None;
            }
        }
    }
}

/// A port another program may hold (67 held by dnsmasq, 546 by odhcp6c):
/// not shared (with SO_REUSEADDR both would get the traffic), but tried
/// again every `every` until it is free. [`PortWait::failed`] and
/// [`PortWait::opened`] say when to log, so a streak of failures is told
/// once and its end once.
#[derive(Debug)]
pub struct PortWait {
    every: Duration,
    at: Option<tokio::time::Instant>,
    failing: bool,
}

impl PortWait {
    pub fn new(every: Duration) -> PortWait {
        PortWait {
            every,
            at: None,
            failing: false,
        }
    }

    /// Whether an attempt may be made at `now`.
    pub fn due(&self, now: tokio::time::Instant) -> bool {
        self.at.is_none_or(|at| at <= now)
    }

    /// When the next attempt is due; `None` when one may be made any time.
    pub fn at(&self) -> Option<tokio::time::Instant> {
        self.at
    }

    /// The port was had; true if earlier attempts had failed.
    pub fn opened(&mut self) -> bool {
        self.at = None;
        std::mem::take(&mut self.failing)
    }

    /// An attempt failed at `now`; true for the first of a streak.
    pub fn failed(&mut self, now: tokio::time::Instant) -> bool {
        self.at = Some(now + self.every);
        !std::mem::replace(&mut self.failing, true)
    }

    /// Nothing to attempt on (the device is gone): the next one, once it is
    /// back, need not wait.
    pub fn idle(&mut self) {
        self.at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_from_one_second_up_to_a_minute_and_success_resets() {
        let t0 = Instant::now();
        let mut retry = Retry::default();
        assert_eq!(retry.at(), None);
        let delays: Vec<u64> = (0..9)
            .map(|_| {
                retry.settle(t0, Some("EBUSY"), "test");
                (retry.at().unwrap() - t0).as_secs()
            })
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        retry.settle(t0, None, "test");
        assert_eq!(retry.at(), None);
        retry.settle(t0, Some("EBUSY"), "test");
        assert_eq!(retry.at(), Some(t0 + Retry::FIRST));
    }

    #[test]
    fn a_held_port_is_tried_every_period_and_each_streak_is_told_once() {
        let t0 = tokio::time::Instant::now();
        let every = Duration::from_secs(5);
        let mut wait = PortWait::new(every);
        assert!(wait.due(t0));
        assert!(wait.failed(t0), "the first failure is told");
        assert!(!wait.due(t0 + Duration::from_secs(4)));
        assert!(wait.due(t0 + every));
        assert!(!wait.failed(t0 + every), "later ones are not");
        assert_eq!(wait.at(), Some(t0 + every * 2));
        assert!(wait.opened(), "the end of the streak is told");
        assert_eq!(wait.at(), None);
        assert!(!wait.opened());
        assert!(wait.failed(t0), "a new streak is told again");
        wait.idle();
        assert!(wait.due(t0));
    }
}
