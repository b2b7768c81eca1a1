//! The tokio task around [`Connection`]: owns the unix socket to ubusd, feeds the
//! core bytes and time, executes its actions, and hands calls to the daemon over
//! channels. Nothing protocol-related is decided here.

use crate::timer::sleep_until;
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use log::{debug, info, warn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, watch};

use super::connection::{
    Action, Call, CallId, CallResult, Connection, ObjectSpec, OutgoingId, Reply, RECONNECT_MAX,
};
use super::wire::{Status, Table};

/// How long ubusd may leave what b4d writes unread. One that stopped
/// reading (hung, stopped) would otherwise hold this task in a write, and
/// with it every call, event and b4d's shutdown, for good; after this the
/// connection is dropped and made again.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where OpenWrt's ubusd listens (`UBUS_UNIX_SOCKET`).
pub const DEFAULT_SOCKET: &str = "/var/run/ubus/ubus.sock";

/// A call for the daemon to answer. Dropping `reply` unanswered answers the
/// caller with STATUS 9 (unknown error).
#[derive(Debug)]
pub struct UbusRequest {
    pub method: String,
    /// As the caller sent them, undeclared ones (`ubus_rpc_session`) included.
    pub args: Table,
    /// The caller's user name, as ubusd reports it.
    pub user: Option<String>,
    pub reply: oneshot::Sender<Reply>,
}

/// An object to publish and where its calls go.
pub struct Published {
    pub spec: ObjectSpec,
    pub requests: mpsc::Sender<UbusRequest>,
}

/// A call the daemon makes to another object (e.g. netifd's).
#[derive(Debug)]
pub struct OutgoingRequest {
    pub path: String,
    pub method: String,
    pub args: Table,
    pub result: oneshot::Sender<CallResult>,
}

/// Lets the rest of the daemon send ubus events and call other objects. Cheap
/// to clone.
#[derive(Debug, Clone)]
pub struct UbusHandle {
    events: mpsc::Sender<(String, Table)>,
    calls: mpsc::Sender<OutgoingRequest>,
}

impl UbusHandle {
    /// Queues event `name` (e.g. `b4.state`) for every `ubus listen` listener.
    /// Never blocks; an event that does not fit the queue, or that finds ubusd
    /// away, is dropped (and counted by the connection).
    pub fn publish_event(&self, name: &str, data: Table) -> bool {
        self.events.try_send((name.to_string(), data)).is_ok()
    }

    /// `ubus call PATH METHOD ARGS`: the DATA answered, or the failing status
    /// (10 when ubusd is not connected or the driver is gone).
    pub async fn call(&self, path: &str, method: &str, args: Table) -> CallResult {
        let (tx, rx) = oneshot::channel();
        let request = OutgoingRequest {
            path: path.to_string(),
            method: method.to_string(),
            args,
            result: tx,
        };
        if self.calls.send(request).await.is_err() {
            return Err(Status::ConnectionFailed);
        }
        rx.await.unwrap_or(Err(Status::ConnectionFailed))
    }
}

/// The driver's ends of the channels behind a [`UbusHandle`].
pub struct HandleEnds {
    pub events: mpsc::Receiver<(String, Table)>,
    pub calls: mpsc::Receiver<OutgoingRequest>,
}

/// The channels of a driver: give `handle` to publishers and callers, and run
/// the driver with the ends.
pub fn channels() -> (UbusHandle, HandleEnds) {
    let (events, events_rx) = mpsc::channel(32);
    let (calls, calls_rx) = mpsc::channel(8);
    (
        UbusHandle { events, calls },
        HandleEnds {
            events: events_rx,
            calls: calls_rx,
        },
    )
}

async fn wait_reply(id: CallId, rx: oneshot::Receiver<Reply>) -> (CallId, Reply) {
    (id, rx.await.unwrap_or(Reply::error(Status::UnknownError)))
}

