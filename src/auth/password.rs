//! Password hashing with argon2id (OWASP's minimum: m = 19 MiB, t = 2, p = 1), stored as PHC
//! strings. Hashing is CPU- and memory-heavy, so it runs off the async runtime on a small pool of
//! its own (one thread per core), behind a semaphore of the same size: a login flood queues
//! instead of exhausting memory or starving the runtime. The pool's threads run at a lower CPU
//! priority (nice ≈ 10), so while logins pour in, every other request still gets the CPU first
//! and argon2 takes what is left — which, without other load, is all of it.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use thread_priority::{ThreadPriority, ThreadPriorityValue};
use tokio::sync::{OnceCell, Semaphore, oneshot};

use crate::error::AppError;

/// Hashes and verifies passwords off the async runtime, a bounded number at a time.
#[derive(Clone)]
pub struct PasswordHasher {
    pool: Arc<rayon::ThreadPool>,
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the username is unknown so
    /// that such a login costs the same time as a wrong password.
    dummy: Arc<OnceCell<String>>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("available", &self.permits.available_permits())
            .finish()
    }
}

/// Priority of the hashing threads on the 0 (lowest) to 99 (highest) scale of
/// `thread_priority`, which maps to a nice value of about 10: such a thread gets roughly a
/// tenth of a core that a normal thread also wants.
const HASH_THREAD_PRIORITY: u8 = 25;

fn lower_priority() {
    let lowered = ThreadPriorityValue::try_from(HASH_THREAD_PRIORITY)
        .map_err(|e| format!("{e:?}"))
        .and_then(|v| {
            thread_priority::set_current_thread_priority(ThreadPriority::Crossplatform(v))
                .map_err(|e| format!("{e:?}"))
        });
    if let Err(e) = lowered {
        // Not fatal: hashing is still bounded, only without the priority hint.
        tracing::warn!(error = %e, "cannot lower the priority of a hashing thread");
    }
}

fn argon2() -> Argon2<'static> {
    // 19 MiB, 2 passes, 1 lane: OWASP's recommended minimum for argon2id. The values are
    // constants within argon2's limits, so `Params::new` cannot fail on them.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl PasswordHasher {
    /// A hasher that runs at most `concurrency` hashes at once, on as many threads.
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let concurrency = concurrency.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(concurrency)
            .thread_name(|i| format!("argon2-{i}"))
            .start_handler(|_| lower_priority())
            .build()?;
        Ok(PasswordHasher {
            pool: Arc::new(pool),
            permits: Arc::new(Semaphore::new(concurrency)),
            dummy: Arc::new(OnceCell::new()),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        // Waiting happens here, in FIFO order, and a caller that goes away leaves the queue;
        // the pool never holds more jobs than it has threads.
        let _permit = self.permits.acquire().await.map_err(AppError::internal)?;
        let (done, result) = oneshot::channel();
        self.pool.spawn(move || {
            let _ = done.send(job());
        });
        result.await.map_err(AppError::internal)
    }

    /// Hashes `password` with a fresh salt into a PHC string.
    pub async fn hash(&self, password: String) -> Result<String, AppError> {
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| AppError::internal(anyhow::anyhow!("argon2: {e}")))
        })
        .await?
    }

    /// Checks `password` against a stored PHC string, in constant time. The parameters come
    /// from the string, so hashes made with older parameters still verify.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, AppError> {
        self.run(move || {
            let parsed = PasswordHash::new(&phc)
                .map_err(|e| AppError::internal(anyhow::anyhow!("stored hash: {e}")))?;
            Ok(argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await?
    }

    /// Spends one verification as if the user existed, and returns false.
    pub async fn verify_dummy(&self, password: String) -> Result<bool, AppError> {
        let phc = self
            .dummy
            .get_or_try_init(|| async {
                let random: String = uuid::Uuid::new_v4().simple().to_string();
                self.hash(random).await
            })
            .await?
            .clone();
        self.verify(password, phc).await.map(|_| false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let hasher = PasswordHasher::new(2).unwrap();
        let phc = hasher.hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(
            hasher
                .verify("correct horse".into(), phc.clone())
                .await
                .unwrap()
        );
        assert!(!hasher.verify("correct horsf".into(), phc).await.unwrap());
        assert!(!hasher.verify_dummy("anything".into()).await.unwrap());
    }
}
