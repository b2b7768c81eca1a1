//! The answer cache: raw upstream responses kept as received and served with
//! only the ID and the TTLs changed (RFC 1035 §7.4: TTLs count down while
//! cached). Bounded by an entry count and a byte budget.
//!
//! Memory layout, because this is what grows on a router: entries live in a
//! fixed ring of slots (one allocation each holding message + TTL offsets);
//! the index is an open-addressing table of 8-byte buckets, each a tag from
//! a keyed 64-bit hash of the key and a slot number, and the slot's own key
//! is compared on every tag match, so a hash collision is only ever a miss.
//! A full cache replaces the slot under the ring's hand, i.e. roughly the
//! oldest entry (FIFO).
//!
//! A hit is the proxy's hottest path, and between two batches the kernel's
//! network stack evicts most of the CPU cache: so a hit reads one bucket,
//! one slot and the message (three cache misses, not the five of a
//! `HashMap<u64, u32>` rehashed with SipHash), and the index costs 8 bytes
//! per bucket at most 2/3 full (about 13 bytes per entry instead of 28).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Instant;

use super::wire::{self, Header, Layout, Question};

/// Positive answers are kept at most a day, whatever the TTL says.
const MAX_TTL: u32 = 86_400;
/// RFC 2308 §5: negative answers at most 3 hours.
const MAX_NEGATIVE_TTL: u32 = 10_800;
/// The byte budget per entry of capacity: typical answers are 100–500 bytes,
/// so a 1000-entry cache holds at most 1 MiB of messages even if every
/// answer is a 4096-byte DNSSEC response.
const BUDGET_PER_ENTRY: usize = 1024;
/// Only UDP-sized answers are cached (RFC 6891 §6.2.5 recommends 4096).
pub const MAX_CACHED_MESSAGE: usize = 4096;

/// What makes two queries get the same answer: the question plus the bits
/// that change what an upstream returns (RD; CD and DO per RFC 4035 §3.2,
/// so validated and unvalidated, signed and unsigned variants never mix;
/// EDNS presence, since the OPT record is part of the answer).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    name: Box<[u8]>,
    qtype: u16,
    qclass: u16,
    variant: u8,
}

impl CacheKey {
    pub fn new(question: &Question, header: &Header, edns: Option<wire::Edns>) -> CacheKey {
        KeyRef::new(question, header, edns).to_owned()
    }

    pub fn as_ref(&self) -> KeyRef<'_> {
        KeyRef {
            name: &self.name,
            qtype: self.qtype,
            qclass: self.qclass,
            variant: self.variant,
        }
    }
}

/// A [`CacheKey`] borrowing the question's name: a lookup allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRef<'a> {
    /// Lower-cased wire form.
    name: &'a [u8],
    qtype: u16,
    qclass: u16,
    variant: u8,
}

impl<'a> KeyRef<'a> {
    pub fn new(question: &'a Question, header: &Header, edns: Option<wire::Edns>) -> KeyRef<'a> {
        let variant = u8::from(header.recursion_desired())
            | u8::from(header.checking_disabled()) << 1
            | u8::from(edns.is_some()) << 2
            | u8::from(edns.is_some_and(|e| e.dnssec_ok)) << 3;
        KeyRef {
            name: &question.name,
            qtype: question.qtype,
            qclass: question.qclass,
            variant,
        }
    }

    pub fn to_owned(self) -> CacheKey {
        CacheKey {
            name: self.name.into(),
            qtype: self.qtype,
            qclass: self.qclass,
            variant: self.variant,
        }
    }
}

/// 32 bytes plus one allocation holding the message and its TTL offsets.
/// The key's name is the message's question name (a reply is only accepted
/// with the query's question), so it is not stored twice.
struct Entry {
    /// The message, then its TTL offsets as big-endian u16s.
    data: Box<[u8]>,
    name_len: u8,
    message_len: u16,
    qtype: u16,
    qclass: u16,
    variant: u8,
    /// Seconds since the cache's epoch.
    stored: u32,
    ttl: u32,
}

impl Entry {
    /// The question name as it is in the message (case as sent).
    fn name(&self) -> &[u8] {
        let end = wire::HEADER_LEN + usize::from(self.name_len);
        self.data.get(wire::HEADER_LEN..end).unwrap_or_default()
    }
    fn message(&self) -> &[u8] {
        &self.data[..usize::from(self.message_len)]
    }
    fn ttl_offsets(&self) -> impl Iterator<Item = u16> + '_ {
        self.data[usize::from(self.message_len)..]
            .chunks_exact(2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
    }
    fn is(&self, key: KeyRef<'_>) -> bool {
        self.qtype == key.qtype
            && self.qclass == key.qclass
            && self.variant == key.variant
            && self.name().eq_ignore_ascii_case(key.name)
    }
}

/// Open addressing with linear probing over a power-of-two table that is
/// never more than 2/3 full (the cache's capacity bounds the entries).
/// A bucket is `tag << 32 | (slot + 1)`, 0 when empty; the tag is the top
/// half of the key's keyed hash and also picks the home bucket, so
/// removal can shift later buckets back (no tombstones to clean up).
struct Index {
    buckets: Box<[u64]>,
    mask: usize,
}

impl Index {
    fn new(entries: usize) -> Index {
        let len = (entries + entries / 2 + 1).next_power_of_two();
        Index {
            buckets: vec![0; len].into_boxed_slice(),
            mask: len - 1,
        }
    }