/// Runs until `shutdown` turns true (or its sender is gone). ubusd being absent
/// is not an error: the connection retries with backoff and says so once.
pub async fn run(
    socket: PathBuf,
    objects: Vec<Published>,
    ends: HandleEnds,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let HandleEnds {
        mut events,
        mut calls,
    } = ends;
    let mut calls_open = true;
    let mut callers: Vec<(OutgoingId, oneshot::Sender<CallResult>)> = Vec::new();
    let names: Vec<String> = objects.iter().map(|o| o.spec.name.clone()).collect();
    let mut core = Connection::new(
        objects.iter().map(|o| o.spec.clone()).collect(),
        Instant::now(),
    );
    let mut stream: Option<UnixStream> = None;
    let mut replies = FuturesUnordered::new();
    let mut events_open = true;
    // Log the first failure of a series; later ones only at debug level.
    let mut quiet = false;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while let Some(action) = core.poll_action() {
            match action {
                Action::Connect => match UnixStream::connect(&socket).await {
                    Ok(s) => {
                        debug!("ubus: connected to {}", socket.display());
                        stream = Some(s);
                        core.handle_connected(Instant::now());
                    }
                    Err(e) => {
                        if !quiet {
                            warn!(
                                "ubus: cannot connect to {}: {e}; retrying quietly (at least every {} s)",
                                socket.display(),
                                RECONNECT_MAX.as_secs()
                            );
                            quiet = true;
                        } else {
                            debug!("ubus: cannot connect to {}: {e}", socket.display());
                        }
                        core.handle_connect_failed(Instant::now());
                    }
                },
                Action::Send(bytes) => {
                    let written = match stream.as_mut() {
                        Some(s) => tokio::time::timeout(WRITE_TIMEOUT, s.write_all(&bytes))
                            .await
                            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into())),
                        None => Err(io::ErrorKind::NotConnected.into()),
                    };
                    if let Err(e) = written {
                        if e.kind() == io::ErrorKind::TimedOut {
                            warn!(
                                "ubus: ubusd read nothing for {} s; reconnecting",
                                WRITE_TIMEOUT.as_secs()
                            );
                        }
                        debug!("ubus: write failed: {e}");
                        stream = None;
                        core.handle_closed(Instant::now());
                    }
                }
                Action::Disconnect(why) => {
                    if quiet {
                        debug!("ubus: dropping the connection to ubusd: {why:?}");
                    } else {
                        warn!("ubus: dropping the connection to ubusd: {why:?}; retrying quietly");
                        quiet = true;
                    }
                    stream = None;
                    core.handle_closed(Instant::now());
                }
                Action::Registered {
                    object,
                    id,
                    type_id,
                } => {
                    info!(
                        "ubus: object {} registered as id {id:#010x} (type {type_id:#010x})",
                        names[object]
                    );
                    quiet = false;
                }
                Action::RegistrationFailed { object, status } => {
                    if !quiet {
                        warn!(
                            "ubus: ubusd refused object {}: status {status}; retrying quietly",
                            names[object]
                        );
                        quiet = true;
                    }
                }
                Action::Call(call) => {
                    let Call {
                        id,
                        object,
                        method,
                        args,
                        user,
                        ..
                    } = call;
                    debug!("ubus: call {}.{method} {}", names[object], loggable(&args));
                    let (tx, rx) = oneshot::channel();
                    let request = UbusRequest {
                        method,
                        args,
                        user,
                        reply: tx,
                    };
                    // A full queue means the daemon is busy; the caller gets an
                    // error now rather than a timeout later.
                    if objects[object].requests.try_send(request).is_err() {
                        core.reply(id, Reply::error(Status::UnknownError));
                    } else {
                        replies.push(wait_reply(id, rx));
                    }
                }
                Action::Answered { id, result } => {
                    if let Some(pos) = callers.iter().position(|(c, _)| *c == id) {
                        let (_, caller) = callers.swap_remove(pos);
                        // The caller may have given up waiting; nothing to do then.
                        let _ = caller.send(result);
                    }
                }
            }
        }
        if *shutdown.borrow() || shutdown.has_changed().is_err() {
            flush_events(&mut core, stream.as_mut(), &mut events).await;
            return Ok(());
        }
        let deadline = core.poll_timeout();
        tokio::select! {
            _ = shutdown.changed() => {}
            _ = sleep_until(deadline) => core.handle_timeout(Instant::now()),
            read = async { stream.as_mut().expect("guarded").read(&mut buf).await }, if stream.is_some() => {
                match read {
                    Ok(0) | Err(_) => {
                        if core.is_ready() {
                            warn!("ubus: connection to ubusd lost; reconnecting");
                        }
                        stream = None;
                        core.handle_closed(Instant::now());
                    }
                    Ok(n) => core.handle_bytes(Instant::now(), &buf[..n]),
                }
            }
            Some((id, reply)) = replies.next(), if !replies.is_empty() => core.reply(id, reply),
            event = events.recv(), if events_open => match event {
                Some((name, data)) => {
                    if !core.publish_event(&name, data) {
                        debug!("ubus: event {name} dropped: ubusd not connected");
                    }
                }
                None => events_open = false,
            },
            request = calls.recv(), if calls_open => match request {
                Some(OutgoingRequest { path, method, args, result }) => {
                    debug!("ubus: calling {path}.{method} {args}");
                    let id = core.call(Instant::now(), &path, &method, args);
                    callers.push((id, result));
                }
                None => calls_open = false,
            },
        }
    }
}

/// At shutdown: the events queued until then (the last `b4.state`) still go
/// to ubusd, if it is there; nothing else is done any more.
async fn flush_events(
    core: &mut Connection,
    mut stream: Option<&mut UnixStream>,
    events: &mut mpsc::Receiver<(String, Table)>,
) {
    while let Ok((name, data)) = events.try_recv() {
        core.publish_event(&name, data);
    }
    while let Some(action) = core.poll_action() {
        if let (Action::Send(bytes), Some(s)) = (action, stream.as_mut()) {
            let written = tokio::time::timeout(WRITE_TIMEOUT, s.write_all(&bytes)).await;
            if !matches!(written, Ok(Ok(()))) {
                return;
            }
        }
    }
}

/// A call's arguments as logged: the rpcd session id uhttpd adds to every
/// call from LuCI is a login token, and logs get read by others (LuCI's
/// log page, remote syslog, forum posts).
fn loggable(args: &Table) -> Table {
    Table(
        args.iter()
            .map(|(name, value)| match name {
                "ubus_rpc_session" => (name.to_string(), "(hidden)".into()),
                _ => (name.to_string(), value.clone()),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_token_is_not_logged() {
        let args = Table::new()
            .with("ubus_rpc_session", "0123456789abcdef0123456789abcdef")
            .with("verbose", true);
        let shown = loggable(&args).to_string();
        assert_eq!(shown, r#"{"ubus_rpc_session":"(hidden)","verbose":true}"#);
    }
}
