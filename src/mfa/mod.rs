//! Multi-factor sign-in (API.md section 10): enrolling an authenticator app (TOTP), the
//! recovery codes that stand in for it, turning it off, an admin's reset, and the second step
//! of a login. [`Mfa`] is the service; GraphQL and REST both call it.
//!
//! A login whose password is right for an account with MFA on does not sign in: `SignIns`
//! opens a challenge (`signins::challenges`) and answers MFA_REQUIRED with its token, which
//! [`Mfa::login_second_factor`] completes with a code. Every code checked — at sign-in, to
//! turn MFA off, for new recovery codes — counts against the login limits, as a password
//! does, and against a per-user limit of wrong codes that no address escapes; and no code is
//! accepted twice (see [`codes::matching_step`] and `repo::accept_step`).

pub mod codes;
pub mod keys;
mod repo;

use std::sync::Arc;

use chrono::{TimeDelta, Utc};

use self::codes::Code;
use self::keys::MfaKeys;
use crate::accounts::model::{Role, User, UserView};
use crate::accounts::{repo as accounts, validation};
use crate::db::DbPool;
use crate::error::{AppError, Field};
use crate::events::{AccountEventKind, AccountEvents};
use crate::mail::compose::Mail;
use crate::signins::{SignInContext, SignIns, SignedIn, Viewer};
use crate::users::Mailroom;

/// How long an enrolment waits for its confirming code.
pub const ENROLMENT_TTL: TimeDelta = TimeDelta::minutes(10);

/// A wrong code (a right-looking one that is not the current TOTP code, was used already, or
/// is not one of the user's recovery codes).
const WRONG_CODE: AppError = AppError::Unauthenticated("invalid code");
/// A wrong current password.
const WRONG_PASSWORD: AppError = AppError::Unauthenticated("the current password is wrong");
/// MFA is on already.
const ALREADY_ON: AppError =
    AppError::Conflict("two-step sign-in is already on; turn it off first to enrol anew");
/// MFA is off.
const NOT_ON: AppError = AppError::Conflict("two-step sign-in is not on");
/// A non-admin asking for an admin operation.
const ADMINS_ONLY: AppError = AppError::Forbidden("only an admin may do this");
/// An admin resetting their own MFA: that needs their password and a code (`disableTotp`), or
/// a stolen token alone could strip the admin's second factor.
const OWN_RESET: AppError =
    AppError::Forbidden("turn your own two-step sign-in off with disableTotp");
/// An addressed user that does not exist.
const NO_SUCH_USER: AppError = AppError::NotFound("user not found");

/// A second factor found right, to be used up.
#[derive(Debug)]
enum Proof {
    /// The step of a TOTP code.
    Step(i64),
    /// The hash of a recovery code.
    Recovery(String),
}

/// An enrolment begun: what the authenticator app needs, shown once. Its `Debug` hides it.
#[derive(Clone)]
pub struct TotpEnrolment {
    /// The secret in base32, for typing into the app.
    pub secret: String,
    /// `otpauth://totp/{issuer}:{username}?secret=…&issuer=…`.
    pub otpauth_uri: String,
    /// The same URI as an SVG QR code.
    pub qr_svg: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpEnrolment([redacted])")
    }
}

/// The MFA service: built from exactly what it uses.
#[derive(Debug)]
pub struct Mfa {
    db: DbPool,
    keys: MfaKeys,
    sign_ins: Arc<SignIns>,
    mailroom: Arc<Mailroom>,
    events: AccountEvents,
    /// The issuer authenticator apps show (APP_NAME).
    issuer: String,
}

impl Mfa {
    /// The service over `db`, sealing secrets with `keys`, labelling them with `issuer`.
    pub fn new(
        db: DbPool,
        keys: MfaKeys,
        sign_ins: Arc<SignIns>,
        mailroom: Arc<Mailroom>,
        issuer: String,
    ) -> Self {
        Mfa {
            events: sign_ins.events().clone(),
            db,
            keys,
            sign_ins,
            mailroom,
            issuer,
        }
    }

