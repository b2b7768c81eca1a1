//! A stand-in for ubusd that plays the ubusd side of a recorded conversation
//! over a real unix socket and checks the client's side byte for byte.
//!
//! It frames messages on its own (12 bytes, then the rest, as ubusd does) so
//! that a framing bug in the code under test cannot hide behind the same bug
//! here. Dropping it closes the connection and removes the socket file.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct UbusdReplay {
    path: PathBuf,
    listener: Option<UnixListener>,
    conn: Option<UnixStream>,
}

impl UbusdReplay {
    /// Listens on `path` (replacing a stale socket file).
    pub fn listen(path: &Path) -> UbusdReplay {
        let mut peer = UbusdReplay {
            path: path.to_path_buf(),
            listener: None,
            conn: None,
        };
        peer.start();
        peer
    }

    /// "ubusd started": bind the socket (again).
    pub fn start(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let listener = UnixListener::bind(&self.path)
            .unwrap_or_else(|e| panic!("cannot bind {}: {e}", self.path.display()));
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        self.listener = Some(listener);
    }

    /// "ubusd killed": the client sees EOF, and connecting fails (ENOENT) until
    /// [`UbusdReplay::start`].
    pub fn kill(&mut self) {
        self.conn = None;
        self.listener = None;
        let _ = std::fs::remove_file(&self.path);
    }

    /// Waits for the client to connect.
    pub fn accept(&mut self, timeout: Duration) {
        let listener = self.listener.as_ref().expect("listening");
        let deadline = Instant::now() + timeout;
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).expect("blocking stream");
                    self.conn = Some(stream);
                    return;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    assert!(
                        Instant::now() < deadline,
                        "no client connected to {} within {timeout:?}",
                        self.path.display()
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }

    /// Checks that no client has connected.
    pub fn expect_no_client(&mut self) {
        let listener = self.listener.as_ref().expect("listening");
        if let Ok((_, addr)) = listener.accept() {
            panic!("a client connected to {} ({addr:?})", self.path.display());
        }
    }

    fn conn(&mut self) -> &mut UnixStream {
        self.conn.as_mut().expect("a client is connected")
    }

    /// Sends bytes to the client (one or more whole messages).
    pub fn send(&mut self, bytes: &[u8]) {
        self.conn().write_all(bytes).expect("write to client");
    }

    /// Reads one message; `None` on EOF (or nothing within `timeout`).
    pub fn read_message(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let conn = self.conn();
        conn.set_read_timeout(Some(timeout)).expect("read timeout");
        let mut msg = vec![0u8; 12];
        if conn.read_exact(&mut msg).is_err() {
            return None;
        }
        let len = (u32::from_be_bytes([msg[8], msg[9], msg[10], msg[11]]) & 0x00ff_ffff) as usize;
        assert!(
            (4..=1 << 20).contains(&len),
            "client sent a bad length {len}"
        );
        msg.resize(8 + len, 0);
        conn.read_exact(&mut msg[12..])
            .expect("rest of the message");
        Some(msg)
    }

    /// Reads one message and checks it is exactly `want`.
    pub fn expect(&mut self, want: &[u8], what: &str) {
        let got = self
            .read_message(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{what}: client sent nothing"));
        assert_eq!(super::hex(&got), super::hex(want), "{what}: bytes differ");
    }

    /// Checks that the client sends nothing for `quiet`.
    pub fn expect_silence(&mut self, quiet: Duration, what: &str) {
        if let Some(got) = self.read_message(quiet) {
            panic!("{what}: client sent {}", super::hex(&got));
        }
    }

    /// Checks that the client closes the connection.
    pub fn expect_eof(&mut self, what: &str) {
        let conn = self.conn();
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        let mut byte = [0u8; 1];
        match conn.read(&mut byte) {
            Ok(0) => self.conn = None,
            other => panic!("{what}: expected EOF, got {other:?}"),
        }
    }
}

impl Drop for UbusdReplay {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
