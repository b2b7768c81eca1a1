//! DHCPv6 wire format: decoding received messages into a validated view and
//! encoding the messages the client sends.
//!
//! Encoding and typed decoding use `dhcproto`. Its option decoder stops
//! silently at the first option it cannot read (a truncated IA_NA simply
//! disappears), so before handing bytes to it we walk the TLV structure
//! ourselves and reject anything that does not add up. Every function here
//! is total: arbitrary bytes give `Err`, never a panic.

use std::fmt;
use std::net::Ipv6Addr;

use dhcproto::v6::{
    self, DhcpOption, DhcpOptions, IAAddr, IAPrefix, Message, MessageType, OptionCode, IANA, IAPD,
    ORO,
};
use dhcproto::{Decodable, Encodable, Encoder};

/// RFC 8415 §7.3 message types the client handles.
pub const MSG_SOLICIT: u8 = 1;
pub const MSG_ADVERTISE: u8 = 2;
pub const MSG_REQUEST: u8 = 3;
pub const MSG_RENEW: u8 = 5;
pub const MSG_REBIND: u8 = 6;
pub const MSG_REPLY: u8 = 7;
pub const MSG_RELEASE: u8 = 8;
pub const MSG_DECLINE: u8 = 9;
pub const MSG_RECONFIGURE: u8 = 10;
pub const MSG_INFORMATION_REQUEST: u8 = 11;

/// Option codes we validate or read (RFC 8415 §21, RFC 3646, RFC 6334).
pub const OPT_CLIENT_ID: u16 = 1;
pub const OPT_SERVER_ID: u16 = 2;
pub const OPT_IA_NA: u16 = 3;
pub const OPT_IAADDR: u16 = 5;
pub const OPT_PREFERENCE: u16 = 7;
pub const OPT_ELAPSED_TIME: u16 = 8;
pub const OPT_STATUS_CODE: u16 = 13;
pub const OPT_RAPID_COMMIT: u16 = 14;
pub const OPT_RECONF_MSG: u16 = 19;
pub const OPT_DNS_SERVERS: u16 = 23;
pub const OPT_DOMAIN_LIST: u16 = 24;
pub const OPT_IA_PD: u16 = 25;
pub const OPT_IAPREFIX: u16 = 26;
pub const OPT_INFORMATION_REFRESH_TIME: u16 = 32;
pub const OPT_AFTR_NAME: u16 = 64;
pub const OPT_SOL_MAX_RT: u16 = 82;
pub const OPT_INF_MAX_RT: u16 = 83;

/// RFC 8415 §21.13 status codes the client acts on.
pub const STATUS_SUCCESS: u16 = 0;
pub const STATUS_NO_ADDRS_AVAIL: u16 = 2;
pub const STATUS_NO_BINDING: u16 = 3;
pub const STATUS_NOT_ON_LINK: u16 = 4;
pub const STATUS_USE_MULTICAST: u16 = 5;
pub const STATUS_NO_PREFIX_AVAIL: u16 = 6;

/// Lifetime value meaning "forever" (RFC 8415 §7.7).
pub const INFINITY: u32 = u32::MAX;

/// Why a received message was not usable at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    TooShort,
    /// An option header or body runs past the end of its container.
    Truncated {
        option: u16,
    },
    /// An option has a length its definition does not allow.
    BadLength {
        option: u16,
        len: usize,
    },
    /// A field has a value its definition does not allow.
    BadValue {
        option: u16,
        what: &'static str,
    },
    /// dhcproto refused what our structural check accepted.
    Decode(String),
}

impl WireError {
    /// The option at fault, if one is.
    pub fn option(&self) -> Option<u16> {
        match self {
            WireError::Truncated { option }
            | WireError::BadLength { option, .. }
            | WireError::BadValue { option, .. } => Some(*option),
            WireError::TooShort | WireError::Decode(_) => None,
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TooShort => write!(f, "shorter than the 4-byte DHCPv6 header"),
            WireError::Truncated { option } => write!(f, "option {option} is truncated"),
            WireError::BadLength { option, len } => {
                write!(f, "option {option} has invalid length {len}")
            }
            WireError::BadValue { option, what } => write!(f, "option {option}: {what}"),
            WireError::Decode(e) => write!(f, "undecodable: {e}"),
        }
    }
}

/// Why option 64 (AFTR-Name) was rejected. The rest of the message stays usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AftrNameError {
    Empty,
    /// RFC 6334 §3: the name is not compressed; a pointer is malformed here.
    Compressed,
    LabelTooLong(usize),
    /// The labels do not end exactly at the end of the option (trailing bytes,
    /// missing root label, or a label running past the end).
    BadFraming,
    /// Longer than the 255 octets RFC 1035 §2.3.4 allows.
    TooLong(usize),
    /// Only the root label: not a usable FQDN.
    RootOnly,
    /// A label contains a byte that is not a letter, digit, hyphen or underscore.
    BadCharacter,
}

