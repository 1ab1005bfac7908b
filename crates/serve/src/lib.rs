//! What every HTTP listener of vaultsync shares, whichever mode runs it
//! (the operator's health port, the injection webhook's HTTPS port):
//! `listen` (caps on connections in all and per peer, an accept loop that
//! survives running out of file descriptors, HTTP/1 settings for hostile
//! clients), `admin` (`/live`, `/ready` and `/metrics`, answered the same
//! way in every mode) and `process_metrics` (the standard `process_*`
//! series).

#![forbid(unsafe_code)]

pub mod admin;
pub mod listen;
pub mod process_metrics;
