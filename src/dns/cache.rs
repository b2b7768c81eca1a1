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
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

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
/// AD, since the answer's AD depends on AD or DO in the query, RFC 6840
/// §5.7-5.8; EDNS presence, since the OPT record is part of the answer).
///
/// Kept as one byte string, the lower-cased wire name (RFC 4343) then
/// QTYPE, QCLASS and the variant bits: hashed in one pass, and built by
/// appending to the buffer the question's name was read into, so a lookup
/// allocates nothing. The name is self-delimiting (it ends at the root
/// label), so two different keys never have the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    bytes: Box<[u8]>,
}

/// QTYPE, QCLASS, variant.
const KEY_SUFFIX: usize = 5;

impl CacheKey {
    pub fn new(question: &Question, header: &Header, edns: Option<wire::Edns>) -> CacheKey {
        let mut bytes = question.name.clone();
        KeyRef::append(&mut bytes, question.qtype, question.qclass, header, edns).to_owned()
    }

    pub fn as_ref(&self) -> KeyRef<'_> {
        KeyRef { bytes: &self.bytes }
    }
}

/// A [`CacheKey`] borrowing its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRef<'a> {
    bytes: &'a [u8],
}

impl<'a> KeyRef<'a> {
    /// Appends QTYPE, QCLASS and the variant to `name`, which holds the
    /// question's lower-cased name (as [`wire::read_question_into`] leaves it).
    pub fn append(
        name: &'a mut Vec<u8>,
        qtype: u16,
        qclass: u16,
        header: &Header,
        edns: Option<wire::Edns>,
    ) -> KeyRef<'a> {
        let variant = u8::from(header.recursion_desired())
            | u8::from(header.checking_disabled()) << 1
            | u8::from(edns.is_some()) << 2
            | u8::from(edns.is_some_and(|e| e.dnssec_ok)) << 3
            | u8::from(header.authentic_data()) << 4;
        let [t0, t1] = qtype.to_be_bytes();
        let [c0, c1] = qclass.to_be_bytes();
        name.extend_from_slice(&[t0, t1, c0, c1, variant]);
        KeyRef { bytes: name }
    }

    pub fn to_owned(self) -> CacheKey {
        CacheKey {
            bytes: self.bytes.into(),
        }
    }

    /// The lower-cased wire name.
    pub fn name(&self) -> &'a [u8] {
        &self.bytes[..self.bytes.len().saturating_sub(KEY_SUFFIX)]
    }

    fn suffix(&self) -> &'a [u8] {
        &self.bytes[self.bytes.len().saturating_sub(KEY_SUFFIX)..]
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
    /// QTYPE, QCLASS and variant as in a key.
    fn suffix(&self) -> [u8; KEY_SUFFIX] {
        let [t0, t1] = self.qtype.to_be_bytes();
        let [c0, c1] = self.qclass.to_be_bytes();
        [t0, t1, c0, c1, self.variant]
    }

    fn is(&self, key: KeyRef<'_>) -> bool {
        self.suffix() == key.suffix() && wire::eq_ignore_case(self.name(), key.name())
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
    fn candidates(&self, tag: u32) -> Candidates<'_> {
        Candidates {
            index: self,
            tag,
            at: self.home(tag),
            left: self.buckets.len(),
        }
    }

    /// Every probe below stops after one round of the table: were it ever
    /// full (a bucket that `remove` missed), a lookup must still end, not
    /// hang the single-threaded runtime. An entry that finds no bucket is
    /// only a miss until the ring's hand replaces it.
    fn insert(&mut self, tag: u32, slot: usize) {
        let mut at = self.home(tag);
        for _ in 0..self.buckets.len() {
            if self.buckets[at] == 0 {
                self.buckets[at] = u64::from(tag) << 32 | (slot as u64 + 1);
                return;
            }
            at = (at + 1) & self.mask;
        }
    }

    fn remove(&mut self, tag: u32, slot: usize) {
        let wanted = u64::from(tag) << 32 | (slot as u64 + 1);
        let mut hole = self.home(tag);
        for probes in 1.. {
            match self.buckets[hole] {
                0 => return,
                b if b == wanted => break,
                _ if probes >= self.buckets.len() => return,
                _ => hole = (hole + 1) & self.mask,
            }
        }
        // Backward-shift deletion: a later bucket of the same run moves into
        // the hole unless its home lies after the hole (it would then be
        // before its home, unreachable by its probe).
        let mut at = hole;
        for _ in 1..self.buckets.len() {
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

/// A hand-written iterator: the adapter chain it replaces cost ~100
/// instructions per bucket at the size-optimised opt-level.
struct Candidates<'a> {
    index: &'a Index,
    tag: u32,
    at: usize,
    /// Buckets not yet looked at.
    left: usize,
}

impl Iterator for Candidates<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        // The table is never full, so an empty bucket ends every run.
        while self.left > 0 {
            self.left -= 1;
            let bucket = *self.index.buckets.get(self.at)?;
            if bucket == 0 {
                return None;
            }
            self.at = (self.at + 1) & self.index.mask;
            if (bucket >> 32) as u32 == self.tag {
                return Some((bucket as u32 - 1) as usize);
            }
        }
        None
    }
}

