//! What is looked up in NSS, and when; other spellings of a name.

use super::*;

/// The users of `inner`, but every lookup with groups fails, and so does every lookup of a
/// user named in `broken`.
struct GroupsDown {
    inner: FixedAccounts,
    broken: &'static str,
}

impl Accounts for GroupsDown {
    fn by_name(&self, _name: &str) -> Result<Option<Account>, String> {
        Err("group lookup failed".into())
    }

    fn by_uid(&self, uid: u32) -> Result<Option<Account>, String> {
        self.inner.by_uid(uid)
    }

    fn name_of(&self, name: &str) -> Result<Option<String>, String> {
        if name == self.broken {
            return Err("passwd lookup failed".into());
        }
        self.inner.name_of(name)
    }
}

#[test]
fn verify_looks_up_only_whether_the_user_exists() {
    let w = world(POLICY);
    let (secret, _) = enroll(&w, "alice", 1001, T0);
    let config = Config::parse(POLICY, "test").unwrap();
    let accounts = GroupsDown {
        inner: FixedAccounts::default().with("alice", 1001, &["alice"]),
        broken: "bob",
    };
    let service = Service::new(
        config,
        w.store.clone(),
        Arc::new(accounts),
        w.log.clone(),
        "bastion".into(),
    );
    // Groups decide policy, which Verify does not need: no group lookup, so it still works.
    let reply = service
        .verify(&root(), "alice", &code(&secret, T0 + 30), &ctx(), T0 + 30)
        .unwrap();
    assert_eq!(reply.outcome, VerifyOutcome::Accepted);
    // LoginPlan needs them under group rules, and fails closed.
    let plan = service.login_plan(&root(), "alice", &ctx(), T0 + 60);
    assert!(matches!(plan, Err(Error::Internal(_))), "{plan:?}");
    // A failed existence lookup is not "no such user".
    let broken = service.verify(&root(), "bob", "123456", &ctx(), T0 + 60);
    assert!(matches!(broken, Err(Error::Internal(_))), "{broken:?}");
}

#[test]
fn login_plan_looks_up_groups_only_when_a_group_rule_can_apply() {
    let w = world(POLICY);
    enroll(&w, "alice", 1001, T0);
    let service = |config_text: &str| {
        Service::new(
            Config::parse(config_text, "test").unwrap(),
            w.store.clone(),
            Arc::new(GroupsDown {
                inner: FixedAccounts::default().with("alice", 1001, &["alice"]),
                broken: "bob",
            }),
            w.log.clone(),
            "bastion".into(),
        )
    };
    let plan = |service: &Service, user: &str| service.login_plan(&root(), user, &ctx(), T0);
    // No group rules: existence is all the policy needs.
    let no_groups = service("[policy]\ndefault = \"required\"\n");
    assert_eq!(
        plan(&no_groups, "alice").unwrap().action,
        LoginAction::Prompt
    );
    assert_eq!(
        plan(&no_groups, "nobody-here").unwrap().action,
        LoginAction::Prompt,
        "unknown: no enumeration"
    );
    let broken = plan(&no_groups, "bob");
    assert!(matches!(broken, Err(Error::Internal(_))), "{broken:?}");
    // A user rule wins over any group rule.
    let own_rule =
        service("[policy]\ngroups = { wheel = \"disabled\" }\nusers = { alice = \"required\" }\n");
    assert_eq!(
        plan(&own_rule, "alice").unwrap().action,
        LoginAction::Prompt
    );
    // A group rule may apply: the groups are needed, and their lookup fails closed.
    let group_rule = service("[policy]\ngroups = { wheel = \"disabled\" }\n");
    let failed = plan(&group_rule, "alice");
    assert!(matches!(failed, Err(Error::Internal(_))), "{failed:?}");
}

/// The users of `inner` under any capitalization of their names, as a case-insensitive
/// directory (SSSD, winbind) answers.
struct CaseInsensitive(FixedAccounts);

impl Accounts for CaseInsensitive {
    fn by_name(&self, name: &str) -> Result<Option<Account>, String> {
        self.0.by_name(&name.to_lowercase())
    }

    fn by_uid(&self, uid: u32) -> Result<Option<Account>, String> {
        self.0.by_uid(uid)
    }
}

#[test]
fn another_spelling_of_an_enrolled_name_is_no_such_user() {
    // Enrolled alice must give a code in each; another spelling must not get past it.
    for config_text in [
        "[policy]\ndefault = \"optional\"\n",
        "[policy]\ndefault = \"optional\"\nusers = { alice = \"required\" }\n",
        "[policy]\ndefault = \"disabled\"\ngroups = { staff = \"required\" }\n",
    ] {
        let w = world(config_text);
        let (secret, _) = enroll(&w, "alice", 1001, T0);
        let service = Service::new(
            Config::parse(config_text, "test").unwrap(),
            w.store.clone(),
            Arc::new(CaseInsensitive(FixedAccounts::default().with(
                "alice",
                1001,
                &["alice", "staff"],
            ))),
            w.log.clone(),
            "bastion".into(),
        );
        let plan = |user: &str| service.login_plan(&root(), user, &ctx(), T0).unwrap();
        assert_eq!(plan("alice").action, LoginAction::Prompt);
        // Not Ignore (as not enrolled under "ALICE" with the default policy would be), and
        // not Deny: exactly what an unknown name gets.
        assert_eq!(plan("ALICE").action, LoginAction::Prompt, "{config_text}");
        let right = code(&secret, T0 + 30);
        let reply = service
            .verify(&root(), "ALICE", &right, &ctx(), T0 + 30)
            .unwrap();
        assert_eq!(reply.outcome, VerifyOutcome::Rejected, "{config_text}");
        assert!(
            w.log
                .lines()
                .iter()
                .any(|line| line.contains("user-name-differs")),
            "the refusal is logged: {config_text}"
        );
        // The right spelling still works with the same code.
        let reply = service
            .verify(&root(), "alice", &right, &ctx(), T0 + 30)
            .unwrap();
        assert_eq!(reply.outcome, VerifyOutcome::Accepted);
    }
}
