//! DHCPv4 wire format (RFC 2131 §2, RFC 2132): decoding client requests into
//! a validated view and encoding server replies.
//!
//! This is a small codec of its own rather than dhcproto's v4 types: a server
//! needs options as raw bytes in the client's order (parameter request list,
//! client identifier echoed back byte for byte, RFC 6842), long options split
//! and joined (RFC 3396), option overload into `file`/`sname` (RFC 2132 §9.3),
//! and replies built to fit the client's maximum message size, none of which
//! dhcproto's `DhcpOptions` map gives. Every function here is total:
//! arbitrary bytes give `Err`, never a panic, and memory is bounded by the
//! input length.

use std::fmt;
use std::net::Ipv4Addr;

/// BOOTP op codes (RFC 2131 §2).
pub const BOOTREQUEST: u8 = 1;
pub const BOOTREPLY: u8 = 2;
/// RFC 2131 §3: 99.130.83.99.
pub const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// ARP hardware type Ethernet (RFC 1700).
pub const HTYPE_ETHERNET: u8 = 1;
/// Fixed header up to and including the magic cookie.
pub const HEADER_LEN: usize = 240;
/// RFC 2131 §2: the broadcast bit of `flags`.
pub const FLAG_BROADCAST: u16 = 0x8000;
/// RFC 1542 §3.5 / RFC 2131 §2: a BOOTP message is at least 300 octets;
/// some relays and old clients drop shorter ones, so replies are padded.
pub const MIN_BOOTP_LEN: usize = 300;
/// RFC 2132 §9.10: a client must accept 576-octet IP datagrams, i.e.
/// 576 - 20 (IP) - 8 (UDP) octets of DHCP message.
pub const MIN_MAX_MESSAGE: usize = 576 - 28;

/// Message types (option 53, RFC 2132 §9.6).
pub const DHCPDISCOVER: u8 = 1;
pub const DHCPOFFER: u8 = 2;
pub const DHCPREQUEST: u8 = 3;
pub const DHCPDECLINE: u8 = 4;
pub const DHCPACK: u8 = 5;
pub const DHCPNAK: u8 = 6;
pub const DHCPRELEASE: u8 = 7;
pub const DHCPINFORM: u8 = 8;

/// Option codes (RFC 2132 unless noted).
pub const OPT_PAD: u8 = 0;
pub const OPT_SUBNET_MASK: u8 = 1;
pub const OPT_ROUTER: u8 = 3;
pub const OPT_DNS: u8 = 6;
pub const OPT_HOSTNAME: u8 = 12;
pub const OPT_DOMAIN_NAME: u8 = 15;
pub const OPT_INTERFACE_MTU: u8 = 26;
pub const OPT_BROADCAST: u8 = 28;
pub const OPT_REQUESTED_IP: u8 = 50;
pub const OPT_LEASE_TIME: u8 = 51;
pub const OPT_OVERLOAD: u8 = 52;
pub const OPT_MESSAGE_TYPE: u8 = 53;
pub const OPT_SERVER_ID: u8 = 54;
pub const OPT_PARAMETER_LIST: u8 = 55;
pub const OPT_MESSAGE: u8 = 56;
pub const OPT_MAX_MESSAGE_SIZE: u8 = 57;
pub const OPT_RENEWAL_TIME: u8 = 58;
pub const OPT_REBINDING_TIME: u8 = 59;
pub const OPT_CLIENT_ID: u8 = 61;
/// RFC 4702.
pub const OPT_CLIENT_FQDN: u8 = 81;
/// RFC 3397.
pub const OPT_DOMAIN_SEARCH: u8 = 119;
pub const OPT_END: u8 = 255;

/// Why a received datagram is not a usable DHCP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WireError {
    /// Shorter than the fixed header and cookie.
    TooShort,
    BadMagicCookie,
    /// `op` is not BOOTREQUEST (a reply, or garbage).
    NotARequest,
    /// Only Ethernet (htype 1, hlen 6) is served: LAN clients are on a bridge.
    UnsupportedHardware,
    /// An option's length runs past the end of the area holding it.
    TruncatedOption,
    /// An option has a length its definition does not allow.
    BadOptionLength,
    /// No option 53: plain BOOTP, which b4d does not serve.
    NoMessageType,
}

