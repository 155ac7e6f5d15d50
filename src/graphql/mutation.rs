//! Mutation resolvers: thin adapters over the `users` and `signins` services.

use async_graphql::{Context, ID, Object, Result};

use super::types::{AuthPayload, RegisterInput, Role, TotpEnrollment, UpdateMeInput, UserObject};
use super::{context, state, viewer};
use crate::users::{CurrentPassword, NewUser, UpdateMe};

/// Write operations.
#[derive(Debug, Default)]
pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Creates an account (role USER) and returns a token for it.
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<AuthPayload> {
        let input = NewUser {
            username: input.username,
            email: input.email,
            password: input.password,
        };
        Ok(state(ctx)?
            .users
            .register(input, &context(ctx))
            .await?
            .into())
    }

    /// Signs in; each login is a separate session with its own token. A wrong password and an
    /// unknown username give the same error. For an account with two-step sign-in on, the
    /// right password answers the error MFA_REQUIRED with `extensions.mfaToken`: complete the
    /// sign-in with `loginSecondFactor`.
    async fn login(
        &self,
        ctx: &Context<'_>,
        username: String,
        password: String,
    ) -> Result<AuthPayload> {
        Ok(state(ctx)?
            .sign_ins
            .login(&username, password, &context(ctx))
            .await?
            .into())
    }

    /// Revokes the token that made the request.
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        state(ctx)?.sign_ins.logout(viewer(ctx).await?).await?;
        Ok(true)
    }

    /// Changes the caller's email and/or password. Changing the password needs
    /// `currentPassword` and revokes every other token of the caller.
    async fn update_me(&self, ctx: &Context<'_>, input: UpdateMeInput) -> Result<UserObject> {
        let viewer = viewer(ctx).await?;
        let input = UpdateMe {
            email: input.email,
            password: input.password,
            current_password: input.current_password,
        };
        Ok(state(ctx)?
            .users
            .update_me(viewer, input, CurrentPassword::Required, &context(ctx))
            .await?
            .into())
    }

    /// Deletes the caller's account and revokes all its tokens. The last admin cannot
    /// (FORBIDDEN): promote another user first.
    async fn delete_me(&self, ctx: &Context<'_>) -> Result<bool> {
        state(ctx)?.users.delete_me(viewer(ctx).await?).await?;
        Ok(true)
    }

    /// Mails a password-reset link to the account registered with `email`, if there is one.
    /// Always true, in about the same time either way: the answer never tells whether the
    /// address is registered. Limited per client address and per address asked for.
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> Result<bool> {
        state(ctx)?
            .users
            .request_password_reset(&email, &context(ctx))
            .await?;
        Ok(true)
    }

    /// Sets a new password with the token of a reset mail. The token works once; every session
    /// and refresh token of the user ends, and the address is marked verified. A bad, used or
    /// expired token is UNAUTHENTICATED, the same for each.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        token: String,
        new_password: String,
    ) -> Result<bool> {
        state(ctx)?
            .users
            .reset_password(&token, new_password)
            .await?;
        Ok(true)
    }

    /// Sends a new verification mail to the caller's current address; an earlier link stops
    /// working. An address already verified gets none (still true). Limited per user.
    async fn send_verification_email(&self, ctx: &Context<'_>) -> Result<bool> {
        state(ctx)?
            .users
            .send_verification_email(viewer(ctx).await?)
            .await?;
        Ok(true)
    }

    /// Verifies the address a verification mail was sent to. Needs no token: the link may be
    /// opened anywhere. A bad, used or expired token (or one for an address the account no
    /// longer has) is UNAUTHENTICATED.
    async fn verify_email(&self, ctx: &Context<'_>, token: String) -> Result<UserObject> {
        Ok(state(ctx)?.users.verify_email(&token).await?.into())
    }

    /// Exchanges a refresh token for a new access token and a new refresh token; the old pair
    /// stops working. Presenting an already-exchanged refresh token again ends that sign-in
    /// (UNAUTHENTICATED), except within a few seconds of the exchange, when it returns the same
    /// new pair (so that two tabs refreshing at once both stay signed in).
    async fn refresh(&self, ctx: &Context<'_>, refresh_token: String) -> Result<AuthPayload> {
        Ok(state(ctx)?
            .sign_ins
            .refresh(&refresh_token, &context(ctx))
            .await?
            .into())
    }

    /// Ends one of the caller's sessions (by its `id` from `sessions`), with its refresh
    /// token. NOT_FOUND when the caller has no such session.
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        state(ctx)?
            .sign_ins
            .revoke_session(viewer(ctx).await?, &id)
            .await?;
        Ok(true)
    }

    /// Ends every session of the caller, this one included, with their refresh tokens; returns
    /// how many there were.
    async fn logout_all(&self, ctx: &Context<'_>) -> Result<i32> {
        let count = state(ctx)?.sign_ins.logout_all(viewer(ctx).await?).await?;
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }

    /// Deletes any user and ends all their sessions. ADMIN only (else FORBIDDEN); the last
    /// admin cannot be deleted.
    async fn delete_user(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        state(ctx)?
            .users
            .delete_user(viewer(ctx).await?, &id)
            .await?;
        Ok(true)
    }

    /// Sets a user's role; takes effect on their next request. ADMIN only (else FORBIDDEN);
    /// the last admin cannot be demoted.
    async fn set_role(&self, ctx: &Context<'_>, id: ID, role: Role) -> Result<UserObject> {
        let viewer = viewer(ctx).await?;
        Ok(state(ctx)?
            .users
            .set_role(viewer, &id, role.into())
            .await?
            .into())
    }

    /// Disables (or enables again) a user. A disabled user cannot sign in or refresh
    /// (FORBIDDEN, `extensions.reason` ACCOUNT_DISABLED) and disabling ends all their sessions
    /// at once; enabling lets them sign in again. ADMIN only (else FORBIDDEN); the last enabled
    /// admin cannot be disabled.
    async fn set_user_disabled(
        &self,
        ctx: &Context<'_>,
        id: ID,
        disabled: bool,
    ) -> Result<UserObject> {
        let viewer = viewer(ctx).await?;
        Ok(state(ctx)?
            .users
            .set_disabled(viewer, &id, disabled)
            .await?
            .into())
    }

    /// Completes a login that answered MFA_REQUIRED: `mfaToken` from that error (valid 5
    /// minutes, for at most 5 codes), `code` the 6 digits the authenticator app shows or a
    /// recovery code (each works once). Codes count against the login limits.
    async fn login_second_factor(
        &self,
        ctx: &Context<'_>,
        mfa_token: String,
        code: String,
    ) -> Result<AuthPayload> {
        Ok(state(ctx)?
            .mfa
            .login_second_factor(&mfa_token, &code, &context(ctx))
            .await?
            .into())
    }

    /// Begins enrolling an authenticator app (TOTP) for the caller, who proves their
    /// password. Nothing changes until `confirmTotpEnrollment`; the enrolment lapses after 10
    /// minutes, and a newer one replaces it. CONFLICT when two-step sign-in is on already.
    async fn start_totp_enrollment(
        &self,
        ctx: &Context<'_>,
        current_password: String,
    ) -> Result<TotpEnrollment> {
        let viewer = viewer(ctx).await?;
        Ok(state(ctx)?
            .mfa
            .start_enrolment(viewer, current_password, &context(ctx))
            .await?
            .into())
    }

    /// Confirms the enrolment with a code the app shows: turns two-step sign-in on and
    /// returns 10 recovery codes, shown this once; each signs in once in place of a code.
    async fn confirm_totp_enrollment(
        &self,
        ctx: &Context<'_>,
        code: String,
    ) -> Result<Vec<String>> {
        let viewer = viewer(ctx).await?;
        Ok(state(ctx)?
            .mfa
            .confirm_enrolment(viewer, &code, &context(ctx))
            .await?)
    }

    /// Turns two-step sign-in off; needs the current password and a code (from the app, or a
    /// recovery code).
    async fn disable_totp(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        code: String,
    ) -> Result<bool> {
        let viewer = viewer(ctx).await?;
        state(ctx)?
            .mfa
            .disable(viewer, current_password, &code, &context(ctx))
            .await?;
        Ok(true)
    }

    /// Replaces the caller's recovery codes with 10 new ones, returned this once; needs a code
    /// (from the app, or a recovery code).
    async fn regenerate_recovery_codes(
        &self,
        ctx: &Context<'_>,
        code: String,
    ) -> Result<Vec<String>> {
        let viewer = viewer(ctx).await?;
        Ok(state(ctx)?
            .mfa
            .regenerate_recovery_codes(viewer, &code, &context(ctx))
            .await?)
    }

    /// Turns a user's two-step sign-in off, for one who lost both their app and their
    /// recovery codes. ADMIN only (else FORBIDDEN).
    async fn reset_user_mfa(&self, ctx: &Context<'_>, id: ID) -> Result<UserObject> {
        let viewer = viewer(ctx).await?;
        Ok(state(ctx)?.mfa.reset_user_mfa(viewer, &id).await?.into())
    }
}
