//! The LuCI page of luci-app-b4d (`files/www/luci-static/resources/view/b4d/status.js`)
//! rendered by headless Chromium.
//!
//! The page is served with a small stand-in for the LuCI runtime
//! (`tests/luci/luci-shim.js`, the API surface the view uses) by
//! `tests/luci/rpc_server.py`, which also answers ubus JSON-RPC as
//! uhttpd/rpcd would, enforcing the package's rpcd ACL. The answers are b4d's
//! own: the real binary is started against the ubusd stand-in
//! (`support::ubusd_replay`), its `status`, `leases`, `renew` and `check`
//! replies are taken off the ubus socket and turned into rpcd's
//! `[status, data]` results. Other pages show a tunnel that is up and a
//! change of state picked up by the poll, their status produced by b4d's
//! status serialiser from a status model (the host kernel here has no
//! ip6tnl, so a real tunnel cannot come up), and b4d missing from the bus.
//!
//! Chromium prints the DOM once the page has settled (`--dump-dom`, with a
//! virtual time budget so the RPC round trips finish), the test reads the
//! rendered text, and a screenshot of each page is saved as
//! `target/test-output/luci_page/<test>/page.png`.

mod support;

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use b4d::ubus::wire::Table;
use serde_json::{json, Value as Json};
use support::ubus_peer;
use support::ubusd_replay::UbusdReplay;
use support::{find_in_path, secs, Netns, Process, Signal, TestDir};

/// Chromium and python3 must be there, and root where b4d runs in a network
/// namespace; as with the other integration tests, CI never skips.
fn require_browser(needs_root: bool) -> Option<PathBuf> {
    let chromium = find_in_path("chromium");
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    match (&chromium, find_in_path("python3")) {
        (Some(_), Some(_)) if root || !needs_root => chromium,
        _ => {
            let msg = "luci_page needs chromium, python3 (and root for the real b4d); \
                       run scripts/install-test-deps.sh";
            assert!(std::env::var_os("CI").is_none(), "{msg} (CI is set)");
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "SKIP: {msg}");
            None
        }
    }
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

// ---------------------------------------------------------------------------
// b4d's real answers, taken off the ubus socket.

/// b4d with DHCPv6 off and a manual AFTR, publishing `b4` on the socket in `dir`.
fn start_b4d(dir: &TestDir, ns: &Netns) -> Process {
    let config = dir.write(
        "b4d.uci",
        format!(
            "config globals 'globals'\n\toption state_dir '{}'\n\toption ubus '1'\n\
             \toption ubus_socket '{}'\n\
             config wan 'wan'\n\toption device 'wan'\n\toption dhcpv6 'off'\n\
             \toption aftr '2001:db8:af::1'\n\
             config lan 'lan'\n\toption dns_proxy '0'\n\toption dhcp '0'\n",
            dir.path().display(),
            dir.file("ubus.sock").display()
        ),
    );
    let mut cmd = ns.command(env!("CARGO_BIN_EXE_b4d"));
    cmd.args(["run", "--foreground", "--config"]).arg(&config);
    Process::spawn(dir, "b4d", cmd)
}

/// Calls `method` as rpcd does for LuCI (with the session argument) and
/// returns the result as rpcd puts it into the JSON-RPC reply: `[status]` or
/// `[status, data]`.
fn rpc_result(peer: &mut UbusdReplay, seq: u16, method: &str, args: Table) -> Json {
    let args = args.with("ubus_rpc_session", "0123456789abcdef0123456789abcdef");
    // `check` runs probes with 2 s timeouts each.
    let replies = ubus_peer::invoke_within(peer, seq, method, args, secs(15));
    let mut result = vec![json!(replies.last().and_then(|m| m.status()))];
    if let Some(table) = replies.first().and_then(|m| m.data()) {
        // The blobmsg → JSON rendering is b4d's own; it must be valid JSON.
        result.push(serde_json::from_str(&table.to_string()).expect("reply is JSON"));
    }
    Json::Array(result)
}

