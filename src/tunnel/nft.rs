//! TCP MSS clamping on the tunnel, both directions, in b4d's own nftables
//! table `inet b4`: firewall4 flushes only its own `inet fw4` table, so a
//! firewall reload leaves ours alone. Loaded with `nft -f -` in one
//! transaction that first removes any earlier version of the table, so a
//! restart (even after kill -9) converges without duplicate rules.
//!
//! The clamp is an explicit value (tunnel MTU - 40) rather than `rt mtu`:
//! `rt mtu` follows cached path-MTU state (unreliable on a tunnel whose
//! MTU equals the WAN's), and for SYNs coming *in* from the tunnel it would
//! use the LAN route's MTU, which does not protect the tunnel at all.
//! Only larger MSS values are lowered, never smaller ones raised.

use std::io::{self, Write};
use std::process::{Command, Stdio};

pub const TABLE: &str = "b4";

/// Which `nft` binary to run; tests and odd installs may set `B4D_NFT`.
fn nft_binary() -> String {
    std::env::var("B4D_NFT").unwrap_or_else(|_| "nft".into())
}

/// The ruleset text for `tunnel` (an interface name validated by the config).
pub fn ruleset(tunnel: &str, mss: u32) -> String {
    // `table` + `delete table` makes the load idempotent: the first line
    // creates the table if it is missing so that the delete never fails.
    format!(
        "table inet {TABLE}\n\
         delete table inet {TABLE}\n\
         table inet {TABLE} {{\n\
         \tchain mss_clamp {{\n\
         \t\ttype filter hook forward priority mangle; policy accept;\n\
         \t\toifname \"{tunnel}\" tcp flags syn tcp option maxseg size > {mss} tcp option maxseg size set {mss}\n\
         \t\tiifname \"{tunnel}\" tcp flags syn tcp option maxseg size > {mss} tcp option maxseg size set {mss}\n\
         \t}}\n\
         }}\n"
    )
}

fn run_nft(script: &str) -> io::Result<()> {
    let nft = nft_binary();
    let mut child = Command::new(&nft)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {nft}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{nft} -f - failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Loads (or replaces) the clamping table for `tunnel`.
pub fn load(tunnel: &str, mss: u32) -> io::Result<()> {
    run_nft(&ruleset(tunnel, mss))
}

/// Removes the table; a missing table is not an error.
pub fn remove() -> io::Result<()> {
    run_nft(&format!("table inet {TABLE}\ndelete table inet {TABLE}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_clamps_both_directions_of_the_tunnel() {
        let text = ruleset("ds-b4", 1420);
        assert!(text.starts_with("table inet b4\ndelete table inet b4\n"));
        assert!(text.contains("type filter hook forward priority mangle;"));
        for dir in ["oifname", "iifname"] {
            let rule = format!("{dir} \"ds-b4\" tcp flags syn tcp option maxseg size > 1420 tcp option maxseg size set 1420");
            assert!(text.contains(&rule), "{text}");
        }
    }
}