impl fmt::Display for AftrNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AftrNameError::Empty => write!(f, "empty"),
            AftrNameError::Compressed => write!(f, "uses DNS name compression (RFC 6334 §3)"),
            AftrNameError::LabelTooLong(n) => write!(f, "label of {n} octets (max 63)"),
            AftrNameError::BadFraming => write!(f, "labels do not end at the option's end"),
            AftrNameError::TooLong(n) => write!(f, "name of {n} octets (max 255)"),
            AftrNameError::RootOnly => write!(f, "root name only"),
            AftrNameError::BadCharacter => write!(f, "label has a non-hostname character"),
        }
    }
}

/// One address from an IA_NA (RFC 8415 §21.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaAddress {
    pub addr: Ipv6Addr,
    pub preferred: u32,
    pub valid: u32,
}

/// One delegated prefix from an IA_PD (RFC 8415 §21.22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IaPrefix {
    pub prefix: Ipv6Addr,
    pub len: u8,
    pub preferred: u32,
    pub valid: u32,
}

/// An IA_NA or IA_PD as received; `status` is the IA-level status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ia<T> {
    pub iaid: u32,
    pub t1: u32,
    pub t2: u32,
    pub status: Option<u16>,
    pub leases: Vec<T>,
}

/// A received message, structurally valid, reduced to what the client uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub msg_type: u8,
    pub xid: [u8; 3],
    pub client_id: Option<Vec<u8>>,
    pub server_id: Option<Vec<u8>>,
    pub preference: u8,
    /// Top-level status code and message (RFC 8415 §21.13).
    pub status: Option<(u16, String)>,
    pub ia_na: Vec<Ia<IaAddress>>,
    pub ia_pd: Vec<Ia<IaPrefix>>,
    pub dns_servers: Option<Vec<Ipv6Addr>>,
    pub domains: Option<Vec<String>>,
    /// `None`: no option 64; `Some(Err)`: present but unusable.
    pub aftr_name: Option<Result<String, AftrNameError>>,
    pub sol_max_rt: Option<u32>,
    pub inf_max_rt: Option<u32>,
    pub information_refresh: Option<u32>,
    /// RFC 8415 §21.19: which exchange a Reconfigure asks for.
    pub reconfigure_msg: Option<u8>,
    /// RFC 8415 §21.14: a Reply to Solicit that commits the binding.
    pub rapid_commit: bool,
    /// Malformed optional options left out (see [`SKIPPABLE`]): what they
    /// would have set keeps its previous value.
    pub ignored: Vec<WireError>,
}

impl Received {
    /// The top-level status code, `Success` when absent (RFC 8415 §21.13).
    pub fn status_code(&self) -> u16 {
        self.status.as_ref().map_or(STATUS_SUCCESS, |s| s.0)
    }

    /// Whether option `code` was present but malformed, and left out.
    pub fn ignored_option(&self, code: u16) -> bool {
        self.ignored.iter().any(|e| e.option() == Some(code))
    }
}

/// The options of a sequence in order, each as (code, body, the whole
/// option); a framing error ends the walk.
fn walk_options(bytes: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8], &[u8]), WireError>> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        if rest.len() < 4 {
            rest = &[];
            return Some(Err(WireError::Truncated { option: 0 }));
        }
        let code = u16::from_be_bytes([rest[0], rest[1]]);
        let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        let Some(body) = rest.get(4..4 + len) else {
            rest = &[];
            return Some(Err(WireError::Truncated { option: code }));
        };
        let whole = &rest[..4 + len];
        rest = &rest[4 + len..];
        Some(Ok((code, body, whole)))
    })
}

/// Walks a sequence of options and checks each one's framing and, for the
/// options the client reads, its length and nested structure.
fn check_options(bytes: &[u8]) -> Result<(), WireError> {
    walk_options(bytes).try_for_each(|option| {
        let (code, body, _) = option?;
        check_option(code, body)
    })
}

/// Top-level options a message is usable without. A malformed one is left
/// out instead of costing the whole message and the binding it carries (a
/// server's sloppy domain list, say a compressed one, must not keep a
/// subscriber offline), as a malformed AFTR-Name is.
const SKIPPABLE: [u16; 5] = [
    OPT_DNS_SERVERS,
    OPT_DOMAIN_LIST,
    OPT_SOL_MAX_RT,
    OPT_INF_MAX_RT,
    OPT_INFORMATION_REFRESH_TIME,
];

