//! Integration tests of gate ↔ centre synchronisation: the site PKI and the mutual-TLS
//! listener (`tls`), over real TLS on loopback against real central databases.
//!
//! One binary per surface (`tests/gate`, `tests/api`, `tests/sync`), a module per area.

mod tls;
