//! Configuration (UCI `/etc/config/b4d`).
