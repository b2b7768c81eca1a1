//! Upstream selection: a smoothed RTT per server (RFC 6298 §2 style, gain
//! 1/8), the fastest first. A timeout doubles the estimate; a SERVFAIL or
//! REFUSED counts as an answer that took the shortest attempt timeout: a
//! server that refuses at once must not look fast, or it would be asked
//! first every time, a wasted round trip per cache miss, but a name that
//! fails everywhere (a DNSSEC-bogus domain retried by a client) must not
//! push every server to the longest timeout either. The
//! estimates of servers not chosen decay a little each time, so a server that
//! was slow once is tried again later (as BIND does) instead of never.

use std::net::SocketAddr;
use std::time::Duration;

use log::{info, warn};

/// Failures in a row after which a server is reported as not answering.
const DOWN_AFTER: u32 = 3;

/// The estimate of a server never measured: tried before slow ones, after fast ones.
const INITIAL_SRTT: Duration = Duration::from_millis(50);
const MAX_SRTT: Duration = Duration::from_secs(5);
/// Bounds of the per-attempt timeout, which is 2×SRTT + 50 ms within these.
const MIN_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(250);
const MAX_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub addr: SocketAddr,
    pub srtt: Duration,
    pub measured: bool,
    pub queries: u64,
    pub answers: u64,
    /// Timeouts and SERVFAIL/REFUSED answers.
    pub failures: u64,
    /// Failures since the last answer.
    pub failures_in_a_row: u32,
}

impl Upstream {
    fn new(addr: SocketAddr) -> Upstream {
        Upstream {
            addr,
            srtt: INITIAL_SRTT,
            measured: false,
            queries: 0,
            answers: 0,
            failures: 0,
            failures_in_a_row: 0,
        }
    }
}

#[derive(Debug, Default)]
pub struct Upstreams {
    servers: Vec<Upstream>,
    /// How many times a server that had stopped answering answered again.
    recoveries: u64,
}

impl Upstreams {
    /// Replaces the list; servers that stay keep their statistics.
    pub fn set(&mut self, addrs: &[SocketAddr]) {
        let mut old = std::mem::take(&mut self.servers);
        for addr in addrs {
            if self.servers.iter().any(|s| s.addr == *addr) {
                continue;
            }
            let kept = old
                .iter()
                .position(|s| s.addr == *addr)
                .map(|i| old.swap_remove(i));
            self.servers
                .push(kept.unwrap_or_else(|| Upstream::new(*addr)));
        }
    }

    pub fn list(&self) -> &[Upstream] {
        &self.servers
    }

    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// Server addresses, fastest estimate first (config order among equals).
    pub fn by_speed(&self) -> Vec<SocketAddr> {
        let mut order: Vec<&Upstream> = self.servers.iter().collect();
        order.sort_by_key(|s| s.srtt);
        order.into_iter().map(|s| s.addr).collect()
    }

    fn get(&mut self, addr: SocketAddr) -> Option<&mut Upstream> {
        self.servers.iter_mut().find(|s| s.addr == addr)
    }

    /// How many times a server that had stopped answering answered again:
    /// the driver passes each one on (a failing AFTR lookup retries then).
    pub fn recoveries(&self) -> u64 {
        self.recoveries
    }

    /// How long to wait for `addr` before trying the next server.
    pub fn attempt_timeout(&self, addr: SocketAddr) -> Duration {
        let srtt = self
            .servers
            .iter()
            .find(|s| s.addr == addr)
            .map_or(INITIAL_SRTT, |s| s.srtt);
        (srtt * 2 + Duration::from_millis(50)).clamp(MIN_ATTEMPT_TIMEOUT, MAX_ATTEMPT_TIMEOUT)
    }

    /// A query goes to `addr`: the others' estimates decay by 1/64.
    pub fn sent(&mut self, addr: SocketAddr) {
        for s in &mut self.servers {
            if s.addr == addr {
                s.queries += 1;
            } else {
                s.srtt -= s.srtt / 64;
            }
        }
    }

    pub fn answered(&mut self, addr: SocketAddr, rtt: Duration) {
        let Some(s) = self.servers.iter_mut().find(|s| s.addr == addr) else {
            return;
        };
        if s.failures_in_a_row >= DOWN_AFTER {
            info!("upstream {addr} answers again");
            self.recoveries += 1;
        }
        s.failures_in_a_row = 0;
        s.answers += 1;
        s.srtt = if s.measured {
            (s.srtt * 7 + rtt) / 8
        } else {
            rtt
        }
        .min(MAX_SRTT);
        s.measured = true;
    }

    /// A timeout (`timeout`), or a SERVFAIL or REFUSED.
    pub fn failed(&mut self, addr: SocketAddr, timeout: bool) {
        if let Some(s) = self.get(addr) {
            s.failures += 1;
            s.failures_in_a_row += 1;
            if s.failures_in_a_row == DOWN_AFTER {
                warn!("upstream {addr} is not answering ({DOWN_AFTER} failures in a row)");
            }
            s.srtt = if timeout {
                (s.srtt * 2).max(MIN_ATTEMPT_TIMEOUT).min(MAX_SRTT)
            } else {
                (s.srtt * 7 + MIN_ATTEMPT_TIMEOUT) / 8
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_answering_after_it_was_down_counts_as_one_recovery() {
        let server: SocketAddr = "[2001:db8::53]:53".parse().unwrap();
        let mut upstreams = Upstreams::default();
        upstreams.set(&[server]);
        let rtt = Duration::from_millis(5);
        upstreams.failed(server, true);
        upstreams.answered(server, rtt);
        assert_eq!(upstreams.recoveries(), 0, "one timeout is not down");
        for _ in 0..DOWN_AFTER {
            upstreams.failed(server, true);
        }
        upstreams.answered(server, rtt);
        upstreams.answered(server, rtt);
        assert_eq!(upstreams.recoveries(), 1);
    }

    /// Of two servers, one refusing at once (a resolver that refuses the
    /// router's address) and one answering: the answering one is asked
    /// first; the refusing one is retried now and then, not every time.
    #[test]
    fn a_server_that_refuses_at_once_is_not_taken_for_the_fastest() {
        let refusing: SocketAddr = "[2001:db8::1]:53".parse().unwrap();
        let answering: SocketAddr = "[2001:db8::2]:53".parse().unwrap();
        let mut upstreams = Upstreams::default();
        upstreams.set(&[refusing, answering]);
        let mut refusing_first = 0;
        for _ in 0..300 {
            let order = upstreams.by_speed();
            refusing_first += usize::from(order[0] == refusing);
            for addr in order {
                upstreams.sent(addr);
                if addr == refusing {
                    upstreams.failed(addr, false);
                } else {
                    upstreams.answered(addr, Duration::from_millis(10));
                    break;
                }
            }
        }
        assert!(
            refusing_first <= 10,
            "asked first {refusing_first} times of 300"
        );
    }
}