impl WireError {
    /// Stable kebab-case name for counters and logs.
    pub fn name(self) -> &'static str {
        match self {
            WireError::TooShort => "too-short",
            WireError::BadMagicCookie => "bad-magic-cookie",
            WireError::NotARequest => "not-a-request",
            WireError::UnsupportedHardware => "unsupported-hardware",
            WireError::TruncatedOption => "truncated-option",
            WireError::BadOptionLength => "bad-option-length",
            WireError::NoMessageType => "no-message-type",
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A decoded, structurally valid client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub xid: u32,
    pub secs: u16,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub chaddr: [u8; 6],
    pub message_type: u8,
    pub requested_ip: Option<Ipv4Addr>,
    pub server_id: Option<Ipv4Addr>,
    /// Option 61, raw (type byte included).
    pub client_id: Option<Vec<u8>>,
    /// Option 12 as sent (not yet checked for host-name syntax).
    pub hostname: Option<Vec<u8>>,
    /// The name from option 81 (RFC 4702 §2), as dotted text, if decodable.
    pub fqdn: Option<String>,
    /// Option 55 in the client's order (RFC 2132 §9.8).
    pub parameter_list: Option<Vec<u8>>,
    /// Option 57: the largest DHCP message (IP and UDP headers included) the
    /// client accepts.
    pub max_message_size: Option<u16>,
}

impl Request {
    pub fn broadcast_flag(&self) -> bool {
        self.flags & FLAG_BROADCAST != 0
    }
}

/// Options gathered from the option area(s), long options joined
/// (RFC 3396 §7: same code appearing several times = one option).
#[derive(Default)]
struct RawOptions {
    /// (code, value) in order of first appearance.
    entries: Vec<(u8, Vec<u8>)>,
}

impl RawOptions {
    fn add(&mut self, code: u8, value: &[u8]) {
        match self.entries.iter_mut().find(|(c, _)| *c == code) {
            Some((_, v)) => v.extend_from_slice(value),
            None => self.entries.push((code, value.to_vec())),
        }
    }

    fn get(&self, code: u8) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| v.as_slice())
    }

    /// Walks one option area; stops at End. Running out of bytes without an
    /// End is tolerated (several clients omit it), a length past the end is not.
    fn parse_area(&mut self, area: &[u8]) -> Result<(), WireError> {
        let mut i = 0;
        while i < area.len() {
            let code = area[i];
            match code {
                OPT_PAD => i += 1,
                OPT_END => return Ok(()),
                _ => {
                    let len = *area.get(i + 1).ok_or(WireError::TruncatedOption)? as usize;
                    let value = area
                        .get(i + 2..i + 2 + len)
                        .ok_or(WireError::TruncatedOption)?;
                    self.add(code, value);
                    i += 2 + len;
                }
            }
        }
        Ok(())
    }
}

fn ipv4(bytes: &[u8]) -> Ipv4Addr {
    let mut a = [0u8; 4];
    a.copy_from_slice(&bytes[..4]);
    Ipv4Addr::from(a)
}

fn exact_ipv4(value: Option<&[u8]>) -> Result<Option<Ipv4Addr>, WireError> {
    match value {
        None => Ok(None),
        Some(v) if v.len() == 4 => Ok(Some(ipv4(v))),
        Some(_) => Err(WireError::BadOptionLength),
    }
}

