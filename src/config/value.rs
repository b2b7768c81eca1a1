//! Parsers for single option values: total functions from `&str` to a typed value or a
//! [`Reason`] that says what was expected.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::{AftrOverride, Reason};

fn invalid(expected: &'static str, got: &str) -> Reason {
    Reason::Invalid {
        expected,
        got: got.to_string(),
        detail: None,
    }
}

fn invalid_because(expected: &'static str, got: &str, detail: String) -> Reason {
    Reason::Invalid {
        expected,
        got: got.to_string(),
        detail: Some(detail),
    }
}

const BOOL: &str = "a boolean (1/0, yes/no, on/off, true/false, enabled/disabled)";

/// The boolean spellings OpenWrt's `config_get_bool` accepts (case-insensitively here).
pub(super) fn parse_bool(s: &str) -> Result<bool, Reason> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "yes" | "on" | "true" | "enabled" => Ok(true),
        "0" | "no" | "off" | "false" | "disabled" => Ok(false),
        _ => Err(invalid(BOOL, s)),
    }
}

pub(super) fn render_bool(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

/// Unsigned decimal without sign or spaces (`str::parse` would also accept `+5`).
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An integer in `min..=max`; `expected` spells out the range for the message.
pub(super) fn parse_uint(
    s: &str,
    min: u64,
    max: u64,
    expected: &'static str,
) -> Result<u64, Reason> {
    match digits(s) {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(expected, s)),
    }
}

/// Seconds, optionally with a unit suffix s/m/h/d/w as dnsmasq's lease time ("12h").
pub(super) fn parse_duration(
    s: &str,
    min: u64,
    max: u64,
    expected: &'static str,
) -> Result<Duration, Reason> {
    let (number, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c.to_ascii_lowercase()),
        _ => (s, 's'),
    };
    let factor: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return Err(invalid(expected, s)),
    };
    match digits(number).and_then(|n| n.checked_mul(factor)) {
        Some(secs) if (min..=max).contains(&secs) => Ok(Duration::from_secs(secs)),
        _ => Err(invalid(expected, s)),
    }
}

/// The largest unit that divides exactly, so 43200 s renders as "12h".
pub(super) fn render_duration(d: Duration) -> String {
    let secs = d.as_secs();
    for (unit, factor) in [('w', 604_800), ('d', 86_400), ('h', 3600), ('m', 60)] {
        if secs != 0 && secs % factor == 0 {
            return format!("{}{unit}", secs / factor);
        }
    }
    secs.to_string()
}

/// A Linux network interface name, valid as the kernel's `dev_valid_name()` sees it:
/// 1..=15 bytes (IFNAMSIZ 16 with the NUL), not `.` or `..`, no `/`, `:` or whitespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InterfaceName(String);

impl InterfaceName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For the built-in defaults only; they are checked by a unit test.
    pub(super) fn from_static(s: &'static str) -> Self {
        InterfaceName(s.to_string())
    }
}

