//! Infrastructure: the parts every service builds on and none owns — the fair connection
//! pool, Redis connections and the call helper, background jobs, the metrics registry, and opaque random tokens.
//! Nothing here knows the domain or a transport.

pub mod jobs;
pub mod metrics;
pub mod opaque_token;
pub mod pool;
pub mod redis;