/// Decodes a datagram received on the server port.
pub fn decode(bytes: &[u8]) -> Result<Request, WireError> {
    if bytes.len() < HEADER_LEN {
        return Err(WireError::TooShort);
    }
    if bytes[236..240] != MAGIC_COOKIE {
        return Err(WireError::BadMagicCookie);
    }
    if bytes[0] != BOOTREQUEST {
        return Err(WireError::NotARequest);
    }
    if bytes[1] != HTYPE_ETHERNET || bytes[2] != 6 {
        return Err(WireError::UnsupportedHardware);
    }
    let mut options = RawOptions::default();
    options.parse_area(&bytes[HEADER_LEN..])?;
    // RFC 2132 §9.3: option overload continues the options in `file` (1),
    // `sname` (2) or both (3), in that order.
    match options.get(OPT_OVERLOAD) {
        None => {}
        Some([overload @ 1..=3]) => {
            let overload = *overload;
            if overload & 1 != 0 {
                options.parse_area(&bytes[108..236])?;
            }
            if overload & 2 != 0 {
                options.parse_area(&bytes[44..108])?;
            }
        }
        Some(_) => return Err(WireError::BadOptionLength),
    }
    let message_type = match options.get(OPT_MESSAGE_TYPE) {
        None => return Err(WireError::NoMessageType),
        Some([t]) => *t,
        Some(_) => return Err(WireError::BadOptionLength),
    };
    let max_message_size = match options.get(OPT_MAX_MESSAGE_SIZE) {
        None => None,
        Some([a, b]) => Some(u16::from_be_bytes([*a, *b])),
        Some(_) => return Err(WireError::BadOptionLength),
    };
    let client_id = match options.get(OPT_CLIENT_ID) {
        // RFC 2132 §9.14: at least 2 octets (type + something). At most
        // one option's worth (255): RFC 3396 joining could make it ~60 KB,
        // which is echoed in the reply (RFC 6842) and kept as a table key.
        Some(v) if !(2..=255).contains(&v.len()) => return Err(WireError::BadOptionLength),
        v => v.map(<[u8]>::to_vec),
    };
    let mut chaddr = [0u8; 6];
    chaddr.copy_from_slice(&bytes[28..34]);
    Ok(Request {
        xid: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        secs: u16::from_be_bytes([bytes[8], bytes[9]]),
        flags: u16::from_be_bytes([bytes[10], bytes[11]]),
        ciaddr: ipv4(&bytes[12..16]),
        giaddr: ipv4(&bytes[24..28]),
        chaddr,
        message_type,
        requested_ip: exact_ipv4(options.get(OPT_REQUESTED_IP))?,
        server_id: exact_ipv4(options.get(OPT_SERVER_ID))?,
        client_id,
        hostname: options
            .get(OPT_HOSTNAME)
            .filter(|v| !v.is_empty())
            .map(<[u8]>::to_vec),
        fqdn: options.get(OPT_CLIENT_FQDN).and_then(decode_fqdn),
        parameter_list: options.get(OPT_PARAMETER_LIST).map(<[u8]>::to_vec),
        max_message_size,
    })
}

/// RFC 4702 §2: flags, two obsolete RCODE octets, then the name, in DNS
/// wire format when the E flag (0x04) is set, else ASCII. `None` when the
/// name is empty or does not decode.
fn decode_fqdn(value: &[u8]) -> Option<String> {
    let (&flags, rest) = value.split_first()?;
    let name = rest.get(2..)?;
    if flags & 0x04 == 0 {
        let text = std::str::from_utf8(name).ok()?.trim_end_matches('.');
        return (!text.is_empty()).then(|| text.to_string());
    }
    let mut labels = Vec::new();
    let mut i = 0;
    while let Some(&len) = name.get(i) {
        if len == 0 {
            break;
        }
        // No compression in option 81 (RFC 4702 §2.1); 0xc0 etc. are invalid.
        if len > 63 {
            return None;
        }
        let label = name.get(i + 1..i + 1 + len as usize)?;
        labels.push(std::str::from_utf8(label).ok()?);
        i += 1 + len as usize;
    }
    (!labels.is_empty()).then(|| labels.join("."))
}

/// A reply under construction: header fields plus options in the order they
/// are added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub message_type: u8,
    pub xid: u32,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub giaddr: Ipv4Addr,
    pub chaddr: [u8; 6],
    /// Options after 53, in order; those marked `required` are always kept,
    /// the others only while they fit.
    pub options: Vec<ReplyOption>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyOption {
    pub code: u8,
    pub value: Vec<u8>,
    pub required: bool,
}