impl FromStr for InterfaceName {
    type Err = Reason;
    fn from_str(s: &str) -> Result<Self, Reason> {
        // Stricter than the kernel (which takes anything but '/', ':' and
        // whitespace): the names also go into nftables rules and UCI
        // batches, where a quote, '#' or '*' would change their meaning.
        // Every OpenWrt device name (br-lan, eth0.7, pppoe-wan, phy0-ap0)
        // fits.
        const EXPECTED: &str =
            "a Linux interface name (1..=15 characters: letters, digits, '.', '-', '_')";
        let ok = !s.is_empty()
            && s.len() <= 15
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if ok {
            Ok(InterfaceName(s.to_string()))
        } else {
            Err(invalid(EXPECTED, s))
        }
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for InterfaceName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// An absolute path. NUL cannot be passed to the kernel, so it is rejected here rather
/// than failing later at open().
pub(super) fn parse_abs_path(s: &str) -> Result<PathBuf, Reason> {
    if s.starts_with('/') && !s.contains('\0') {
        Ok(PathBuf::from(s))
    } else {
        Err(invalid("an absolute path", s))
    }
}

/// An absolute path naming a file (not ending in '/').
pub(super) fn parse_abs_file(s: &str) -> Result<PathBuf, Reason> {
    if s.starts_with('/') && !s.ends_with('/') && !s.contains('\0') {
        Ok(PathBuf::from(s))
    } else {
        Err(invalid("an absolute file path", s))
    }
}

/// Checks letters-digits-hyphen labels (RFC 1123 §2.1): each 1..=63, no leading or
/// trailing hyphen, total at most 253 characters without the optional trailing dot.
/// Returns why not, for the message.
fn check_dns_name(s: &str, min_labels: usize) -> Result<(), String> {
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name.len() > 253 {
        return Err(format!("{} characters, at most 253 allowed", name.len()));
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err("empty label".into());
        }
        if label.len() > 63 {
            return Err(format!(
                "label of {} characters, at most 63 allowed",
                label.len()
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!("character '{}' not allowed", c.escape_debug()));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label '{label}' starts or ends with a hyphen"));
        }
    }
    if labels.len() < min_labels {
        return Err(format!("needs at least {min_labels} labels"));
    }
    // An all-numeric top label would make "192.0.2.1" a name (RFC 3696 §2).
    if labels.len() > 1
        && labels
            .last()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("the last label is all digits, which looks like an IPv4 address".into());
    }
    Ok(())
}

/// The LAN DNS domain: one or more labels.
pub(super) fn parse_domain(s: &str) -> Result<String, Reason> {
    check_dns_name(s, 1).map(|()| s.to_string()).map_err(|why| {
        invalid_because(
            "a DNS domain (letters, digits, hyphens; dot-separated)",
            s,
            why,
        )
    })
}

/// A host name: one DNS label.
pub(super) fn parse_hostname(s: &str) -> Result<String, Reason> {
    const EXPECTED: &str =
        "a host name (one label of letters, digits and hyphens, 1..=63 characters)";
    if s.contains('.') {
        return Err(invalid(EXPECTED, s));
    }
    check_dns_name(s, 1)
        .map(|()| s.to_string())
        .map_err(|why| invalid_because(EXPECTED, s, why))
}

/// Why an IPv6 address cannot be an AFTR (a tunnel endpoint reachable across the WAN).
fn unusable_aftr(a: &Ipv6Addr) -> Option<&'static str> {
    let s = a.segments();
    if a.is_unspecified() {
        Some("the unspecified address ::")
    } else if a.is_loopback() {
        Some("the loopback address ::1")
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some("a link-local address (fe80::/10)")
    } else if a.is_multicast() {
        Some("a multicast address (ff00::/8)")
    } else if a.to_ipv4_mapped().is_some() {
        Some("an IPv4-mapped address (::ffff:0:0/96)")
    } else {
        None
    }
}

/// `aftr`: an IPv6 literal or an FQDN. Anything with a ':' is taken as a literal, since
/// ':' cannot appear in a host name.
pub(super) fn parse_aftr(s: &str) -> Result<AftrOverride, Reason> {
    const EXPECTED: &str = "an IPv6 address or a fully qualified domain name";
    if s.contains(':') {
        let addr: Ipv6Addr = s.parse().map_err(|_| invalid(EXPECTED, s))?;
        if let Some(what) = unusable_aftr(&addr) {
            return Err(Reason::NotAllowed {
                what,
                got: s.to_string(),
            });
        }
        return Ok(AftrOverride::Address(addr));
    }
    if s.parse::<Ipv4Addr>().is_ok() {
        return Err(Reason::NotAllowed {
            what: "an IPv4 address (the DS-Lite tunnel runs over IPv6)",
            got: s.to_string(),
        });
    }
    check_dns_name(s, 2)
        .map(|()| AftrOverride::Name(s.to_string()))
        .map_err(|why| invalid_because(EXPECTED, s, why))
}

/// A static DNS upstream. Loopback is fine (a local resolver); :: and multicast are not.
pub(super) fn parse_dns_server(s: &str) -> Result<Ipv6Addr, Reason> {
    let addr: Ipv6Addr = s.parse().map_err(|_| invalid("an IPv6 address", s))?;
    if addr.is_unspecified() || addr.is_multicast() {
        return Err(Reason::NotAllowed {
            what: "the unspecified or a multicast address",
            got: s.to_string(),
        });
    }
    Ok(addr)
}

pub(super) fn parse_ipv4(s: &str) -> Result<Ipv4Addr, Reason> {
    s.parse().map_err(|_| invalid("an IPv4 address", s))
}

/// A unicast IPv4 address usable on an interface.
pub(super) fn parse_unicast_ipv4(s: &str) -> Result<Ipv4Addr, Reason> {
    let a = parse_ipv4(s)?;
    let o = a.octets();
    if o[0] == 0 || a.is_loopback() || o[0] >= 224 {
        return Err(Reason::NotAllowed {
            what: "a zero-network, loopback, multicast or reserved (240/4) address",
            got: s.to_string(),
        });
    }
    Ok(a)
}

/// A dotted netmask whose one-bits are contiguous (255.255.255.0, not 255.0.255.0).
pub(super) fn parse_netmask(s: &str) -> Result<Ipv4Addr, Reason> {
    const EXPECTED: &str = "a contiguous dotted netmask such as 255.255.255.0";
    let mask: Ipv4Addr = s.parse().map_err(|_| invalid(EXPECTED, s))?;
    let bits = u32::from(mask);
    if bits.leading_ones() + bits.trailing_zeros() != 32 {
        return Err(invalid(EXPECTED, s));
    }
    Ok(mask)
}

