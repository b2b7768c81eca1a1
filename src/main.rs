//! b4d: wires the subsystems together. Protocol logic lives in the library.

mod thread_name;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use b4d::cli::{Args, Command, USAGE};
use b4d::config::{AftrOverride, Config, DhcpV6Mode, HandoffMode, NETIFD_PATH};
use b4d::dhcpv4;
use b4d::dhcpv6::driver::{self, Control, Outputs};
use b4d::dhcpv6::{duid, ClientConfig, ClientStatus, Event, Mode};
use b4d::dns::{self, driver::DriverConfig, LocalHosts, ProxyStatus};
use b4d::lan4::driver::LanSubnet;
use b4d::logging::{self, Target};
use b4d::status::Status;
use b4d::tunnel::{self, aftr::AftrSource};
use b4d::ubus::{self, b4, driver::Published, UbusHandle};
use log::{error, info, warn};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("b4d: {e}");
            return ExitCode::from(2);
        }
    };
    match args.command {
        Command::Help => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("b4d {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::CheckConfig => match Config::load(&args.config) {
            Ok(config) => match &args.get {
                None => {
                    print!("{}", config.render_uci());
                    ExitCode::SUCCESS
                }
                Some(key) => match config.effective_value(key) {
                    Some(value) => {
                        println!("{value}");
                        ExitCode::SUCCESS
                    }
                    None => {
                        eprintln!("b4d: no option '{key}' (SECTION.OPTION, e.g. tunnel.name)");
                        ExitCode::FAILURE
                    }
                },
            },
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::FAILURE
            }
        },
        Command::Run => run(&args),
    }
}

fn run(args: &Args) -> ExitCode {
    let target = if args.foreground {
        Target::Stderr
    } else {
        Target::Syslog {
            socket: args
                .syslog_socket
                .clone()
                .unwrap_or_else(|| logging::DEFAULT_SYSLOG_SOCKET.into()),
        }
    };
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            // At boot nobody reads stderr: say it where `logread` shows it.
            if !args.foreground && logging::init(target, log::LevelFilter::Info, "b4d").is_ok() {
                log_config_errors(
                    &format!("{} is invalid, not starting", args.config.display()),
                    &errors,
                );
            }
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = logging::init(target, config.globals.log_level.into(), "b4d") {
        eprintln!("b4d: cannot start logging: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(daemon(config, &args.config)) {
        Ok(Exit::Stopped) => {
            info!("stopped");
            flush_logs_before_exit();
            ExitCode::SUCCESS
        }
        Ok(Exit::Reload) => {
            // Leave without tearing anything down: the tunnel is adopted,
            // DHCPv4 leases come back from the lease file, the DHCPv6
            // binding from wan.lease_file (and is Rebound). From here until
            // the new image has its handlers, a SIGTERM must not be lost and
            // a SIGHUP must not kill: blocked signals stay pending across
            // execve (signal(7)), and `daemon` unblocks them.
            set_stop_signals_blocked(true);
            drop(runtime);
            flush_logs_before_exit();
            let error = reexec();
            error!("reload: cannot restart b4d: {error}");
            log::logger().flush();
            ExitCode::FAILURE
        }
        Err(e) => {
            error!("{e}");
            log::logger().flush();
            ExitCode::FAILURE
        }
    }
}

/// The last lines (the teardown's, "stopped") may wait for a slow logd:
/// its datagram queue holds a few; a few more tries, then they are lost.
fn flush_logs_before_exit() {
    log::logger().flush();
    for _ in 0..4 {
        if !logging::waiting_for_syslog() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
        log::logger().flush();
    }
}

/// How long a reload waits for the tunnel or LAN IPv6 to take itself down.
const TEARDOWN_WAIT: Duration = Duration::from_secs(5);

/// How the daemon loop ended.
enum Exit {
    Stopped,
    /// The configuration changed: start again with it.
    Reload,
}

/// Replaces this process with a fresh b4d with the same arguments (same
/// pid, so procd keeps tracking it). Returns only on failure. The running
/// image again, through /proc/self/exe: the path may name a replaced file
/// (an upgrade without restart), or none ("/usr/sbin/b4d (deleted)").
fn reexec() -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let error = std::process::Command::new("/proc/self/exe")
        .arg0(std::env::args_os().next().unwrap_or_else(|| "b4d".into()))
        .args(std::env::args_os().skip(1))
        .exec();
    set_stop_signals_blocked(false);
    error
}

