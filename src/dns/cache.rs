//! The answer cache: raw upstream responses kept as received and served with
//! only the ID and the TTLs changed (RFC 1035 §7.4: TTLs count down while
//! cached). Bounded by an entry count and a byte budget; the oldest entry
//! goes first.

use std::collections::{HashMap, VecDeque};
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
    question: Question,
    variant: u8,
}

impl CacheKey {
    pub fn new(question: &Question, header: &Header, edns: Option<wire::Edns>) -> CacheKey {
        let variant = u8::from(header.recursion_desired())
            | u8::from(header.checking_disabled()) << 1
            | u8::from(edns.is_some()) << 2
            | u8::from(edns.is_some_and(|e| e.dnssec_ok)) << 3;
        CacheKey {
            question: question.clone(),
            variant,
        }
    }
}

struct Entry {
    message: Box<[u8]>,
    ttl_offsets: Box<[u16]>,
    stored: Instant,
    ttl: u32,
    generation: u64,
}

pub struct Cache {
    entries: HashMap<CacheKey, Entry>,
    /// Insertion order; an element whose generation no longer matches the
    /// entry is stale and skipped.
    order: VecDeque<(CacheKey, u64)>,
    capacity: usize,
    byte_budget: usize,
    bytes: usize,
    next_generation: u64,
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
    pub fn new(capacity: usize) -> Cache {
        Cache {
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity,
            byte_budget: capacity.saturating_mul(BUDGET_PER_ENTRY),
            bytes: 0,
            next_generation: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of cached messages.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The cached answer for `key` with `id` and aged TTLs, if still fresh.
    pub fn get(&mut self, key: &CacheKey, now: Instant, id: u16) -> Option<Vec<u8>> {
        let entry = self.entries.get(key)?;
        let elapsed = now.saturating_duration_since(entry.stored).as_secs();
        if elapsed >= u64::from(entry.ttl) {
            self.remove(key);
            return None;
        }
        let mut message = entry.message.to_vec();
        wire::set_id(&mut message, id);
        wire::age_ttls(&mut message, &entry.ttl_offsets, elapsed as u32);
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
        self.remove(&key);
        while self.entries.len() >= self.capacity || self.bytes + response.len() > self.byte_budget
        {
            if !self.evict_oldest() {
                break;
            }
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        self.bytes += response.len();
        self.order.push_back((key.clone(), generation));
        self.entries.insert(
            key,
            Entry {
                message: response.into(),
                ttl_offsets: layout.ttl_offsets.clone().into_boxed_slice(),
                stored: now,
                ttl,
                generation,
            },
        );
        // Stale order elements from replaced entries: keep the queue bounded.
        if self.order.len() > 2 * self.capacity + 16 {
            let entries = &self.entries;
            self.order
                .retain(|(k, g)| entries.get(k).is_some_and(|e| e.generation == *g));
        }
    }

    fn remove(&mut self, key: &CacheKey) {
        if let Some(old) = self.entries.remove(key) {
            self.bytes -= old.message.len();
        }
    }

    fn evict_oldest(&mut self) -> bool {
        while let Some((key, generation)) = self.order.pop_front() {
            if self
                .entries
                .get(&key)
                .is_some_and(|e| e.generation == generation)
            {
                self.remove(&key);
                return true;
            }
        }
        false
    }
}
