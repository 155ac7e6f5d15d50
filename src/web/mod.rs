//! The HTTP edge: how connections are served, and what every response carries whichever
//! route wrote it.

pub mod authorization;
pub mod errors;
pub mod headers;
pub mod serve;