/// Blocks (or unblocks) the signals b4d handles, across a re-exec.
/// Through libc: nix's signal types and errno descriptions cost ~10 KiB.
fn set_stop_signals_blocked(blocked: bool) {
    let how = match blocked {
        true => libc::SIG_BLOCK,
        false => libc::SIG_UNBLOCK,
    };
    // SAFETY: `set` is initialised by sigemptyset before use, and
    // pthread_sigmask only reads it; no old mask is asked for.
    let rc = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1] {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(how, &set, std::ptr::null_mut())
    };
    if rc != 0 {
        warn!(
            "cannot change the signal mask: {}",
            std::io::Error::from_raw_os_error(rc)
        );
    }
}

/// One log record per error (a syslog datagram holds ~1 KiB, and a few
/// unknown-option errors, which list the known options, are more).
fn log_config_errors(what: &str, errors: &b4d::config::ConfigErrors) {
    error!("{what}: {} error(s):", errors.len());
    for e in errors {
        error!("  {e}");
    }
    log::logger().flush();
}

/// Re-reads the configuration for a reload: `Some` when it is valid and
/// differs from the running one. A broken file keeps the running
/// configuration, with every error logged.
fn changed_config(running: &Config, path: &std::path::Path) -> Option<Config> {
    match Config::load(path) {
        Err(errors) => {
            log_config_errors(
                &format!(
                    "reload: {} is invalid, keeping the running configuration",
                    path.display()
                ),
                &errors,
            );
            None
        }
        Ok(new) if new == *running => {
            info!("reload: configuration unchanged");
            None
        }
        Ok(new) => Some(new),
    }
}