/// A MAC address as `xx:xx:xx:xx:xx:xx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl FromStr for MacAddr {
    type Err = Reason;
    fn from_str(s: &str) -> Result<Self, Reason> {
        const EXPECTED: &str = "a MAC address xx:xx:xx:xx:xx:xx";
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 6 {
            return Err(invalid(EXPECTED, s));
        }
        let mut mac = [0u8; 6];
        for (byte, part) in mac.iter_mut().zip(&parts) {
            *byte = hex_byte(part).ok_or_else(|| invalid(EXPECTED, s))?;
        }
        // A DHCP client's chaddr is its unicast address; the group bit or all zeros means
        // a typo, and such a lease could never be handed out.
        if mac[0] & 1 == 1 {
            return Err(Reason::NotAllowed {
                what: "a multicast MAC address (lowest bit of the first octet set)",
                got: s.to_string(),
            });
        }
        if mac == [0; 6] {
            return Err(Reason::NotAllowed {
                what: "the all-zero MAC address",
                got: s.to_string(),
            });
        }
        Ok(MacAddr(mac))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

/// Exactly two hex digits.
fn hex_byte(s: &str) -> Option<u8> {
    if s.len() == 2 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        u8::from_str_radix(s, 16).ok()
    } else {
        None
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            f.write_str(":")?;
        }
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

/// A DHCPv6 DUID: 2-octet type plus 1..=128 octets of identifier (RFC 8415 §11.1).
/// The content is opaque (§11: "clients and servers MUST treat DUIDs as opaque").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Duid(Vec<u8>);

impl Duid {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 130;

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The DUID type code (the first two octets).
    pub fn duid_type(&self) -> u16 {
        u16::from_be_bytes([self.0[0], self.0[1]])
    }
}

impl FromStr for Duid {
    type Err = Reason;
    /// Hex, either colon-separated octets (`00:03:00:01:...`) or one run of digits
    /// (`00030001...`, as odhcp6c's `-c` takes it).
    fn from_str(s: &str) -> Result<Self, Reason> {
        const EXPECTED: &str =
            "a hex DUID of 3..=130 octets (RFC 8415 §11.1), e.g. 00:03:00:01:02:00:5e:00:53:01";
        let bytes = hex_octets(s).ok_or_else(|| invalid(EXPECTED, s))?;
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&bytes.len()) {
            return Err(invalid_because(
                EXPECTED,
                s,
                format!("{} octets", bytes.len()),
            ));
        }
        Ok(Duid(bytes))
    }
}

impl fmt::Display for Duid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

/// Hex octets, either colon-separated (`00:03:...`) or one run of digits.
fn hex_octets(s: &str) -> Option<Vec<u8>> {
    if s.contains(':') {
        s.split(':').map(hex_byte).collect()
    } else if s.len() % 2 == 0 && s.is_ascii() {
        (0..s.len())
            .step_by(2)
            .map(|i| hex_byte(&s[i..i + 2]))
            .collect()
    } else {
        None
    }
}

/// A DHCPv4 client identifier (option 61, RFC 2132 §9.14): type octet plus
/// at least one octet, as the client sends it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(Vec<u8>);