    /// Starts the periodic purge of lapsed enrolments.
    pub fn spawn_maintenance(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let db = self.db.clone();
        vec![crate::infra::jobs::every(
            "purge lapsed totp enrolments",
            std::time::Duration::from_secs(600),
            move || {
                let db = db.clone();
                async move { repo::purge_lapsed(&db, Utc::now().naive_utc()).await }
            },
        )]
    }

    /// Begins enrolling an authenticator app for the caller, who proves their password: a new
    /// secret, waiting [`ENROLMENT_TTL`] for [`Mfa::confirm_enrolment`] (a newer enrolment
    /// replaces it). Changes nothing else: MFA stays off until confirmed.
    pub async fn start_enrolment(
        &self,
        viewer: &Viewer,
        current_password: String,
        context: &SignInContext,
    ) -> Result<TotpEnrolment, AppError> {
        viewer.require_verified()?;
        let user = &viewer.user;
        if user.mfa_enabled {
            return Err(ALREADY_ON);
        }
        if current_password.is_empty() {
            return Err(AppError::validation(
                Field::CurrentPassword,
                "the current password is required",
            ));
        }
        self.sign_ins
            .check_password(user, current_password, context, WRONG_PASSWORD)
            .await?;
        let secret = codes::new_secret();
        let sealed = self.keys.seal(&user.id, &secret)?;
        let expires_at = Utc::now().naive_utc() + ENROLMENT_TTL;
        // MFA turned on (or the account deleted) since the caller's request began.
        if !repo::start_enrolment(&self.db, &user.id, &sealed, expires_at).await? {
            return Err(ALREADY_ON);
        }
        let (base32, uri) = codes::provisioning(&secret, &self.issuer, &user.username);
        Ok(TotpEnrolment {
            qr_svg: codes::qr_svg(&uri)?,
            secret: base32,
            otpauth_uri: uri,
        })
    }

    /// Confirms the caller's enrolment with a code of its secret: turns MFA on and returns
    /// the recovery codes, shown this once (only their hashes are kept). Every other sign-in of
    /// the caller ends, as after a password change: they were opened with the password alone,
    /// perhaps by whoever the user is turning MFA on against. Sends a notice and an
    /// MFA_ENABLED event. Without an enrolment under way (or after it lapsed): BAD_USER_INPUT.
    pub async fn confirm_enrolment(
        &self,
        viewer: &Viewer,
        code: &str,
        context: &SignInContext,
    ) -> Result<Vec<String>, AppError> {
        viewer.require_verified()?;
        let Code::Totp(code) = Code::parse(code)? else {
            return Err(AppError::validation(
                Field::Code,
                "confirm with the 6 digits the authenticator app shows",
            ));
        };
        let user = &viewer.user;
        if user.mfa_enabled {
            return Err(ALREADY_ON);
        }
        let now = Utc::now();
        let no_enrolment = || {
            AppError::validation(
                Field::Code,
                "no enrolment is under way (or it lapsed): start one with startTotpEnrollment",
            )
        };
        let row = repo::find(&self.db, &user.id).await?;
        let pending = row
            .as_ref()
            .and_then(|row| row.live_enrolment(now.naive_utc()))
            .ok_or_else(no_enrolment)?;
        let limiter = self.sign_ins.limiter();
        limiter.check_login_address(context.ip).await?;
        let check = limiter.begin_code_check(&user.id).await?;
        let secret = self.keys.open(&user.id, pending)?;
        let step = codes::matching_step(&secret, &code, unix_seconds(now))
            .and_then(|step| i64::try_from(step).ok())
            .ok_or(WRONG_CODE)?;
        limiter.password_was_right(check).await;
        let (recovery, hashes) = self.new_recovery_codes();
        let mail = self
            .mailroom
            .notice(user, &user.email, &Mail::MfaEnabled, now.naive_utc())?;
        let confirmation = repo::Confirmation {
            pending,
            step,
            code_hashes: &hashes,
            mail: &mail,
            now: now.naive_utc(),
        };
        if !repo::confirm(&self.db, &user.id, &confirmation).await? {
            return Err(no_enrolment());
        }
        self.mailroom.queued();
        self.sign_ins.end_others_surely(viewer).await;
        self.events
            .publish(
                &user.id,
                AccountEventKind::MfaEnabled,
                Some(&viewer.session_id),
            )
            .await;
        Ok(recovery)
    }