/// Every subsystem runs as one task in `tasks`; `shutdown` tells those that
/// have nothing to release to stop, `dhcpv6` gets its own Shutdown so it can
/// send a Release first. The daemon exits when every task has ended, or at
/// once (with the error) when one fails.
async fn daemon(config: Config, config_path: &std::path::Path) -> std::io::Result<Exit> {
    info!(
        "b4d {} starting on WAN {}",
        env!("CARGO_PKG_VERSION"),
        config.wan.device
    );
    // Handlers first: a signal during start-up must not take the default
    // action (for SIGHUP and SIGUSR1: terminate).
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigusr1 = signal(SignalKind::user_defined1())?;
    // procd's reload sends SIGHUP (files/etc/init.d/b4d); its default action
    // would kill b4d and drop the leases.
    let mut sighup = signal(SignalKind::hangup())?;
    // After a re-exec they arrive blocked (see `run`); tokio has them now.
    set_stop_signals_blocked(false);
    let (shutdown, _) = watch::channel(false);
    // The tunnel and LAN IPv6 also stop on their own before a reload that
    // the restarted b4d could not adopt them through, and the DHCPv6 client
    // (releasing its binding) before one that could not take it over
    // (Config::reload_teardown).
    let (tunnel_shutdown, _) = watch::channel(false);
    let (dhcpv6_shutdown, _) = watch::channel(false);
    let (lan6_shutdown, _) = watch::channel(false);
    let (reload_tx, mut reload_rx) = mpsc::channel::<()>(1);
    let (events, _) = broadcast::channel::<Event>(64);
    let mut tasks: JoinSet<std::io::Result<()>> = JoinSet::new();
    let (dhcpv6, dhcpv6_status) = match start_dhcpv6(
        &config,
        events.clone(),
        dhcpv6_shutdown.subscribe(),
        &mut tasks,
    ) {
        Some((control, status)) => (Some(control), Some(status)),
        None => (None, None),
    };
    let netifd_present = std::path::Path::new(NETIFD_PATH).exists();
    let handoff = config.ipv6_handoff_mode(netifd_present);
    info!(
        "IPv6 hand-off: {handoff} (globals.ipv6_handoff '{}')",
        config.globals.ipv6_handoff
    );
    let (tunnel, tunnel_status) = match start_tunnel(
        &config,
        handoff,
        dhcpv6_status.clone(),
        dhcpv6.clone(),
        tunnel_shutdown.subscribe(),
        &mut tasks,
    ) {
        Some((control, status)) => (Some(control), Some(status)),
        None => (None, None),
    };
    let lan6_status = start_lan6(
        &config,
        handoff,
        dhcpv6_status.clone(),
        lan6_shutdown.subscribe(),
        &mut tasks,
    );
    // Ends (changed() fails) when the LAN IPv6 task has finished.
    let lan6_done = lan6_status.clone();
    let lan = start_lan4(&config, shutdown.subscribe(), &mut tasks);
    let dhcpv4 = start_dhcpv4(&config, lan.clone(), shutdown.subscribe(), &mut tasks);
    let dns_status = start_dns_proxy(
        &config,
        lan.clone(),
        dhcpv6_status.clone(),
        dhcpv4.as_ref().map(|d| d.leases.clone()),
        tunnel.clone(),
        shutdown.subscribe(),
        &mut tasks,
    );
    let (status, _) = watch::channel(Status {
        wan_device: config.wan.device.to_string(),
        ..Status::new(Instant::now())
    });
    let (netifd_status, netifd_status_rx) = watch::channel(b4d::netifd::NetifdStatus {
        interface: config.wan.netifd_interface.to_string(),
        ..Default::default()
    });
    let sources = b4d::status::collect::Sources {
        dhcpv6: dhcpv6_status.clone(),
        tunnel: tunnel_status,
        dns: dns_status,
        dhcpv4: dhcpv4.as_ref().map(|d| d.status.clone()),
        lan6: lan6_status,
        netifd: (handoff == HandoffMode::Netifd).then_some(netifd_status_rx),
    };
    tasks.spawn(b4d::status::collect::run(
        status.clone(),
        sources,
        events.subscribe(),
        shutdown.subscribe(),
    ));
    let (netifd_set_up, netifd_set_up_rx) = watch::channel(true);
    let netifd = (handoff == HandoffMode::Netifd)
        .then(|| (config.wan.netifd_interface.to_string(), netifd_set_up));
    let controls = Controls {
        dhcpv6: dhcpv6.clone(),
        tunnel: tunnel.clone(),
        leases: dhcpv4.as_ref().map(|d| d.leases.clone()),
        reload: reload_tx,
        netifd,
    };
    let (ubus_shutdown, ubus_shutdown_rx) = watch::channel(false);
    let ubus = start_ubus(
        &config,
        lan,
        &status,
        controls,
        shutdown.subscribe(),
        ubus_shutdown_rx,
        &mut tasks,
    );
    let reporting = (handoff == HandoffMode::Netifd).then_some(NetifdReporting {
        set_up: netifd_set_up_rx,
        status: netifd_status,
    });
    let netifd_done = start_netifd(
        &config,
        reporting,
        ubus.clone(),
        dhcpv6_status.clone(),
        shutdown.subscribe(),
        &mut tasks,
    );
    tasks.spawn(stop_ubus_last(
        shutdown.subscribe(),
        netifd_done,
        ubus.clone(),
        ubus_shutdown,
    ));

    // The syslog writer keeps messages while logd is away; deliver them
    // soon after it is back even when b4d has nothing new to say: a quick
    // retry while messages wait, no wake-ups otherwise.
    let mut next_flush = None;
    let stop = |why: &str| {
        info!("{why}: stopping");
        shutdown.send_replace(true);
        dhcpv6_shutdown.send_replace(true);
        tunnel_shutdown.send_replace(true);
        lan6_shutdown.send_replace(true);
    };
    loop {
        if *shutdown.borrow() && tasks.is_empty() {
            return Ok(Exit::Stopped);
        }
        if next_flush.is_none() && b4d::logging::waiting_for_syslog() {
            next_flush = Some(Instant::now() + b4d::logging::SYSLOG_RETRY);
        }
        tokio::select! {
            finished = tasks.join_next(), if !tasks.is_empty() => match finished {
                None => {}
                Some(Ok(Ok(()))) => {}
                // While stopping, one task's error must not cut the others'
                // teardown short (the tunnel removal, netifd's link-down):
                // said, and the rest drained.
                Some(Ok(Err(e))) if *shutdown.borrow() => error!("while stopping: {e}"),
                Some(Ok(Err(e))) => return Err(e),
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            },
            _ = sigterm.recv() => stop("SIGTERM"),
            _ = sigint.recv() => stop("SIGINT"),
            _ = sigusr1.recv() => {
                info!("SIGUSR1: renewing the DHCPv6 lease and re-resolving the AFTR");
                if let Some(control) = &dhcpv6 {
                    let _ = control.try_send(Control::Renew);
                }
                if let Some(control) = &tunnel {
                    let _ = control.try_send(tunnel::driver::Control::Refresh);
                }
            }
            reload = async {
                tokio::select! {
                    _ = sighup.recv() => "SIGHUP",
                    Some(()) = reload_rx.recv() => "ubus reload",
                }
            } => {
                if *shutdown.borrow() {
                    info!("{reload} ignored: stopping");
                    continue;
                }
                info!("{reload}: reloading the configuration from {}", config_path.display());
                if let Some(new) = changed_config(&config, config_path) {
                    let duid_file =
                        duid::path_for(&config.globals.state_dir, config.wan.device.as_str());
                    let duid_in_use = duid::load(&duid_file).ok().flatten();
                    let teardown =
                        config.reload_teardown(&new, netifd_present, duid_in_use.as_deref());
                    let take_down_and_pause = async {
                        if teardown.dhcpv6 {
                            if let Some(dhcpv6) = &dhcpv6 {
                                info!("reload: the DHCPv6 binding cannot be taken over: ending it first");
                                dhcpv6_shutdown.send_replace(true);
                                let _ = tokio::time::timeout(TEARDOWN_WAIT, dhcpv6.closed()).await;
                            }
                        }
                        if teardown.tunnel {
                            if let Some(tunnel) = &tunnel {
                                info!("reload: the tunnel changes in a way it cannot be adopted: taking it down first");
                                tunnel_shutdown.send_replace(true);
                                let _ = tokio::time::timeout(TEARDOWN_WAIT, tunnel.closed()).await;
                            }
                        }
                        if teardown.lan6 {
                            if let Some(mut done) = lan6_done.clone() {
                                info!("reload: LAN IPv6 changes in a way it cannot be adopted: taking it down first");
                                lan6_shutdown.send_replace(true);
                                let ended = async { while done.changed().await.is_ok() {} };
                                let _ = tokio::time::timeout(TEARDOWN_WAIT, ended).await;
                            }
                        }
                        info!("reload: configuration changed, restarting in place (leases kept)");
                        // Let a ubus reply leave before the process is replaced.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    };
                    // A stop asked for meanwhile (`reload_config` then a
                    // reboot) wins: the signal, caught by this runtime,
                    // would be gone with it, and the new image run on.
                    let stopping = tokio::select! {
                        biased;
                        _ = sigterm.recv() => Some("SIGTERM"),
                        _ = sigint.recv() => Some("SIGINT"),
                        () = take_down_and_pause => None,
                    };
                    match stopping {
                        Some(why) => stop(why),
                        None => return Ok(Exit::Reload),
                    }
                }
            }
            _ = b4d::logging::syslog_started_waiting(), if next_flush.is_none() => {}
            _ = b4d::timer::sleep_until(next_flush) => {
                log::logger().flush();
                next_flush = None;
            }
        }
    }
}

/// Starts the DHCPv6 client on the WAN unless it is off; returns its control
/// channel and its status.
fn start_dhcpv6(
    config: &Config,
    events: broadcast::Sender<Event>,
    shutdown: watch::Receiver<bool>,
    tasks: &mut JoinSet<std::io::Result<()>>,
) -> Option<(mpsc::Sender<Control>, watch::Receiver<ClientStatus>)> {
    let device = config.wan.device.to_string();
    let mode = match config.wan.dhcpv6 {
        DhcpV6Mode::Stateful => Mode::Stateful {
            request_address: config.wan.request_address,
            request_prefix: config.wan.request_prefix,
            prefix_hint: config.wan.prefix_hint.unwrap_or(0),
        },
        DhcpV6Mode::Stateless => Mode::Stateless,
        DhcpV6Mode::Off => {
            info!("DHCPv6 is off (wan.dhcpv6 'off')");
            return None;
        }
    };
    let configured_duid = config.wan.duid.as_ref().map(|d| d.as_bytes().to_vec());
    let duid_path = duid::path_for(&config.globals.state_dir, &device);
    if config.wan.reconfigure {
        warn!(
            "wan.reconfigure: Reconfigure key authentication (RFC 8415 §20.4) is not \
             implemented yet; every Reconfigure message is ignored"
        );
    }
    let client_config = ClientConfig {
        mode,
        duid: Vec::new(),
        iaid: 1,
        extra_oro: config.wan.request_option.clone(),
        release_on_stop: config.wan.release_on_stop,
        rapid_commit: config.wan.rapid_commit,
        sol_max_rt: config.wan.solicit_max_rt,
    };
    let (status, status_rx) = watch::channel(ClientStatus::default());
    let (control_tx, control_rx) = mpsc::channel(8);
    tasks.spawn(driver::run(
        device,
        client_config,
        (configured_duid, duid_path),
        rand::random(),
        config.wan.lease_file.clone(),
        control_rx,
        shutdown,
        Outputs { events, status },
    ));
    Some((control_tx, status_rx))
}

/// Starts the B4 tunnel reconcile loop unless the tunnel is disabled;
/// returns its control channel.
fn start_tunnel(
    config: &Config,
    handoff: HandoffMode,
    dhcpv6: Option<watch::Receiver<ClientStatus>>,
    dhcpv6_control: Option<mpsc::Sender<Control>>,
    shutdown: watch::Receiver<bool>,
    tasks: &mut JoinSet<std::io::Result<()>>,
) -> Option<(
    mpsc::Sender<tunnel::driver::Control>,
    watch::Receiver<tunnel::driver::TunnelStatus>,
)> {
    if !config.tunnel.enabled {
        info!("tunnel disabled (tunnel.enabled '0')");
        tasks.spawn(tunnel::driver::remove_leftovers());
        return None;
    }
    let aftr = match &config.wan.aftr {
        None => AftrSource::Dhcpv6,
        Some(AftrOverride::Name(name)) => AftrSource::ConfiguredName(name.clone()),
        Some(AftrOverride::Address(addr)) => AftrSource::ConfiguredAddress(*addr),
    };
    let settings = tunnel::driver::Settings {
        tunnel: config.tunnel.clone(),
        wan: config.wan.device.to_string(),
        aftr,
        fallback_servers: config.lan.dns_server.clone(),
        install_wan_addresses: handoff != HandoffMode::Netifd,
    };
    let (status, status_rx) = watch::channel(tunnel::driver::TunnelStatus::default());
    let (control_tx, control_rx) = mpsc::channel(8);
    tasks.spawn(tunnel::driver::run(
        settings,
        dhcpv6,
        dhcpv6_control,
        control_rx,
        shutdown,
        status,
        rand::random(),
    ));
    Some((control_tx, status_rx))
}

/// Starts native IPv6 for the LAN (bridge prefix from the delegated prefix,
/// unreachable route) in standalone mode; returns its status.
fn start_lan6(
    config: &Config,
    handoff: HandoffMode,
    dhcpv6: Option<watch::Receiver<ClientStatus>>,
    shutdown: watch::Receiver<bool>,
    tasks: &mut JoinSet<std::io::Result<()>>,
) -> Option<watch::Receiver<b4d::lan6::Lan6Status>> {
    if handoff != HandoffMode::Standalone {
        return None;
    }
    let settings = b4d::lan6::driver::Settings {
        lan: config.lan.device.to_string(),
        plan: b4d::lan6::plan::Settings::from_config(&config.lan),
    };
    let (status, status_rx) = watch::channel(b4d::lan6::Lan6Status::default());
    tasks.spawn(b4d::lan6::driver::run(settings, dhcpv6, shutdown, status));
    Some(status_rx)
}

/// Follows the LAN's IPv4 subnet (`lan.ipaddr`, or the LAN device's own
/// address) for the DHCPv4 server and the DNS proxy, if either runs.
fn start_lan4(
    config: &Config,
    shutdown: watch::Receiver<bool>,
    tasks: &mut JoinSet<std::io::Result<()>>,
) -> Option<LanSubnet> {
    if !config.lan.dhcp && !config.lan.dns_proxy {
        return None;
    }
    let device = config.lan.device.to_string();
    let (state, state_rx) = watch::channel(b4d::lan4::driver::initial(&device, config.lan.address));
    tasks.spawn(b4d::lan4::driver::run(
        device,
        config.lan.address,
        state,
        shutdown,
    ));
    Some(state_rx)
}

/// Starts the LAN DHCPv4 server unless `lan.dhcp` is off; returns the lease
/// list (for the DNS proxy and ubus) and status receivers.
fn start_dhcpv4(
    config: &Config,
    lan: Option<LanSubnet>,
    shutdown: watch::Receiver<bool>,
    tasks: &mut JoinSet<std::io::Result<()>>,
) -> Option<dhcpv4::driver::Subscriptions> {
    let (true, Some(lan)) = (config.lan.dhcp, lan) else {
        info!("DHCPv4 server is off (lan.dhcp '0')");
        return None;
    };
    let (leases, leases_rx) = watch::channel(std::sync::Arc::new(Vec::new()));
    let (status, status_rx) = watch::channel(dhcpv4::ServerStatus::default());
    let server_config = config.clone();
    let settings = dhcpv4::driver::Settings {
        device: config.lan.device.to_string(),
        config_for: Box::new(move |subnet| {
            dhcpv4::ServerConfig::from_config(&server_config, subnet)
        }),
        lease_file: config.lan.lease_file.clone(),
    };
    tasks.spawn(dhcpv4::driver::run(
        settings,
        lan,
        shutdown,
        dhcpv4::driver::Outputs { leases, status },
    ));
    Some(dhcpv4::driver::Subscriptions {
        leases: leases_rx,
        status: status_rx,
    })
}

/// What the `b4` object's methods act on.
struct Controls {
    dhcpv6: Option<mpsc::Sender<Control>>,
    tunnel: Option<mpsc::Sender<tunnel::driver::Control>>,
    leases: Option<watch::Receiver<std::sync::Arc<Vec<dhcpv4::LeaseInfo>>>>,
    reload: mpsc::Sender<()>,
    /// In netifd mode: the interface b4d reports to, and where its setups
    /// and teardowns go (`ubus call b4 netifd_setup` / `netifd_teardown`).
    netifd: Option<(String, watch::Sender<bool>)>,
}

/// Publishes the `b4` ubus object unless `globals.ubus` is off; returns the
/// handle for sending ubus events and calls. Without ubusd the driver keeps
/// retrying. The connection itself stays until `ubus_shutdown`, so that
/// whoever reports through it can say goodbye after `shutdown`.
fn start_ubus(
    config: &Config,
    lan: Option<LanSubnet>,
    status: &watch::Sender<Status>,
    controls: Controls,
    shutdown: watch::Receiver<bool>,
    ubus_shutdown: watch::Receiver<bool>,
    tasks: &mut JoinSet<std::io::Result<()>>,
) -> Option<UbusHandle> {
    let Controls {
        dhcpv6,
        tunnel,
        leases,
        reload,
        netifd,
    } = controls;
    if !config.globals.ubus {
        info!("ubus is off (globals.ubus '0')");
        return None;
    }
    let (requests, requests_rx) = mpsc::channel(8);
    let (handle, events) = ubus::driver::channels();
    let backend = b4::Backend {
        status: status.subscribe(),
        leases,
        reload: Box::new(move || reload.try_send(()).is_ok()),
        dns_proxy: lan
            .filter(|_| config.lan.dns_proxy)
            .map(|lan| (lan, config.lan.dns_port)),
        netifd_proto: Box::new(move |interface, up| match &netifd {
            Some((ours, set_up)) if ours == interface => {
                set_up.send_replace(up);
                true
            }
            _ => false,
        }),
        // `renew` renews the DHCPv6 lease and re-resolves the AFTR.
        renew: Box::new(move |_reason| {
            let renewed = dhcpv6
                .as_ref()
                .is_some_and(|control| control.try_send(Control::Renew).is_ok());
            let refreshed = tunnel
                .as_ref()
                .is_some_and(|control| control.try_send(tunnel::driver::Control::Refresh).is_ok());
            renewed || refreshed
        }),
    };
    let object = Published {
        spec: b4::object(),
        requests,
    };
    tasks.spawn(ubus::driver::run(
        config.globals.ubus_socket.clone(),
        vec![object],
        events,
        ubus_shutdown,
    ));
    tasks.spawn(b4::serve(requests_rx, handle.clone(), backend, shutdown));
    Some(handle)
}

/// The netifd reporter's channels: netifd's setups and teardowns in (from
/// `ubus call b4 netifd_setup` / `netifd_teardown`), its status out.
struct NetifdReporting {
    set_up: watch::Receiver<bool>,
    status: watch::Sender<b4d::netifd::NetifdStatus>,
}

/// In netifd mode, reports the DHCPv6 results to netifd over ubus; returns
/// what ends when it has said its last word at shutdown.
fn start_netifd(
    config: &Config,
    reporting: Option<NetifdReporting>,
    ubus: Option<UbusHandle>,
    dhcpv6: Option<watch::Receiver<ClientStatus>>,
    shutdown: watch::Receiver<bool>,
    tasks: &mut JoinSet<std::io::Result<()>>,
) -> Option<tokio::sync::oneshot::Receiver<()>> {
    let NetifdReporting { set_up, status } = reporting?;
    let (Some(ubus), Some(dhcpv6)) = (ubus, dhcpv6) else {
        let why = "IPv6 hand-off to netifd needs ubus (globals.ubus '1') and DHCPv6 \
                   (wan.dhcpv6 not 'off'); nothing is reported";
        warn!("{why}");
        status.send_modify(|s| s.last_error = Some(why.to_string()));
        return None;
    };
    let (done, done_rx) = tokio::sync::oneshot::channel();
    let interface = config.wan.netifd_interface.to_string();
    tasks.spawn(async move {
        let result =
            b4d::netifd::driver::run(interface, ubus, dhcpv6, set_up, shutdown, status).await;
        drop(done);
        result
    });
    Some(done_rx)
}

/// Lets the ubus connection outlive the tasks that report through it: after
/// `shutdown`, it closes once the netifd reporter has said "link down" (or
/// after 2 s, whichever is first).
async fn stop_ubus_last(
    mut shutdown: watch::Receiver<bool>,
    netifd_done: Option<tokio::sync::oneshot::Receiver<()>>,
    ubus: Option<UbusHandle>,
    ubus_shutdown: watch::Sender<bool>,
) -> std::io::Result<()> {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
    // Queued before the driver is told to stop, so it still goes out.
    if let Some(ubus) = &ubus {
        ubus.publish_event(b4::STATE_EVENT, b4::stopping_event());
    }
    if let Some(done) = netifd_done {
        let _ = tokio::time::timeout(Duration::from_secs(2), done).await;
    }
    ubus_shutdown.send_replace(true);
    Ok(())
}

/// Starts the LAN DNS proxy unless `lan.dns_proxy` is off. Upstreams are
/// `lan.dns_server` if set, else whatever DHCPv6 holds now (its status, a
/// watch: never lagging behind as an event stream can); local names
/// are the named static hosts plus the DHCPv4 leases' host names, followed
/// live. Returns the proxy's counters (published every second).
fn start_dns_proxy(
    config: &Config,
    lan: Option<LanSubnet>,
    dhcpv6: Option<watch::Receiver<ClientStatus>>,
    mut leases: Option<watch::Receiver<std::sync::Arc<Vec<dhcpv4::LeaseInfo>>>>,
    tunnel: Option<mpsc::Sender<tunnel::driver::Control>>,
    shutdown: watch::Receiver<bool>,
    tasks: &mut JoinSet<std::io::Result<()>>,
) -> Option<watch::Receiver<ProxyStatus>> {
    let (true, Some(lan)) = (config.lan.dns_proxy, lan) else {
        info!("DNS proxy is off (lan.dns_proxy '0')");
        return None;
    };
    let (upstreams_tx, upstreams) = watch::channel(config.lan.dns_server.clone());
    if let (true, Some(mut dhcpv6)) = (config.lan.dns_server.is_empty(), dhcpv6) {
        let mut stop = shutdown.clone();
        tasks.spawn(async move {
            loop {
                let servers = dhcpv6.borrow_and_update().info.dns_servers.clone();
                upstreams_tx.send_if_modified(|current| {
                    let changed = *current != servers;
                    *current = servers;
                    changed
                });
                tokio::select! {
                    changed = dhcpv6.changed() => if changed.is_err() { return Ok(()) },
                    _ = stop.wait_for(|stop| *stop) => return Ok(()),
                }
            }
        });
    }
    let static_hosts: Vec<(String, std::net::Ipv4Addr)> = (config.hosts.iter())
        .filter_map(|h| Some((h.name.clone()?, h.ip)))
        .collect();
    let domain = config.lan.domain.clone();
    let local_hosts = move |leases: &[dhcpv4::LeaseInfo], subnet| LocalHosts {
        domain: domain.clone(),
        hosts: dhcpv4::local_names(&static_hosts, leases, subnet),
    };
    let (hosts_tx, hosts) = watch::channel(local_hosts(&[], lan.borrow().clone().ok()));
    let mut stop = shutdown.clone();
    let mut subnet = lan.clone();
    let mut served = lan.borrow().clone().ok();
    tasks.spawn(async move {
        let (mut leases_open, mut subnet_open) = (leases.is_some(), true);
        loop {
            let current = leases.as_mut().map(|l| l.borrow_and_update().clone());
            // While the LAN has no address (a network restart), the names
            // of the subnet last served stay.
            if let Ok(now) = &*subnet.borrow_and_update() {
                served = Some(*now);
            }
            hosts_tx.send_replace(local_hosts(current.as_deref().map_or(&[], |l| l), served));
            tokio::select! {
                changed = async { leases.as_mut()?.changed().await.ok() }, if leases_open => {
                    leases_open = changed.is_some();
                }
                changed = subnet.changed(), if subnet_open => subnet_open = changed.is_ok(),
                _ = stop.wait_for(|stop| *stop) => return Ok(()),
            }
            if !leases_open && !subnet_open {
                return Ok(());
            }
        }
    });
    let (status, status_rx) = watch::channel(ProxyStatus::default());
    let driver_config = DriverConfig {
        port: config.lan.dns_port,
        lan,
        cache_size: config.lan.dns_cache_size as usize,
        wan_device: config.wan.device.to_string(),
        seed: rand::random(),
        on_upstream_recovered: Box::new(move || {
            if let Some(tunnel) = &tunnel {
                let _ = tunnel.try_send(tunnel::driver::Control::DnsRecovered);
            }
        }),
    };
    tasks.spawn(dns::driver::run(
        driver_config,
        upstreams,
        hosts,
        status,
        shutdown,
    ));
    Some(status_rx)
}
