//! A scripted daemon for the commands' unit tests: one enrolled-or-not user, one good code.

use std::cell::RefCell;

use twofactor_proto::{
    Algorithm, EnrollmentOffer, Error, ImportedEnrollment, LoginContext, Policy, PolicyExplanation,
    TemporaryCode, ThrottledSource, UserStatus, VerifyOutcome, VerifyReply,
};

use crate::client::Daemon;

pub const GOOD: &str = "123456";
pub const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
/// The temporary code the fake issues; it also works as a current code.
pub const TEMPORARY: &str = "1234-5678-9012";
/// When the fake's temporary codes expire.
pub const TEMPORARY_EXPIRES_AT: u64 = 1_700_003_600;

#[derive(Debug)]
pub struct Fake {
    /// The calling user and whether they are an administrator.
    pub caller: String,
    pub admin: bool,
    pub status: RefCell<UserStatus>,
    /// Every call, as `Method(args)`.
    pub calls: RefCell<Vec<String>>,
    /// Users (by name) the import refuses as already enrolled.
    pub enrolled_users: Vec<String>,
    /// Every enrollment imported, by user.
    pub imported: RefCell<Vec<(String, ImportedEnrollment)>>,
    /// As after a login with a temporary code: replacing needs no current code.
    pub replace_without_code: bool,
    /// What `ThrottledSources` returns.
    pub throttled: RefCell<Vec<ThrottledSource>>,
}

impl Fake {
    pub fn new(caller: &str, admin: bool) -> Fake {
        Fake {
            caller: caller.into(),
            admin,
            status: RefCell::new(UserStatus {
                user: "alice".into(),
                enrolled: false,
                policy: Policy::Optional.into(),
                policy_source: "default".into(),
                backup_codes_left: 0,
                locked: false,
                retry_after_seconds: 0,
                failures_since_success: 0,
                enrolled_at: 0,
                last_success_time: 0,
                last_success_service: String::new(),
                last_success_rhost: String::new(),
                problem: String::new(),
                grace_ends_at: 0,
                temporary_code_expires_at: 0,
                delivery_enabled: false,
            }),
            calls: RefCell::new(Vec::new()),
            enrolled_users: Vec::new(),
            imported: RefCell::new(Vec::new()),
            throttled: RefCell::new(Vec::new()),
            replace_without_code: false,
        }
    }

    pub fn enrolled(self) -> Fake {
        {
            let mut status = self.status.borrow_mut();
            status.enrolled = true;
            status.enrolled_at = 1_700_000_000;
            status.backup_codes_left = 10;
        }
        self
    }

    pub fn required(self) -> Fake {
        {
            let mut status = self.status.borrow_mut();
            status.policy = Policy::Required.into();
            status.policy_source = "group wheel".into();
        }
        self
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }

    fn log(&self, call: String) {
        self.calls.borrow_mut().push(call);
    }

    fn may(&self, user: &str) -> Result<(), Error> {
        if self.admin || self.caller == user {
            Ok(())
        } else {
            Err(Error::AccessDenied(format!(
                "only {user} or an administrator may do this"
            )))
        }
    }

    fn admin_only(&self) -> Result<(), Error> {
        if self.admin {
            Ok(())
        } else {
            Err(Error::AccessDenied("administrators only".into()))
        }
    }

    fn code_if_self(&self, user: &str, code: &str) -> Result<(), Error> {
        if self.caller == user && code.is_empty() {
            // The daemon refuses a malformed code before counting it as a failure.
            Err(Error::InvalidInput("not a code".into()))
        } else if self.caller == user && code != GOOD && code != TEMPORARY {
            Err(Error::WrongCode("the code is not valid".into()))
        } else {
            Ok(())
        }
    }

    fn codes() -> Vec<String> {
        (0..10)
            .map(|i| format!("{i}{i}{i}{i}{i}-0000{i}"))
            .collect()
    }
}

impl Daemon for Fake {
    fn verify(&self, user: &str, code: &str, _: &LoginContext) -> Result<VerifyReply, Error> {
        self.log(format!("Verify({user}, {code})"));
        self.may(user)?;
        Ok(VerifyReply {
            outcome: if code == GOOD {
                VerifyOutcome::Accepted
            } else {
                VerifyOutcome::Rejected
            },
            backup_code_used: false,
            backup_codes_left: 10,
            clock_skew_seconds: 0,
            retry_after_seconds: 0,
            failures_since_success: 0,
            last_failure_time: 0,
            temporary_code_used: false,
            offer_new_backup_codes: false,
            code_replayed: false,
        })
    }

    fn status(&self, user: &str) -> Result<UserStatus, Error> {
        self.log(format!("Status({user})"));
        self.may(user)?;
        let mut status = self.status.borrow().clone();
        status.user = user.into();
        Ok(status)
    }

