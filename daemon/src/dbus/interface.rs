//! The methods of `org.twofactor.Daemon1`: each names whom the call is for and hands its work
//! to [`Daemon::run`].
//!
//! A method returning a struct returns its `…Args` tuple spelled out, with the struct's field
//! names in `out_args`: the interface macro lists a literal tuple's elements as the out
//! arguments, as they travel, and takes the names only as literals. The compiler holds the
//! tuples to `twofactor_proto`'s, and `super::tests` hold the names to `FIELD_NAMES` and to
//! the XML.

use std::collections::HashSet;

use twofactor_proto::{
    Algorithm, EnrollmentOffer, Error, ImportedEnrollment, LoginAction, LoginContext, OrUnknown,
    Policy, ThrottledSource, UserStatus, VerifyOutcome, VerifyReply,
};
use zbus::message::Header;
use zbus::{Connection, fdo};

use super::{Daemon, Subject};

#[zbus::interface(name = "org.twofactor.Daemon1")]
impl Daemon {
    #[zbus(out_args("action", "message", "can_send_code", "keep_connection"))]
    async fn login_plan(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        context: LoginContext,
    ) -> Result<(LoginAction, String, bool, bool), Error> {
        let (mut plan, by_root) = self
            .run(
                &header,
                connection,
                Subject::of(&user, Some(&context)),
                move |service, caller, now| {
                    let plan = service.login_plan(caller, &user, &context, now)?;
                    Ok((plan, caller.uid == 0))
                },
            )
            .await?;
        // Only a prompt is worth keeping a connection for, and only root logins (sshd, su)
        // count against root's connections to the bus.
        if by_root
            && matches!(plan.action, LoginAction::Prompt | LoginAction::Enroll)
            && let Some(sender) = header.sender()
        {
            plan.keep_connection = self.kept.grant(sender.as_str());
            if !plan.keep_connection && self.kept.sweep_due() {
                // Full: a caller that left while its plan was being made was granted after
                // its departure was handled, and would stay forever. Keep only live names.
                if let Ok(bus) = fdo::DBusProxy::new(connection).await
                    && let Ok(live) = bus.list_names().await
                {
                    let live: HashSet<String> = live.iter().map(|name| name.to_string()).collect();
                    self.kept.retain_live(&live);
                    plan.keep_connection = self.kept.grant(sender.as_str());
                }
            }
        }
        Ok(plan.into())
    }