    fn tag(hash: u64) -> u32 {
        (hash >> 32) as u32
    }

    fn home(&self, tag: u32) -> usize {
        tag as usize & self.mask
    }

    /// The slots whose tag is `tag`, in probe order, until an empty bucket.
    fn candidates(&self, tag: u32) -> impl Iterator<Item = usize> + '_ {
        let start = self.home(tag);
        (0..=self.mask)
            .map(move |i| self.buckets[(start + i) & self.mask])
            .take_while(|&b| b != 0)
            .filter(move |&b| (b >> 32) as u32 == tag)
            .map(|b| (b as u32 - 1) as usize)
    }

    fn insert(&mut self, tag: u32, slot: usize) {
        let mut at = self.home(tag);
        while self.buckets[at] != 0 {
            at = (at + 1) & self.mask;
        }
        self.buckets[at] = u64::from(tag) << 32 | (slot as u64 + 1);
    }

    fn remove(&mut self, tag: u32, slot: usize) {
        let wanted = u64::from(tag) << 32 | (slot as u64 + 1);
        let mut hole = self.home(tag);
        loop {
            match self.buckets[hole] {
                0 => return,
                b if b == wanted => break,
                _ => hole = (hole + 1) & self.mask,
            }
        }
        // Backward-shift deletion: a later bucket of the same run moves into
        // the hole unless its home lies after the hole (it would then be
        // before its home, unreachable by its probe).
        let mut at = hole;
        loop {
            at = (at + 1) & self.mask;
            let b = self.buckets[at];
            if b == 0 {
                break;
            }
            let home = self.home((b >> 32) as u32);
            if (at.wrapping_sub(home) & self.mask) >= (at.wrapping_sub(hole) & self.mask) {
                self.buckets[hole] = b;
                hole = at;
            }
        }
        self.buckets[hole] = 0;
    }
}

pub struct Cache {
    hasher: RandomState,
    index: Index,
    /// Entries stored (the index has no count of its own).
    entries: usize,
    slots: Vec<Option<Entry>>,
    free: Vec<u32>,
    /// The next slot to replace when full.
    hand: usize,
    capacity: usize,
    byte_budget: usize,
    bytes: usize,
    epoch: Instant,
}

/// How long `response` may be cached, `None` when it must not be.
pub fn cacheable_ttl(header: &Header, layout: &Layout) -> Option<u32> {
    if header.truncated() {
        return None;
    }
    let ttl = match header.rcode() {
        wire::RCODE_NOERROR if header.ancount > 0 => layout.min_ttl?.min(MAX_TTL),
        // NODATA and NXDOMAIN: cacheable only with an SOA (RFC 2308 §5).
        wire::RCODE_NOERROR | wire::RCODE_NXDOMAIN => layout.negative_ttl?.min(MAX_NEGATIVE_TTL),
        _ => return None,
    };
    (ttl > 0).then_some(ttl)
}

impl Cache {
    pub fn new(capacity: usize, now: Instant) -> Cache {
        // Reserved once: growing by doubling would leave the old arrays as
        // heap holes (up to 64 Ki entries up front; beyond, it grows).
        let reserve = capacity.min(1 << 16);
        Cache {
            hasher: RandomState::new(),
            index: Index::new(capacity),
            entries: 0,
            slots: Vec::with_capacity(reserve),
            free: Vec::new(),
            hand: 0,
            capacity,
            byte_budget: capacity.saturating_mul(BUDGET_PER_ENTRY),
            bytes: 0,
            epoch: now,
        }
    }

    /// Hash of the key with the name lower-cased (RFC 4343).
    fn hash(&self, name: &[u8], qtype: u16, qclass: u16, variant: u8) -> u64 {
        let mut lower = [0u8; 256];
        let len = name.len().min(lower.len());
        for (l, b) in lower.iter_mut().zip(&name[..len]) {
            *l = b.to_ascii_lowercase();
        }
        let mut hasher = self.hasher.build_hasher();
        hasher.write(&lower[..len]);
        hasher.write_u16(qtype);
        hasher.write_u16(qclass);
        hasher.write_u8(variant);
        hasher.finish()
    }

