//! b4d's own questions (the AFTR AAAA lookup, `b4d check`): building a
//! query and walking the answer section of its reply, CNAMEs followed.
//! Built on [`super::wire`]'s readers (compression pointers only strictly
//! backwards, so no loops).

use std::ops::Range;

pub use super::wire::TYPE_AAAA;
use super::wire::{read_question, Header, Malformed, Question, CLASS_IN, HEADER_LEN};

pub const TYPE_CNAME: u16 = 5;

const FLAG_RD: u16 = 0x0100;
/// RFC 1035 §2.3.4.
const MAX_LABEL_LEN: usize = 63;
const MAX_NAME_LEN: usize = 255;

/// A name as written in the config or option 64 ("aftr.example.net",
/// trailing dot optional) in lower-case wire form. Labels are 1..=63
/// printable ASCII characters; non-ASCII (IDN) names must come as their
/// xn-- form (AFTR names are ASCII on the wire, RFC 6334 §3).
pub fn name_from_ascii(text: &str) -> Result<Vec<u8>, String> {
    let bare = text.strip_suffix('.').unwrap_or(text);
    let mut wire = Vec::with_capacity(bare.len() + 2);
    for label in bare.split('.') {
        if label.is_empty() || label.len() > MAX_LABEL_LEN {
            return Err(format!(
                "invalid name {text:?}: label of {} characters",
                label.len()
            ));
        }
        if !label.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("invalid name {text:?}: not printable ASCII"));
        }
        wire.push(label.len() as u8);
        wire.extend(label.bytes().map(|b| b.to_ascii_lowercase()));
    }
    wire.push(0);
    if wire.len() > MAX_NAME_LEN {
        return Err(format!("invalid name {text:?}: longer than 255 octets"));
    }
    Ok(wire)
}

/// A recursive query (RD set, no EDNS) for `name` (wire form), type
/// `qtype`, class IN.
pub fn build_query(id: u16, name: &[u8], qtype: u16) -> Vec<u8> {
    let mut msg = Vec::with_capacity(HEADER_LEN + name.len() + 4);
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&FLAG_RD.to_be_bytes());
    msg.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // QDCOUNT 1
    msg.extend_from_slice(name);
    msg.extend_from_slice(&qtype.to_be_bytes());
    msg.extend_from_slice(&CLASS_IN.to_be_bytes());
    msg
}

/// One resource record of the answer section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Uncompressed, lower-cased wire form.
    pub owner: Vec<u8>,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    /// Where the RDATA is in the message.
    pub rdata: Range<usize>,
}

/// A reply read up to the end of its answer section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub header: Header,
    pub question: Question,
    pub answers: Vec<Record>,
}

/// Reads header, question and answer records. Authority and additional
/// sections are not needed and not read.
pub fn read_reply(msg: &[u8]) -> Result<Reply, Malformed> {
    let header = Header::read(msg)?;
    let (question, mut at) = read_question(msg)?;
    if at > msg.len() {
        return Err(Malformed::Truncated);
    }
    // Each record takes at least 11 bytes: no allocation beyond the message.
    let mut answers = Vec::with_capacity(usize::from(header.ancount).min(msg.len() / 11));
    for _ in 0..header.ancount {
        let (owner, after_name) = super::wire::read_name(msg, at)?;
        let fixed = msg
            .get(after_name..after_name + 10)
            .ok_or(Malformed::Truncated)?;
        let word = |i: usize| u16::from_be_bytes([fixed[i], fixed[i + 1]]);
        let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let start = after_name + 10;
        let end = start + usize::from(word(8));
        if end > msg.len() {
            return Err(Malformed::Truncated);
        }
        answers.push(Record {
            owner,
            rtype: word(0),
            class: word(2),
            // RFC 2181 §8: a TTL with the top bit set is treated as zero.
            ttl: if ttl > i32::MAX as u32 { 0 } else { ttl },
            rdata: start..end,
        });
        at = end;
    }
    Ok(Reply {
        header,
        question,
        answers,
    })
}

