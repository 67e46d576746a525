//! The daemon's service API with arbitrary arguments: a short script of calls by arbitrary
//! callers, against an in-memory store and a fixed user table. The script can also quote what
//! the daemon handed out before (the current TOTP code of the key it offered, backup codes, a
//! temporary code, a login-enrollment token), so it gets past the first wrong code.

use std::sync::Arc;

use arbitrary::{Arbitrary, Unstructured};
use twofactor_config::{Algorithm, Config};
use twofactor_proto::{ImportedEnrollment, LoginContext, OrUnknown};
use twofactord::accounts::FixedAccounts;
use twofactord::identity::{CallerIdentity, Peer};
use twofactord::log::MemoryLog;
use twofactord::programs::MemoryNotifier;
use twofactord::secret::Secret;
use twofactord::service::{Caller, Service};
use twofactord::store::MemoryStore;
use twofactord::totp::{TotpParams, code_at_step};

/// A step boundary, as in the daemon's own tests.
const T0: u64 = 1_800_000_000;
const MAX_CALLS: usize = 12;

/// Configurations worth exploring; `[delivery]` is left out, as it would run a program.
const CONFIGS: &[&str] = &[
    "",
    "[policy]\ndefault = \"required\"\n[enrollment]\nat_login = true\ngrace_period = \"1h\"\n",
    "[policy]\ndefault = \"optional\"\ngroups = { wheel = \"required\", sftponly = \"disabled\" }\n\
     [lockout]\nmax_failures = 5\nfree_failures = 2\nbase_delay_seconds = 10\nmax_delay_seconds = 40\n\
     [totp]\ndigits = 8\nperiod = 60\nalgorithm = \"SHA256\"\nwindow = 2\n",
    "[enrollment]\nat_login = true\nat_login_from = [\"10.0.0.0/8\", \"local\"]\n",
];

#[derive(Debug, Arbitrary)]
enum Who {
    Root,
    Alice,
    Bob,
    Carol,
    Nobody,
    Uid(u32),
}

#[derive(Debug, Arbitrary)]
enum Name {
    Alice,
    Bob,
    Carol,
    Sftp,
    Root,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Code {
    Literal(String),
    /// The current code of the last key the daemon offered.
    CurrentTotp,
    /// One of the codes the daemon handed out.
    Handed(u8),
}

#[derive(Debug, Arbitrary)]
struct Context {
    service: String,
    rhost: String,
    tty: String,
}

#[derive(Debug, Arbitrary)]
enum Call {
    LoginPlan(Who, Name, Context),
    Verify(Who, Name, Code, Context),
    Status(Who, Name),
    ListUsers(Who),
    ExplainPolicy(Who, Name),
    BeginEnrollment(Who, Name, bool, Code),
    ConfirmEnrollment(Who, Name, Code),
    BeginLoginEnrollment(Who, Name, Context),
    ConfirmLoginEnrollment(Who, Name, Option<String>, Code, Context),
    RegenerateBackupCodes(Who, Name, Code),
    Disable(Who, Name, Code),
    ResetUser(Who, Name),
    UnlockUser(Who, Name),
    ConnectionClosed(Who),
    IssueTemporaryCode(Who, Name, u64),
    SetDelivery(Who, Name, bool),
    ImportEnrollment(Who, Name, Import),
    /// Time passes.
    Wait(u16),
}

#[derive(Debug, Arbitrary)]
struct Import {
    secret_base32: String,
    algorithm: String,
    digits: u32,
    period: u32,
    window: u32,
    last_step: u64,
    scratch_codes: Vec<String>,
    source: String,
    last_code: String,
}

/// What the daemon handed out so far.
#[derive(Default)]
struct Handed {
    key: Option<(Secret, TotpParams)>,
    codes: Vec<String>,
    token: Option<String>,
}

impl Handed {
    fn code(&self, code: &Code, now: u64) -> String {
        match code {
            Code::Literal(text) => text.clone(),
            Code::CurrentTotp => match &self.key {
                Some((secret, params)) => {
                    code_at_step(secret, *params, now / u64::from(params.period.max(1)))
                }
                None => String::new(),
            },
            Code::Handed(index) if !self.codes.is_empty() => {
                self.codes[usize::from(*index) % self.codes.len()].clone()
            }
            Code::Handed(_) => String::new(),
        }
    }