impl Reply {
    /// Encodes the reply into at most `max_len` octets of DHCP message
    /// (at least [`MIN_MAX_MESSAGE`] is always allowed). Optional options
    /// that would not fit are left out (RFC 2131 §4.3.1 leaves the choice of
    /// what to drop to the server); required ones are put first by the
    /// caller and always fit in 548 octets.
    pub fn encode(&self, max_len: usize) -> Vec<u8> {
        let max_len = max_len.max(MIN_MAX_MESSAGE);
        let mut out = Vec::with_capacity(MIN_BOOTP_LEN.max(HEADER_LEN + 64));
        out.extend_from_slice(&[BOOTREPLY, HTYPE_ETHERNET, 6, 0]);
        out.extend_from_slice(&self.xid.to_be_bytes());
        out.extend_from_slice(&[0, 0]); // secs
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&self.ciaddr.octets());
        out.extend_from_slice(&self.yiaddr.octets());
        out.extend_from_slice(&[0; 4]); // siaddr: no next server (no boot files)
        out.extend_from_slice(&self.giaddr.octets());
        out.extend_from_slice(&self.chaddr);
        out.resize(HEADER_LEN - 4, 0); // chaddr padding, sname, file
        out.extend_from_slice(&MAGIC_COOKIE);
        out.extend_from_slice(&[OPT_MESSAGE_TYPE, 1, self.message_type]);
        for option in &self.options {
            let encoded_len = encoded_len(option.value.len());
            // One octet is kept for End.
            if !option.required && out.len() + encoded_len + 1 > max_len {
                continue;
            }
            push_option(&mut out, option.code, &option.value);
        }
        out.push(OPT_END);
        if out.len() < MIN_BOOTP_LEN {
            out.resize(MIN_BOOTP_LEN, OPT_PAD);
        }
        out
    }
}

/// Octets an option of `len` value octets takes, split per RFC 3396.
fn encoded_len(len: usize) -> usize {
    if len == 0 {
        2
    } else {
        len + 2 * len.div_ceil(255)
    }
}

/// Appends one option, split into 255-octet pieces when longer (RFC 3396 §5).
fn push_option(out: &mut Vec<u8>, code: u8, value: &[u8]) {
    if value.is_empty() {
        out.extend_from_slice(&[code, 0]);
        return;
    }
    for piece in value.chunks(255) {
        out.push(code);
        out.push(piece.len() as u8);
        out.extend_from_slice(piece);
    }
}

