//! Background jobs: work the server repeats while it runs (purging expired rows), started in
//! one place and each logged under its own name when a round fails.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;

/// Runs `round` every `period` (the first at once) until the returned task is aborted or the
/// runtime stops. A failed round is logged as a warning naming `job`; the next one runs on
/// time regardless.
pub fn every<F, Fut, E>(job: &'static str, period: Duration, mut round: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<usize, E>> + Send,
    E: std::fmt::Display,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        loop {
            ticks.tick().await;
            match round().await {
                Ok(0) => {}
                Ok(done) => tracing::debug!(job, done, "background job ran"),
                Err(e) => tracing::warn!(job, error = %e, "background job failed"),
            }
        }
    })
}
