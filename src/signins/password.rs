//! Password hashing with argon2id (OWASP's minimum: m = 19 MiB, t = 2, p = 1), stored as PHC
//! strings. Hashing is CPU- and memory-heavy, so it runs off the async runtime on a small pool of
//! its own (one thread per core), behind a semaphore that lets one more job per thread wait in
//! the pool: a login flood queues instead of exhausting memory or starving the runtime, and a
//! thread that finishes a hash starts the next at once instead of idling until the runtime
//! hands it one. The pool's threads run at the lowest CPU priority there is (Linux's
//! `SCHED_IDLE`): argon2 gets the CPU time no other thread wants — without other load, all of
//! it — and a request's thread that wakes takes a core from it at once, so a login flood does
//! not slow other requests down.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use std::cell::RefCell;

use argon2::password_hash::{self, Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use thread_priority::{ThreadPriority, ThreadPriorityValue};
use tokio::sync::{OnceCell, Semaphore, oneshot};

use crate::error::AppError;

/// Hashes and verifies passwords off the async runtime, a bounded number at a time.
#[derive(Clone)]
pub struct PasswordHasher {
    pool: Arc<rayon::ThreadPool>,
    permits: Arc<Semaphore>,
    /// How many permits there are: when all but one are free, the job holding that one is the
    /// last.
    all_permits: usize,
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
/// `thread_priority`, where `SCHED_IDLE` is not available: it maps to a nice value of about
/// 10, so such a thread gets roughly a tenth of a core that a normal thread also wants.
const HASH_THREAD_PRIORITY: u8 = 25;

/// Moves the calling (hashing) thread to `SCHED_IDLE`, or failing that lowers its nice value.
///
/// Under a nice value alone, the scheduler still lets a hashing thread finish its time slice
/// before a woken request thread runs, at every hand-off of a request (client, Redis,
/// database), which stretches the tail of every other request during a login flood. Under
/// `SCHED_IDLE` the tail stays as it is without a flood; bench/RESULTS.md has the figures.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};
        let idle = thread_priority::set_thread_priority_and_policy(
            thread_priority::thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        );
        match idle {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = ?e, "cannot move a hashing thread to SCHED_IDLE; lowering its nice value instead");
            }
        }
    }
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
    /// A hasher that runs at most `concurrency` hashes at once, on as many threads, with at
    /// most as many more queued in the pool.
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let concurrency = concurrency.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(concurrency)
            .thread_name(|i| format!("argon2-{i}"))
            .start_handler(|_| lower_priority())
            .build()?;
        Ok(PasswordHasher {
            pool: Arc::new(pool),
            // Queued jobs cost no memory (argon2's blocks belong to the threads), and without
            // them each thread idled between hashes while the finished job's task woke, gave
            // its permit back and the next waiter's task spawned a job.
            permits: Arc::new(Semaphore::new(2 * concurrency)),
            all_permits: 2 * concurrency,
            dummy: Arc::new(OnceCell::new()),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        // Waiting happens here, in FIFO order, and a caller that goes away leaves the queue;
        // the pool never holds more than two jobs per thread.
        let _permit = self.permits.acquire().await.map_err(AppError::internal)?;
        let (done, result) = oneshot::channel();
        let permits = self.permits.clone();
        let all = self.all_permits;
        self.pool.spawn(move || {
            // A caller that went away while its job sat in the pool needs no hash.
            if done.is_closed() {
                return;
            }
            let result = job();
            // No other job in the pool or waiting for it (only this one's permit is out, and
            // its caller has not had the answer yet): the hasher goes idle, and its working
            // memory goes back to the system once the answer is on its way. Under load the
            // next job is already there and the memory stays (see `BLOCKS`).
            let idle = permits.available_permits() + 1 >= all;
            let _ = done.send(result);
            if idle {
                // Every thread of the pool: the others went idle before this one did.
                rayon::spawn_broadcast(|_| BLOCKS.with_borrow_mut(|blocks| *blocks = Vec::new()));
            }
        });
        result.await.map_err(AppError::internal)
    }

    /// Hashes `password` with a fresh salt into a PHC string.
    pub async fn hash(&self, password: String) -> Result<String, AppError> {
        self.run(move || {
            hash_phc(&password).map_err(|e| AppError::internal(anyhow::anyhow!("argon2: {e}")))
        })
        .await?
    }

    /// Checks `password` against a stored PHC string, in constant time. The parameters come
    /// from the string, so hashes made with older parameters still verify.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, AppError> {
        self.run(move || {
            verify_phc(&password, &phc)
                .map_err(|e| AppError::internal(anyhow::anyhow!("stored hash: {e}")))
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

thread_local! {
    /// argon2's working memory (19 MiB with our parameters), kept by each hashing thread and
    /// reused while jobs keep coming: allocating it per hash made the allocator keep several
    /// such blocks per thread, and a login flood grew the process by hundreds of MiB. Once
    /// the hasher is idle it is let go, so a quiet server does not hold 19 MiB per core.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// argon2 of `password` and `salt` into `out`, in this thread's reused working memory.
fn hash_into(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> argon2::Result<()> {
    BLOCKS.with_borrow_mut(|blocks| {
        let needed = argon2.params().block_count();
        if blocks.len() < needed {
            blocks.resize(needed, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut blocks[..needed])
    })
}

/// A PHC string for `password` with a fresh salt and the server's parameters.
fn hash_phc(password: &str) -> password_hash::Result<String> {
    let argon2 = argon2();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes)?;
    let len = argon2
        .params()
        .output_len()
        .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(len, |out| {
        hash_into(&argon2, password.as_bytes(), salt_bytes, out).map_err(password_hash::Error::from)
    })?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params())?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc`, with the parameters the string names (so
/// hashes made with older parameters still verify). The comparison is constant-time
/// (`Output`'s equality).
fn verify_phc(password: &str, phc: &str) -> password_hash::Result<bool> {
    let parsed = PasswordHash::new(phc)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Ok(false);
    };
    let algorithm = Algorithm::try_from(parsed.algorithm)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = Params::try_from(&parsed)?;
    let argon2 = Argon2::new(algorithm, version, params);
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
    let computed = Output::init_with(expected.len(), |out| {
        hash_into(&argon2, password.as_bytes(), salt_bytes, out).map_err(password_hash::Error::from)
    })?;
    Ok(computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of argon2 working memory the hashing thread holds now.
    async fn held(hasher: &PasswordHasher) -> usize {
        let (tell, told) = oneshot::channel();
        hasher.pool.spawn(move || {
            let _ = tell.send(BLOCKS.with_borrow(|b| b.capacity() * std::mem::size_of::<Block>()));
        });
        told.await.unwrap()
    }

    #[tokio::test]
    async fn an_idle_hasher_lets_its_working_memory_go() {
        let hasher = PasswordHasher::new(1).unwrap();
        hasher.hash("correct horse".into()).await.unwrap();
        assert_eq!(
            held(&hasher).await,
            0,
            "nothing else was queued: the memory went"
        );
        // Under load (another job waiting), the memory stays for the next hash.
        let (first, second) = tokio::join!(
            hasher.hash("correct horse".into()),
            hasher.run(|| BLOCKS.with_borrow(|b| b.capacity() * std::mem::size_of::<Block>()))
        );
        first.unwrap();
        assert_eq!(
            second.unwrap(),
            19 * 1024 * 1024,
            "kept while jobs were waiting"
        );
    }

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

    /// The hashing threads run under `SCHED_IDLE`, so that they only take CPU time that no
    /// request wants.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_idle_priority() {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};
        let hasher = PasswordHasher::new(2).unwrap();
        for _ in 0..2 {
            let policy = hasher
                .run(thread_priority::unix::thread_schedule_policy)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                policy,
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle)
            );
        }
    }

    /// A job whose caller went away while it waited in the pool is not run, and one job
    /// waits in the pool behind each running one.
    #[tokio::test]
    async fn a_queued_job_whose_caller_left_is_skipped() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::time::Duration;

        let hasher = PasswordHasher::new(1).unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let busy = {
            let hasher = hasher.clone();
            tokio::spawn(async move {
                hasher
                    .run(|| std::thread::sleep(Duration::from_millis(300)))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let counted = Arc::clone(&ran);
        let left = hasher.run(move || counted.fetch_add(1, Ordering::SeqCst));
        // Polled long enough to take the second permit and queue its job, then dropped.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), left)
                .await
                .is_err()
        );
        busy.await.unwrap().unwrap();
        let counted = Arc::clone(&ran);
        hasher
            .run(move || counted.fetch_add(10, Ordering::SeqCst))
            .await
            .unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 10);
    }

    /// PHC strings made and checked by the argon2 crate's own API agree with ours both ways,
    /// including ones with other parameters.
    #[test]
    fn interoperates_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let ours = hash_phc("correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(argon2().verify_password(b"correct horse", &parsed).is_ok());
        assert!(argon2().verify_password(b"wrong horse", &parsed).is_err());

        let params = Params::new(8 * 1024, 3, 1, None).unwrap();
        let other = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::generate(&mut OsRng);
        let theirs = other
            .hash_password(b"pass word", &salt)
            .unwrap()
            .to_string();
        assert!(verify_phc("pass word", &theirs).unwrap());
        assert!(!verify_phc("pass w0rd", &theirs).unwrap());
        assert!(verify_phc("x", "not a phc string").is_err());
    }
}
