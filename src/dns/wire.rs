//! DNS messages as raw bytes (RFC 1035 §4.1): only what the proxy needs to
//! look at — header, the question, where every TTL sits, the EDNS0 OPT record
//! (RFC 6891) and the SOA MINIMUM for negative caching (RFC 2308 §5) — and
//! the few messages b4d writes itself. Forwarded bytes are never re-encoded:
//! every function here is a total function over `&[u8]` that reports
//! [`Malformed`] instead of panicking.

use std::fmt;

pub const HEADER_LEN: usize = 12;
pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_NS: u16 = 2;
pub const TYPE_SOA: u16 = 6;
pub const TYPE_DS: u16 = 43;
pub const TYPE_DNSKEY: u16 = 48;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_OPT: u16 = 41;
/// Records that sign the whole message (RFC 2931 SIG(0), RFC 8945 TSIG).
const TYPE_SIG: u16 = 24;
const TYPE_TSIG: u16 = 250;
/// The EDNS COOKIE option (RFC 7873 §4).
const OPTION_COOKIE: u16 = 10;
pub const CLASS_IN: u16 = 1;

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_REFUSED: u8 = 5;

const FLAG_QR: u16 = 0x8000;
const FLAG_AA: u16 = 0x0400;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_RA: u16 = 0x0080;
const FLAG_AD: u16 = 0x0020;
const FLAG_CD: u16 = 0x0010;
const OPCODE_MASK: u16 = 0x7800;
/// EDNS0 "DNSSEC OK" in the OPT TTL's flag half (RFC 3225 §3).
const EDNS_DO: u32 = 0x8000;
/// RFC 1035 §2.3.4.
pub const MAX_NAME_LEN: usize = 255;
/// A legitimate name has at most 127 labels; more pointer hops than that is a loop.
const MAX_POINTER_HOPS: usize = 128;
/// Largest UDP message a client may receive without EDNS (RFC 1035 §4.2.1).
pub const CLASSIC_UDP_SIZE: usize = 512;

/// Why a message could not be read; each is a drop counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Fewer than 12 bytes.
    ShortHeader,
    /// A label, pointer or record runs past the end.
    Truncated,
    /// Label type 0x40/0x80 (RFC 6891 §5 retired them).
    BadLabelType,
    /// A name longer than 255 octets.
    NameTooLong,
    /// A compression pointer that does not point strictly backwards, or too many hops.
    PointerLoop,
    /// QDCOUNT is not 1 (RFC 9619 §2).
    QuestionCount,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Malformed::ShortHeader => "header shorter than 12 bytes",
            Malformed::Truncated => "message ends inside a name or record",
            Malformed::BadLabelType => "reserved label type",
            Malformed::NameTooLong => "name longer than 255 octets",
            Malformed::PointerLoop => "compression pointer loop",
            Malformed::QuestionCount => "QDCOUNT is not 1",
        })
    }
}

/// The fixed header (RFC 1035 §4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub flags: u16,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    pub fn read(msg: &[u8]) -> Result<Header, Malformed> {
        if msg.len() < HEADER_LEN {
            return Err(Malformed::ShortHeader);
        }
        let word = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]);
        Ok(Header {
            id: word(0),
            flags: word(2),
            qdcount: word(4),
            ancount: word(6),
            nscount: word(8),
            arcount: word(10),
        })
    }
    pub fn is_response(&self) -> bool {
        self.flags & FLAG_QR != 0
    }
    pub fn opcode(&self) -> u8 {
        ((self.flags & OPCODE_MASK) >> 11) as u8
    }
    pub fn rcode(&self) -> u8 {
        (self.flags & 0x000f) as u8
    }
    pub fn truncated(&self) -> bool {
        self.flags & FLAG_TC != 0
    }
    pub fn recursion_desired(&self) -> bool {
        self.flags & FLAG_RD != 0
    }
    pub fn checking_disabled(&self) -> bool {
        self.flags & FLAG_CD != 0
    }
    pub fn authentic_data(&self) -> bool {
        self.flags & FLAG_AD != 0
    }
}