    fn seconds(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.epoch)
            .as_secs()
            .min(u64::from(u32::MAX)) as u32
    }

    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Bytes of cached messages.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn find(&self, key: KeyRef<'_>) -> (u32, Option<usize>) {
        let tag = Index::tag(self.hash(key.name, key.qtype, key.qclass, key.variant));
        let found = self
            .index
            .candidates(tag)
            .find(|s| self.slots[*s].as_ref().is_some_and(|e| e.is(key)));
        (tag, found)
    }

    /// Writes the cached answer for `key` with `id` and aged TTLs into
    /// `answer` (replacing what it held; a buffer reused from an answer
    /// already sent, so a hit allocates nothing); false if there is no fresh
    /// one.
    pub fn get(&mut self, key: KeyRef<'_>, now: Instant, id: u16, answer: &mut Vec<u8>) -> bool {
        let (_, Some(slot)) = self.find(key) else {
            return false;
        };
        let Some(entry) = self.slots[slot].as_ref() else {
            return false;
        };
        let elapsed = self.seconds(now).saturating_sub(entry.stored);
        if elapsed >= entry.ttl {
            self.vacate(slot);
            return false;
        }
        answer.clear();
        answer.extend_from_slice(entry.message());
        wire::set_id(answer, id);
        wire::age_ttls(answer, entry.ttl_offsets(), elapsed);
        true
    }

    /// Stores `response` (already checked to answer `key`) if it may be cached.
    pub fn insert(&mut self, key: KeyRef<'_>, response: &[u8], layout: &Layout, now: Instant) {
        if self.capacity == 0 || response.len() > MAX_CACHED_MESSAGE {
            return;
        }
        let Ok(header) = Header::read(response) else {
            return;
        };
        let Some(ttl) = cacheable_ttl(&header, layout) else {
            return;
        };
        let (tag, existing) = self.find(key);
        if let Some(slot) = existing {
            self.vacate(slot);
        }
        let mut data = Vec::with_capacity(response.len() + 2 * layout.ttl_offsets.len());
        data.extend_from_slice(response);
        for off in &layout.ttl_offsets {
            data.extend_from_slice(&off.to_be_bytes());
        }
        while self.free.is_empty() && self.slots.len() >= self.capacity
            || self.bytes + data.len() > self.byte_budget && !self.is_empty()
        {
            self.evict_one();
        }
        self.bytes += data.len();
        let entry = Entry {
            data: data.into_boxed_slice(),
            name_len: key.name.len() as u8,
            message_len: response.len() as u16,
            qtype: key.qtype,
            qclass: key.qclass,
            variant: key.variant,
            stored: self.seconds(now),
            ttl,
        };
        let slot = match self.free.pop() {
            Some(slot) => slot as usize,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        self.slots[slot] = Some(entry);
        self.index.insert(tag, slot);
        self.entries += 1;
    }

    fn vacate(&mut self, slot: usize) {
        if let Some(old) = self.slots[slot].take() {
            self.bytes -= old.data.len();
            let hash = self.hash(old.name(), old.qtype, old.qclass, old.variant);
            self.index.remove(Index::tag(hash), slot);
            self.entries -= 1;
            self.free.push(slot as u32);
        }
    }

    /// Frees the slot under the hand (or the next occupied one).
    fn evict_one(&mut self) {
        for _ in 0..self.slots.len() {
            let slot = self.hand % self.slots.len();
            self.hand = slot + 1;
            if self.slots[slot].is_some() {
                self.vacate(slot);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any sequence of inserts and removals (few distinct tags, so runs
        /// collide and wrap around the table's end) leaves every stored
        /// (tag, slot) findable and nothing removed findable.
        #[test]
        fn index_finds_exactly_what_it_holds(ops in proptest::collection::vec((any::<bool>(), 0u32..6, 0usize..10), 1..200)) {
            let mut index = Index::new(10);
            let mut held: Vec<(u32, usize)> = Vec::new();
            for (insert, tag, slot) in ops {
                // Tags spread over the top bits too, homes near the end.
                let tag = tag.wrapping_mul(0x9e37_79b9) | 0xc;
                let present = held.iter().position(|h| h.1 == slot);
                match (insert, present) {
                    (true, None) => {
                        index.insert(tag, slot);
                        held.push((tag, slot));
                    }
                    (false, Some(i)) => {
                        let (tag, slot) = held.swap_remove(i);
                        index.remove(tag, slot);
                    }
                    _ => {}
                }
                for &(tag, slot) in &held {
                    prop_assert!(index.candidates(tag).any(|s| s == slot));
                }
                let stored = index.buckets.iter().filter(|b| **b != 0).count();
                prop_assert_eq!(stored, held.len());
            }
        }
    }
}
