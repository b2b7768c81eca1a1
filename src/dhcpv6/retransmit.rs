//! Retransmission timing of RFC 8415 §15, as a value the client core owns.
//!
//! RT starts at IRT (plus jitter), doubles each time (plus jitter) and is
//! capped at MRT (plus jitter). An exchange ends after MRC transmissions or
//! when MRD has elapsed since its start, whichever comes first.

use std::time::{Duration, Instant};

use rand::{Rng, RngExt};

/// The parameters of one message exchange (RFC 8415 §7.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub irt: Duration,
    /// Zero: no cap on RT.
    pub mrt: Duration,
    /// Zero: no limit on the number of transmissions.
    pub mrc: u32,
    /// `None`: no limit on the duration.
    pub mrd: Option<Duration>,
    /// RFC 8415 §15: for Solicit the first RT must be strictly greater than IRT.
    pub first_rand_positive: bool,
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// RFC 8415 §7.6 transmission and retransmission parameters.
pub const SOL_MAX_DELAY: Duration = secs(1);
pub const INF_MAX_DELAY: Duration = secs(1);
pub const SOL_TIMEOUT: Duration = secs(1);
pub const SOL_MAX_RT_DEFAULT: Duration = secs(3600);
pub const REQ_TIMEOUT: Duration = secs(1);
pub const REQ_MAX_RT: Duration = secs(30);
pub const REQ_MAX_RC: u32 = 10;
pub const REN_TIMEOUT: Duration = secs(10);
pub const REN_MAX_RT: Duration = secs(600);
pub const REB_TIMEOUT: Duration = secs(10);
pub const REB_MAX_RT: Duration = secs(600);
pub const INF_TIMEOUT: Duration = secs(1);
pub const INF_MAX_RT_DEFAULT: Duration = secs(3600);
pub const REL_TIMEOUT: Duration = secs(1);
pub const REL_MAX_RC: u32 = 4;
pub const DEC_TIMEOUT: Duration = secs(1);
pub const DEC_MAX_RC: u32 = 4;
/// RFC 8415 §21.23: default and minimum information refresh time.
pub const IRT_DEFAULT: Duration = secs(86400);
pub const IRT_MINIMUM: Duration = secs(600);
/// RFC 8415 §21.24/§21.25: SOL_MAX_RT and INF_MAX_RT values outside
/// 60..=86400 are ignored.
pub const MAX_RT_RANGE: std::ops::RangeInclusive<u32> = 60..=86400;

/// A uniformly random factor in [-0.1, +0.1] (RFC 8415 §15 "RAND"), or in
/// (0, +0.1] when `positive`.
fn rand_factor(rng: &mut impl Rng, positive: bool) -> f64 {
    if positive {
        // Strictly greater than zero: at least one part in 10^6.
        rng.random_range(0.000_001..=0.1)
    } else {
        rng.random_range(-0.1..=0.1)
    }
}

fn scale(d: Duration, factor: f64) -> Duration {
    Duration::from_secs_f64((d.as_secs_f64() * factor).max(0.0))
}

/// The state of one exchange's retransmissions.
#[derive(Debug, Clone, PartialEq)]
pub struct Retransmit {
    params: Params,
    started: Instant,
    rt: Duration,
    /// Transmissions so far, including the first.
    sent: u32,
}

/// What to do when the retransmission timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send again and wake up at the given time.
    Transmit { next: Instant },
    /// MRC or MRD reached: the exchange has failed.
    GiveUp,
}

