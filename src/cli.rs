//! Command-line arguments. Hand-written: a parser crate would cost more
//! flash than the handful of flags b4d has.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

pub const DEFAULT_CONFIG: &str = "/etc/config/b4d";

pub const USAGE: &str = "\
usage: b4d [run] [--config FILE] [--foreground] [--syslog-socket PATH]
       b4d check-config [--config FILE] [--get SECTION.OPTION]
       b4d --version | --help

  run              run the daemon (default)
  check-config     validate the configuration and print the effective one
  --get S.O        with check-config: print only option O of section S, as
                   b4d reads it (defaults filled in; named or anonymous
                   section alike; list items space-separated)
  --config FILE    UCI configuration file (default /etc/config/b4d)
  --foreground     log to stderr instead of syslog
  --syslog-socket  syslog socket path (default /dev/log)

signals: TERM/INT stop (releasing the DHCPv6 lease if configured),
         USR1 renews the DHCPv6 lease now";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run,
    CheckConfig,
    Version,
    Help,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub command: Command,
    pub config: PathBuf,
    pub foreground: bool,
    pub syslog_socket: Option<PathBuf>,
    /// `check-config --get SECTION.OPTION`.
    pub get: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgsError(pub String);

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n{USAGE}", self.0)
    }
}

impl Args {
    /// Parses arguments without the program name.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Args, ArgsError> {
        let mut parsed = Args {
            command: Command::Run,
            config: PathBuf::from(DEFAULT_CONFIG),
            foreground: false,
            syslog_socket: None,
            get: None,
        };
        let mut command_seen = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let text = arg
                .to_str()
                .ok_or_else(|| ArgsError(format!("argument {arg:?} is not UTF-8")))?;
            let mut value = |flag: &str| {
                args.next()
                    .map(PathBuf::from)
                    .ok_or_else(|| ArgsError(format!("{flag} needs a value")))
            };
            match text {
                "--config" | "-c" => parsed.config = value(text)?,
                "--syslog-socket" => parsed.syslog_socket = Some(value(text)?),
                "--get" => parsed.get = Some(value(text)?.display().to_string()),
                "--foreground" | "-f" => parsed.foreground = true,
                "--version" | "-V" => parsed.command = Command::Version,
                "--help" | "-h" => parsed.command = Command::Help,
                "run" | "check-config" if !command_seen => {
                    command_seen = true;
                    if parsed.command == Command::Run {
                        parsed.command = if text == "run" {
                            Command::Run
                        } else {
                            Command::CheckConfig
                        };
                    }
                }
                other => return Err(ArgsError(format!("unknown argument '{other}'"))),
            }
        }
        if parsed.get.is_some() && parsed.command != Command::CheckConfig {
            return Err(ArgsError("--get goes with check-config".into()));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, ArgsError> {
        Args::parse(args.iter().map(OsString::from))
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.command, Command::Run);
        assert_eq!(a.config, PathBuf::from(DEFAULT_CONFIG));
        assert!(!a.foreground);
    }

    #[test]
    fn check_config_with_path() {
        let a = parse(&["check-config", "--config", "/tmp/x"]).unwrap();
        assert_eq!(a.command, Command::CheckConfig);
        assert_eq!(a.config, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn errors_name_the_argument() {
        assert!(parse(&["--bogus"]).unwrap_err().0.contains("--bogus"));
        assert!(parse(&["--config"])
            .unwrap_err()
            .0
            .contains("needs a value"));
        assert!(parse(&["run", "run"]).is_err());
        assert!(parse(&["--get", "wan.device"]).is_err());
    }

    #[test]
    fn check_config_gets_one_option() {
        let a = parse(&["check-config", "--get", "tunnel.name"]).unwrap();
        assert_eq!(a.get.as_deref(), Some("tunnel.name"));
    }
}