fn u16_at(msg: &[u8], pos: usize) -> Result<u16, Malformed> {
    match msg.get(pos..pos + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(Malformed::Truncated),
    }
}

fn u32_at(msg: &[u8], pos: usize) -> Result<u32, Malformed> {
    match msg.get(pos..pos + 4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(Malformed::Truncated),
    }
}

/// Reads the name at `pos`, following compression pointers (RFC 1035
/// §4.1.4) only strictly backwards, so a loop cannot exist. Returns the name
/// in uncompressed wire form, lower-cased (names compare case-insensitively,
/// RFC 4343), and the offset just after the name where it started.
pub fn read_name(msg: &[u8], pos: usize) -> Result<(Vec<u8>, usize), Malformed> {
    let mut name = Vec::with_capacity(32);
    let end = read_name_into(msg, pos, &mut name)?;
    Ok((name, end))
}

/// [`read_name`] appending to `name` (a reused buffer: the cache-hit path
/// allocates nothing); on an error `name` holds a partial name. Each run of
/// labels between pointers is copied and lower-cased in one go, not byte
/// by byte: this runs for every query.
pub fn read_name_into(msg: &[u8], pos: usize, name: &mut Vec<u8>) -> Result<usize, Malformed> {
    let base = name.len();
    let mut at = pos;
    let mut run_start = pos;
    let mut end = None;
    let mut hops = 0;
    loop {
        let len = *msg.get(at).ok_or(Malformed::Truncated)?;
        match len & 0xc0 {
            0x00 => {
                let next = at + 1 + len as usize;
                if next > msg.len() {
                    return Err(Malformed::Truncated);
                }
                if name.len() - base + (next - run_start) > MAX_NAME_LEN {
                    return Err(Malformed::NameTooLong);
                }
                if len == 0 {
                    copy_lowercase(&msg[run_start..next], name);
                    return Ok(end.unwrap_or(next));
                }
                at = next;
            }
            0xc0 => {
                let target = (u16_at(msg, at)? & 0x3fff) as usize;
                hops += 1;
                if target >= at || hops > MAX_POINTER_HOPS {
                    return Err(Malformed::PointerLoop);
                }
                copy_lowercase(&msg[run_start..at], name);
                end.get_or_insert(at + 2);
                at = target;
                run_start = target;
            }
            _ => return Err(Malformed::BadLabelType),
        }
    }
}

/// Appends `labels` lower-cased, 8 bytes at a time. Length octets are at
/// most 63, below b'A', so lower-casing them too changes nothing.
fn copy_lowercase(labels: &[u8], name: &mut Vec<u8>) {
    let from = name.len();
    name.extend_from_slice(labels);
    let mut words = name[from..].chunks_exact_mut(8);
    for word in &mut words {
        let lower = lowercase_word(le_word(word));
        word.copy_from_slice(&lower.to_le_bytes());
    }
    let tail = words.into_remainder();
    let lower = lowercase_word(le_word(tail)).to_le_bytes();
    tail.copy_from_slice(&lower[..tail.len()]);
}

/// `a` and `b` equal but for ASCII case (RFC 4343), 8 bytes at a time.
pub fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut wa, mut wb) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in (&mut wa).zip(&mut wb) {
        if lowercase_word(le_word(x)) != lowercase_word(le_word(y)) {
            return false;
        }
    }
    lowercase_word(le_word(wa.remainder())) == lowercase_word(le_word(wb.remainder()))
}

/// Up to 8 bytes as a little-endian word, zero-padded.
// Inlined by force, as `lowercase_word`: a few instructions, on the path of
// every query, that the size-optimised build would otherwise call.
#[inline(always)]
pub fn le_word(bytes: &[u8]) -> u64 {
    if let Ok(word) = <[u8; 8]>::try_from(bytes) {
        return u64::from_le_bytes(word);
    }
    bytes
        .iter()
        .take(8)
        .rev()
        .fold(0, |word, &b| word << 8 | u64::from(b))
}

