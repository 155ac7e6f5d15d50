//! Time of one password hash with the server's own hasher and parameters, and what the hasher
//! sustains with every core hashing at once: `cargo bench --bench hash`. The hashing limit of
//! login throughput is cores ÷ the time of one hash; the second figure shows how much of that
//! the machine keeps when the cores hash side by side (they share caches and memory bandwidth,
//! and argon2 is memory-bound).

use std::time::Instant;

use user_api::signins::PasswordHasher;

fn main() -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let hasher = PasswordHasher::new(1)?;
        let phc = hasher.hash("warm-up password".into()).await?;
        let rounds = 100;
        let started = Instant::now();
        for _ in 0..rounds {
            hasher
                .verify("bench password 1".into(), phc.clone())
                .await?;
        }
        let per_hash = started.elapsed().as_secs_f64() / f64::from(rounds);
        println!(
            "argon2id verify: {:.2} ms per hash (mean of {rounds}, one at a time)",
            per_hash * 1e3
        );

        let parallel = PasswordHasher::new(cores)?;
        let total = 40 * cores;
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..total {
            let (hasher, phc) = (parallel.clone(), phc.clone());
            tasks.spawn(async move { hasher.verify("bench password 1".into(), phc).await });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        let rate = total as f64 / started.elapsed().as_secs_f64();
        println!(
            "argon2id verify: {rate:.1} hashes/s with {cores} at once ({:.0}% of cores ÷ one hash)",
            100.0 * rate * per_hash / cores as f64
        );
        Ok::<(), anyhow::Error>(())
    })
}