/// A domain name in DNS wire format without compression (RFC 3397 §2 allows
/// compression; a single name gains nothing from it). Labels are validated by
/// the config already; over-long ones are cut at 63 octets defensively.
pub fn dns_wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() {
            continue;
        }
        let label = &label.as_bytes()[..label.len().min(63)];
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A request as a client would build it, for unit tests across the module.
    pub(crate) fn build_request(
        message_type: u8,
        chaddr: [u8; 6],
        ciaddr: Ipv4Addr,
        options: &[(u8, &[u8])],
    ) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        b[0] = BOOTREQUEST;
        b[1] = HTYPE_ETHERNET;
        b[2] = 6;
        b[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        b[12..16].copy_from_slice(&ciaddr.octets());
        b[28..34].copy_from_slice(&chaddr);
        b[236..240].copy_from_slice(&MAGIC_COOKIE);
        b.extend_from_slice(&[OPT_MESSAGE_TYPE, 1, message_type]);
        for (code, value) in options {
            push_option(&mut b, *code, value);
        }
        b.push(OPT_END);
        b
    }

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    #[test]
    fn decodes_a_discover_with_the_usual_options() {
        let bytes = build_request(
            DHCPDISCOVER,
            MAC,
            Ipv4Addr::UNSPECIFIED,
            &[
                (OPT_CLIENT_ID, &[1, 2, 0, 0, 0, 0, 1]),
                (OPT_HOSTNAME, b"tv"),
                (OPT_PARAMETER_LIST, &[1, 3, 6, 15]),
                (OPT_MAX_MESSAGE_SIZE, &[5, 220]),
                (OPT_REQUESTED_IP, &[192, 168, 1, 120]),
            ],
        );
        let r = decode(&bytes).unwrap();
        assert_eq!(r.message_type, DHCPDISCOVER);
        assert_eq!(r.xid, 0x1234_5678);
        assert_eq!(r.chaddr, MAC);
        assert_eq!(r.client_id.as_deref(), Some(&[1, 2, 0, 0, 0, 0, 1][..]));
        assert_eq!(r.hostname.as_deref(), Some(&b"tv"[..]));
        assert_eq!(r.parameter_list.as_deref(), Some(&[1, 3, 6, 15][..]));
        assert_eq!(r.max_message_size, Some(1500));
        assert_eq!(r.requested_ip, Some(Ipv4Addr::new(192, 168, 1, 120)));
    }

    #[test]
    fn rejects_structural_errors_by_reason() {
        let good = build_request(DHCPDISCOVER, MAC, Ipv4Addr::UNSPECIFIED, &[]);
        assert_eq!(decode(&good[..200]), Err(WireError::TooShort));
        let mut bad = good.clone();
        bad[236] = 0;
        assert_eq!(decode(&bad), Err(WireError::BadMagicCookie));
        let mut bad = good.clone();
        bad[0] = BOOTREPLY;
        assert_eq!(decode(&bad), Err(WireError::NotARequest));
        let mut bad = good.clone();
        bad[2] = 16;
        assert_eq!(decode(&bad), Err(WireError::UnsupportedHardware));
        // A huge option length running past the end of the datagram.
        let mut bad = good[..HEADER_LEN].to_vec();
        bad.extend_from_slice(&[OPT_MESSAGE_TYPE, 1, 1, OPT_HOSTNAME, 200, b'x']);
        assert_eq!(decode(&bad), Err(WireError::TruncatedOption));
        let bad = build_request(
            DHCPDISCOVER,
            MAC,
            Ipv4Addr::UNSPECIFIED,
            &[(OPT_REQUESTED_IP, &[1, 2, 3])],
        );
        assert_eq!(decode(&bad), Err(WireError::BadOptionLength));
        let mut bootp = good[..HEADER_LEN].to_vec();
        bootp.push(OPT_END);
        assert_eq!(decode(&bootp), Err(WireError::NoMessageType));
    }

    #[test]
    fn joins_split_options_and_reads_overloaded_fields() {
        // RFC 3396: two pieces of option 55 form one list.
        let bytes = build_request(
            DHCPREQUEST,
            MAC,
            Ipv4Addr::UNSPECIFIED,
            &[(OPT_PARAMETER_LIST, &[1, 3]), (OPT_PARAMETER_LIST, &[6])],
        );
        assert_eq!(
            decode(&bytes).unwrap().parameter_list.as_deref(),
            Some(&[1, 3, 6][..])
        );
        // RFC 2132 §9.3: option 50 carried in the `file` field.
        let mut bytes = build_request(
            DHCPREQUEST,
            MAC,
            Ipv4Addr::UNSPECIFIED,
            &[(OPT_OVERLOAD, &[1])],
        );
        bytes[108..115].copy_from_slice(&[OPT_REQUESTED_IP, 4, 10, 0, 0, 9, OPT_END]);
        assert_eq!(
            decode(&bytes).unwrap().requested_ip,
            Some(Ipv4Addr::new(10, 0, 0, 9))
        );
    }

    #[test]
    fn a_client_identifier_longer_than_one_option_is_refused() {
        // RFC 3396 joins repeated options: 2 x 200 octets would be one
        // 400-octet identifier, echoed in the reply and kept as a key.
        let part = [7u8; 200];
        let bytes = build_request(
            DHCPDISCOVER,
            MAC,
            Ipv4Addr::UNSPECIFIED,
            &[(OPT_CLIENT_ID, &part), (OPT_CLIENT_ID, &part)],
        );
        assert_eq!(decode(&bytes), Err(WireError::BadOptionLength));
        let bytes = build_request(
            DHCPDISCOVER,
            MAC,
            Ipv4Addr::UNSPECIFIED,
            &[(OPT_CLIENT_ID, &part)],
        );
        assert_eq!(decode(&bytes).unwrap().client_id.unwrap().len(), 200);
    }

    #[test]
    fn reads_the_client_fqdn_in_both_encodings() {
        assert_eq!(
            decode_fqdn(b"\x00\xff\xffpc.lan").as_deref(),
            Some("pc.lan")
        );
        assert_eq!(
            decode_fqdn(b"\x05\x00\x00\x02pc\x03lan\x00").as_deref(),
            Some("pc.lan")
        );
        assert_eq!(decode_fqdn(b"\x04\x00\x00\xc0\x0c"), None);
        assert_eq!(decode_fqdn(b"\x04"), None);
    }

    fn sample_reply(options: Vec<ReplyOption>) -> Reply {
        Reply {
            message_type: DHCPOFFER,
            xid: 7,
            flags: FLAG_BROADCAST,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            yiaddr: Ipv4Addr::new(192, 168, 1, 100),
            giaddr: Ipv4Addr::UNSPECIFIED,
            chaddr: MAC,
            options,
        }
    }

    #[test]
    fn replies_are_padded_to_bootp_minimum_and_carry_their_fields() {
        let out = sample_reply(vec![ReplyOption {
            code: OPT_SERVER_ID,
            value: vec![192, 168, 1, 1],
            required: true,
        }])
        .encode(1500);
        assert_eq!(out.len(), MIN_BOOTP_LEN);
        assert_eq!(out[0], BOOTREPLY);
        assert_eq!(&out[16..20], &[192, 168, 1, 100]);
        assert_eq!(&out[10..12], &[0x80, 0]);
        assert_eq!(
            &out[240..249],
            &[53, 1, DHCPOFFER, 54, 4, 192, 168, 1, 1, 255][..9]
        );
    }

    #[test]
    fn optional_options_that_do_not_fit_are_left_out_and_long_ones_split() {
        let big = |code| ReplyOption {
            code,
            value: vec![b'a'; 200],
            required: false,
        };
        let reply = sample_reply(vec![
            ReplyOption {
                code: OPT_SERVER_ID,
                value: vec![192, 168, 1, 1],
                required: true,
            },
            big(OPT_DOMAIN_NAME),
            big(OPT_DOMAIN_SEARCH),
        ]);
        // 576-byte datagrams: only one 200-octet option fits after the header.
        let small = reply.encode(MIN_MAX_MESSAGE);
        assert!(small.len() <= MIN_MAX_MESSAGE);
        assert!(small.windows(2).any(|w| w == [OPT_DOMAIN_NAME, 200]));
        assert!(!small.windows(2).any(|w| w == [OPT_DOMAIN_SEARCH, 200]));
        let large = reply.encode(1500);
        assert!(large.windows(2).any(|w| w == [OPT_DOMAIN_SEARCH, 200]));

        let mut split = Vec::new();
        push_option(&mut split, OPT_DOMAIN_SEARCH, &[b'x'; 300]);
        assert_eq!(split.len(), encoded_len(300));
        assert_eq!(&split[..2], &[OPT_DOMAIN_SEARCH, 255]);
        assert_eq!(&split[257..259], &[OPT_DOMAIN_SEARCH, 45]);
    }

    #[test]
    fn encoded_replies_decode_as_structurally_sound() {
        // Turning a reply into a "request" checks our own TLV framing.
        let mut out = sample_reply(vec![ReplyOption {
            code: OPT_DOMAIN_SEARCH,
            value: dns_wire_name("home.example."),
            required: false,
        }])
        .encode(1500);
        out[0] = BOOTREQUEST;
        let r = decode(&out).unwrap();
        assert_eq!(r.message_type, DHCPOFFER);
        assert_eq!(dns_wire_name("lan"), b"\x03lan\x00");
    }

    proptest! {
        #[test]
        fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decode_never_panics_on_arbitrary_options(
            options in proptest::collection::vec(any::<u8>(), 0..400),
            overload in 0u8..5,
            file in proptest::collection::vec(any::<u8>(), 0..128),
        ) {
            let mut bytes = build_request(DHCPREQUEST, MAC, Ipv4Addr::UNSPECIFIED, &[(OPT_OVERLOAD, &[overload])]);
            bytes.pop();
            bytes[108..108 + file.len()].copy_from_slice(&file);
            bytes.extend_from_slice(&options);
            let _ = decode(&bytes);
        }

        #[test]
        fn encode_respects_the_size_limit(
            sizes in proptest::collection::vec(0usize..600, 0..8),
            max in 0usize..2000,
        ) {
            let options = sizes.iter().enumerate().map(|(i, &n)| ReplyOption {
                code: 100 + i as u8,
                value: vec![1; n],
                required: false,
            }).collect();
            let out = sample_reply(options).encode(max);
            prop_assert!(out.len() <= max.max(MIN_MAX_MESSAGE));
            prop_assert!(out.len() >= MIN_BOOTP_LEN);
        }
    }
}