/// `word` with the bytes A–Z lower-cased. Per byte: the low 7 bits plus
/// 0x3f carry into the top bit from b'A' up, plus 0x25 from b'Z' + 1 up
/// (neither sum leaves its byte); bytes with the top bit set are not ASCII
/// and stay as they are. A set top bit, moved down to 0x20, is the case bit.
#[inline(always)]
fn lowercase_word(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let low7 = word & (0x7f * ONES);
    let from_a = low7 + (0x80 - u64::from(b'A')) * ONES;
    let after_z = low7 + (0x80 - u64::from(b'Z') - 1) * ONES;
    let upper = from_a & !after_z & !word & (0x80 * ONES);
    word | upper >> 2
}

/// The offset after the (possibly compressed) name at `pos`, without
/// building it.
fn skip_name(msg: &[u8], pos: usize) -> Result<usize, Malformed> {
    let mut at = pos;
    loop {
        let len = *msg.get(at).ok_or(Malformed::Truncated)?;
        match len & 0xc0 {
            0x00 if len == 0 => return Ok(at + 1),
            0x00 => at += 1 + len as usize,
            0xc0 => {
                u16_at(msg, at)?;
                return Ok(at + 2);
            }
            _ => return Err(Malformed::BadLabelType),
        }
        if at - pos > MAX_NAME_LEN {
            return Err(Malformed::NameTooLong);
        }
    }
}

/// The single question of a message (RFC 9619: QDCOUNT must be 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    /// Uncompressed, lower-cased wire form.
    pub name: Vec<u8>,
    pub qtype: u16,
    pub qclass: u16,
}

impl Question {
    pub fn as_ref(&self) -> QuestionRef<'_> {
        QuestionRef {
            name: &self.name,
            qtype: self.qtype,
            qclass: self.qclass,
        }
    }
}

/// A [`Question`] whose name lives in a buffer of the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuestionRef<'a> {
    /// Uncompressed, lower-cased wire form.
    pub name: &'a [u8],
    pub qtype: u16,
    pub qclass: u16,
}

impl QuestionRef<'_> {
    pub fn to_owned(self) -> Question {
        Question {
            name: self.name.to_vec(),
            qtype: self.qtype,
            qclass: self.qclass,
        }
    }
}

/// Reads the question; also returns the offset where the question section ends.
pub fn read_question(msg: &[u8]) -> Result<(Question, usize), Malformed> {
    let mut name = Vec::with_capacity(32);
    let (question, end) = read_question_into(msg, &mut name)?;
    Ok((question.to_owned(), end))
}

/// [`read_question`] with the name written into `name` (cleared first).
pub fn read_question_into<'b>(
    msg: &[u8],
    name: &'b mut Vec<u8>,
) -> Result<(QuestionRef<'b>, usize), Malformed> {
    let header = Header::read(msg)?;
    if header.qdcount != 1 {
        return Err(Malformed::QuestionCount);
    }
    name.clear();
    let at = read_name_into(msg, HEADER_LEN, name)?;
    let qtype = u16_at(msg, at)?;
    let qclass = u16_at(msg, at + 2)?;
    Ok((
        QuestionRef {
            name,
            qtype,
            qclass,
        },
        at + 4,
    ))
}

/// The EDNS0 OPT pseudo-record (RFC 6891 §6.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    pub udp_size: u16,
    pub dnssec_ok: bool,
}

/// Where the interesting parts of a message are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    /// Offset of every resource record's TTL (all sections, OPT excluded:
    /// its "TTL" holds the extended RCODE and flags).
    pub ttl_offsets: Vec<u16>,
    /// Smallest TTL of those records.
    pub min_ttl: Option<u32>,
    /// min(SOA TTL, SOA MINIMUM) of an SOA in the authority section: the
    /// negative-caching TTL of RFC 2308 §5.
    pub negative_ttl: Option<u32>,
    pub edns: Option<Edns>,
    /// Offset of the OPT record's RDLENGTH, for [`remove_cookies`]; `None`
    /// without one, or when a SIG(0)/TSIG record signs the message (editing
    /// it would break the signature, RFC 8945 §5.3).
    pub opt_rdlen_at: Option<usize>,
}

