//! Logging to syslog (logd) or stderr.
