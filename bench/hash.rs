//! Time of one password hash with the server's own hasher and parameters:
//! `cargo bench --bench hash`. The hashing limit of login throughput is cores ÷ this time.

use std::time::Instant;

use user_api::auth::password::PasswordHasher;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let hasher = PasswordHasher::new(1)?;
        let phc = hasher.hash("warm-up password".into()).await?;
        let rounds = 40;
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
        Ok(())
    })
}
