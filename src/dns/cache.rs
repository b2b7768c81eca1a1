//! The answer cache: raw upstream responses kept as received and served with
//! only the ID and the TTLs changed (RFC 1035 §7.4: TTLs count down while
//! cached). Bounded by an entry count and a byte budget.
//!
//! Memory layout, because this is what grows on a router: entries live in a
//! fixed ring of slots (one allocation each for the key name and for
//! message + TTL offsets); the index maps a keyed 64-bit hash of the key to
//! a slot, and the slot's own key is compared on every hit, so a hash
//! collision is only ever a miss. A full cache replaces the slot under the
//! ring's hand, i.e. roughly the oldest entry (FIFO).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
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
        let variant = u8::from(header.recursion_desired())
            | u8::from(header.checking_disabled()) << 1
            | u8::from(edns.is_some()) << 2
            | u8::from(edns.is_some_and(|e| e.dnssec_ok)) << 3;
        CacheKey {
            name: question.name.as_slice().into(),
            qtype: question.qtype,
            qclass: question.qclass,
            variant,
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
    fn is(&self, key: &CacheKey) -> bool {
        self.qtype == key.qtype
            && self.qclass == key.qclass
            && self.variant == key.variant
            && self.name().eq_ignore_ascii_case(&key.name)
    }
}

pub struct Cache {
    hasher: RandomState,
    index: HashMap<u64, u32>,
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
            index: HashMap::with_capacity(reserve),
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
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Bytes of cached messages.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn find(&self, key: &CacheKey) -> (u64, Option<usize>) {
        let hash = self.hash(&key.name, key.qtype, key.qclass, key.variant);
        let slot = self.index.get(&hash).map(|s| *s as usize);
        let found = slot.filter(|s| self.slots[*s].as_ref().is_some_and(|e| e.is(key)));
        (hash, found)
    }

    /// The cached answer for `key` with `id` and aged TTLs, if still fresh.
    pub fn get(&mut self, key: &CacheKey, now: Instant, id: u16) -> Option<Vec<u8>> {
        let (_, slot) = self.find(key);
        let entry = self.slots[slot?].as_ref()?;
        let elapsed = self.seconds(now).saturating_sub(entry.stored);
        if elapsed >= entry.ttl {
            self.vacate(slot?);
            return None;
        }
        let mut message = entry.message().to_vec();
        wire::set_id(&mut message, id);
        wire::age_ttls(&mut message, entry.ttl_offsets(), elapsed);
        Some(message)
    }

    /// Stores `response` (already checked to answer `key`) if it may be cached.
    pub fn insert(&mut self, key: CacheKey, response: &[u8], layout: &Layout, now: Instant) {
        if self.capacity == 0 || response.len() > MAX_CACHED_MESSAGE {
            return;
        }
        let Ok(header) = Header::read(response) else {
            return;
        };
        let Some(ttl) = cacheable_ttl(&header, layout) else {
            return;
        };
        let (hash, existing) = self.find(&key);
        if let Some(slot) = existing {
            self.vacate(slot);
        } else if let Some(&other) = self.index.get(&hash) {
            // A different key with the same 64-bit hash: the newer one wins.
            self.vacate(other as usize);
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
        self.index.insert(hash, slot as u32);
    }

    fn vacate(&mut self, slot: usize) {
        if let Some(old) = self.slots[slot].take() {
            self.bytes -= old.data.len();
            let hash = self.hash(old.name(), old.qtype, old.qclass, old.variant);
            self.index.remove(&hash);
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