pub struct Cache {
    /// SipHash key, random per cache: a LAN client cannot aim its names
    /// at one bucket.
    hash_key: (u64, u64),
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
    /// The second [`Cache::seconds`] last returned, with its start and end.
    second: (u32, Instant, Instant),
}

/// How long `response` may be cached, `None` when it must not be.
pub fn cacheable_ttl(header: &Header, layout: &Layout) -> Option<u32> {
    if header.truncated() {
        return None;
    }
    // `min_ttl` is every record's, the SOA's own TTL included.
    let ttl = match header.rcode() {
        // A CNAME chain that ends in NODATA carries the SOA too: the
        // negative TTL (SOA MINIMUM) bounds it as well (RFC 2308 §5).
        wire::RCODE_NOERROR if header.ancount > 0 => {
            let shortest = layout.min_ttl?;
            (layout.negative_ttl)
                .map_or(shortest, |negative| shortest.min(negative))
                .min(MAX_TTL)
        }
        // NODATA and NXDOMAIN: cacheable only with an SOA (RFC 2308 §5),
        // and no longer than a CNAME that led there.
        wire::RCODE_NOERROR | wire::RCODE_NXDOMAIN => {
            let negative = layout.negative_ttl?;
            (layout.min_ttl)
                .map_or(negative, |shortest| shortest.min(negative))
                .min(MAX_NEGATIVE_TTL)
        }
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
            hash_key: random_key(),
            index: Index::new(capacity),
            entries: 0,
            slots: Vec::with_capacity(reserve),
            free: Vec::new(),
            hand: 0,
            capacity,
            byte_budget: capacity.saturating_mul(BUDGET_PER_ENTRY),
            bytes: 0,
            epoch: now,
            second: (0, now, now),
        }
    }

    /// Whole seconds from the epoch to `now`. The current second's bounds
    /// are kept: hits within it compare two instants instead of
    /// subtracting and dividing.
    fn seconds(&mut self, now: Instant) -> u32 {
        let (second, start, end) = self.second;
        if start <= now && now < end {
            return second;
        }
        let second = now
            .saturating_duration_since(self.epoch)
            .as_secs()
            .min(u64::from(u32::MAX)) as u32;
        let start = self.epoch + Duration::from_secs(second.into());
        let end = start.checked_add(Duration::from_secs(1)).unwrap_or(start);
        self.second = (second, start, end);
        second
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
        let tag = Index::tag(siphash13(self.hash_key, key.bytes));
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
        let seconds = self.seconds(now);
        let Some(entry) = self.slots[slot].as_ref() else {
            return false;
        };
        let elapsed = seconds.saturating_sub(entry.stored);
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
        let suffix = key.suffix();
        let entry = Entry {
            data: data.into_boxed_slice(),
            name_len: key.name().len() as u8,
            message_len: response.len() as u16,
            qtype: u16::from_be_bytes([suffix[0], suffix[1]]),
            qclass: u16::from_be_bytes([suffix[2], suffix[3]]),
            variant: suffix[4],
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
            // The key again, from the stored question: rare enough (an
            // expiry or an eviction) not to keep a copy in every entry.
            let mut key = Vec::with_capacity(old.name().len() + KEY_SUFFIX);
            key.extend_from_slice(old.name());
            key.make_ascii_lowercase();
            key.extend_from_slice(&old.suffix());
            self.index
                .remove(Index::tag(siphash13(self.hash_key, &key)), slot);
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

/// A random SipHash key, from the process's random std hasher keys (no
/// extra dependency; each call gives another key).
fn random_key() -> (u64, u64) {
    let state = RandomState::new();
    (state.hash_one(0u8), state.hash_one(1u8))
}

/// SipHash-1-3 of `bytes` (the rounds std's HashMap uses): a keyed hash,
/// so names chosen to collide need the key. Written out for the one shape
/// the cache hashes, a single byte string read 8 bytes at a time, because
/// std's streaming `Hasher` costs several times as many instructions for a
/// 20-byte name, on the path every cache hit takes.
fn siphash13(key: (u64, u64), bytes: &[u8]) -> u64 {
    siphash::<1, 3>(key, bytes)
}

/// SipHash-c-d (Aumasson and Bernstein, "SipHash: a fast short-input PRF").
fn siphash<const C: usize, const D: usize>((k0, k1): (u64, u64), bytes: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        sip_compress::<C>(&mut v, wire::le_word(word));
    }
    let last = wire::le_word(words.remainder()) | (bytes.len() as u64) << 56;
    sip_compress::<C>(&mut v, last);
    v[2] ^= 0xff;
    for _ in 0..D {
        sip_round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[inline(always)]
fn sip_compress<const C: usize>(v: &mut [u64; 4], m: u64) {
    v[3] ^= m;
    for _ in 0..C {
        sip_round(v);
    }
    v[0] ^= m;
}

#[inline(always)]
fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(qname: &[u8], flags: u16, edns: Option<wire::Edns>) -> CacheKey {
        let mut name = qname.to_vec();
        name.make_ascii_lowercase();
        let header = Header {
            id: 1,
            flags,
            qdcount: 1,
            ancount: 0,
            nscount: 0,
            arcount: 0,
        };
        KeyRef::append(&mut name, 1, 1, &header, edns).to_owned()
    }

    /// The written-out SipHash is SipHash: with 2-4 rounds it equals std's
    /// (deprecated, but still the reference SipHash-2-4) for every tail length.
    #[test]
    #[allow(deprecated)]
    fn siphash_matches_the_reference() {
        use std::hash::{Hasher, SipHasher};
        let bytes: Vec<u8> = (0..64u8).collect();
        for len in 0..bytes.len() {
            let mut reference = SipHasher::new_with_keys(0x0706050403020100, 0x0f0e0d0c0b0a0908);
            reference.write(&bytes[..len]);
            assert_eq!(
                siphash::<2, 4>((0x0706050403020100, 0x0f0e0d0c0b0a0908), &bytes[..len]),
                reference.finish(),
                "length {len}"
            );
        }
        // The paper's test vector (appendix A): 15 bytes 00..0e.
        assert_eq!(
            siphash::<2, 4>((0x0706050403020100, 0x0f0e0d0c0b0a0908), &bytes[..15]),
            0xa129ca6149be45e5
        );
    }

    #[test]
    fn keys_ignore_case_and_keep_dnssec_variants_apart() {
        let lower = key(b"\x07example\x03com\x00", 0x0100, None);
        let mixed = key(b"\x07ExAmPlE\x03COM\x00", 0x0100, None);
        assert_eq!(lower, mixed);
        let do_set = Some(wire::Edns {
            udp_size: 1232,
            dnssec_ok: true,
        });
        let do_clear = Some(wire::Edns {
            udp_size: 1232,
            dnssec_ok: false,
        });
        let variants = [
            key(b"\x07example\x03com\x00", 0x0100, None),
            key(b"\x07example\x03com\x00", 0x0110, None), // CD
            key(b"\x07example\x03com\x00", 0x0100, do_clear),
            key(b"\x07example\x03com\x00", 0x0100, do_set),
            key(b"\x07example\x03com\x00", 0x0110, do_set),
            key(b"\x07example\x03com\x00", 0x0000, None), // no RD
            key(b"\x07example\x03com\x00", 0x0120, None), // AD
            key(b"\x07example\x03com\x00", 0x0120, do_clear),
        ];
        for (i, a) in variants.iter().enumerate() {
            for b in &variants[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    /// A cached answer is found again under any case of its name, and the
    /// stored name's case is what is served.
    #[test]
    fn a_lookup_in_another_case_hits() {
        let now = Instant::now();
        let mut cache = Cache::new(10, now);
        let query = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07ExAmPlE\x03com\x00\x00\x01\x00\x01";
        let mut reply = query.to_vec();
        reply[2] |= 0x80;
        reply[7] = 1;
        reply
            .extend_from_slice(b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04\x01\x02\x03\x04");
        let layout = wire::scan(&reply).unwrap();
        let stored = key(b"\x07ExAmPlE\x03com\x00", 0x0100, None);
        cache.insert(stored.as_ref(), &reply, &layout, now);
        let mut answer = Vec::new();
        for asked in [&b"\x07example\x03com\x00"[..], b"\x07EXAMPLE\x03cOm\x00"] {
            let asked = key(asked, 0x0100, None);
            assert!(cache.get(asked.as_ref(), now, 7, &mut answer));
            assert_eq!(answer[2..], reply[2..]);
        }
        assert!(!cache.get(
            key(b"\x07example\x03org\x00", 0x0100, None).as_ref(),
            now,
            7,
            &mut answer
        ));
        assert!(!cache.get(
            key(b"\x07example\x03com\x00", 0x0110, None).as_ref(),
            now,
            7,
            &mut answer
        ));
    }

    /// The word-wise comparison agrees with the byte-wise one for every
    /// byte value at every position of every tail length.
    #[test]
    fn case_folding_compares_like_std() {
        for len in 1..=17 {
            for pos in 0..len {
                for byte in 0..=255u8 {
                    let mut a = vec![b'q'; len];
                    a[pos] = byte;
                    for other in [
                        byte,
                        byte.to_ascii_lowercase(),
                        byte.to_ascii_uppercase(),
                        byte ^ 0x20,
                        b'q',
                    ] {
                        let mut b = vec![b'q'; len];
                        b[pos] = other;
                        assert_eq!(
                            wire::eq_ignore_case(&a, &b),
                            a.eq_ignore_ascii_case(&b),
                            "{a:?} {b:?}"
                        );
                    }
                }
            }
        }
        assert!(!wire::eq_ignore_case(b"abc", b"abcd"));
    }

    /// Were the index ever full, every probe still ends.
    #[test]
    fn a_full_index_ends_every_probe() {
        let mut index = Index::new(2);
        let len = index.buckets.len();
        for slot in 0..len {
            index.insert(7, slot);
        }
        index.insert(7, 99);
        assert_eq!(index.candidates(7).count(), len);
        assert_eq!(index.candidates(8).count(), 0);
        index.remove(8, 1);
        index.remove(7, 99);
        index.remove(7, 2);
        assert_eq!(index.candidates(7).count(), len - 1);
    }

    proptest! {
        #[test]
        fn case_folding_matches_std_on_any_bytes(a in proptest::collection::vec(any::<u8>(), 0..40), flips in any::<u64>()) {
            let b: Vec<u8> = a
                .iter()
                .enumerate()
                .map(|(i, c)| if flips >> (i % 64) & 1 == 1 { c.to_ascii_uppercase() } else { *c })
                .collect();
            prop_assert!(wire::eq_ignore_case(&a, &b));
            prop_assert_eq!(wire::eq_ignore_case(&a, &b[..b.len().saturating_sub(1)]), a.is_empty());
            let mut c = b.clone();
            if let Some(x) = c.last_mut() {
                *x ^= 0x01;
            }
            prop_assert_eq!(wire::eq_ignore_case(&a, &c), a.eq_ignore_ascii_case(&c));
        }

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
