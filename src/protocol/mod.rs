//! The LDAP wire: listener, connection loop, framing and decoding, response encoding.

pub mod connection;
pub mod controls;
pub mod encode;
pub mod frame;
pub mod listener;
