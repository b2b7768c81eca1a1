//! The DNS messages of AFTR resolution (RFC 6334 §3: the B4 resolves the
//! AFTR-Name to AAAA records): one AAAA query, and a total parser of the
//! reply that matches it strictly against the question (RFC 5452 §9.1) and
//! follows a CNAME chain inside the answer.
//!
//! src/dns/query.rs does the message encoding and decoding; this module
//! decides what a reply means for the B4.

use std::net::Ipv6Addr;

use crate::dns::query::{self, TYPE_AAAA};
use crate::dns::wire::{Malformed, CLASS_IN, RCODE_NOERROR, RCODE_NXDOMAIN};

/// A CNAME chain longer than this is treated as a loop.
const MAX_CNAME_CHAIN: usize = 8;

/// What a reply says about the AFTR name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Not a reply to our query (other ID, not a response, other
    /// question): ignore it and keep waiting.
    NotOurs,
    /// TC set: ask the same server over TCP (RFC 7766 §5).
    Truncated,
    /// The AAAA records, in the order the server gave them, and the smallest
    /// TTL along the way (CNAMEs included).
    Addresses { addresses: Vec<Ipv6Addr>, ttl: u32 },
    /// RCODE NXDOMAIN: the name does not exist.
    NoSuchName,
    /// NOERROR without AAAA records for the name (NODATA, RFC 2308 §2.2).
    NoAddresses,
    /// Any other RCODE (SERVFAIL, REFUSED, ...): try the next server.
    Failed(String),
    /// A message that claims to be our reply but cannot be decoded.
    Malformed(String),
}

/// A fully qualified DNS name in lower-case wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(Vec<u8>);

/// Parses the AFTR name (as it came from option 64 or the config) into a
/// fully qualified DNS name.
pub fn parse_name(name: &str) -> Result<Name, String> {
    query::name_from_ascii(name).map(Name)
}

/// A recursive AAAA query for `name` with message ID `id`.
pub fn build_query(id: u16, name: &Name) -> Vec<u8> {
    query::build_query(id, &name.0, TYPE_AAAA)
}

