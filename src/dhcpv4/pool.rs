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

    /// The address a client with `mac` is offered first when it has no
    /// lease: its place in the pool from a hash of the MAC (FNV-1a), the
    /// same on every start. Not the lowest free one: the lease file lives in
    /// RAM and is gone after a reboot of the router, but the LAN's devices
    /// are not, and one that has not asked again yet keeps using its address
    /// (until T1, hours); the lowest free address is exactly the one the
    /// oldest such device holds, and the first newcomer that does not probe
    /// before use (RFC 5227) would share it. Hashed, a returning device gets
    /// its old address back and a newcomer usually lands elsewhere (dnsmasq
    /// does the same).
    pub fn home(&self, mac: [u8; 6]) -> Option<Ipv4Addr> {
        let hash = mac.iter().fold(0x811c_9dc5u32, |h, &b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        (self.len > 0).then(|| Ipv4Addr::from(self.first + hash % self.len))
    }

    /// The first free address from `mac`'s [`Pool::home`] on, wrapping
    /// round to the pool's start.
    pub fn free_for(&self, mac: [u8; 6]) -> Option<Ipv4Addr> {
        self.free_for_avoiding(mac, |_| false)
    }

    /// [`Pool::free_for`], passing over the free addresses `avoid` names.
    pub fn free_for_avoiding(
        &self,
        mac: [u8; 6],
        avoid: impl Fn(Ipv4Addr) -> bool,
    ) -> Option<Ipv4Addr> {
        let mut start = (u32::from(self.home(mac)?) - self.first) as usize;
        let mut first_seen = None;
        // Each free address looked at once: the scan ends when it wraps
        // round to the first one it found.
        loop {
            let ip = self.free_from(start)?;
            if first_seen == Some(ip) {
                return None;
            }
            first_seen.get_or_insert(ip);
            if !avoid(ip) {
                return Some(ip);
            }
            start = (u32::from(ip) - self.first + 1) as usize % self.len as usize;
        }
    }

    /// The first free address at or after offset `start`, wrapping.
    fn free_from(&self, start: usize) -> Option<Ipv4Addr> {
        let words = self.occupied.len();
        let below_start = !(u64::MAX << (start % 64));
        // The start word twice: its bits from `start` on first, the ones
        // below it after the wrap.
        (0..=words).find_map(|step| {
            let w = (start / 64 + step) % words;
            let mut free = !self.occupied[w];
            if step == 0 {
                free &= !below_start;
            } else if step == words {
                free &= below_start;
            }
            let i = w * 64 + free.trailing_zeros() as usize;
            (free != 0 && (i as u32) < self.len).then(|| Ipv4Addr::from(self.first + i as u32))
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
    fn finds_a_free_address_and_nothing_outside() {
        let mut pool = Pool::new(ip(100), ip(102));
        assert_eq!(pool.len(), 3);
        assert_eq!(pool.free_from(0), Some(ip(100)));
        pool.set_occupied(ip(100), true);
        pool.set_occupied(ip(99), true);
        assert_eq!(pool.free_from(0), Some(ip(101)));
        pool.set_occupied(ip(101), true);
        pool.set_occupied(ip(102), true);
        assert_eq!(pool.free_from(0), None, "bits past the end never count");
        assert_eq!(pool.occupied_count(), 3);
        pool.set_occupied(ip(101), false);
        assert_eq!(pool.free_from(0), Some(ip(101)));
        assert!(!pool.contains(ip(103)) && pool.contains(ip(102)));
    }

    #[test]
    fn spans_several_words() {
        let mut pool = Pool::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 200));
        for n in 1..=130u8 {
            pool.set_occupied(Ipv4Addr::new(10, 0, 0, n), true);
        }
        assert_eq!(pool.free_from(0), Some(Ipv4Addr::new(10, 0, 0, 131)));
        assert!(Pool::new(ip(5), ip(4)).is_empty());
    }

    #[test]
    fn the_search_starts_at_the_clients_home_and_wraps() {
        let mut pool = Pool::new(Ipv4Addr::new(10, 0, 0, 0), Ipv4Addr::new(10, 0, 0, 199));
        let mac = [2, 0, 0, 0, 0, 1];
        let home = pool.home(mac).unwrap();
        assert_eq!(pool.home(mac), Some(home), "the same every time");
        assert_ne!(pool.home([2, 0, 0, 0, 0, 2]), Some(home));
        assert_eq!(pool.free_for(mac), Some(home));
        // Taken: the next one up, then round past the end to the start.
        pool.set_occupied(home, true);
        let next = Ipv4Addr::from(u32::from(home) + 1);
        assert_eq!(
            pool.free_for(mac),
            Some(next)
                .filter(|n| pool.contains(*n))
                .or(Some(pool.first()))
        );
        for n in 0..200u32 {
            let ip = Ipv4Addr::from(u32::from(pool.first()) + n);
            pool.set_occupied(ip, ip != pool.first() && ip != pool.last());
        }
        let (first, last) = (pool.first(), pool.last());
        pool.set_occupied(last, true);
        assert_eq!(pool.free_for(mac), Some(first), "wrapped round");
        pool.set_occupied(first, true);
        assert_eq!(pool.free_for(mac), None);
        assert_eq!(Pool::new(ip(5), ip(4)).free_for(mac), None);
    }

    #[test]
    fn every_start_in_a_word_finds_the_free_bits_on_both_sides() {
        let mut pool = Pool::new(Ipv4Addr::new(10, 0, 0, 0), Ipv4Addr::new(10, 0, 0, 99));
        for n in 0..100u8 {
            pool.set_occupied(Ipv4Addr::new(10, 0, 0, n), n != 3 && n != 70);
        }
        for start in 0..100 {
            let want = if (4..=70).contains(&start) { 70 } else { 3 };
            assert_eq!(
                pool.free_from(start),
                Some(Ipv4Addr::new(10, 0, 0, want)),
                "from {start}"
            );
        }
    }
}