/// The options the client reads, at the top level, inside an IA_NA or
/// IA_PD, and inside an IAADDR or IAPREFIX. Only these reach dhcproto:
/// it decodes a message only up to the first option it cannot read, and
/// misreads some it need not (Server Unicast takes 16 bytes whatever its
/// length, Reconfigure Accept skips its body, Vendor options underflow
/// under 4 bytes), so a bad option the client does not even use would
/// silently cut off the rest: IA_PD or option 64, and the tunnel with it.
/// RFC 8415 §16: a client ignores options it does not understand.
const READ_AT_TOP: [u16; 14] = [
    OPT_CLIENT_ID,
    OPT_SERVER_ID,
    OPT_IA_NA,
    OPT_IA_PD,
    OPT_PREFERENCE,
    OPT_STATUS_CODE,
    OPT_RAPID_COMMIT,
    OPT_RECONF_MSG,
    OPT_DNS_SERVERS,
    OPT_DOMAIN_LIST,
    OPT_INFORMATION_REFRESH_TIME,
    OPT_AFTR_NAME,
    OPT_SOL_MAX_RT,
    OPT_INF_MAX_RT,
];
const READ_IN_IA: [u16; 3] = [OPT_IAADDR, OPT_IAPREFIX, OPT_STATUS_CODE];
const READ_IN_LEASE: [u16; 1] = [OPT_STATUS_CODE];

/// `message` with only the options the client reads ([`READ_AT_TOP`]),
/// without its malformed [`SKIPPABLE`] ones (and why each was left out);
/// any other malformed option is an error.
fn cleaned(message: &[u8]) -> Result<(Vec<u8>, Vec<WireError>), WireError> {
    let (header, options) = message.split_at(4);
    let mut out = Vec::with_capacity(message.len());
    out.extend_from_slice(header);
    let mut ignored = Vec::new();
    keep_read_options(&mut out, options, &READ_AT_TOP, &mut ignored)?;
    Ok((out, ignored))
}