impl Retransmit {
    /// Starts an exchange whose first transmission happens at `now`. Returns
    /// the state and the time of the first retransmission.
    pub fn start(params: Params, now: Instant, rng: &mut impl Rng) -> (Self, Instant) {
        let rt = params.irt + scale(params.irt, rand_factor(rng, params.first_rand_positive));
        let state = Retransmit {
            params,
            started: now,
            rt,
            sent: 1,
        };
        let next = state.clamp_to_mrd(now + rt);
        (state, next)
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    pub fn transmissions(&self) -> u32 {
        self.sent
    }

    /// The current retransmission timeout (for tests and status).
    pub fn rt(&self) -> Duration {
        self.rt
    }

    /// Changes MRT mid-exchange (RFC 8415 §18.2.9: a SOL_MAX_RT option in an
    /// Advertise takes effect on the next retransmission).
    pub fn set_mrt(&mut self, mrt: Duration) {
        self.params.mrt = mrt;
    }

    fn clamp_to_mrd(&self, at: Instant) -> Instant {
        match self.params.mrd {
            Some(mrd) => at.min(self.started + mrd),
            None => at,
        }
    }

    /// Called when the timer fires at `now`.
    pub fn on_timeout(&mut self, now: Instant, rng: &mut impl Rng) -> Next {
        if self.params.mrc != 0 && self.sent >= self.params.mrc {
            return Next::GiveUp;
        }
        if let Some(mrd) = self.params.mrd {
            if now >= self.started + mrd {
                return Next::GiveUp;
            }
        }
        let mut rt = self.rt * 2 + scale(self.rt, rand_factor(rng, false));
        if !self.params.mrt.is_zero() && rt > self.params.mrt {
            rt = self.params.mrt + scale(self.params.mrt, rand_factor(rng, false));
        }
        self.rt = rt;
        self.sent += 1;
        Next::Transmit {
            next: self.clamp_to_mrd(now + rt),
        }
    }

    /// Hundredths of a second since the exchange began, saturating at 0xffff
    /// (RFC 8415 §21.9).
    pub fn elapsed_centis(&self, now: Instant) -> u16 {
        let centis = now.saturating_duration_since(self.started).as_millis() / 10;
        centis.min(0xffff) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn solicit(mrt: u64) -> Params {
        Params {
            irt: SOL_TIMEOUT,
            mrt: secs(mrt),
            mrc: 0,
            mrd: None,
            first_rand_positive: true,
        }
    }

    #[test]
    fn solicit_first_rt_is_strictly_above_irt() {
        let mut rng = StdRng::seed_from_u64(1);
        let now = Instant::now();
        for _ in 0..1000 {
            let (r, next) = Retransmit::start(solicit(3600), now, &mut rng);
            assert!(r.rt() > SOL_TIMEOUT && r.rt() <= secs(1) + Duration::from_millis(100));
            assert_eq!(next, now + r.rt());
        }
    }

    #[test]
    fn rt_doubles_with_jitter_and_caps_at_mrt() {
        let mut rng = StdRng::seed_from_u64(7);
        let t0 = Instant::now();
        let (mut r, mut next) = Retransmit::start(solicit(60), t0, &mut rng);
        let mut prev = r.rt();
        for _ in 0..20 {
            let now = next;
            match r.on_timeout(now, &mut rng) {
                Next::Transmit { next: n } => next = n,
                Next::GiveUp => panic!("solicit never gives up"),
            }
            let rt = r.rt().as_secs_f64();
            let doubled = prev.as_secs_f64() * 2.0;
            let capped = (54.0..=66.0).contains(&rt);
            let doubling = rt >= doubled * 0.95 - 1e-9 && rt <= doubled * 1.05 + 1e-9;
            assert!(capped || doubling, "rt {rt} after {prev:?}");
            assert!(rt <= 66.0 + 1e-9);
            prev = r.rt();
        }
        assert!(r.rt() >= secs(54));
    }

    #[test]
    fn mrc_ends_the_exchange() {
        let mut rng = StdRng::seed_from_u64(3);
        let params = Params {
            irt: REQ_TIMEOUT,
            mrt: REQ_MAX_RT,
            mrc: REQ_MAX_RC,
            mrd: None,
            first_rand_positive: false,
        };
        let (mut r, mut next) = Retransmit::start(params, Instant::now(), &mut rng);
        let mut sends = 1;
        while let Next::Transmit { next: n } = r.on_timeout(next, &mut rng) {
            sends += 1;
            next = n;
        }
        assert_eq!(sends, REQ_MAX_RC);
    }

    #[test]
    fn mrd_ends_the_exchange_and_clamps_the_timer() {
        let mut rng = StdRng::seed_from_u64(5);
        let t0 = Instant::now();
        let params = Params {
            irt: REN_TIMEOUT,
            mrt: REN_MAX_RT,
            mrc: 0,
            mrd: Some(secs(25)),
            first_rand_positive: false,
        };
        let (mut r, next) = Retransmit::start(params, t0, &mut rng);
        let Next::Transmit { next } = r.on_timeout(next, &mut rng) else {
            panic!("second transmission expected");
        };
        assert_eq!(next, t0 + secs(25), "timer clamped to MRD");
        assert_eq!(r.on_timeout(next, &mut rng), Next::GiveUp);
    }

    #[test]
    fn elapsed_time_saturates() {
        let mut rng = StdRng::seed_from_u64(5);
        let t0 = Instant::now();
        let (r, _) = Retransmit::start(solicit(3600), t0, &mut rng);
        assert_eq!(r.elapsed_centis(t0 + Duration::from_millis(1234)), 123);
        assert_eq!(r.elapsed_centis(t0 + secs(10_000)), 0xffff);
    }
}
