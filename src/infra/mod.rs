//! Infrastructure: the parts every service builds on and none owns — the fair connection
//! pool, Redis connections and the call helper, background jobs, and the metrics registry.
//! Nothing here knows the domain or a transport.

pub mod jobs;
pub mod metrics;
pub mod pool;
pub mod redis;