/// Appends the options of `options` that are in `read` to `out`, nested
/// ones cleaned the same way (their length fixed up).
fn keep_read_options(
    out: &mut Vec<u8>,
    options: &[u8],
    read: &[u16],
    ignored: &mut Vec<WireError>,
) -> Result<(), WireError> {
    for option in walk_options(options) {
        let (code, body, whole) = option?;
        if !read.contains(&code) {
            continue;
        }
        match check_option(code, body) {
            Ok(()) => {}
            Err(e) if SKIPPABLE.contains(&code) => {
                ignored.push(e);
                continue;
            }
            Err(e) => return Err(e),
        }
        let (fixed, nested): (usize, &[u16]) = match code {
            OPT_IA_NA | OPT_IA_PD => (12, &READ_IN_IA),
            OPT_IAADDR => (24, &READ_IN_LEASE),
            OPT_IAPREFIX => (25, &READ_IN_LEASE),
            // RFC 8415 §21.13 asks for UTF-8; a server's text in another
            // encoding (Latin-1) must not cost the binding: the code stays.
            OPT_STATUS_CODE if std::str::from_utf8(&body[2..]).is_err() => {
                out.extend_from_slice(&[whole[0], whole[1], 0, 2, body[0], body[1]]);
                continue;
            }
            _ => {
                out.extend_from_slice(whole);
                continue;
            }
        };
        let start = out.len();
        out.extend_from_slice(&whole[..4 + fixed]);
        keep_read_options(out, &body[fixed..], nested, ignored)?;
        // No longer than the option was: fits its u16 length.
        let len = (out.len() - start - 4) as u16;
        out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

fn check_option(code: u16, body: &[u8]) -> Result<(), WireError> {
    let len = body.len();
    let bad_len = || Err(WireError::BadLength { option: code, len });
    match code {
        OPT_CLIENT_ID | OPT_SERVER_ID if !(3..=130).contains(&len) => bad_len(),
        OPT_PREFERENCE if len != 1 => bad_len(),
        OPT_ELAPSED_TIME if len != 2 => bad_len(),
        OPT_RECONF_MSG if len != 1 => bad_len(),
        OPT_STATUS_CODE if len < 2 => bad_len(),
        OPT_RAPID_COMMIT if len != 0 => bad_len(),
        OPT_DNS_SERVERS if len % 16 != 0 => bad_len(),
        OPT_SOL_MAX_RT | OPT_INF_MAX_RT | OPT_INFORMATION_REFRESH_TIME if len != 4 => bad_len(),
        OPT_IA_NA | OPT_IA_PD if len < 12 => bad_len(),
        OPT_IA_NA | OPT_IA_PD => check_options(&body[12..]),
        OPT_IAADDR if len < 24 => bad_len(),
        OPT_IAADDR => check_options(&body[24..]),
        OPT_IAPREFIX if len < 25 => bad_len(),
        OPT_IAPREFIX if body[8] > 128 => Err(WireError::BadValue {
            option: code,
            what: "prefix length over 128",
        }),
        OPT_IAPREFIX => check_options(&body[25..]),
        OPT_DOMAIN_LIST => check_domain_list(body).map_err(|_| WireError::BadValue {
            option: code,
            what: "malformed domain list",
        }),
        _ => Ok(()),
    }
}

/// RFC 3646 §5 / RFC 8415 §10: a sequence of uncompressed names.
fn check_domain_list(body: &[u8]) -> Result<(), AftrNameError> {
    let mut rest = body;
    while !rest.is_empty() {
        let used = name_wire_len(rest)?;
        rest = &rest[used..];
    }
    Ok(())
}

/// Length of the uncompressed DNS name at the start of `bytes`, validating
/// its framing (RFC 1035 §3.1). Characters are not checked here.
fn name_wire_len(bytes: &[u8]) -> Result<usize, AftrNameError> {
    let mut pos = 0;
    loop {
        let Some(&label_len) = bytes.get(pos) else {
            return Err(AftrNameError::BadFraming);
        };
        let label_len = label_len as usize;
        if label_len & 0xc0 == 0xc0 {
            return Err(AftrNameError::Compressed);
        }
        if label_len > 63 {
            return Err(AftrNameError::LabelTooLong(label_len));
        }
        pos += 1 + label_len;
        if pos > bytes.len() {
            return Err(AftrNameError::BadFraming);
        }
        if pos > 255 {
            return Err(AftrNameError::TooLong(pos));
        }
        if label_len == 0 {
            return Ok(pos);
        }
    }
}

/// Decodes option 64 (RFC 6334 §3): exactly one uncompressed FQDN in DNS wire
/// format filling the whole option. Returns the name in lower case with a
/// trailing dot removed, e.g. `aftr.example.net`.
pub fn decode_aftr_name(body: &[u8]) -> Result<String, AftrNameError> {
    if body.is_empty() {
        return Err(AftrNameError::Empty);
    }
    if body.len() > 255 {
        return Err(AftrNameError::TooLong(body.len()));
    }
    let used = name_wire_len(body)?;
    if used != body.len() {
        return Err(AftrNameError::BadFraming);
    }
    if used == 1 {
        return Err(AftrNameError::RootOnly);
    }
    let mut labels = Vec::new();
    let mut pos = 0;
    while body[pos] != 0 {
        let label = &body[pos + 1..pos + 1 + body[pos] as usize];
        if !label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return Err(AftrNameError::BadCharacter);
        }
        // Checked above: ASCII letters, digits, '-' and '_' only.
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        pos += 1 + label.len();
    }
    Ok(labels.join("."))
}

/// Encodes `name` (dotted, optional trailing dot) in DNS wire format. Used by
/// tests and by the lab; returns `None` for names that cannot be encoded.
pub fn encode_dns_name(name: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    (out.len() <= 255).then_some(out)
}

fn status_of(opts: &DhcpOptions) -> Option<(u16, String)> {
    match opts.get(OptionCode::StatusCode) {
        Some(DhcpOption::StatusCode(s)) => Some((u16::from(s.status), s.msg.clone())),
        _ => None,
    }
}

fn unknown_body(opts: &DhcpOptions, code: u16) -> Option<&[u8]> {
    opts.iter().find_map(|o| match o {
        DhcpOption::Unknown(u) if u16::from(u.code()) == code => Some(u.data()),
        _ => None,
    })
}

fn u32_option(opts: &DhcpOptions, code: u16) -> Option<u32> {
    unknown_body(opts, code)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
}

/// An IA_NA or IA_PD with its IA-level status and the leases `lease` finds
/// among its options.
fn ia_of<T>(
    iaid: u32,
    t1: u32,
    t2: u32,
    opts: &DhcpOptions,
    lease: impl Fn(&DhcpOption) -> Option<T>,
) -> Ia<T> {
    Ia {
        iaid,
        t1,
        t2,
        status: status_of(opts).map(|s| s.0),
        leases: opts.iter().filter_map(lease).collect(),
    }
}

/// Parses a message received on the client port. Relay messages and anything
/// malformed are errors.
pub fn parse(bytes: &[u8]) -> Result<Received, WireError> {
    if bytes.len() < 4 {
        return Err(WireError::TooShort);
    }
    let (bytes, ignored) = cleaned(bytes)?;
    let msg = Message::from_bytes(&bytes).map_err(|e| WireError::Decode(e.to_string()))?;
    let opts = msg.opts();
    let mut received = Received {
        msg_type: bytes[0],
        xid: msg.xid(),
        client_id: None,
        server_id: None,
        preference: 0,
        status: status_of(opts),
        ia_na: Vec::new(),
        ia_pd: Vec::new(),
        dns_servers: None,
        domains: None,
        aftr_name: None,
        sol_max_rt: u32_option(opts, OPT_SOL_MAX_RT),
        inf_max_rt: u32_option(opts, OPT_INF_MAX_RT),
        // dhcproto 0.15 encodes option 32 but decodes it as Unknown.
        information_refresh: u32_option(opts, OPT_INFORMATION_REFRESH_TIME),
        reconfigure_msg: None,
        rapid_commit: false,
        ignored,
    };
    for opt in opts.iter() {
        match opt {
            DhcpOption::ClientId(id) => received.client_id = Some(id.clone()),
            DhcpOption::ServerId(id) => received.server_id = Some(id.clone()),
            DhcpOption::Preference(p) => received.preference = *p,
            DhcpOption::RapidCommit => received.rapid_commit = true,
            DhcpOption::IANA(ia) => {
                received
                    .ia_na
                    .push(ia_of(ia.id, ia.t1, ia.t2, &ia.opts, |o| match o {
                        DhcpOption::IAAddr(a) => Some(IaAddress {
                            addr: a.addr,
                            preferred: a.preferred_life,
                            valid: a.valid_life,
                        }),
                        _ => None,
                    }))
            }
            DhcpOption::IAPD(ia) => {
                received
                    .ia_pd
                    .push(ia_of(ia.id, ia.t1, ia.t2, &ia.opts, |o| match o {
                        DhcpOption::IAPrefix(p) => Some(IaPrefix {
                            prefix: p.prefix_ip,
                            len: p.prefix_len,
                            preferred: p.preferred_lifetime,
                            valid: p.valid_lifetime,
                        }),
                        _ => None,
                    }))
            }
            DhcpOption::DomainNameServers(list) => received.dns_servers = Some(list.clone()),
            DhcpOption::DomainSearchList(names) => {
                received.domains = Some(
                    names
                        .iter()
                        .map(|n| n.to_ascii().trim_end_matches('.').to_ascii_lowercase())
                        .collect(),
                )
            }
            DhcpOption::InformationRefreshTime(t) => received.information_refresh = Some(*t),
            DhcpOption::ReconfMsg(m) => received.reconfigure_msg = Some(u8::from(*m)),
            DhcpOption::Unknown(u) if u16::from(u.code()) == OPT_AFTR_NAME => {
                received.aftr_name = Some(decode_aftr_name(u.data()))
            }
            _ => {}
        }
    }
    Ok(received)
}

/// Which IA to put in an outgoing message and what it already holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutgoingIas {
    /// `Some(addresses)`: include an IA_NA (empty = ask for any address).
    pub ia_na: Option<Vec<Ipv6Addr>>,
    /// `Some(prefixes)`: include an IA_PD.
    pub ia_pd: Option<Vec<(Ipv6Addr, u8)>>,
    /// Prefix-length hint for an empty IA_PD (RFC 8415 §18.2.1), 0 = none.
    pub prefix_hint: u8,
}

