//! The logger: stderr or syslog, and the access line.
