//! The dynamic address pool in OpenWrt's terms (`start` offset and `limit`
//! inside the LAN subnet) with an occupancy bitmap, so finding a free
//! address costs one pass over `limit / 64` words rather than a map lookup
//! per address.

use std::net::Ipv4Addr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    first: u32,
    len: u32,
    /// Bit set = the address is not free (leased, offered, quarantined,
    /// static or the server's own); the owner of the pool keeps it in step.
    occupied: Vec<u64>,
}

impl Pool {
    /// `first..=last`; an empty pool when `last < first`.
    pub fn new(first: Ipv4Addr, last: Ipv4Addr) -> Pool {
        let first = u32::from(first);
        let len = u32::from(last).saturating_add(1).saturating_sub(first);
        Pool {
            first,
            len,
            occupied: vec![0; (len as usize).div_ceil(64)],
        }
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn first(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.first)
    }

    pub fn last(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.first + self.len.saturating_sub(1))
    }

    fn index(&self, ip: Ipv4Addr) -> Option<usize> {
        let offset = u32::from(ip).checked_sub(self.first)?;
        (offset < self.len).then_some(offset as usize)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.index(ip).is_some()
    }

    /// Marks an address (outside the pool: ignored).
    pub fn set_occupied(&mut self, ip: Ipv4Addr, occupied: bool) {
        if let Some(i) = self.index(ip) {
            let bit = 1u64 << (i % 64);
            if occupied {
                self.occupied[i / 64] |= bit;
            } else {
                self.occupied[i / 64] &= !bit;
            }
        }
    }

    pub fn is_occupied(&self, ip: Ipv4Addr) -> bool {
        self.index(ip)
            .is_some_and(|i| self.occupied[i / 64] & (1 << (i % 64)) != 0)
    }

    /// The lowest free address. Lowest rather than hashed: with leases
    /// persisted, a returning client finds its old address through its lease
    /// record, and a predictable order keeps the LAN tidy.
    pub fn first_free(&self) -> Option<Ipv4Addr> {
        self.occupied.iter().enumerate().find_map(|(w, &word)| {
            let i = w * 64 + (!word).trailing_zeros() as usize;
            (word != u64::MAX && (i as u32) < self.len)
                .then(|| Ipv4Addr::from(self.first + i as u32))
        })
    }

    /// How many addresses are marked.
    pub fn occupied_count(&self) -> u32 {
        self.occupied.iter().map(|w| w.count_ones()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(192, 168, 1, last)
    }

    #[test]
    fn finds_the_lowest_free_address_and_nothing_outside() {
        let mut pool = Pool::new(ip(100), ip(102));
        assert_eq!(pool.len(), 3);
        assert_eq!(pool.first_free(), Some(ip(100)));
        pool.set_occupied(ip(100), true);
        pool.set_occupied(ip(99), true);
        assert_eq!(pool.first_free(), Some(ip(101)));
        pool.set_occupied(ip(101), true);
        pool.set_occupied(ip(102), true);
        assert_eq!(pool.first_free(), None, "bits past the end never count");
        assert_eq!(pool.occupied_count(), 3);
        pool.set_occupied(ip(101), false);
        assert_eq!(pool.first_free(), Some(ip(101)));
        assert!(!pool.contains(ip(103)) && pool.contains(ip(102)));
    }

    #[test]
    fn spans_several_words() {
        let mut pool = Pool::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 200));
        for n in 1..=130u8 {
            pool.set_occupied(Ipv4Addr::new(10, 0, 0, n), true);
        }
        assert_eq!(pool.first_free(), Some(Ipv4Addr::new(10, 0, 0, 131)));
        assert!(Pool::new(ip(5), ip(4)).is_empty());
    }
}