impl ClientId {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl FromStr for ClientId {
    type Err = Reason;
    fn from_str(s: &str) -> Result<Self, Reason> {
        const EXPECTED: &str =
            "a hex client identifier of 2..=255 octets (RFC 2132 §9.14), e.g. 01:02:00:00:00:00:01";
        let bytes = hex_octets(s).ok_or_else(|| invalid(EXPECTED, s))?;
        if !(2..=255).contains(&bytes.len()) {
            return Err(invalid_because(
                EXPECTED,
                s,
                format!("{} octets", bytes.len()),
            ));
        }
        Ok(ClientId(bytes))
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_in_every_uci_spelling() {
        for t in ["1", "yes", "on", "true", "enabled", "TRUE", "Yes"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["0", "no", "off", "false", "disabled"] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        assert!(parse_bool("2").is_err());
        assert!(parse_bool("").is_err());
    }

    #[test]
    fn integers_are_plain_decimal() {
        assert_eq!(parse_uint("056", 0, 128, "x"), Ok(56));
        for bad in [
            "+5",
            "-1",
            " 5",
            "5 ",
            "0x10",
            "129",
            "99999999999999999999999",
        ] {
            assert!(parse_uint(bad, 0, 128, "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_with_suffixes() {
        let p = |s| parse_duration(s, 0, u64::MAX, "x").map(|d| d.as_secs());
        assert_eq!(p("90"), Ok(90));
        assert_eq!(p("90s"), Ok(90));
        assert_eq!(p("2m"), Ok(120));
        assert_eq!(p("12h"), Ok(43_200));
        assert_eq!(p("12H"), Ok(43_200));
        assert_eq!(p("1d"), Ok(86_400));
        assert_eq!(p("2w"), Ok(1_209_600));
        for bad in [
            "",
            "h",
            "1x",
            "1.5h",
            "-1",
            "1 h",
            "99999999999999999999w",
            "é",
        ] {
            assert!(p(bad).is_err(), "{bad}");
        }
        assert!(parse_duration("59", 60, 86_400, "x").is_err());
    }

    #[test]
    fn duration_rendering_round_trips() {
        for secs in [
            1u64, 59, 60, 120, 3600, 3601, 43_200, 86_400, 604_800, 1_000_000,
        ] {
            let r = render_duration(Duration::from_secs(secs));
            assert_eq!(
                parse_duration(&r, 0, u64::MAX, "x"),
                Ok(Duration::from_secs(secs)),
                "{r}"
            );
        }
        assert_eq!(render_duration(Duration::from_secs(43_200)), "12h");
    }

    #[test]
    fn interface_names_follow_the_kernel() {
        for good in ["wan", "eth0.2", "br-lan", "ds-b4", "a23456789012345"] {
            assert!(good.parse::<InterfaceName>().is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
            "a234567890123456",
        ] {
            assert!(bad.parse::<InterfaceName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn aftr_literals_and_names() {
        assert_eq!(
            parse_aftr("2001:db8::1"),
            Ok(AftrOverride::Address("2001:db8::1".parse().unwrap()))
        );
        assert_eq!(
            parse_aftr("aftr.example.net."),
            Ok(AftrOverride::Name("aftr.example.net.".into()))
        );
        for bad in [
            "::",
            "::1",
            "fe80::1",
            "febf::1",
            "ff02::2",
            "::ffff:192.0.2.1",
            "2001:db8::g",
        ] {
            assert!(parse_aftr(bad).is_err(), "{bad}");
        }
        let long_label = format!("{}.net", "a".repeat(64));
        // 253 characters is the most a name may have; one more label is too many.
        let longest = format!("{}net", "abcdefghi.".repeat(25));
        assert_eq!(longest.len(), 253);
        assert!(parse_aftr(&longest).is_ok());
        let long_name = format!("{}net", "abcdefghi.".repeat(26));
        for bad in [
            "aftr",
            "-a.net",
            "a-.net",
            "a..net",
            "a_b.net",
            "192.0.2.1",
            "a.123",
            ".",
            "",
            &long_label,
            &long_name,
        ] {
            assert!(parse_aftr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn netmasks_must_be_contiguous() {
        assert!(parse_netmask("255.255.255.0").is_ok());
        assert!(parse_netmask("255.255.255.255").is_ok());
        assert!(parse_netmask("0.0.0.0").is_ok());
        assert!(parse_netmask("255.0.255.0").is_err());
        assert!(parse_netmask("255.255.255.1").is_err());
        assert!(parse_netmask("24").is_err());
    }

    #[test]
    fn mac_addresses() {
        assert_eq!(
            "00:1A:2b:3c:4d:5e"
                .parse::<MacAddr>()
                .map(|m| m.to_string()),
            Ok("00:1a:2b:3c:4d:5e".to_string())
        );
        for bad in [
            "00:11:22:33:44",
            "00-11-22-33-44-55",
            "0:11:22:33:44:55",
            "01:00:5e:00:00:01",
            "00:00:00:00:00:00",
            "00:11:22:33:44:5g",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn duids() {
        let d: Duid = "00:03:00:01:02:00:5e:00:53:01".parse().unwrap();
        assert_eq!(d.duid_type(), 3);
        assert_eq!(d.as_bytes().len(), 10);
        assert_eq!(
            "00030001".parse::<Duid>().map(|d| d.to_string()),
            Ok("00:03:00:01".into())
        );
        assert!("000301".parse::<Duid>().is_ok());
        assert!("0003".parse::<Duid>().is_err());
        assert!("00:03:0".parse::<Duid>().is_err());
        assert!("0003000".parse::<Duid>().is_err());
        assert!("é0".parse::<Duid>().is_err());
        assert!("ab".repeat(130).parse::<Duid>().is_ok());
        assert!("ab".repeat(131).parse::<Duid>().is_err());
    }

    #[test]
    fn domains_and_hostnames() {
        assert!(parse_domain("lan").is_ok());
        assert!(parse_domain("home.arpa").is_ok());
        assert!(parse_domain("-lan").is_err());
        assert!(parse_hostname("printer-1").is_ok());
        assert!(parse_hostname("printer.lan").is_err());
        assert!(parse_hostname("").is_err());
    }
}