/// Everything that varies between the messages the client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<'a> {
    pub msg_type: u8,
    pub xid: [u8; 3],
    pub client_id: &'a [u8],
    pub server_id: Option<&'a [u8]>,
    /// Hundredths of a second since the exchange began (RFC 8415 §21.9).
    pub elapsed_centis: u16,
    pub oro: &'a [u16],
    pub ias: OutgoingIas,
    pub iaid: u32,
    /// Rapid Commit option (RFC 8415 §21.14), Solicit only.
    pub rapid_commit: bool,
}

/// Encodes a client message. The lifetimes and T1/T2 the client sends are 0:
/// RFC 8415 §18.2 says the server ignores them and they mean "no preference".
pub fn encode(out: &Outgoing<'_>) -> Vec<u8> {
    let mut msg = Message::new_with_id(MessageType::from(out.msg_type), out.xid);
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::ClientId(out.client_id.to_vec()));
    if let Some(server_id) = out.server_id {
        opts.insert(DhcpOption::ServerId(server_id.to_vec()));
    }
    opts.insert(DhcpOption::ElapsedTime(out.elapsed_centis));
    if out.rapid_commit {
        opts.insert(DhcpOption::RapidCommit);
    }
    if !out.oro.is_empty() {
        opts.insert(DhcpOption::ORO(ORO {
            opts: out.oro.iter().map(|c| OptionCode::from(*c)).collect(),
        }));
    }
    if let Some(addrs) = &out.ias.ia_na {
        let mut ia_opts = DhcpOptions::new();
        for addr in addrs {
            ia_opts.insert(DhcpOption::IAAddr(IAAddr {
                addr: *addr,
                preferred_life: 0,
                valid_life: 0,
                opts: DhcpOptions::new(),
            }));
        }
        opts.insert(DhcpOption::IANA(IANA {
            id: out.iaid,
            t1: 0,
            t2: 0,
            opts: ia_opts,
        }));
    }
    if let Some(prefixes) = &out.ias.ia_pd {
        let mut ia_opts = DhcpOptions::new();
        for (prefix, len) in prefixes {
            ia_opts.insert(DhcpOption::IAPrefix(IAPrefix {
                preferred_lifetime: 0,
                valid_lifetime: 0,
                prefix_len: *len,
                prefix_ip: *prefix,
                opts: DhcpOptions::new(),
            }));
        }
        if prefixes.is_empty() && out.ias.prefix_hint > 0 {
            ia_opts.insert(DhcpOption::IAPrefix(IAPrefix {
                preferred_lifetime: 0,
                valid_lifetime: 0,
                prefix_len: out.ias.prefix_hint,
                prefix_ip: Ipv6Addr::UNSPECIFIED,
                opts: DhcpOptions::new(),
            }));
        }
        opts.insert(DhcpOption::IAPD(IAPD {
            id: out.iaid,
            t1: 0,
            t2: 0,
            opts: ia_opts,
        }));
    }
    let mut buf = Vec::with_capacity(128);
    // Encoding into a Vec only fails on values dhcproto cannot represent,
    // which the types above rule out.
    let _ = msg.encode(&mut Encoder::new(&mut buf));
    buf
}

