//! Processes spawned inside namespaces, with captured, searchable output.

use super::{millis, TestDir};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Signals a test can send to a [`Process`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Term,
    Hup,
    Int,
    Kill,
    Usr1,
    Usr2,
}

impl Signal {
    /// The libc signal number.
    pub fn number(self) -> libc::c_int {
        match self {
            Signal::Term => libc::SIGTERM,
            Signal::Hup => libc::SIGHUP,
            Signal::Int => libc::SIGINT,
            Signal::Kill => libc::SIGKILL,
            Signal::Usr1 => libc::SIGUSR1,
            Signal::Usr2 => libc::SIGUSR2,
        }
    }
}

/// Which stream a captured line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One captured line of output.
#[derive(Debug, Clone)]
pub struct Line {
    /// When the harness read the line (good enough for timing checks at
    /// 10 ms resolution; the program's own timestamps are better if it
    /// prints them).
    pub at: Instant,
    pub stream: Stream,
    pub text: String,
}

#[derive(Default)]
struct Captured {
    lines: Vec<Line>,
    /// Streams whose reader thread is still running.
    open: usize,
}

struct Output {
    state: Mutex<Captured>,
    changed: Condvar,
}

/// A program running inside a namespace (spawn it with [`Process::spawn`] or
/// [`Netns::spawn`](super::Netns::spawn)).
///
/// Its stdout and stderr are appended to `<name>.stdout` / `<name>.stderr` in
/// the [`TestDir`], and both streams, in arrival order, to `<name>.log`
/// (with a `+seconds` timestamp and `out`/`err` tag per line). All lines are
/// also kept in memory, numbered from 0, for [`wait_for_line`] and friends.
///
/// The process keeps a *cursor*: [`wait_for_line`] only looks at lines at or
/// after it and moves it past the line it returns, so calling it twice with
/// the same needle waits for the next occurrence. [`mark`] and
/// [`wait_for_line_after`] give explicit positions instead.
///
/// Dropping a still-running process sends SIGTERM, waits 2 s, then SIGKILLs.
///
/// [`wait_for_line`]: Process::wait_for_line
/// [`wait_for_line_after`]: Process::wait_for_line_after
/// [`mark`]: Process::mark
pub struct Process {
    name: String,
    pid: u32,
    started: Instant,
    child: Mutex<Child>,
    output: Arc<Output>,
    cursor: Mutex<usize>,
    log_path: PathBuf,
    log: Arc<Mutex<File>>,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .field("log", &self.log_path)
            .finish()
    }
}