/// The records of type `qtype` (class IN) for `name`, following CNAMEs from
/// `name` through at most `max_chain` links (a longer chain is treated as
/// a loop: nothing found past it), in the order the server gave them, and
/// the smallest TTL along the way (the CNAMEs' included; `u32::MAX` if
/// nothing was found). Only the first CNAME of an owner counts; a chain is
/// followed only while no record of `qtype` has been found.
pub fn chase<'a>(
    msg: &[u8],
    answers: &'a [Record],
    name: &[u8],
    qtype: u16,
    max_chain: usize,
) -> Result<(Vec<&'a Record>, u32), Malformed> {
    let mut owner = name.to_vec();
    let mut ttl = u32::MAX;
    let mut found = Vec::new();
    for _ in 0..=max_chain {
        let mut next = None;
        for record in answers {
            if record.class != CLASS_IN || record.owner != owner {
                continue;
            }
            if record.rtype == qtype {
                found.push(record);
                ttl = ttl.min(record.ttl);
            } else if record.rtype == TYPE_CNAME && next.is_none() {
                let (target, end) = super::wire::read_name(msg, record.rdata.start)?;
                if end != record.rdata.end {
                    return Err(Malformed::Truncated);
                }
                next = Some(target);
                ttl = ttl.min(record.ttl);
            }
        }
        match next {
            Some(target) if found.is_empty() => owner = target,
            _ => break,
        }
    }
    Ok((found, ttl))
}

/// RCODE names (RFC 1035 §4.1.1, RFC 6895 §2.3) for logs.
pub fn rcode_name(rcode: u8) -> String {
    match rcode {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        other => format!("RCODE {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_in_wire_form() {
        assert_eq!(
            name_from_ascii("AFTR.Example.net.").unwrap(),
            b"\x04aftr\x07example\x03net\x00"
        );
        assert!(name_from_ascii("a..b").is_err());
        assert!(name_from_ascii("").is_err());
        assert!(name_from_ascii(&"a".repeat(64)).is_err());
        assert!(name_from_ascii("é.net").is_err());
        let long = vec!["a".repeat(63); 4].join(".");
        assert!(name_from_ascii(&long).is_err());
        let just = [
            "a".repeat(63),
            "a".repeat(63),
            "a".repeat(63),
            "a".repeat(61),
        ]
        .join(".");
        assert_eq!(name_from_ascii(&just).unwrap().len(), 255);
    }

    #[test]
    fn query_golden_bytes() {
        let name = name_from_ascii("aftr.example.net").unwrap();
        assert_eq!(
            build_query(0x1234, &name, TYPE_AAAA),
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
              \x04aftr\x07example\x03net\x00\x00\x1c\x00\x01"
        );
    }

    /// A reply with a compressed CNAME chain: aftr -> pool (pointer into
    /// the question) -> two AAAA records.
    fn chained_reply() -> Vec<u8> {
        let mut msg = build_query(7, &name_from_ascii("aftr.example.net").unwrap(), TYPE_AAAA);
        msg[2] = 0x81; // QR, RD
        msg[3] = 0x80; // RA
        msg[7] = 3; // ANCOUNT
                    // aftr.example.net CNAME pool.example.net (pointer to "example" at 17)
        msg.extend_from_slice(b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x1e\x00\x07\x04pool\xc0\x11");
        let pool = 12 + 18 + 4 + 12; // offset of "\x04pool"
        for (ttl, last) in [(600u32, 9u8), (20, 10)] {
            msg.extend_from_slice(&[0xc0, pool as u8, 0, 28, 0, 1]);
            msg.extend_from_slice(&ttl.to_be_bytes());
            msg.extend_from_slice(&[0, 16, 0x20, 1, 0x0d, 0xb8]);
            msg.extend_from_slice(&[0; 11]);
            msg.push(last);
        }
        msg
    }

    #[test]
    fn chases_a_compressed_cname_chain() {
        let msg = chained_reply();
        let reply = read_reply(&msg).unwrap();
        assert_eq!(reply.answers.len(), 3);
        let name = name_from_ascii("aftr.example.net").unwrap();
        let (found, ttl) = chase(&msg, &reply.answers, &name, TYPE_AAAA, 8).unwrap();
        let last: Vec<u8> = found.iter().map(|r| msg[r.rdata.end - 1]).collect();
        assert_eq!(last, [9, 10]);
        assert_eq!(ttl, 20);
        // No chain allowed: the CNAME is seen, its target never reached.
        let (found, _) = chase(&msg, &reply.answers, &name, TYPE_AAAA, 0).unwrap();
        assert!(found.is_empty());
    }

    #[test]
    fn a_truncated_answer_is_malformed() {
        let msg = chained_reply();
        assert_eq!(read_reply(&msg[..msg.len() - 1]), Err(Malformed::Truncated));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(reply) = read_reply(&bytes) {
                let _ = chase(&bytes, &reply.answers, &reply.question.name, TYPE_AAAA, 8);
            }
        }
    }
}
