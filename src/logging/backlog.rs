//! Bounded queue of datagrams waiting for syslog to come back.
//!
//! When full, the oldest message is dropped and counted: the newest messages
//! usually explain the outage best, and memory on a router is scarce
//! (128 × 1 KiB at most with the default capacity).

use std::collections::VecDeque;

/// Default number of messages kept while syslog is unavailable.
pub const DEFAULT_CAPACITY: usize = 128;

#[derive(Debug)]
pub struct Backlog {
    queue: VecDeque<String>,
    capacity: usize,
    dropped: u64,
}

impl Backlog {
    /// A capacity of 0 is treated as 1, so the newest message always fits.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Backlog {
            queue: VecDeque::new(),
            capacity,
            dropped: 0,
        }
    }

    /// Appends `msg`, dropping (and counting) the oldest message if full.
    pub fn push(&mut self, msg: String) {
        while self.queue.len() >= self.capacity {
            self.queue.pop_front();
            self.dropped = self.dropped.saturating_add(1);
        }
        self.queue.push_back(msg);
    }

    pub fn front(&self) -> Option<&str> {
        self.queue.front().map(String::as_str)
    }

    pub fn pop(&mut self) -> Option<String> {
        self.queue.pop_front()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Messages dropped since the last [`Backlog::clear_dropped`].
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Counts `n` more lost messages (e.g. ones syslog refused outright).
    pub fn add_dropped(&mut self, n: u64) {
        self.dropped = self.dropped.saturating_add(n);
    }

    /// Called once the "messages lost" notice has been delivered.
    pub fn clear_dropped(&mut self) {
        self.dropped = 0;
    }

    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        while self.queue.len() > self.capacity {
            self.queue.pop_front();
            self.dropped = self.dropped.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_drops_oldest_when_full() {
        let mut b = Backlog::new(3);
        for i in 0..5 {
            b.push(format!("m{i}"));
        }
        assert_eq!(b.len(), 3);
        assert_eq!(b.dropped(), 2);
        let drained: Vec<_> = std::iter::from_fn(|| b.pop()).collect();
        assert_eq!(drained, ["m2", "m3", "m4"]);
        assert!(b.is_empty());
        b.clear_dropped();
        assert_eq!(b.dropped(), 0);
    }

    #[test]
    fn zero_capacity_still_keeps_the_newest() {
        let mut b = Backlog::new(0);
        b.push("a".into());
        b.push("b".into());
        assert_eq!(b.front(), Some("b"));
        assert_eq!(b.dropped(), 1);
    }

    #[test]
    fn shrinking_drops_oldest() {
        let mut b = Backlog::new(4);
        for i in 0..4 {
            b.push(format!("m{i}"));
        }
        b.set_capacity(2);
        assert_eq!(b.front(), Some("m2"));
        assert_eq!(b.dropped(), 2);
    }
}