/// b4d's replies to the four methods the page calls (with the arguments it
/// passes), keyed "b4.<method>".
fn real_replies(dir: &TestDir) -> Json {
    let ns = Netns::new("luci");
    // A WAN with a global address: b4d plans the tunnel (MTU = 1500 - 40).
    ns.ip(&[
        "link", "add", "wan", "type", "veth", "peer", "name", "wan-peer",
    ]);
    ns.add_addr_nodad("wan", "2001:db8:1::2/64");
    ns.link_up("wan-peer");
    ns.link_up("wan");
    let mut peer = UbusdReplay::listen(&dir.file("ubus.sock"));
    let b4d = start_b4d(dir, &ns);
    ubus_peer::register(&mut peer, ubus_peer::CLIENT_ID);
    b4d.wait_for_line("ubus: object b4 registered", secs(5));
    // Until the tunnel driver has planned the tunnel for the WAN address.
    let deadline = Instant::now() + secs(10);
    let status = loop {
        let status = rpc_result(&mut peer, 2, "status", Table::new());
        if status[1]["tunnel"]["mtu"].is_number() || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let replies = json!({
        "b4.status": status,
        "b4.leases": rpc_result(&mut peer, 3, "leases", Table::new()),
        "b4.renew": rpc_result(&mut peer, 4, "renew", Table::new().with("reason", "LuCI")),
        "b4.check": rpc_result(&mut peer, 5, "check", Table::new()),
    });
    b4d.signal(Signal::Term);
    assert!(b4d.wait_exit(secs(10)).success(), "{}", b4d.tail(20));
    replies
}

// ---------------------------------------------------------------------------
// Serving the page and looking at it.

struct Site {
    /// The server runs as long as the site (dropping it stops the server).
    _server: Process,
    port: u16,
    calls: PathBuf,
}

impl Site {
    fn start(dir: &TestDir, replies: &Json) -> Site {
        let replies_file = dir.write(
            "rpc-replies.json",
            serde_json::to_vec_pretty(replies).unwrap(),
        );
        let calls = dir.file("rpc-calls.jsonl");
        let mut cmd = std::process::Command::new("python3");
        cmd.arg(repo("tests/luci/rpc_server.py"))
            .arg("--replies")
            .arg(&replies_file)
            .arg("--acl")
            .arg(repo("files/usr/share/rpcd/acl.d/luci-app-b4d.json"))
            .arg("--www")
            .arg(repo("files/www"))
            .arg("--harness")
            .arg(repo("tests/luci"))
            .arg("--log")
            .arg(&calls);
        let server = Process::spawn(dir, "rpc_server", cmd);
        let line = server.wait_for_line("listening on 127.0.0.1:", secs(10));
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Site {
            _server: server,
            port,
            calls,
        }
    }

    fn url(&self, click: Option<&str>) -> String {
        let mut url = format!(
            "http://127.0.0.1:{}/harness/harness.html?view=b4d/status",
            self.port
        );
        if let Some(id) = click {
            url.push_str("&click=");
            url.push_str(id);
        }
        url
    }

    /// The ubus calls the page made: ("object.method", arguments).
    fn calls_with_args(&self) -> Vec<(String, Json)> {
        let text = std::fs::read_to_string(&self.calls).unwrap_or_default();
        text.lines()
            .map(|l| {
                let call: Json = serde_json::from_str(l).expect("call log line");
                assert_eq!(
                    call["session"], "0123456789abcdef0123456789abcdef",
                    "every call carries the session"
                );
                let name = format!(
                    "{}.{}",
                    str_at(&call, &["object"]),
                    str_at(&call, &["method"])
                );
                (name, call["args"].clone())
            })
            .collect()
    }

    /// The ubus calls the page made, as "object.method".
    fn calls(&self) -> Vec<String> {
        self.calls_with_args()
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }
}

/// Runs headless Chromium once with the flags the tests use, plus `extra`.
fn chromium(dir: &TestDir, browser: &Path, name: &str, extra: &[String], url: &str) -> Process {
    let profile = dir.file(&format!("{name}-profile"));
    let mut cmd = std::process::Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--hide-scrollbars",
        // Virtual time runs ahead while nothing is pending, and waits while a
        // request is in flight: the page settles, and one 5 s poll runs too.
        "--virtual-time-budget=8000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url);
    let browser = Process::spawn(dir, name, cmd);
    let status = browser.wait_exit(secs(60));
    assert!(
        status.success(),
        "chromium {name}: {status}\n{}",
        browser.tail(20)
    );
    // A fresh profile every run; nothing in it is worth keeping.
    let _ = std::fs::remove_dir_all(&profile);
    browser
}

/// The page after it settled (and after clicking `click`), as Chromium's DOM.
fn dump_dom(dir: &TestDir, browser: &Path, site: &Site, name: &str, click: Option<&str>) -> Dom {
    let _run = chromium(dir, browser, name, &["--dump-dom".into()], &site.url(click));
    let html = std::fs::read_to_string(dir.file(&format!("{name}.stdout"))).expect("DOM dump");
    dir.write(&format!("{name}.html"), &html);
    let dom = Dom(html);
    assert!(
        dom.0.contains(r#"data-harness="done""#),
        "the page did not settle cleanly; errors: {:?}\n(see {name}.html)",
        dom.element_text("harness-errors")
    );
    dom
}

/// A screenshot of the page, saved as `page.png` (or `<name>.png`).
fn screenshot(dir: &TestDir, browser: &Path, site: &Site, name: &str, click: Option<&str>) {
    let png = dir.file(&format!("{name}.png"));
    let extra = [
        "--window-size=1100,2000".to_string(),
        format!("--screenshot={}", png.display()),
    ];
    let _run = chromium(
        dir,
        browser,
        &format!("{name}-shot"),
        &extra,
        &site.url(click),
    );
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert!(
        bytes.starts_with(b"\x89PNG"),
        "{} is not a PNG",
        png.display()
    );
}

/// Chromium's serialised DOM, with just enough reading for these checks.
struct Dom(String);

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// Text content of an HTML fragment: tags dropped (block-level ones and
/// `<br>` count as a space), entities decoded, whitespace collapsed.
fn text_of(html: &str) -> String {
    const INLINE: &[&str] = &["span", "strong", "small", "b", "em"];
    let mut out = String::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let tag = &rest[open + 1..open + close];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if !INLINE.contains(&name.as_str()) {
            out.push(' ');
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    unescape(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

impl Dom {
    /// The text of the table cell the view marks `data-field="<field>"`.
    fn field(&self, field: &str) -> Option<String> {
        let start = self.0.find(&format!(r#"data-field="{field}">"#))?;
        let rest = &self.0[start..];
        let inner = &rest[rest.find('>')? + 1..rest.find("</td>")?];
        Some(text_of(inner))
    }

    /// The text inside the element with `id` (up to its first closing tag of
    /// the same name; enough for the flat elements asked for here).
    fn element_text(&self, id: &str) -> Option<String> {
        let at = self.0.find(&format!(r#"id="{id}""#))?;
        let open = self.0[..at].rfind('<')?;
        let tag: String = self.0[open + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let body = &self.0[at..];
        let end = body.find(&format!("</{tag}>"))?;
        Some(text_of(&body[body.find('>')? + 1..end]))
    }

    /// All text of the page's main area: the view and notifications.
    fn view_text(&self) -> String {
        let start = self.0.find(r#"id="maincontent""#).expect("#maincontent");
        let end = self
            .0
            .find(r#"id="harness-errors""#)
            .unwrap_or(self.0.len());
        text_of(&self.0[start..end])
    }
}

fn str_at<'a>(v: &'a Json, path: &[&str]) -> &'a str {
    path.iter()
        .fold(v, |v, k| &v[*k])
        .as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string in {v}"))
}

/// The banner's words for an overall state (as the view says them).
fn state_words(state: &str) -> &str {
    match state {
        "waiting-for-wan" => "waiting for the WAN",
        other => other,
    }
}

/// What the page's Checks section must read for a `check` reply.
fn check_section_text(reply: &Json) -> String {
    let mut text = String::from("Checks ");
    text.push_str(if reply["ok"] == false {
        "At least one check failed."
    } else {
        "No check failed."
    });
    text.push_str(" Check Result Details");
    for check in reply["checks"].as_array().expect("checks") {
        let label = match str_at(check, &["name"]) {
            "aftr_reachable" => "AFTR reachable over IPv6",
            "tunnel_full_size" => "Full-size packet through the tunnel",
            "dns_proxy" => "DNS proxy answers",
            other => other,
        };
        let result = match check["ok"].as_bool() {
            Some(true) => "pass",
            Some(false) => "FAIL",
            None => "skipped",
        };
        text.push_str(&format!(" {label} {result} {}", str_at(check, &["detail"])));
    }
    text
}

// ---------------------------------------------------------------------------

#[test]
fn page_shows_the_real_b4d_status_and_check_results() {
    let Some(browser) = require_browser(true) else {
        return;
    };
    let dir = TestDir::new("real_status");
    let replies = real_replies(&dir);
    let status = &replies["b4.status"][1];
    assert_eq!(replies["b4.status"][0], 0, "{replies}");
    assert_eq!(replies["b4.check"][0], 0, "{replies}");

    let site = Site::start(&dir, &replies);
    let dom = dump_dom(&dir, &browser, &site, "page", Some("b4d-check"));
    let calls = site.calls();

    // The state and its reason, as b4d said them.
    let state = str_at(status, &["state"]);
    let reason = str_at(status, &["reason"]);
    assert!(!reason.is_empty(), "b4d gives a reason: {status}");
    let banner = dom.element_text("b4d-state").unwrap();
    assert!(
        banner.starts_with(&format!("DS-Lite is {}: {reason} for ", state_words(state))),
        "{banner}"
    );
    assert_eq!(dom.field("state").as_deref(), Some(state));
    assert_eq!(dom.field("reason").as_deref(), Some(reason));
    // The AFTR: the configured address, in use.
    assert_eq!(
        dom.field("aftr-addresses").as_deref(),
        Some("2001:db8:af::1 (in use)")
    );
    assert_eq!(
        dom.field("aftr-selected").as_deref(),
        Some("2001:db8:af::1")
    );
    // The tunnel b4d planned from the WAN (1500) and the AFTR; here the
    // kernel cannot make it, and the page says why.
    assert_eq!(status["tunnel"]["mtu"], 1460, "{status}");
    assert_eq!(dom.field("tunnel-mtu").as_deref(), Some("1460"));
    assert_eq!(dom.field("tunnel-local").as_deref(), Some("2001:db8:1::2"));
    assert_eq!(
        dom.field("tunnel-remote").as_deref(),
        Some("2001:db8:af::1")
    );
    assert_eq!(
        dom.field("tunnel-state").as_deref(),
        Some(str_at(status, &["tunnel", "state"]))
    );
    if let Some(why) = status["tunnel"]["reason"].as_str() {
        assert_eq!(dom.field("tunnel-reason").as_deref(), Some(why));
    }
    // Each check b4d ran, with its result and b4d's words for it.
    let checks = replies["b4.check"][1]["checks"].as_array().expect("checks");
    assert!(!checks.is_empty(), "{replies}");
    assert_eq!(
        dom.element_text("b4d-checks").unwrap(),
        check_section_text(&replies["b4.check"][1])
    );
    assert!(dom.view_text().contains("No active leases"));
    let mut load = calls[..2].to_vec();
    load.sort();
    assert_eq!(load, ["b4.leases", "b4.status"], "load: {calls:?}");
    assert_eq!(calls[2], "b4.check", "the click: {calls:?}");
    assert!(
        calls[3..]
            .iter()
            .all(|c| c == "b4.status" || c == "b4.leases"),
        "then polling: {calls:?}"
    );
    // b4d's real answer to the page's renew ({"renewed":true,...}) reads as taken.
    let renew = dump_dom(&dir, &browser, &site, "renew", Some("b4d-renew"));
    assert!(
        renew.view_text().contains("Renew requested"),
        "{}",
        renew.view_text()
    );
    screenshot(&dir, &browser, &site, "page", Some("b4d-check"));
}

/// A status with the tunnel up, rendered by b4d's status serialiser.
fn status_with_tunnel_up() -> Json {
    use b4d::dhcpv6::lease::{DelegatedPrefix, Lease, LeasedAddress, NetworkInfo};
    use b4d::dhcpv6::ClientStatus;
    use b4d::status::{State, Status};
    use b4d::tunnel::driver::TunnelStatus;
    use b4d::tunnel::plan::TunnelSpec;

    let now = Instant::now();
    let later = |s: u64| Some(now + secs(s));
    let addr = |s: &str| s.parse::<Ipv6Addr>().unwrap();
    let mut status = Status::new(now - secs(7300));
    status.set_state(
        now - secs(7200),
        State::Up,
        "tunnel to aftr.example.net is up",
    );
    status.wan_device = "wan".into();
    status.dhcpv6 = Some(ClientStatus {
        state: "bound",
        lease: Some(Lease {
            server_id: vec![1],
            server_addr: addr("fe80::1"),
            updated: now - secs(600),
            t1: later(1200),
            t2: later(2400),
            addresses: vec![LeasedAddress {
                addr: addr("2001:db8:1::100"),
                preferred_until: later(3000),
                valid_until: later(4000),
            }],
            prefixes: vec![DelegatedPrefix {
                prefix: addr("2001:db8:2000::"),
                len: 56,
                preferred_until: later(3000),
                valid_until: later(4000),
            }],
        }),
        info: NetworkInfo {
            dns_servers: vec![addr("2001:db8::53")],
            domains: vec!["example.net".into()],
            aftr_name: Some("aftr.example.net".into()),
        },
        ..ClientStatus::default()
    });
    let mut tunnel = TunnelStatus {
        state: "up",
        since: Some(now - secs(7200)),
        spec: Some(TunnelSpec {
            name: "ds-b4".into(),
            link: 2,
            local: addr("2001:db8:1::100"),
            remote: addr("2001:db8:af::1"),
            mtu: 1460,
            encap_limit: None,
            flags: 3,
            hop_limit: 64,
            ipv4: "192.0.0.2".parse().unwrap(),
            peer: "192.0.0.1".parse().unwrap(),
            default_route_metric: Some(0),
            mss_clamp: true,
        }),
        ..TunnelStatus::default()
    };
    tunnel.aftr.name = Some("aftr.example.net".into());
    tunnel.aftr.addresses = vec![addr("2001:db8:af::1"), addr("2001:db8:af::2")];
    tunnel.aftr.selected = Some(addr("2001:db8:af::1"));
    tunnel.aftr.server = Some(addr("2001:db8::53"));
    tunnel.aftr.resolved_at = Some(now - secs(120));
    tunnel.aftr.ttl = Some(300);
    tunnel.aftr.next_attempt = Some(now + secs(180));
    status.tunnel = Some(tunnel);
    let table = b4d::ubus::status_table::status_table(&status, now, std::time::SystemTime::now());
    let mut json: Json = serde_json::from_str(&table.to_string()).expect("status is JSON");
    // Kernel counters come from sysfs at call time (no ds-b4 device here).
    json["tunnel"]["counters"] = json!({
        "rx_packets": 182_340, "rx_bytes": 201_554_112,
        "tx_packets": 120_877, "tx_bytes": 14_203_999, "tx_errors": 0
    });
    json
}

#[test]
fn page_shows_a_tunnel_that_is_up_with_its_aftr_mtu_counters_and_leases() {
    let Some(browser) = require_browser(false) else {
        return;
    };
    let dir = TestDir::new("tunnel_up");
    let replies = json!({
        "b4.status": [0, status_with_tunnel_up()],
        "b4.leases": [0, {"leases": [
            {"mac": "02:00:00:00:00:10", "ip": "192.168.1.100", "expires": 42_000,
             "static": false, "hostname": "laptop"},
            {"mac": "02:00:00:00:00:11", "ip": "192.168.1.10", "expires": 0,
             "static": true, "hostname": "printer"},
            // Hostnames come from LAN clients: markup must stay text.
            {"mac": "02:00:00:00:00:12", "ip": "192.168.1.101", "expires": 600,
             "static": false, "hostname": "<img src=x onerror=alert(1)>"},
        ]}],
        "b4.renew": [0],
        "b4.check": [8],
    });
    let site = Site::start(&dir, &replies);
    let dom = dump_dom(&dir, &browser, &site, "page", Some("b4d-renew"));
    screenshot(&dir, &browser, &site, "page", None);

    let banner = dom.element_text("b4d-state").unwrap();
    assert!(
        banner.starts_with("DS-Lite is up: tunnel to aftr.example.net is up for 2h;"),
        "{banner}"
    );
    assert!(dom
        .0
        .contains(r#"class="alert-message success" id="b4d-state""#));
    assert_eq!(dom.field("aftr-name").as_deref(), Some("aftr.example.net"));
    assert_eq!(
        dom.field("aftr-addresses").as_deref(),
        Some("2001:db8:af::1 (in use) 2001:db8:af::2")
    );
    assert_eq!(dom.field("tunnel-state").as_deref(), Some("up"));
    assert_eq!(dom.field("tunnel-mtu").as_deref(), Some("1460"));
    assert_eq!(
        dom.field("tunnel-remote").as_deref(),
        Some("2001:db8:af::1")
    );
    assert_eq!(
        dom.field("tunnel-rx").as_deref(),
        Some("182340 packets, 192.22 MiB")
    );
    assert_eq!(dom.field("wan-address").as_deref(), Some("2001:db8:1::100"));
    let text = dom.view_text();
    for needle in [
        "2001:db8:2000::/56 (preferred 50m, valid 1h 6m 40s)",
        "laptop 192.168.1.100 02:00:00:00:00:10 11h 40m",
        "printer 192.168.1.10 02:00:00:00:00:11 static",
        "<img src=x onerror=alert(1)> 192.168.1.101",
        // The click on Renew: taken, and said so.
        "Renew requested",
    ] {
        assert!(text.contains(needle), "{needle:?} not in: {text}");
    }
    assert!(!dom.0.contains("<img"), "a hostname became markup");
    // A b4d without diagnostics answers `check` with 8 (not supported).
    let check = dump_dom(&dir, &browser, &site, "check", Some("b4d-check"));
    assert_eq!(
        check.element_text("b4d-checks").as_deref(),
        Some("Diagnostics not available: this b4d does not implement checks yet.")
    );
    assert!(
        site.calls_with_args()
            .contains(&("b4.renew".to_string(), json!({"reason": "LuCI"}))),
        "{:?}",
        site.calls_with_args()
    );
}

#[test]
fn page_says_so_when_b4d_does_not_answer() {
    let Some(browser) = require_browser(false) else {
        return;
    };
    let dir = TestDir::new("no_b4d");
    // No `b4` object on the bus: rpcd answers 4 (not found) to every call.
    let site = Site::start(&dir, &json!({}));
    let dom = dump_dom(&dir, &browser, &site, "page", None);
    screenshot(&dir, &browser, &site, "page", None);
    assert_eq!(
        dom.element_text("b4d-state").as_deref(),
        Some(
            "b4d does not answer: is the service running (/etc/init.d/b4d status) \
             and ubus enabled in /etc/config/b4d?"
        )
    );
}

/// b4d just started: no DHCPv6 lease yet, so no AFTR and no tunnel.
fn status_waiting_for_wan() -> Json {
    use b4d::dhcpv6::ClientStatus;
    use b4d::status::{State, Status};
    use b4d::tunnel::driver::TunnelStatus;

    let now = Instant::now();
    let mut status = Status::new(now - secs(4));
    let why = "no DHCPv6 lease yet (DHCPv6 soliciting)";
    status.set_state(now - secs(3), State::WaitingForWan, why);
    status.wan_device = "wan".into();
    status.dhcpv6 = Some(ClientStatus {
        state: "soliciting",
        ..ClientStatus::default()
    });
    status.tunnel = Some(TunnelStatus {
        state: "down",
        reason: Some("no AFTR yet".into()),
        ..TunnelStatus::default()
    });
    // Right after installing on a stock OpenWrt: dnsmasq holds the LAN ports.
    status.dns = Some(b4d::dns::ProxyStatus {
        problem: Some("cannot listen on 192.168.1.1:53: Address in use".into()),
        ..Default::default()
    });
    status.dhcpv4 = Some(b4d::dhcpv4::ServerStatus {
        problem: Some("cannot serve on br-lan: Address in use".into()),
        subnet: b4d::lan4::Ipv4Subnet::new("10.0.0.1".parse().unwrap(), 16),
        ..Default::default()
    });
    let table = b4d::ubus::status_table::status_table(&status, now, std::time::SystemTime::now());
    serde_json::from_str(&table.to_string()).expect("status is JSON")
}

/// A `check` reply from b4d's serialiser: one pass, one failure, one skipped.
fn checks_one_failing() -> Json {
    use b4d::check::Outcome;
    let table = b4d::ubus::b4::check_table(&[
        Outcome {
            name: "aftr_reachable",
            ok: Some(true),
            detail: "AFTR 2001:db8:af::1 answered in 12 ms".into(),
        },
        Outcome {
            name: "tunnel_full_size",
            ok: Some(false),
            detail: "no answer to a 1460-byte IPv4 ping (DF) through ds-b4 to 192.0.0.1".into(),
        },
        Outcome {
            name: "dns_proxy",
            ok: None,
            detail: "DNS proxy disabled (lan.dns_proxy '0')".into(),
        },
    ]);
    serde_json::from_str(&table.to_string()).expect("check reply is JSON")
}

#[test]
fn page_follows_state_changes_and_lists_check_results() {
    let Some(browser) = require_browser(false) else {
        return;
    };
    let dir = TestDir::new("follows_state");
    let replies = json!({
        // The first answer at load, the second from the 5 s poll on.
        "b4.status": {"sequence": [
            [0, status_waiting_for_wan()],
            [0, status_with_tunnel_up()],
        ]},
        "b4.leases": [0, {"leases": []}],
        "b4.check": [0, checks_one_failing()],
    });
    let site = Site::start(&dir, &replies);
    let dom = dump_dom(&dir, &browser, &site, "page", Some("b4d-check"));

    let statuses = site.calls().iter().filter(|c| *c == "b4.status").count();
    assert!(statuses >= 2, "the poll ran: {:?}", site.calls());
    let banner = dom.element_text("b4d-state").unwrap();
    assert!(banner.starts_with("DS-Lite is up: "), "{banner}");
    assert_eq!(dom.field("tunnel-mtu").as_deref(), Some("1460"));
    assert_eq!(
        dom.element_text("b4d-checks").unwrap(),
        check_section_text(&checks_one_failing())
    );
    assert!(dom.element_text("b4d-checks").unwrap().starts_with(
        "Checks At least one check failed. Check Result Details \
         AFTR reachable over IPv6 pass AFTR 2001:db8:af::1 answered in 12 ms \
         Full-size packet through the tunnel FAIL"
    ));

    screenshot(&dir, &browser, &site, "page", Some("b4d-check"));

    // Before the poll: the first answer, waiting for the WAN, with its reason.
    let site = Site::start(&dir, &json!({"b4.status": [0, status_waiting_for_wan()]}));
    let first = dump_dom(&dir, &browser, &site, "waiting", None);
    let banner = first.element_text("b4d-state").unwrap();
    assert!(
        banner.starts_with(
            "DS-Lite is waiting for the WAN: no DHCPv6 lease yet (DHCPv6 soliciting) for 3s;"
        ),
        "{banner}"
    );
    assert!(first
        .0
        .contains(r#"class="alert-message warning" id="b4d-state""#));
    assert_eq!(first.field("tunnel-reason").as_deref(), Some("no AFTR yet"));
    assert_eq!(first.field("dhcpv6-state").as_deref(), Some("soliciting"));
    assert_eq!(
        first.field("dns-problem").as_deref(),
        Some("cannot listen on 192.168.1.1:53: Address in use")
    );
    assert_eq!(
        first.field("dhcpv4-problem").as_deref(),
        Some("cannot serve on br-lan: Address in use")
    );
    // Followed from br-lan (network.lan.ipaddr), shown as served.
    assert_eq!(first.field("lan-subnet").as_deref(), Some("10.0.0.1/16"));
    screenshot(&dir, &browser, &site, "waiting", None);
}

/// The menu entry points at the view file, depends on the ACL group the
/// package defines, and the ACL grants exactly what the view calls: reading
/// status and leases, writing renew and check.
#[test]
fn menu_acl_and_view_fit_together() {
    let read = |p: &str| -> Json {
        serde_json::from_slice(&std::fs::read(repo(p)).unwrap())
            .unwrap_or_else(|e| panic!("{p}: {e}"))
    };
    let menu = read("files/usr/share/luci/menu.d/luci-app-b4d.json");
    let entry = &menu["admin/status/b4d"];
    assert_eq!(entry["title"], "DS-Lite");
    assert_eq!(
        entry["action"],
        json!({"type": "view", "path": "b4d/status"})
    );
    let view_file = "files/www/luci-static/resources/view/b4d/status.js";
    assert!(repo(view_file).is_file());
    assert_eq!(entry["depends"]["acl"], json!(["luci-app-b4d"]));

    let acl = read("files/usr/share/rpcd/acl.d/luci-app-b4d.json");
    let group = &acl["luci-app-b4d"];
    assert_eq!(group["read"], json!({"ubus": {"b4": ["status", "leases"]}}));
    assert_eq!(group["write"], json!({"ubus": {"b4": ["renew", "check"]}}));

    let view = std::fs::read_to_string(repo(view_file)).unwrap();
    let mut declared: Vec<&str> = view
        .split("method: '")
        .skip(1)
        .map(|rest| &rest[..rest.find('\'').unwrap()])
        .collect();
    declared.sort();
    assert_eq!(declared, ["check", "leases", "renew", "status"]);
    assert_eq!(view.matches("object: 'b4'").count(), 4);
}

/// The JSON-RPC stand-in refuses what the ACL does not grant, as rpcd does,
/// so the page tests above would notice a call the ACL forgot.
#[test]
fn rpc_stand_in_refuses_calls_the_acl_does_not_grant() {
    if find_in_path("python3").is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 missing (CI is set)"
        );
        return;
    }
    use std::io::{Read, Write};
    let dir = TestDir::new("acl_refusal");
    let site = Site::start(
        &dir,
        &json!({"b4.status": [0, {"state": "up"}], "b4.reload": [0]}),
    );
    let call = |method: &str| -> Json {
        let body = json!([{"jsonrpc": "2.0", "id": 1, "method": "call",
            "params": ["0123456789abcdef0123456789abcdef", "b4", method, {}]}])
        .to_string();
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", site.port)).unwrap();
        write!(
            conn,
            "POST /ubus/ HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut reply = String::new();
        conn.read_to_string(&mut reply).unwrap();
        let json = &reply[reply.find("\r\n\r\n").expect("HTTP reply") + 4..];
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {reply}"))
    };
    assert_eq!(call("status")[0]["result"], json!([0, {"state": "up"}]));
    assert_eq!(
        call("reload")[0]["error"],
        json!({"code": -32002, "message": "Access denied"})
    );
}