    /// Turns the caller's MFA off; needs their password and a code (TOTP or recovery). Sends
    /// a notice and an MFA_DISABLED event; sign-ins awaiting a second factor end.
    pub async fn disable(
        &self,
        viewer: &Viewer,
        current_password: String,
        code: &str,
        context: &SignInContext,
    ) -> Result<(), AppError> {
        viewer.require_verified()?;
        let code = Code::parse(code)?;
        let user = &viewer.user;
        if !user.mfa_enabled {
            return Err(NOT_ON);
        }
        self.sign_ins
            .check_password(user, current_password, context, WRONG_PASSWORD)
            .await?;
        self.check_code_of(user, &code, context).await?;
        self.turn_off(user).await?;
        Ok(())
    }

    /// New recovery codes for the caller, who proves a code (TOTP or recovery); the old ones
    /// stop working. Returned this once.
    pub async fn regenerate_recovery_codes(
        &self,
        viewer: &Viewer,
        code: &str,
        context: &SignInContext,
    ) -> Result<Vec<String>, AppError> {
        viewer.require_verified()?;
        let code = Code::parse(code)?;
        let user = &viewer.user;
        if !user.mfa_enabled {
            return Err(NOT_ON);
        }
        self.check_code_of(user, &code, context).await?;
        let (recovery, hashes) = self.new_recovery_codes();
        // MFA turned off (or the account deleted) since the code was checked.
        if !repo::replace_recovery_codes(&self.db, &user.id, &hashes).await? {
            return Err(NOT_ON);
        }
        Ok(recovery)
    }

    /// Turns a user's MFA off, for one who lost their authenticator and their recovery codes.
    /// ADMIN only (else FORBIDDEN); NOT_FOUND when there is no such user. The user gets a
    /// notice and an MFA_DISABLED event when it was on.
    pub async fn reset_user_mfa(&self, viewer: &Viewer, id: &str) -> Result<UserView, AppError> {
        viewer.require_verified()?;
        if viewer.user.role != Role::Admin {
            return Err(ADMINS_ONLY);
        }
        if id == viewer.user.id {
            return Err(OWN_RESET);
        }
        if !validation::is_id(id) {
            return Err(NO_SUCH_USER);
        }
        let user = accounts::find_by_id(&self.db, id)
            .await?
            .ok_or(NO_SUCH_USER)?;
        self.turn_off(&user).await?;
        Ok(UserView::for_viewer(
            User {
                mfa_enabled: false,
                ..user
            },
            &viewer.user,
        ))
    }

    /// Completes a login that answered MFA_REQUIRED: `mfa_token` is its token, `code` a TOTP
    /// code or a recovery code. A malformed code is BAD_USER_INPUT and counts for nothing; a
    /// wrong one counts against the token's attempts and the login limits.
    pub async fn login_second_factor(
        &self,
        mfa_token: &str,
        code: &str,
        context: &SignInContext,
    ) -> Result<SignedIn, AppError> {
        let code = Code::parse(code)?;
        let pending = self
            .sign_ins
            .begin_second_factor(mfa_token, context)
            .await?;
        // Either way the challenge's attempt is spent before the answer is given; a wrong
        // code also stays counted against the login limits.
        let Some(proof) = self.verify(&pending.user, &code).await? else {
            self.sign_ins.count_wrong_code(pending).await?;
            return Err(WRONG_CODE);
        };
        self.sign_ins.claim_second_factor(&pending).await?;
        if !self.use_up(&pending.user, proof).await? {
            return Err(WRONG_CODE);
        }
        self.sign_ins.complete_second_factor(pending, context).await
    }

