//! Who may call what: one rule per method of `org.twofactor.Daemon1`, declared here once and
//! checked before the method runs (as fprintd declares a permission per method).

use twofactor_proto::Error;

use crate::service::Caller;

/// Who may make a call about a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The user itself (a screen locker, the CLI), or an administrator (root is one).
    SelfOrAdmin,
    /// Root and members of `[admin] group`.
    Admin,
    /// Root only: the login programs (sshd, su, login), for steps only a login takes.
    Root,
}

/// Every method and its rule. `tests::every_method_of_the_interface_has_a_rule` keeps this in
/// step with the interface's XML.
pub const METHODS: &[(&str, Rule)] = &[
    ("LoginPlan", Rule::SelfOrAdmin),
    ("Verify", Rule::SelfOrAdmin),
    ("VerifyAny", Rule::SelfOrAdmin),
    ("Status", Rule::SelfOrAdmin),
    ("ThrottledSources", Rule::SelfOrAdmin),
    ("ExplainPolicy", Rule::SelfOrAdmin),
    ("BeginEnrollment", Rule::SelfOrAdmin),
    ("ConfirmEnrollment", Rule::SelfOrAdmin),
    ("RegenerateBackupCodes", Rule::SelfOrAdmin),
    ("Disable", Rule::SelfOrAdmin),
    ("SendCode", Rule::SelfOrAdmin),
    ("ListUsers", Rule::Admin),
    ("ResetUser", Rule::Admin),
    ("UnlockUser", Rule::Admin),
    ("IssueTemporaryCode", Rule::Admin),
    ("SetDelivery", Rule::Admin),
    ("ImportEnrollment", Rule::Admin),
    ("BeginLoginEnrollment", Rule::Root),
    ("ConfirmLoginEnrollment", Rule::Root),
];

/// The rule of `method`; `None` for anything not in the table, which is refused.
pub fn rule_of(method: &str) -> Option<Rule> {
    METHODS
        .iter()
        .find(|(name, _)| *name == method)
        .map(|&(_, rule)| rule)
}

/// Whether `caller` may call `method` about `user`. `admin_group` names the group for the
/// refusal's message.
pub fn check(method: &str, caller: &Caller, user: &str, admin_group: &str) -> Result<(), Error> {
    let allowed = match rule_of(method) {
        Some(Rule::SelfOrAdmin) => caller.admin || caller.is(user),
        Some(Rule::Admin) => caller.admin,
        Some(Rule::Root) => caller.uid == 0,
        None => false,
    };
    if allowed {
        return Ok(());
    }
    Err(Error::AccessDenied(match rule_of(method) {
        Some(Rule::SelfOrAdmin) => format!("only {user} or an administrator may do this"),
        Some(Rule::Admin) => format!("administrators only (root or group {admin_group})"),
        Some(Rule::Root) => "only root (a login program) may do this".into(),
        None => format!("no such method {method}"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(uid: u32, name: &str, admin: bool) -> Caller {
        Caller {
            uid,
            name: Some(name.into()),
            admin,
            connection: ":1.1".into(),
        }
    }

    #[test]
    fn every_method_of_the_interface_has_a_rule() {
        let xml = include_str!("../../packaging/dbus/org.twofactor.Daemon1.xml");
        let declared: Vec<&str> = xml
            .split("<method name=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert_eq!(declared.len(), METHODS.len(), "{declared:?}");
        for method in declared {
            assert!(rule_of(method).is_some(), "{method} has no rule");
        }
    }

    #[test]
    fn each_rule_admits_exactly_its_callers() {
        let root = caller(0, "root", true);
        let admin = caller(1003, "carol", true);
        let alice = caller(1001, "alice", false);
        let ok = |method, who: &Caller, user| check(method, who, user, "admins").is_ok();
        assert!(ok("Status", &alice, "alice") && !ok("Status", &alice, "bob"));
        assert!(ok("Status", &admin, "bob") && ok("Status", &root, "bob"));
        assert!(!ok("ResetUser", &alice, "alice") && ok("ResetUser", &admin, "alice"));
        assert!(!ok("BeginLoginEnrollment", &admin, "alice"));
        assert!(!ok("BeginLoginEnrollment", &alice, "alice"));
        assert!(ok("BeginLoginEnrollment", &root, "alice"));
        assert!(
            !ok("Frobnicate", &root, "alice"),
            "what is not in the table is refused"
        );
        let stranger = Caller {
            name: None,
            ..caller(4242, "", false)
        };
        assert!(!ok("Status", &stranger, ""));
    }
}
