//! Configuration errors: where (file, line, section, option) and why.

use std::fmt;
use std::net::Ipv4Addr;

use super::uci;
use super::TunnelSource;

/// One problem in the configuration file.
///
/// Display: `/etc/config/b4d:12: option 'prefix_hint' in section 'wan': must be an integer
/// 0..=128, got 'abc'`. Sections without a name are shown as UCI shows them, `@host[2]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// `None` for problems with the file as a whole (cannot be read).
    pub line: Option<usize>,
    pub section: Option<String>,
    pub option: Option<String>,
    pub reason: Reason,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        match (&self.option, &self.section) {
            (Some(o), Some(s)) => write!(f, "option '{o}' in section '{s}': ")?,
            (Some(o), None) => write!(f, "option '{o}': ")?,
            (None, Some(s)) => write!(f, "section '{s}': ")?,
            (None, None) => {}
        }
        write!(f, "{}", self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one file, in file order. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// One error per line, ready for stderr or syslog.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Why a configuration is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The file could not be read (the I/O error's text).
    Io(String),
    /// The file is not UTF-8; the line holds the first bad byte.
    NotUtf8,
    /// UCI syntax error.
    Syntax(uci::Reason),
    UnknownSectionType {
        got: String,
        known: &'static [&'static str],
    },
    UnknownOption {
        known: &'static [&'static str],
    },
    /// A second section of a type that may appear only once.
    DuplicateSection {
        first_line: usize,
    },
    /// Two sections with the same name; libuci would silently merge them.
    DuplicateSectionName {
        first_line: usize,
    },
    /// The same single-valued option set twice; libuci would silently keep the last.
    DuplicateOption {
        first_line: usize,
    },
    /// A list option given both with `option` and `list`; libuci's result depends on order.
    MixedOptionAndList {
        first_line: usize,
    },
    /// `list` used for an option that takes one value.
    NotAList,
    Required,
    /// The value does not parse as the option's type.
    Invalid {
        expected: &'static str,
        got: String,
        detail: Option<String>,
    },
    /// The value parses but is a kind that cannot work here.
    NotAllowed {
        what: &'static str,
        got: String,
    },
    /// `dhcpv6 'off'` without `aftr`: nothing would supply the AFTR.
    AftrRequired,
    /// `dhcpv6 'stateful'` with both `request_address` and `request_prefix` off.
    NothingToRequest,
    /// The tunnel source needs a WAN address that the DHCPv6 settings never obtain.
    SourceUnavailable {
        source: TunnelSource,
        needs: &'static str,
    },
    /// The tunnel's two ends are the same address.
    SameAsPeer {
        peer: Ipv4Addr,
    },
    NotInSubnet {
        subnet: String,
        got: Ipv4Addr,
    },
    NetworkOrBroadcast {
        subnet: String,
        got: Ipv4Addr,
    },
    /// `netmask` without `ipaddr`: a followed LAN address has its own prefix.
    NetmaskWithoutIpaddr,
    /// A static lease on the router's own LAN address.
    RouterAddress {
        got: Ipv4Addr,
    },
    /// The DHCP pool starts at the broadcast address or past the subnet.
    PoolOutsideSubnet {
        subnet: String,
        start: u32,
        max_offset: u64,
    },
    /// Two `host` sections with the same MAC or IP.
    DuplicateHost {
        field: &'static str,
        value: String,
        first_line: usize,
    },
    /// The same Linux interface configured for two roles.
    InterfaceClash {
        name: String,
        other: &'static str,
    },
    /// The same state file configured for two writers, which would each
    /// overwrite the other's and refuse the mix at the next start.
    FileClash {
        path: String,
        other: &'static str,
    },
}

fn got(s: &str) -> impl fmt::Display + '_ {
    s.escape_debug()
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Io(e) => write!(f, "cannot read: {e}"),
            Reason::NotUtf8 => f.write_str("not valid UTF-8"),
            Reason::Syntax(r) => write!(f, "{r}"),
            Reason::UnknownSectionType { got: t, known } => write!(
                f,
                "unknown section type '{}' (known: {})",
                got(t),
                known.join(", ")
            ),
            Reason::UnknownOption { known } => {
                write!(f, "unknown option (known: {})", known.join(", "))
            }
            Reason::DuplicateSection { first_line } => write!(
                f,
                "this section may appear only once (first at line {first_line})"
            ),
            Reason::DuplicateSectionName { first_line } => write!(
                f,
                "section name already used at line {first_line}"
            ),
            Reason::DuplicateOption { first_line } => {
                write!(f, "set more than once (first at line {first_line})")
            }
            Reason::MixedOptionAndList { first_line } => write!(
                f,
                "given both as 'option' and as 'list' (other at line {first_line}); use 'list' lines only"
            ),
            Reason::NotAList => f.write_str("takes a single value; use 'option', not 'list'"),
            Reason::Required => f.write_str("is required"),
            Reason::Invalid {
                expected,
                got: g,
                detail,
            } => {
                write!(f, "must be {expected}, got '{}'", got(g))?;
                if let Some(d) = detail {
                    write!(f, " ({d})")?;
                }
                Ok(())
            }
            Reason::NotAllowed { what, got: g } => {
                write!(f, "must not be {what}, got '{}'", got(g))
            }
            Reason::AftrRequired => f.write_str(
                "must be set when dhcpv6 is 'off': nothing else can supply the AFTR (RFC 6334)",
            ),
            Reason::NothingToRequest => f.write_str(
                "'stateful' needs request_address or request_prefix enabled; use 'stateless' to request neither",
            ),
            Reason::SourceUnavailable { source, needs } => {
                write!(f, "'{source}' needs {needs}")
            }
            Reason::SameAsPeer { peer } => {
                write!(f, "must differ from the tunnel peer {peer}")
            }
            Reason::NotInSubnet { subnet, got } => {
                write!(f, "must be inside the LAN subnet {subnet}, got '{got}'")
            }
            Reason::NetworkOrBroadcast { subnet, got } => write!(
                f,
                "must not be the network or broadcast address of {subnet}, got '{got}'"
            ),
            Reason::NetmaskWithoutIpaddr => f.write_str(
                "needs lan.ipaddr: without it b4d follows the LAN device's address, with \
                 the device's own prefix (unset netmask, or set ipaddr too)",
            ),
            Reason::RouterAddress { got } => write!(
                f,
                "must differ from the router's own LAN address (lan.ipaddr), got '{got}'"
            ),
            Reason::PoolOutsideSubnet {
                subnet,
                start,
                max_offset,
            } => write!(
                f,
                "DHCP pool start {start} is not inside {subnet}: \
                 the highest usable offset is {max_offset}"
            ),
            Reason::DuplicateHost {
                field,
                value,
                first_line,
            } => write!(
                f,
                "{field} '{value}' is already used by the host at line {first_line}"
            ),
            Reason::InterfaceClash { name, other } => {
                write!(f, "interface '{name}' is already used as {other}")
            }
            Reason::FileClash { path, other } => {
                write!(f, "file '{path}' is already used as {other}")
            }
        }
    }
}