    fn offered(
        &mut self,
        secret_base32: &str,
        algorithm: &OrUnknown<Algorithm>,
        digits: u32,
        period: u32,
    ) {
        let algorithm = algorithm
            .known()
            .expect("the daemon offers algorithms it knows");
        let secret = Secret::from_base32(secret_base32).expect("the daemon offers base32");
        self.key = Some((
            secret,
            TotpParams {
                algorithm,
                digits,
                period,
            },
        ));
    }
}

fn uid_of(who: &Who) -> u32 {
    match who {
        Who::Root => 0,
        Who::Alice => 1001,
        Who::Bob => 1002,
        Who::Carol => 1003,
        Who::Nobody => 65534,
        Who::Uid(uid) => *uid,
    }
}

fn name_of(name: &Name) -> &str {
    match name {
        Name::Alice => "alice",
        Name::Bob => "bob",
        Name::Carol => "carol",
        Name::Sftp => "sftp",
        Name::Root => "root",
        Name::Other(other) => other,
    }
}

fn context_of(context: &Context) -> LoginContext {
    LoginContext {
        service: context.service.clone(),
        rhost: context.rhost.clone(),
        tty: context.tty.clone(),
    }
}

/// A script of calls; whatever it does, the daemon answers every call, and no code or key
/// it handed out appears in its log.
pub fn service(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let Ok(config_index) = input.arbitrary::<u8>() else {
        return;
    };
    let config_text = CONFIGS[usize::from(config_index) % CONFIGS.len()];
    let config = Config::parse(config_text, "fuzz").expect("the fuzz configs are valid");
    let accounts = FixedAccounts::default()
        .with("root", 0, &["root"])
        .with("alice", 1001, &["alice", "staff"])
        .with("bob", 1002, &["bob", "wheel"])
        .with("carol", 1003, &["carol", "twofactor-admin"])
        .with("sftp", 1004, &["sftponly"]);
    let log = Arc::new(MemoryLog::default());
    let service = Service::new(
        config,
        Arc::new(MemoryStore::default()),
        Arc::new(accounts),
        log.clone(),
        "bastion".into(),
    )
    .with_notifier(Arc::new(MemoryNotifier::default()));
    let mut now = T0;
    let mut handed = Handed::default();
    let mut secrets: Vec<String> = Vec::new();
    for _ in 0..MAX_CALLS {
        let Ok(call) = input.arbitrary::<Call>() else {
            break;
        };
        run(&service, &call, &mut now, &mut handed, &mut secrets);
    }
    secrets.extend(handed.codes.iter().cloned());
    for line in log.lines() {
        for secret in &secrets {
            assert!(!line.contains(secret.as_str()), "logged a secret: {line}");
        }
    }
}

fn caller(service: &Service, who: &Who) -> Option<Caller> {
    let uid = uid_of(who);
    let identity = CallerIdentity {
        uid,
        peer: Peer::Bus(format!(":1.{uid}")),
    };
    service.caller(&identity).ok()
}

fn run(
    service: &Service,
    call: &Call,
    now: &mut u64,
    handed: &mut Handed,
    secrets: &mut Vec<String>,
) {
    let t = *now;
    let who = match call {
        Call::Wait(seconds) => {
            *now += u64::from(*seconds);
            return;
        }
        Call::LoginPlan(who, ..)
        | Call::Verify(who, ..)
        | Call::Status(who, ..)
        | Call::ListUsers(who)
        | Call::ExplainPolicy(who, ..)
        | Call::BeginEnrollment(who, ..)
        | Call::ConfirmEnrollment(who, ..)
        | Call::BeginLoginEnrollment(who, ..)
        | Call::ConfirmLoginEnrollment(who, ..)
        | Call::RegenerateBackupCodes(who, ..)
        | Call::Disable(who, ..)
        | Call::ResetUser(who, ..)
        | Call::UnlockUser(who, ..)
        | Call::ConnectionClosed(who)
        | Call::IssueTemporaryCode(who, ..)
        | Call::SetDelivery(who, ..)
        | Call::ImportEnrollment(who, ..) => who,
    };
    let Some(caller) = caller(service, who) else {
        return;
    };
    let c = &caller;
    // As the bus layer does: the method's rule first.
    if let Some((method, user)) = method_of(call)
        && service.authorize(method, c, user).is_err()
    {
        return;
    }
    match call {
        Call::Wait(_) => {}
        Call::LoginPlan(_, user, context) => {
            let _ = service.login_plan(c, name_of(user), &context_of(context), t);
        }
        Call::Verify(_, user, code, context) => {
            let code = handed.code(code, t);
            let _ = service.verify(c, name_of(user), &code, &context_of(context), t);
        }
        Call::Status(_, user) => {
            let _ = service.status(name_of(user), t);
        }
        Call::ListUsers(_) => {
            let _ = service.list_users(t);
        }
        Call::ExplainPolicy(_, user) => {
            let _ = service.explain_policy(name_of(user));
        }
        Call::BeginEnrollment(_, user, replace, code) => {
            let code = handed.code(code, t);
            if let Ok(offer) = service.begin_enrollment(c, name_of(user), *replace, &code, t) {
                secrets.push(offer.secret_base32.clone());
                handed.offered(
                    &offer.secret_base32,
                    &offer.algorithm,
                    offer.digits,
                    offer.period,
                );
            }
        }
        Call::ConfirmEnrollment(_, user, code) => {
            let code = handed.code(code, t);
            if let Ok(codes) = service.confirm_enrollment(c, name_of(user), &code, t) {
                handed.codes.extend(codes);
            }
        }
        Call::BeginLoginEnrollment(_, user, context) => {
            let context = context_of(context);
            if let Ok(offer) = service.begin_login_enrollment(c, name_of(user), &context, t) {
                let o = &offer.offer;
                secrets.push(o.secret_base32.clone());
                handed.offered(&o.secret_base32, &o.algorithm, o.digits, o.period);
                handed.token = Some(offer.token.clone());
            }
        }
        Call::ConfirmLoginEnrollment(_, user, token, code, context) => {
            let token = token.clone().or_else(|| handed.token.clone());
            let code = handed.code(code, t);
            let context = context_of(context);
            let user = name_of(user);
            let token = token.unwrap_or_default();
            if let Ok(codes) = service.confirm_login_enrollment(c, user, &token, &code, &context, t)
            {
                handed.codes.extend(codes);
            }
        }
        Call::RegenerateBackupCodes(_, user, code) => {
            let code = handed.code(code, t);
            if let Ok(codes) = service.regenerate_backup_codes(c, name_of(user), &code, t) {
                handed.codes.extend(codes);
            }
        }
        Call::Disable(_, user, code) => {
            let code = handed.code(code, t);
            let _ = service.disable(c, name_of(user), &code, t);
        }
        Call::ResetUser(_, user) => {
            let _ = service.reset_user(c, name_of(user), t);
        }
        Call::UnlockUser(_, user) => {
            let _ = service.unlock_user(c, name_of(user));
        }
        Call::ConnectionClosed(_) => service.connection_closed(&c.connection),
        Call::IssueTemporaryCode(_, user, expires_in) => {
            if let Ok(code) = service.issue_temporary_code(c, name_of(user), *expires_in, t) {
                handed.codes.push(code.code.clone());
            }
        }
        Call::SetDelivery(_, user, enabled) => {
            let _ = service.set_delivery(c, name_of(user), *enabled);
        }
        Call::ImportEnrollment(_, user, import) => {
            let imported = ImportedEnrollment {
                secret_base32: import.secret_base32.clone(),
                algorithm: OrUnknown::from_name(&import.algorithm),
                digits: import.digits,
                period: import.period,
                window: import.window,
                last_step: import.last_step,
                scratch_codes: import.scratch_codes.clone(),
                source: import.source.clone(),
                last_code: import.last_code.clone(),
            };
            let _ = service.import_enrollment(c, name_of(user), &imported, t);
        }
    }
}

/// The D-Bus method a call stands for, and the user it names.
fn method_of(call: &Call) -> Option<(&'static str, &str)> {
    Some(match call {
        Call::Wait(_) | Call::ConnectionClosed(_) => return None,
        Call::ListUsers(_) => ("ListUsers", ""),
        Call::LoginPlan(_, user, ..) => ("LoginPlan", name_of(user)),
        Call::Verify(_, user, ..) => ("Verify", name_of(user)),
        Call::Status(_, user) => ("Status", name_of(user)),
        Call::ExplainPolicy(_, user) => ("ExplainPolicy", name_of(user)),
        Call::BeginEnrollment(_, user, ..) => ("BeginEnrollment", name_of(user)),
        Call::ConfirmEnrollment(_, user, ..) => ("ConfirmEnrollment", name_of(user)),
        Call::BeginLoginEnrollment(_, user, ..) => ("BeginLoginEnrollment", name_of(user)),
        Call::ConfirmLoginEnrollment(_, user, ..) => ("ConfirmLoginEnrollment", name_of(user)),
        Call::RegenerateBackupCodes(_, user, ..) => ("RegenerateBackupCodes", name_of(user)),
        Call::Disable(_, user, ..) => ("Disable", name_of(user)),
        Call::ResetUser(_, user) => ("ResetUser", name_of(user)),
        Call::UnlockUser(_, user) => ("UnlockUser", name_of(user)),
        Call::IssueTemporaryCode(_, user, ..) => ("IssueTemporaryCode", name_of(user)),
        Call::SetDelivery(_, user, ..) => ("SetDelivery", name_of(user)),
        Call::ImportEnrollment(_, user, ..) => ("ImportEnrollment", name_of(user)),
    })
}