/// Walks every record of `msg` (RFC 1035 §4.1.3). Bytes after the last
/// counted record are ignored, as resolvers do.
pub fn scan(msg: &[u8]) -> Result<Layout, Malformed> {
    let header = Header::read(msg)?;
    if msg.len() > usize::from(u16::MAX) {
        return Err(Malformed::Truncated);
    }
    let mut at = HEADER_LEN;
    for _ in 0..header.qdcount {
        at = skip_name(msg, at)? + 4;
    }
    if at > msg.len() {
        return Err(Malformed::Truncated);
    }
    let mut layout = Layout::default();
    let mut signed = false;
    let sections = [
        (header.ancount, false),
        (header.nscount, true),
        (header.arcount, false),
    ];
    for (count, authority) in sections {
        for _ in 0..count {
            let name_start = at;
            at = skip_name(msg, at)?;
            let rtype = u16_at(msg, at)?;
            let class = u16_at(msg, at + 2)?;
            let ttl_at = at + 4;
            let ttl = u32_at(msg, ttl_at)?;
            let rdlen = usize::from(u16_at(msg, at + 8)?);
            let rdata_at = at + 10;
            at = rdata_at + rdlen;
            if at > msg.len() {
                return Err(Malformed::Truncated);
            }
            if rtype == TYPE_OPT {
                // RFC 6891 §6.1.1: the owner is the root; only the first counts.
                if msg[name_start] == 0 && layout.edns.is_none() {
                    layout.edns = Some(Edns {
                        udp_size: class,
                        dnssec_ok: ttl & EDNS_DO != 0,
                    });
                    layout.opt_rdlen_at = Some(at - rdlen - 2);
                }
                continue;
            }
            signed |= matches!(rtype, TYPE_SIG | TYPE_TSIG);
            // RFC 2181 §8: a TTL with the top bit set is treated as zero.
            let ttl = if ttl > i32::MAX as u32 { 0 } else { ttl };
            layout.ttl_offsets.push(ttl_at as u16);
            layout.min_ttl = Some(layout.min_ttl.map_or(ttl, |m| m.min(ttl)));
            if authority && rtype == TYPE_SOA && rdlen >= 20 {
                let minimum = u32_at(msg, at - 4)?;
                let negative = ttl.min(minimum);
                layout.negative_ttl =
                    Some(layout.negative_ttl.map_or(negative, |n| n.min(negative)));
            }
        }
    }
    if signed {
        layout.opt_rdlen_at = None;
    }
    Ok(layout)
}

