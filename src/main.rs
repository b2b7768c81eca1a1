//! b4d: wires the subsystems together. Protocol logic lives in the library.

use std::net::SocketAddrV4;
use std::process::ExitCode;
use std::time::Duration;

use b4d::cli::{Args, Command, USAGE};
use b4d::config::{Config, DhcpV6Mode};
use b4d::dhcpv6::driver::{self, Control, Outputs};
use b4d::dhcpv6::{duid, ClientConfig, ClientStatus, Event, Mode};
use b4d::dns::{self, driver::DriverConfig, LocalHosts, ProxyStatus};
use b4d::logging::{self, Target};
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
            Ok(config) => {
                print!("{}", config.render_uci());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::FAILURE
            }
        },
        Command::Run => run(&args),
    }
}

fn run(args: &Args) -> ExitCode {
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
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
    match runtime.block_on(daemon(config)) {
        Ok(()) => {
            info!("stopped");
            log::logger().flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            error!("{e}");
            log::logger().flush();
            ExitCode::FAILURE
        }
    }
}

/// Every subsystem runs as one task in `tasks`; `shutdown` tells those that
/// have nothing to release to stop, `dhcpv6` gets its own Shutdown so it can
/// send a Release first. The daemon exits when every task has ended, or at
/// once (with the error) when one fails.
async fn daemon(config: Config) -> std::io::Result<()> {
    info!(
        "b4d {} starting on WAN {}",
        env!("CARGO_PKG_VERSION"),
        config.wan.device
    );
    let (shutdown, _) = watch::channel(false);
    let (events, _) = broadcast::channel::<Event>(64);
    let mut tasks: JoinSet<std::io::Result<()>> = JoinSet::new();
    let dhcpv6 = start_dhcpv6(&config, events.clone(), &mut tasks);
    start_dns_proxy(
        &config,
        events.subscribe(),
        shutdown.subscribe(),
        &mut tasks,
    );

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigusr1 = signal(SignalKind::user_defined1())?;
    // The syslog writer keeps messages while logd is away; flush them
    // regularly even when b4d has nothing new to say.
    let mut flush = tokio::time::interval(Duration::from_secs(5));
    let stop = |why: &str| {
        info!("{why}: stopping");
        shutdown.send_replace(true);
        if let Some(control) = &dhcpv6 {
            let _ = control.try_send(Control::Shutdown);
        }
    };
    loop {
        if *shutdown.borrow() && tasks.is_empty() {
            return Ok(());
        }
        tokio::select! {
            finished = tasks.join_next(), if !tasks.is_empty() => match finished {
                None => {}
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => return Err(e),
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            },
            _ = sigterm.recv() => stop("SIGTERM"),
            _ = sigint.recv() => stop("SIGINT"),
            _ = sigusr1.recv() => {
                info!("SIGUSR1: renewing the DHCPv6 lease");
                if let Some(control) = &dhcpv6 {
                    let _ = control.try_send(Control::Renew);
                }
            }
            _ = flush.tick() => log::logger().flush(),
        }
    }
}

/// Starts the DHCPv6 client on the WAN unless it is off; returns its control
/// channel.
fn start_dhcpv6(
    config: &Config,
    events: broadcast::Sender<Event>,
    tasks: &mut JoinSet<std::io::Result<()>>,
) -> Option<mpsc::Sender<Control>> {
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
    let (duid, warning) = duid::obtain(
        config.wan.duid.as_ref().map(|d| d.as_bytes()),
        &duid::path_for(&config.globals.state_dir, &device),
        || match read_mac(&device) {
            Some(mac) => duid::duid_ll(mac),
            None => duid::duid_uuid(rand::random()),
        },
    );
    if let Some(warning) = warning {
        warn!("{warning}");
    }
    info!("DHCPv6 DUID {}", duid::to_hex(&duid));
    if config.wan.reconfigure {
        warn!(
            "wan.reconfigure: Reconfigure key authentication (RFC 8415 §20.4) is not \
             implemented yet; every Reconfigure message is ignored"
        );
    }
    let client_config = ClientConfig {
        mode,
        duid,
        iaid: 1,
        extra_oro: config.wan.request_option.clone(),
        release_on_stop: config.wan.release_on_stop,
        sol_max_rt: config.wan.solicit_max_rt,
    };
    let (status, _) = watch::channel(ClientStatus::default());
    let (control_tx, control_rx) = mpsc::channel(8);
    tasks.spawn(driver::run(
        device,
        client_config,
        rand::random(),
        control_rx,
        Outputs { events, status },
    ));
    Some(control_tx)
}

/// Starts the LAN DNS proxy unless `lan.dns_proxy` is off. Upstreams are
/// `lan.dns_server` if set, else whatever DHCPv6 last reported; local names
/// are the named static hosts (DHCPv4 leases join them later).
fn start_dns_proxy(
    config: &Config,
    mut events: broadcast::Receiver<Event>,
    shutdown: watch::Receiver<bool>,
    tasks: &mut JoinSet<std::io::Result<()>>,
) {
    if !config.lan.dns_proxy {
        info!("DNS proxy is off (lan.dns_proxy '0')");
        return;
    }
    let (upstreams_tx, upstreams) = watch::channel(config.lan.dns_server.clone());
    if config.lan.dns_server.is_empty() {
        let mut stop = shutdown.clone();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    event = events.recv() => match event {
                        Ok(Event::DnsServersChanged(servers)) => {
                            upstreams_tx.send_replace(servers);
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    },
                    _ = stop.wait_for(|stop| *stop) => return Ok(()),
                }
            }
        });
    }
    let hosts = LocalHosts {
        domain: config.lan.domain.clone(),
        hosts: (config.hosts.iter())
            .filter_map(|h| Some((h.name.clone()?, h.ip)))
            .collect(),
    };
    let (_, hosts) = watch::channel(hosts);
    let (status, _) = watch::channel(ProxyStatus::default());
    let driver_config = DriverConfig {
        listen: SocketAddrV4::new(config.lan.ipaddr, config.lan.dns_port),
        clients: (config.lan.network(), config.lan.prefix_len()),
        cache_size: config.lan.dns_cache_size as usize,
        seed: rand::random(),
    };
    tasks.spawn(dns::driver::run(
        driver_config,
        upstreams,
        hosts,
        status,
        shutdown,
    ));
}

/// The device's MAC from sysfs, for the DUID-LL.
fn read_mac(device: &str) -> Option<[u8; 6]> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{device}/address")).ok()?;
    let bytes: Vec<u8> = text
        .trim()
        .split(':')
        .map(|h| u8::from_str_radix(h, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    let mac: [u8; 6] = bytes.try_into().ok()?;
    (mac != [0; 6]).then_some(mac)
}
