//! A scripted daemon for the commands' unit tests: one enrolled-or-not user, one good code.

use std::cell::RefCell;

use twofactor_proto::{
    EnrollmentOffer, Error, LoginContext, PolicyExplanation, UserStatus, VerifyOutcome, VerifyReply,
};

use crate::client::Daemon;

pub const GOOD: &str = "123456";
pub const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

#[derive(Debug)]
pub struct Fake {
    /// The calling user and whether they are an administrator.
    pub caller: String,
    pub admin: bool,
    pub status: RefCell<UserStatus>,
    /// Every call, as `Method(args)`.
    pub calls: RefCell<Vec<String>>,
}

impl Fake {
    pub fn new(caller: &str, admin: bool) -> Fake {
        Fake {
            caller: caller.into(),
            admin,
            status: RefCell::new(UserStatus {
                user: "alice".into(),
                enrolled: false,
                policy: "optional".into(),
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
            status.policy = "required".into();
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
        if self.caller == user && code != GOOD {
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
        })
    }

    fn status(&self, user: &str) -> Result<UserStatus, Error> {
        self.log(format!("Status({user})"));
        self.may(user)?;
        let mut status = self.status.borrow().clone();
        status.user = user.into();
        Ok(status)
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
            self.code_if_self(user, current_code)?;
        }
        Ok(EnrollmentOffer {
            otpauth_uri: format!(
                "otpauth://totp/host:{user}%40host?secret={SECRET}&issuer=host&algorithm=SHA1&\
                 digits=6&period=30"
            ),
            secret_base32: SECRET.into(),
            label: format!("host:{user}@host"),
            issuer: "host".into(),
            algorithm: "SHA1".into(),
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
        if self.status.borrow().policy == "required" {
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
}