    #[zbus(out_args(
        "outcome",
        "backup_code_used",
        "backup_codes_left",
        "clock_skew_seconds",
        "retry_after_seconds",
        "failures_since_success",
        "last_failure_time",
        "temporary_code_used",
        "offer_new_backup_codes",
        "code_replayed"
    ))]
    async fn verify(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        code: String,
        context: LoginContext,
    ) -> Result<
        (
            VerifyOutcome,
            bool,
            u32,
            i64,
            u64,
            u32,
            u64,
            bool,
            bool,
            bool,
        ),
        Error,
    > {
        let code = zeroize::Zeroizing::new(code);
        self.run(
            &header,
            connection,
            Subject::of(&user, Some(&context)),
            move |service, caller, now| service.verify(caller, &user, &code, &context, now),
        )
        .await
        .map(Into::into)
    }

    #[zbus(out_args("reply", "accepted_index"))]
    async fn verify_any(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        codes: Vec<String>,
        context: LoginContext,
    ) -> Result<(VerifyReply, i32), Error> {
        let codes: Vec<zeroize::Zeroizing<String>> =
            codes.into_iter().map(zeroize::Zeroizing::new).collect();
        self.run(
            &header,
            connection,
            Subject::of(&user, Some(&context)),
            move |service, caller, now| {
                let codes: Vec<&str> = codes.iter().map(|code| code.as_str()).collect();
                service.verify_any(caller, &user, &codes, &context, now)
            },
        )
        .await
        .map(Into::into)
    }

    #[zbus(out_args(
        "user",
        "enrolled",
        "policy",
        "policy_source",
        "backup_codes_left",
        "locked",
        "retry_after_seconds",
        "failures_since_success",
        "enrolled_at",
        "last_success_time",
        "last_success_service",
        "last_success_rhost",
        "problem",
        "grace_ends_at",
        "temporary_code_expires_at",
        "delivery_enabled"
    ))]
    async fn status(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
    ) -> Result<
        (
            String,
            bool,
            OrUnknown<Policy>,
            String,
            u32,
            bool,
            u64,
            u32,
            u64,
            u64,
            String,
            String,
            String,
            u64,
            u64,
            bool,
        ),
        Error,
    > {
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, _, now| service.status(&user, now),
        )
        .await
        .map(Into::into)
    }

    #[zbus(out_args("sources"))]
    async fn throttled_sources(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
    ) -> Result<Vec<ThrottledSource>, Error> {
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, _, now| service.throttled_sources(&user, now),
        )
        .await
    }

    #[zbus(out_args(
        "otpauth_uri",
        "secret_base32",
        "label",
        "issuer",
        "algorithm",
        "digits",
        "period",
        "expires_in_seconds"
    ))]
    async fn begin_enrollment(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        replace: bool,
        current_code: String,
    ) -> Result<
        (
            String,
            String,
            String,
            String,
            OrUnknown<Algorithm>,
            u32,
            u32,
            u64,
        ),
        Error,
    > {
        let code = zeroize::Zeroizing::new(current_code);
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, caller, now| {
                service.begin_enrollment(caller, &user, replace, &code, now)
            },
        )
        .await
        .map(Into::into)
    }

    async fn confirm_enrollment(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        code: String,
    ) -> Result<Vec<String>, Error> {
        let code = zeroize::Zeroizing::new(code);
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, caller, now| service.confirm_enrollment(caller, &user, &code, now),
        )
        .await
    }

    async fn regenerate_backup_codes(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        code: String,
    ) -> Result<Vec<String>, Error> {
        let code = zeroize::Zeroizing::new(code);
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, caller, now| service.regenerate_backup_codes(caller, &user, &code, now),
        )
        .await
    }

    async fn disable(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        code: String,
    ) -> Result<(), Error> {
        let code = zeroize::Zeroizing::new(code);
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, caller, now| service.disable(caller, &user, &code, now),
        )
        .await
    }

    async fn list_users(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<Vec<UserStatus>, Error> {
        self.run(
            &header,
            connection,
            Subject::of("", None),
            move |service, _, now| service.list_users(now),
        )
        .await
    }

    async fn reset_user(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
    ) -> Result<(), Error> {
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, caller, now| service.reset_user(caller, &user, now),
        )
        .await
    }

    async fn unlock_user(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
    ) -> Result<(), Error> {
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, caller, _| service.unlock_user(caller, &user),
        )
        .await
    }

    #[zbus(out_args("user", "policy", "source", "explanation"))]
    async fn explain_policy(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
    ) -> Result<(String, OrUnknown<Policy>, String, String), Error> {
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, _, _| service.explain_policy(&user),
        )
        .await
        .map(Into::into)
    }

    #[zbus(out_args("token", "offer"))]
    async fn begin_login_enrollment(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        context: LoginContext,
    ) -> Result<(String, EnrollmentOffer), Error> {
        self.run(
            &header,
            connection,
            Subject::of(&user, Some(&context)),
            move |service, caller, now| {
                service.begin_login_enrollment(caller, &user, &context, now)
            },
        )
        .await
        .map(Into::into)
    }

    async fn confirm_login_enrollment(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        token: String,
        code: String,
        context: LoginContext,
    ) -> Result<Vec<String>, Error> {
        let token = zeroize::Zeroizing::new(token);
        let code = zeroize::Zeroizing::new(code);
        self.run(
            &header,
            connection,
            Subject::of(&user, Some(&context)),
            move |service, caller, now| {
                service.confirm_login_enrollment(caller, &user, &token, &code, &context, now)
            },
        )
        .await
    }

    #[zbus(out_args("code", "expires_at"))]
    async fn issue_temporary_code(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        expires_in_seconds: u64,
    ) -> Result<(String, u64), Error> {
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, caller, now| {
                service.issue_temporary_code(caller, &user, expires_in_seconds, now)
            },
        )
        .await
        .map(Into::into)
    }

    async fn set_delivery(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        enabled: bool,
    ) -> Result<(), Error> {
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, caller, _| service.set_delivery(caller, &user, enabled),
        )
        .await
    }

    async fn send_code(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        context: LoginContext,
    ) -> Result<u64, Error> {
        self.run(
            &header,
            connection,
            Subject::of(&user, Some(&context)),
            move |service, caller, now| service.send_code(caller, &user, &context, now),
        )
        .await
    }

    async fn import_enrollment(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
        user: String,
        enrollment: ImportedEnrollment,
    ) -> Result<(), Error> {
        self.run(
            &header,
            connection,
            Subject::of(&user, None),
            move |service, caller, now| service.import_enrollment(caller, &user, &enrollment, now),
        )
        .await
    }
}