/// Builds a server-side message; used by unit tests and the fuzz corpus to
/// fabricate Advertise/Reply messages without a server.
#[doc(hidden)]
pub fn build_server_message(msg_type: u8, xid: [u8; 3], options: Vec<DhcpOption>) -> Vec<u8> {
    let mut msg = v6::Message::new_with_id(MessageType::from(msg_type), xid);
    for opt in options {
        msg.opts_mut().insert(opt);
    }
    let mut buf = Vec::new();
    let _ = msg.encode(&mut Encoder::new(&mut buf));
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::v6::{Status, StatusCode, UnknownOption};

    fn aftr_option(name: &str) -> DhcpOption {
        DhcpOption::Unknown(UnknownOption::new(
            OptionCode::from(OPT_AFTR_NAME),
            encode_dns_name(name).unwrap(),
        ))
    }

    #[test]
    fn aftr_name_round_trips_and_is_lowercased() {
        let wire = encode_dns_name("AFTR.Example.NET.").unwrap();
        assert_eq!(decode_aftr_name(&wire).unwrap(), "aftr.example.net");
    }

    #[test]
    fn aftr_name_rejects_compression_pointer() {
        let wire = [4, b'a', b'f', b't', b'r', 0xc0, 0x0c];
        assert_eq!(decode_aftr_name(&wire), Err(AftrNameError::Compressed));
    }

    #[test]
    fn aftr_name_rejects_bad_framing_and_sizes() {
        assert_eq!(decode_aftr_name(&[]), Err(AftrNameError::Empty));
        assert_eq!(decode_aftr_name(&[0]), Err(AftrNameError::RootOnly));
        assert_eq!(
            decode_aftr_name(&[3, b'a', b'b', b'c']),
            Err(AftrNameError::BadFraming)
        );
        assert_eq!(
            decode_aftr_name(&[1, b'a', 0, 0]),
            Err(AftrNameError::BadFraming)
        );
        let mut long_label = vec![64];
        long_label.extend([b'a'; 64]);
        long_label.push(0);
        assert_eq!(
            decode_aftr_name(&long_label),
            Err(AftrNameError::LabelTooLong(64))
        );
        // A 300-byte name: five 59-octet labels.
        let mut huge = Vec::new();
        for _ in 0..5 {
            huge.push(59);
            huge.extend([b'x'; 59]);
        }
        huge.push(0);
        assert_eq!(huge.len(), 301);
        assert!(matches!(
            decode_aftr_name(&huge),
            Err(AftrNameError::TooLong(_))
        ));
        assert_eq!(
            decode_aftr_name(&[2, b'a', b' ', 0]),
            Err(AftrNameError::BadCharacter)
        );
    }

    #[test]
    fn parses_a_full_reply() {
        let bytes = build_server_message(
            MSG_REPLY,
            [1, 2, 3],
            vec![
                DhcpOption::ClientId(vec![0, 3, 0, 1, 1, 2, 3, 4, 5, 6]),
                DhcpOption::ServerId(vec![0, 2, 0, 0, 9, 0xbf, 1]),
                DhcpOption::IANA(IANA {
                    id: 1,
                    t1: 100,
                    t2: 160,
                    opts: {
                        let mut o = DhcpOptions::new();
                        o.insert(DhcpOption::IAAddr(IAAddr {
                            addr: "2001:db8::10".parse().unwrap(),
                            preferred_life: 200,
                            valid_life: 300,
                            opts: DhcpOptions::new(),
                        }));
                        o
                    },
                }),
                DhcpOption::IAPD(IAPD {
                    id: 1,
                    t1: 0,
                    t2: 0,
                    opts: {
                        let mut o = DhcpOptions::new();
                        o.insert(DhcpOption::IAPrefix(IAPrefix {
                            preferred_lifetime: 200,
                            valid_lifetime: 300,
                            prefix_len: 56,
                            prefix_ip: "2001:db8:100::".parse().unwrap(),
                            opts: DhcpOptions::new(),
                        }));
                        o
                    },
                }),
                DhcpOption::DomainNameServers(vec!["2001:db8::53".parse().unwrap()]),
                aftr_option("aftr.example.net"),
                DhcpOption::Unknown(UnknownOption::new(
                    OptionCode::from(OPT_SOL_MAX_RT),
                    120u32.to_be_bytes().to_vec(),
                )),
            ],
        );
        let r = parse(&bytes).unwrap();
        assert_eq!(r.msg_type, MSG_REPLY);
        assert_eq!(r.xid, [1, 2, 3]);
        assert_eq!(
            r.ia_na[0].leases[0].addr,
            "2001:db8::10".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(r.ia_na[0].t1, 100);
        assert_eq!(r.ia_pd[0].leases[0].len, 56);
        assert_eq!(r.dns_servers.as_ref().unwrap().len(), 1);
        assert_eq!(r.aftr_name, Some(Ok("aftr.example.net".to_string())));
        assert_eq!(r.sol_max_rt, Some(120));
        assert_eq!(r.status_code(), STATUS_SUCCESS);
    }

    fn raw_option(code: u16, body: &[u8]) -> Vec<u8> {
        let mut out = code.to_be_bytes().to_vec();
        out.extend((body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    /// Options the client does not read, however broken, never cut off the
    /// ones it does (dhcproto stops at the first it cannot decode, and
    /// misreads some): Kea writes options in code order, so a bad 12, 17
    /// or 56 came before IA_PD and option 64. A status text that is not
    /// UTF-8 costs only the text.
    #[test]
    fn options_the_client_does_not_read_never_hide_the_rest() {
        let mut prefix = Vec::new();
        prefix.extend(200u32.to_be_bytes());
        prefix.extend(300u32.to_be_bytes());
        prefix.push(56);
        prefix.extend("2001:db8:100::".parse::<Ipv6Addr>().unwrap().octets());
        prefix.extend(raw_option(OPT_STATUS_CODE, &[0, 0, 0xe9]));
        let mut ia_pd = [0, 0, 0, 1].to_vec();
        ia_pd.extend(0u32.to_be_bytes());
        ia_pd.extend(0u32.to_be_bytes());
        ia_pd.extend(raw_option(99, &[1, 2, 3]));
        ia_pd.extend(raw_option(OPT_IAPREFIX, &prefix));
        ia_pd.extend(raw_option(OPT_STATUS_CODE, &[0, 0, b'o', 0xe9]));
        let mut bytes = vec![MSG_REPLY, 1, 2, 3];
        for (code, body) in [
            (OPT_CLIENT_ID, &[0, 3, 0, 1, 1, 2, 3, 4, 5, 6][..]),
            (OPT_SERVER_ID, &[0, 2, 0, 0, 9, 0xbf, 1]),
            // Server Unicast of 4 bytes, Vendor-specific of 2, an NTP
            // sub-option dhcproto does not know, Reconfigure Accept with a body.
            (12, &[1, 2, 3, 4]),
            (17, &[0, 0]),
            (56, &[0, 4, 0, 0]),
            (20, &[1, 2, 3]),
            (OPT_IA_PD, &ia_pd),
            (
                OPT_DNS_SERVERS,
                &"2001:db8::53".parse::<Ipv6Addr>().unwrap().octets(),
            ),
            (OPT_AFTR_NAME, &encode_dns_name("aftr.example.net").unwrap()),
        ] {
            bytes.extend(raw_option(code, body));
        }
        let r = parse(&bytes).unwrap();
        assert_eq!(r.ia_pd.len(), 1);
        assert_eq!(r.ia_pd[0].leases.len(), 1);
        assert_eq!(r.ia_pd[0].leases[0].len, 56);
        assert_eq!(r.ia_pd[0].status, Some(STATUS_SUCCESS));
        assert_eq!(r.dns_servers.as_ref().map(Vec::len), Some(1));
        assert_eq!(r.aftr_name, Some(Ok("aftr.example.net".to_string())));
        // A Rapid Commit with a body is malformed, not a loss of framing.
        let mut rapid = bytes[..4].to_vec();
        rapid.extend(raw_option(OPT_RAPID_COMMIT, &[0]));
        assert!(parse(&rapid).is_err());
    }

    #[test]
    fn ia_level_status_is_reported() {
        let mut ia_opts = DhcpOptions::new();
        ia_opts.insert(DhcpOption::StatusCode(StatusCode {
            status: Status::NoAddrsAvail,
            msg: "none left".into(),
        }));
        let bytes = build_server_message(
            MSG_ADVERTISE,
            [0, 0, 1],
            vec![DhcpOption::IANA(IANA {
                id: 1,
                t1: 0,
                t2: 0,
                opts: ia_opts,
            })],
        );
        let r = parse(&bytes).unwrap();
        assert_eq!(r.ia_na[0].status, Some(STATUS_NO_ADDRS_AVAIL));
        assert!(r.ia_na[0].leases.is_empty());
    }

    #[test]
    fn truncated_ia_is_an_error_not_silently_dropped() {
        let mut bytes = build_server_message(
            MSG_REPLY,
            [0, 0, 1],
            vec![DhcpOption::IANA(IANA {
                id: 1,
                t1: 1,
                t2: 2,
                opts: DhcpOptions::new(),
            })],
        );
        bytes.truncate(bytes.len() - 3);
        assert_eq!(
            parse(&bytes),
            Err(WireError::Truncated { option: OPT_IA_NA })
        );
        assert_eq!(parse(&[7, 0]), Err(WireError::TooShort));
    }

    #[test]
    fn bad_lengths_are_rejected_or_left_out() {
        // A Server ID of 2 bytes: the message is unusable.
        let bytes = [MSG_REPLY, 0, 0, 1, 0, 2, 0, 2, 0, 3];
        assert_eq!(
            parse(&bytes),
            Err(WireError::BadLength {
                option: OPT_SERVER_ID,
                len: 2
            })
        );
        // A DNS servers option of 15 bytes, between two good options: left
        // out, the rest parsed.
        let mut bytes = vec![MSG_REPLY, 0, 0, 1, 0, 7, 0, 1, 9, 0, 23, 0, 15];
        bytes.extend([0u8; 15]);
        bytes.extend([0, 82, 0, 4, 0, 0, 0, 90]);
        let received = parse(&bytes).unwrap();
        assert_eq!(
            received.ignored,
            [WireError::BadLength {
                option: OPT_DNS_SERVERS,
                len: 15
            }]
        );
        assert!(received.ignored_option(OPT_DNS_SERVERS));
        assert_eq!(
            (
                received.preference,
                received.dns_servers,
                received.sol_max_rt
            ),
            (9, None, Some(90))
        );
    }

    #[test]
    fn encodes_solicit_with_oro_and_hint() {
        let out = Outgoing {
            msg_type: MSG_SOLICIT,
            xid: [9, 8, 7],
            client_id: &[0, 3, 0, 1, 2, 0, 0, 0, 0, 1],
            server_id: None,
            elapsed_centis: 0,
            oro: &[23, 24, 64, 82],
            ias: OutgoingIas {
                ia_na: Some(vec![]),
                ia_pd: Some(vec![]),
                prefix_hint: 56,
            },
            iaid: 1,
            rapid_commit: true,
        };
        let bytes = encode(&out);
        let msg = Message::from_bytes(&bytes).unwrap();
        assert!(matches!(
            msg.opts().get(OptionCode::RapidCommit),
            Some(DhcpOption::RapidCommit)
        ));
        let msg = Message::from_bytes(&bytes).unwrap();
        assert_eq!(u8::from(msg.msg_type()), MSG_SOLICIT);
        match msg.opts().get(OptionCode::ORO) {
            Some(DhcpOption::ORO(oro)) => {
                let codes: Vec<u16> = oro.opts.iter().map(|c| u16::from(*c)).collect();
                assert_eq!(codes, vec![23, 24, 64, 82]);
            }
            other => panic!("no ORO: {other:?}"),
        }
        match msg.opts().get(OptionCode::IAPD) {
            Some(DhcpOption::IAPD(pd)) => match pd.opts.get(OptionCode::IAPrefix) {
                Some(DhcpOption::IAPrefix(p)) => assert_eq!(p.prefix_len, 56),
                other => panic!("no hint: {other:?}"),
            },
            other => panic!("no IA_PD: {other:?}"),
        }
    }
}