/// Interprets `bytes` as the reply to the query `id` for `name`.
pub fn parse_reply(id: u16, name: &Name, bytes: &[u8]) -> Reply {
    // Cheap checks on the raw header first, so that a flood of foreign
    // datagrams costs no decoding (RFC 5452 §9.1: ID and question must match).
    if bytes.len() < 12 || u16::from_be_bytes([bytes[0], bytes[1]]) != id || bytes[2] & 0x80 == 0 {
        return Reply::NotOurs;
    }
    let message = match query::read_reply(bytes) {
        Ok(message) => message,
        // Not one question: not an answer to ours.
        Err(Malformed::QuestionCount) => return Reply::NotOurs,
        Err(e) => return Reply::Malformed(e.to_string()),
    };
    let q = &message.question;
    if q.qtype != TYPE_AAAA || q.qclass != CLASS_IN || q.name != name.0 {
        return Reply::NotOurs;
    }
    if message.header.truncated() {
        return Reply::Truncated;
    }
    match message.header.rcode() {
        RCODE_NOERROR => {}
        RCODE_NXDOMAIN => return Reply::NoSuchName,
        other => return Reply::Failed(query::rcode_name(other)),
    }
    let (records, ttl) =
        match query::chase(bytes, &message.answers, &name.0, TYPE_AAAA, MAX_CNAME_CHAIN) {
            Ok(found) => found,
            Err(e) => return Reply::Malformed(e.to_string()),
        };
    let mut addresses = Vec::with_capacity(records.len());
    for record in records {
        match <[u8; 16]>::try_from(&bytes[record.rdata.clone()]) {
            Ok(octets) => addresses.push(Ipv6Addr::from(octets)),
            Err(_) => return Reply::Malformed("AAAA record not 16 bytes".into()),
        }
    }
    if addresses.is_empty() {
        Reply::NoAddresses
    } else {
        Reply::Addresses { addresses, ttl }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // An independent DNS implementation builds the replies (test-only
    // dependency): ours must read what another encoder writes, compression
    // included.
    use hickory_proto::op::{Message, OpCode, ResponseCode};
    use hickory_proto::rr::rdata::{AAAA, CNAME};
    use hickory_proto::rr::{RData, Record, RecordType};
    use proptest::prelude::*;

    fn name(s: &str) -> Name {
        parse_name(s).unwrap()
    }

    fn hname(s: &str) -> hickory_proto::rr::Name {
        let mut fqdn = hickory_proto::rr::Name::from_ascii(s).unwrap();
        fqdn.set_fqdn(true);
        fqdn
    }

    fn reply_to(query: &[u8], edit: impl FnOnce(&mut Message)) -> Vec<u8> {
        let query = Message::from_vec(query).unwrap();
        let mut reply = Message::response(query.metadata.id, OpCode::Query);
        reply.add_queries(query.queries.clone());
        edit(&mut reply);
        reply.to_vec().unwrap()
    }

    fn aaaa(owner: &str, ttl: u32, addr: &str) -> Record {
        Record::from_rdata(hname(owner), ttl, RData::AAAA(AAAA(addr.parse().unwrap())))
    }

    #[test]
    fn query_asks_recursively_for_aaaa() {
        let bytes = build_query(0x1234, &name("aftr.example.net"));
        let message = Message::from_vec(&bytes).unwrap();
        assert_eq!(message.metadata.id, 0x1234);
        assert!(message.metadata.recursion_desired);
        assert_eq!(message.queries[0].query_type(), RecordType::AAAA);
        assert_eq!(message.queries[0].name(), &hname("aftr.example.net."));
    }

    #[test]
    fn every_aaaa_record_with_the_smallest_ttl() {
        let n = name("aftr.example.net");
        let query = build_query(7, &n);
        let bytes = reply_to(&query, |m| {
            m.add_answer(aaaa("aftr.example.net", 300, "2001:db8::1"));
            m.add_answer(aaaa("AFTR.example.net", 60, "2001:db8::2"));
            m.add_answer(aaaa("other.example.net", 5, "2001:db8::3"));
        });
        assert_eq!(
            parse_reply(7, &n, &bytes),
            Reply::Addresses {
                addresses: vec![
                    "2001:db8::1".parse().unwrap(),
                    "2001:db8::2".parse().unwrap()
                ],
                ttl: 60
            }
        );
    }

    #[test]
    fn cname_chain_is_followed_and_its_ttl_counts() {
        let n = name("aftr.example.net");
        let query = build_query(7, &n);
        let bytes = reply_to(&query, |m| {
            m.add_answer(Record::from_rdata(
                hname("aftr.example.net"),
                30,
                RData::CNAME(CNAME(hname("b4-pool.example.net"))),
            ));
            m.add_answer(aaaa("b4-pool.example.net", 600, "2001:db8::9"));
        });
        assert_eq!(
            parse_reply(7, &n, &bytes),
            Reply::Addresses {
                addresses: vec!["2001:db8::9".parse().unwrap()],
                ttl: 30
            }
        );
    }

    #[test]
    fn cname_loop_ends_without_addresses() {
        let n = name("a.example.net");
        let query = build_query(7, &n);
        let bytes = reply_to(&query, |m| {
            for (from, to) in [
                ("a.example.net", "b.example.net"),
                ("b.example.net", "a.example.net"),
            ] {
                m.add_answer(Record::from_rdata(
                    hname(from),
                    30,
                    RData::CNAME(CNAME(hname(to))),
                ));
            }
        });
        assert_eq!(parse_reply(7, &n, &bytes), Reply::NoAddresses);
    }

    #[test]
    fn rcodes_and_truncation() {
        let n = name("aftr.example.net");
        let query = build_query(7, &n);
        let with_rcode = |rcode| reply_to(&query, |m| m.metadata.response_code = rcode);
        assert_eq!(
            parse_reply(7, &n, &with_rcode(ResponseCode::NXDomain)),
            Reply::NoSuchName
        );
        assert!(matches!(
            parse_reply(7, &n, &with_rcode(ResponseCode::ServFail)),
            Reply::Failed(_)
        ));
        assert_eq!(
            parse_reply(7, &n, &with_rcode(ResponseCode::NoError)),
            Reply::NoAddresses
        );
        let truncated = reply_to(&query, |m| m.metadata.truncation = true);
        assert_eq!(parse_reply(7, &n, &truncated), Reply::Truncated);
    }

    #[test]
    fn foreign_replies_are_not_ours() {
        let n = name("aftr.example.net");
        let query = build_query(7, &n);
        let good = reply_to(&query, |m| {
            m.add_answer(aaaa("aftr.example.net", 300, "2001:db8::1"));
        });
        // Wrong ID.
        assert_eq!(parse_reply(8, &n, &good), Reply::NotOurs);
        // Our own query echoed back (QR clear).
        assert_eq!(parse_reply(7, &n, &query), Reply::NotOurs);
        // Another question.
        assert_eq!(
            parse_reply(7, &name("evil.example.net"), &good),
            Reply::NotOurs
        );
        assert_eq!(parse_reply(7, &n, &[]), Reply::NotOurs);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let n = name("aftr.example.net");
            let _ = parse_reply(u16::from_be_bytes([bytes.first().copied().unwrap_or(0), bytes.get(1).copied().unwrap_or(0)]), &n, &bytes);
        }
    }
}