impl Process {
    /// Spawns `cmd` (usually from [`Netns::command`](super::Netns::command),
    /// which wraps it in `ip netns exec`) with its output captured under
    /// `name` in `dir`. stdin is `/dev/null`.
    pub fn spawn(dir: &TestDir, name: &str, mut cmd: Command) -> Process {
        let open = |ext: &str| -> (PathBuf, File) {
            let p = dir.file(&format!("{name}.{ext}"));
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", p.display()));
            (p, f)
        };
        let (_, out_file) = open("stdout");
        let (_, err_file) = open("stderr");
        let (log_path, mut log_file) = open("log");
        let _ = writeln!(log_file, "+0.000 [harness] spawn {cmd:?}");
        let log = Arc::new(Mutex::new(log_file));

        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {name} ({cmd:?}): {e}"));
        let pid = child.id();
        let started = Instant::now();
        let output = Arc::new(Output {
            state: Mutex::new(Captured {
                lines: Vec::new(),
                open: 2,
            }),
            changed: Condvar::new(),
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        for (stream, reader, file) in [
            (
                Stream::Stdout,
                Box::new(stdout) as Box<dyn Read + Send>,
                out_file,
            ),
            (
                Stream::Stderr,
                Box::new(stderr) as Box<dyn Read + Send>,
                err_file,
            ),
        ] {
            let output = Arc::clone(&output);
            let log = Arc::clone(&log);
            std::thread::Builder::new()
                .name(format!("{name}-{stream:?}"))
                .spawn(move || read_stream(stream, reader, file, log, output, started))
                .expect("spawn reader thread");
        }
        Process {
            name: name.to_string(),
            pid,
            started,
            child: Mutex::new(child),
            output,
            cursor: Mutex::new(0),
            log_path,
            log,
        }
    }

    /// When the harness spawned it.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The name given at spawn (also the log file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id (that of the program itself: `ip netns exec` execs).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Path of the combined `<name>.log`.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Number of lines captured so far: a position to pass to
    /// [`wait_for_line_after`](Self::wait_for_line_after) to wait only for
    /// output that comes later.
    pub fn mark(&self) -> usize {
        self.state().lines.len()
    }

    /// The current cursor of [`wait_for_line`](Self::wait_for_line).
    pub fn cursor(&self) -> usize {
        *self.cursor.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the cursor, e.g. to [`mark`](Self::mark) to skip everything
    /// printed so far.
    pub fn set_cursor(&self, pos: usize) {
        *self.cursor.lock().unwrap_or_else(|e| e.into_inner()) = pos;
    }

    /// Waits until a line containing `needle` appears at or after the
    /// cursor, moves the cursor just past it and returns it. Panics (with the
    /// last lines of output) on timeout, or when the process has exited and
    /// its output is exhausted without a match.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        let from = self.cursor();
        match self.wait_for_line_after(from, needle, timeout) {
            Some((idx, line)) => {
                self.set_cursor(idx + 1);
                line
            }
            None => panic!(
                "{}: no line containing {needle:?} after line {from} within {timeout:?}{}\n{}",
                self.name,
                if self.is_running() {
                    ""
                } else {
                    " (process has exited)"
                },
                self.tail(40)
            ),
        }
    }

    /// Like [`wait_for_line`](Self::wait_for_line) but returns `None`
    /// instead of panicking (and leaves the cursor alone then).
    pub fn try_wait_for_line(&self, needle: &str, timeout: Duration) -> Option<String> {
        let (idx, line) = self.wait_for_line_after(self.cursor(), needle, timeout)?;
        self.set_cursor(idx + 1);
        Some(line)
    }

    /// Waits for a line containing `needle` at index `>= pos`; returns its
    /// index and text, or `None` on timeout or when no more output can come.
    /// Does not touch the cursor.
    pub fn wait_for_line_after(
        &self,
        pos: usize,
        needle: &str,
        timeout: Duration,
    ) -> Option<(usize, String)> {
        let deadline = Instant::now() + timeout;
        let mut state = self.state();
        let mut scanned = pos;
        loop {
            if let Some(i) =
                (scanned..state.lines.len()).find(|&i| state.lines[i].text.contains(needle))
            {
                return Some((i, state.lines[i].text.clone()));
            }
            scanned = scanned.max(state.lines.len());
            if state.open == 0 {
                return None;
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            let wait = (deadline - now).min(millis(100));
            state = self
                .output
                .changed
                .wait_timeout(state, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// All captured lines (both streams) containing `needle`.
    pub fn lines_matching(&self, needle: &str) -> Vec<String> {
        self.state()
            .lines
            .iter()
            .filter(|l| l.text.contains(needle))
            .map(|l| l.text.clone())
            .collect()
    }

    /// Captured lines containing `needle`, with their arrival time, from
    /// index `pos` on.
    pub fn lines_matching_after(&self, pos: usize, needle: &str) -> Vec<Line> {
        self.state()
            .lines
            .iter()
            .skip(pos)
            .filter(|l| l.text.contains(needle))
            .cloned()
            .collect()
    }

    /// Number of captured lines containing `needle`.
    pub fn count_matching(&self, needle: &str) -> usize {
        self.state()
            .lines
            .iter()
            .filter(|l| l.text.contains(needle))
            .count()
    }

    /// Every captured line so far.
    pub fn lines(&self) -> Vec<Line> {
        self.state().lines.clone()
    }

    /// All captured output as one string (lines joined by `\n`).
    pub fn output_text(&self) -> String {
        let state = self.state();
        let mut s = String::new();
        for l in &state.lines {
            s.push_str(&l.text);
            s.push('\n');
        }
        s
    }

    /// The last `n` lines, formatted for a panic message.
    pub fn tail(&self, n: usize) -> String {
        let state = self.state();
        let start = state.lines.len().saturating_sub(n);
        let mut s = format!(
            "--- last {} lines of {} (full log: {}) ---\n",
            state.lines.len() - start,
            self.name,
            self.log_path.display()
        );
        for l in &state.lines[start..] {
            s.push_str(&l.text);
            s.push('\n');
        }
        s
    }

    /// Sends `sig`; panics if the process has already exited (its pid may
    /// have been reused).
    pub fn signal(&self, sig: Signal) {
        assert!(
            self.try_signal(sig),
            "{}: cannot send {sig:?}, process has exited",
            self.name
        );
    }

    /// Sends `sig` if the process is still running; returns whether it did.
    pub fn try_signal(&self, sig: Signal) -> bool {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        self.note(&format!("signal {sig:?}"));
        // SAFETY: the child is not reaped yet (checked above while holding
        // the lock), so the pid still names it.
        unsafe { libc::kill(self.pid as libc::pid_t, sig.number()) == 0 }
    }

    /// Whether the process is still running.
    pub fn is_running(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        matches!(child.try_wait(), Ok(None))
    }

    /// The exit status if the process has exited.
    pub fn try_exit_status(&self) -> Option<ExitStatus> {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        child.try_wait().ok().flatten()
    }

    /// Waits for the process to exit; panics after `timeout`.
    pub fn wait_exit(&self, timeout: Duration) -> ExitStatus {
        self.try_wait_exit(timeout).unwrap_or_else(|| {
            panic!(
                "{}: still running after {timeout:?}\n{}",
                self.name,
                self.tail(20)
            )
        })
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn try_wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit_status() {
                self.wait_output_closed(millis(500));
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(millis(10));
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace`; returns the
    /// exit status.
    pub fn stop(&self, grace: Duration) -> ExitStatus {
        self.try_signal(Signal::Term);
        if let Some(status) = self.try_wait_exit(grace) {
            return status;
        }
        self.try_signal(Signal::Kill);
        self.wait_exit(Duration::from_secs(5))
    }

    /// Seconds since spawn.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Captured> {
        self.output.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until both reader threads have seen end of file.
    fn wait_output_closed(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut state = self.state();
        while state.open > 0 {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            state = self
                .output
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn note(&self, what: &str) {
        if let Ok(mut f) = self.log.lock() {
            let t = self.started.elapsed().as_secs_f64();
            let _ = writeln!(f, "+{t:.3} [harness] {what}");
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let status = if self.is_running() {
            self.try_signal(Signal::Term);
            match self.try_wait_exit(Duration::from_secs(2)) {
                Some(s) => Some(s),
                None => {
                    self.try_signal(Signal::Kill);
                    self.try_wait_exit(Duration::from_secs(5))
                }
            }
        } else {
            self.try_exit_status()
        };
        self.wait_output_closed(millis(500));
        match status {
            Some(s) => self.note(&format!("exited: {s}")),
            None => self.note("could not be stopped"),
        }
    }
}

fn read_stream(
    stream: Stream,
    reader: Box<dyn Read + Send>,
    mut file: File,
    log: Arc<Mutex<File>>,
    output: Arc<Output>,
    started: Instant,
) {
    let tag = match stream {
        Stream::Stdout => "out",
        Stream::Stderr => "err",
    };
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let _ = file.write_all(&buf);
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        let text = String::from_utf8_lossy(&buf).into_owned();
        let at = Instant::now();
        if let Ok(mut f) = log.lock() {
            let t = at.duration_since(started).as_secs_f64();
            let _ = writeln!(f, "+{t:.3} {tag} {text}");
        }
        let mut state = output.state.lock().unwrap_or_else(|e| e.into_inner());
        state.lines.push(Line { at, stream, text });
        output.changed.notify_all();
    }
    let mut state = output.state.lock().unwrap_or_else(|e| e.into_inner());
    state.open -= 1;
    output.changed.notify_all();
}