    fn throttled_sources(&self, user: &str) -> Result<Vec<ThrottledSource>, Error> {
        self.log(format!("ThrottledSources({user})"));
        self.may(user)?;
        Ok(self.throttled.borrow().clone())
    }

    fn begin_enrollment(
        &self,
        user: &str,
        replace: bool,
        current_code: &str,
    ) -> Result<EnrollmentOffer, Error> {
        self.log(format!(
            "BeginEnrollment({user}, {replace}, {current_code})"
        ));
        self.may(user)?;
        if self.status.borrow().enrolled {
            if !replace {
                return Err(Error::AlreadyEnrolled(format!(
                    "{user} is already enrolled"
                )));
            }
            if !self.replace_without_code {
                self.code_if_self(user, current_code)?;
            }
        }
        Ok(EnrollmentOffer {
            otpauth_uri: format!("otpauth://totp/host:{user}@host?secret={SECRET}&issuer=host"),
            secret_base32: SECRET.into(),
            label: format!("host:{user}@host"),
            issuer: "host".into(),
            algorithm: Algorithm::Sha1.into(),
            digits: 6,
            period: 30,
            expires_in_seconds: 600,
        })
    }

    fn confirm_enrollment(&self, user: &str, code: &str) -> Result<Vec<String>, Error> {
        self.log(format!("ConfirmEnrollment({user}, {code})"));
        self.may(user)?;
        if code != GOOD {
            return Err(Error::WrongCode(
                "the code is not valid: check the device's clock and try the next code".into(),
            ));
        }
        self.status.borrow_mut().enrolled = true;
        Ok(Fake::codes())
    }

    fn regenerate_backup_codes(&self, user: &str, code: &str) -> Result<Vec<String>, Error> {
        self.log(format!("RegenerateBackupCodes({user}, {code})"));
        self.may(user)?;
        self.code_if_self(user, code)?;
        Ok(Fake::codes())
    }

    fn disable(&self, user: &str, code: &str) -> Result<(), Error> {
        self.log(format!("Disable({user}, {code})"));
        self.may(user)?;
        if self.status.borrow().policy == Policy::Required {
            return Err(Error::PolicyForbids(format!(
                "two-factor authentication is required for {user} (group wheel → required)"
            )));
        }
        self.code_if_self(user, code)?;
        self.status.borrow_mut().enrolled = false;
        Ok(())
    }

    fn list_users(&self) -> Result<Vec<UserStatus>, Error> {
        self.log("ListUsers()".into());
        self.admin_only()?;
        Ok(vec![self.status.borrow().clone()])
    }

    fn reset_user(&self, user: &str) -> Result<(), Error> {
        self.log(format!("ResetUser({user})"));
        self.admin_only()
    }

    fn unlock_user(&self, user: &str) -> Result<(), Error> {
        self.log(format!("UnlockUser({user})"));
        self.admin_only()
    }

    fn explain_policy(&self, user: &str) -> Result<PolicyExplanation, Error> {
        self.log(format!("ExplainPolicy({user})"));
        self.may(user)?;
        let status = self.status.borrow();
        Ok(PolicyExplanation {
            user: user.into(),
            policy: status.policy.clone(),
            source: status.policy_source.clone(),
            explanation: format!("{} → {}", status.policy_source, status.policy),
        })
    }

    fn issue_temporary_code(
        &self,
        user: &str,
        expires_in_seconds: u64,
    ) -> Result<TemporaryCode, Error> {
        self.log(format!("IssueTemporaryCode({user}, {expires_in_seconds})"));
        self.admin_only()?;
        if expires_in_seconds > 86_400 {
            return Err(Error::InvalidInput(
                "a temporary code lasts at most 24 hours".into(),
            ));
        }
        self.status.borrow_mut().temporary_code_expires_at = TEMPORARY_EXPIRES_AT;
        Ok(TemporaryCode {
            code: TEMPORARY.into(),
            expires_at: TEMPORARY_EXPIRES_AT,
        })
    }

    fn set_delivery(&self, user: &str, enabled: bool) -> Result<(), Error> {
        self.log(format!("SetDelivery({user}, {enabled})"));
        self.admin_only()?;
        self.status.borrow_mut().delivery_enabled = enabled;
        Ok(())
    }

    fn import_enrollment(&self, user: &str, enrollment: &ImportedEnrollment) -> Result<(), Error> {
        self.log(format!("ImportEnrollment({user}, {})", enrollment.source));
        self.admin_only()?;
        if user == "nobody-here" {
            return Err(Error::NoSuchUser(format!("no user {user} on this system")));
        }
        if self.enrolled_users.iter().any(|u| u == user) {
            return Err(Error::AlreadyEnrolled(format!(
                "{user} is already enrolled with twofactor; reset first to import"
            )));
        }
        self.imported
            .borrow_mut()
            .push((user.to_owned(), enrollment.clone()));
        Ok(())
    }
}