    /// Fresh recovery codes, as shown once to the user, and their stored hashes.
    fn new_recovery_codes(&self) -> (Vec<String>, Vec<String>) {
        codes::new_recovery_codes()
            .into_iter()
            .map(|(shown, normalised)| (shown, self.keys.recovery_hash(&normalised)))
            .unzip()
    }

    /// Checks `code` for `user` under the login limits, using it up: a wrong code counts as a
    /// wrong password would.
    async fn check_code_of(
        &self,
        user: &User,
        code: &Code,
        context: &SignInContext,
    ) -> Result<(), AppError> {
        let limiter = self.sign_ins.limiter();
        limiter.check_login_address(context.ip).await?;
        let check = limiter.begin_code_check(&user.id).await?;
        let Some(proof) = self.verify(user, code).await? else {
            return Err(WRONG_CODE);
        };
        if !self.use_up(user, proof).await? {
            return Err(WRONG_CODE);
        }
        limiter.password_was_right(check).await;
        Ok(())
    }

    /// Whether `code` is a right second factor of `user` now, without using it up: what
    /// [`Mfa::use_up`] then spends. A TOTP code of a step at or before the last one accepted
    /// is refused here already (a replay), so that it cannot cost a challenge.
    async fn verify(&self, user: &User, code: &Code) -> Result<Option<Proof>, AppError> {
        match code {
            Code::Totp(code) => {
                let Some(row) = repo::find(&self.db, &user.id).await? else {
                    return Ok(None);
                };
                let Some(sealed) = &row.secret else {
                    return Ok(None);
                };
                let secret = self.keys.open(&user.id, sealed)?;
                Ok(
                    codes::matching_step(&secret, code, unix_seconds(Utc::now()))
                        .and_then(|step| i64::try_from(step).ok())
                        .filter(|step| *step > row.last_step)
                        .map(Proof::Step),
                )
            }
            Code::Recovery(code) => {
                let hash = self.keys.recovery_hash(code);
                Ok(repo::has_code(&self.db, &user.id, &hash)
                    .await?
                    .then_some(Proof::Recovery(hash)))
            }
        }
    }

    /// Uses up a second factor [`Mfa::verify`] found right: a TOTP code's step (and every
    /// earlier one) cannot be used again; a recovery code is deleted, with a notice and a
    /// RECOVERY_CODE_USED event. `false` when another request used it first.
    async fn use_up(&self, user: &User, proof: Proof) -> Result<bool, AppError> {
        match proof {
            Proof::Step(step) => Ok(repo::accept_step(&self.db, &user.id, step).await?),
            Proof::Recovery(hash) => {
                let left = repo::count_codes(&self.db, &user.id).await?;
                let remaining = usize::try_from(left.saturating_sub(1)).unwrap_or(0);
                let mail = self.mailroom.notice(
                    user,
                    &user.email,
                    &Mail::RecoveryCodeUsed { remaining },
                    Utc::now().naive_utc(),
                )?;
                if !repo::use_code(&self.db, &user.id, &hash, &mail).await? {
                    return Ok(false);
                }
                self.mailroom.queued();
                self.events
                    .publish(&user.id, AccountEventKind::RecoveryCodeUsed, None)
                    .await;
                Ok(true)
            }
        }
    }

    /// Turns the user's MFA off, with its notice and event when it was on, and ends the
    /// sign-ins awaiting a second factor.
    async fn turn_off(&self, user: &User) -> Result<(), AppError> {
        let now = Utc::now().naive_utc();
        let mail = self
            .mailroom
            .notice(user, &user.email, &Mail::MfaDisabled, now)?;
        let was_on = repo::disable(&self.db, &user.id, &mail, now).await?;
        self.sign_ins.end_challenges(&user.id).await?;
        if was_on {
            self.mailroom.queued();
            self.events
                .publish(&user.id, AccountEventKind::MfaDisabled, None)
                .await;
        }
        Ok(())
    }
}

fn unix_seconds(now: chrono::DateTime<Utc>) -> u64 {
    u64::try_from(now.timestamp()).unwrap_or(0)
}