/// Removes every COOKIE option from the OPT record whose RDLENGTH is at
/// `rdlen_at` (as [`scan`] found it) and fixes RDLENGTH; every other byte
/// stays. Stops at an option that overruns the record.
pub fn remove_cookies(msg: &mut Vec<u8>, rdlen_at: usize) {
    let mut at = rdlen_at + 2;
    while let (Ok(rdlen), Ok(code), Ok(len)) =
        (u16_at(msg, rdlen_at), u16_at(msg, at), u16_at(msg, at + 2))
    {
        let next = at + 4 + usize::from(len);
        if next > rdlen_at + 2 + usize::from(rdlen) || next > msg.len() {
            return;
        }
        if code != OPTION_COOKIE {
            at = next;
            continue;
        }
        let removed = next - at;
        msg.copy_within(next.., at);
        msg.truncate(msg.len() - removed);
        let rdlen = rdlen - removed as u16;
        msg[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    }
}

/// The largest UDP response `query`'s sender accepts (RFC 6891 §6.2.3, never
/// below 512).
pub fn max_udp_response(edns: Option<Edns>) -> usize {
    edns.map_or(CLASSIC_UDP_SIZE, |e| {
        usize::from(e.udp_size).max(CLASSIC_UDP_SIZE)
    })
}

pub fn set_id(msg: &mut [u8], id: u16) {
    if let Some(b) = msg.get_mut(0..2) {
        b.copy_from_slice(&id.to_be_bytes());
    }
}

/// Subtracts `elapsed` seconds from each TTL at `offsets` (a cached answer
/// served later, RFC 1035 §7.4).
pub fn age_ttls(msg: &mut [u8], offsets: impl IntoIterator<Item = u16>, elapsed: u32) {
    for off in offsets {
        let off = usize::from(off);
        if let Some(b) = msg.get_mut(off..off + 4) {
            let ttl = u32::from_be_bytes([b[0], b[1], b[2], b[3]]).min(i32::MAX as u32);
            b.copy_from_slice(&ttl.saturating_sub(elapsed).to_be_bytes());
        }
    }
}

/// A response b4d writes itself to `query` (whose question ends at
/// `question_end`): header and question copied, then `answers`
/// (type, rdata) owned by the question name. An OPT record is added when the
/// query had one (RFC 6891 §7), with DO copied (RFC 3225 §3).
pub fn build_response(
    query: &[u8],
    question_end: usize,
    rcode: u8,
    extra_flags: u16,
    answers: &[(u16, Vec<u8>)],
    query_edns: Option<Edns>,
) -> Vec<u8> {
    let Some(question) = query.get(HEADER_LEN..question_end) else {
        return Vec::new();
    };
    let Ok(header) = Header::read(query) else {
        return Vec::new();
    };
    let flags = FLAG_QR
        | FLAG_RA
        | extra_flags
        | (header.flags & (OPCODE_MASK | FLAG_RD | FLAG_CD))
        | u16::from(rcode & 0x0f);
    let mut out = Vec::with_capacity(question_end + 64);
    out.extend_from_slice(&header.id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&u16::from(query_edns.is_some()).to_be_bytes());
    out.extend_from_slice(question);
    let class = u16_at(query, question_end - 2).unwrap_or(CLASS_IN);
    for (rtype, rdata) in answers {
        // Owner: a pointer to the question name at offset 12.
        out.extend_from_slice(&[0xc0, HEADER_LEN as u8]);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&class.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(rdata);
    }
    if let Some(edns) = query_edns {
        let do_flag = if edns.dnssec_ok { EDNS_DO } else { 0 };
        out.push(0);
        out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        out.extend_from_slice(&4096u16.to_be_bytes());
        out.extend_from_slice(&do_flag.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
    }
    out
}

/// SERVFAIL (or another error) for `query`.
pub fn error_response(query: &[u8], question_end: usize, rcode: u8, edns: Option<Edns>) -> Vec<u8> {
    build_response(query, question_end, rcode, 0, &[], edns)
}

/// An empty answer with TC set: "ask again over TCP" (RFC 7766 §5) when an
/// answer is larger than the client accepts over UDP.
pub fn truncated_response(query: &[u8], question_end: usize, edns: Option<Edns>) -> Vec<u8> {
    build_response(query, question_end, RCODE_NOERROR, FLAG_TC, &[], edns)
}

/// An authoritative answer for a local name (flags AA).
pub fn local_response(
    query: &[u8],
    question_end: usize,
    rcode: u8,
    answers: &[(u16, Vec<u8>)],
    edns: Option<Edns>,
) -> Vec<u8> {
    build_response(query, question_end, rcode, FLAG_AA, answers, edns)
}

/// "host.lan" as a lower-case wire name; `None` unless every label is
/// 1..=63 letters, digits, hyphens or underscores (a LAN host's name may
/// have them: ESP_1A2B3C, see `dhcpv4::server::valid_hostname`) and the
/// whole fits in 255 octets.
pub fn name_to_wire(text: &str) -> Option<Vec<u8>> {
    let text = text.strip_suffix('.').unwrap_or(text);
    let mut out = Vec::with_capacity(text.len() + 2);
    for label in text.split('.') {
        let ok = (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return None;
        }
        out.push(label.len() as u8);
        out.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    out.push(0);
    (out.len() <= MAX_NAME_LEN).then_some(out)
}

/// The labels of a wire name (without the root).
pub fn labels(name: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(&len) = name.get(at) {
        if len == 0 {
            break;
        }
        match name.get(at + 1..at + 1 + len as usize) {
            Some(label) => out.push(label),
            None => break,
        }
        at += 1 + len as usize;
    }
    out
}
