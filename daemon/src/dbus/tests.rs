//! The real interface object over a socket pair, peer to peer, with proto's proxy at the other
//! end: no bus. The caller is whoever the kernel names at the other end, this test process.

use std::os::unix::net::UnixStream;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use twofactor_config::Config;
use twofactor_proto::{
    Algorithm, Daemon1Proxy, EnrollmentOffer, ImportedEnrollment, LoginAction, LoginEnrollment,
    LoginPlan, Policy, PolicyExplanation, TemporaryCode, ThrottledSource, UserStatus,
    VerifyAnyReply, VerifyOutcome, VerifyReply,
};
use zbus::fdo;

use super::*;
use crate::accounts::FixedAccounts;
use crate::identity::Peer;
use crate::log::MemoryLog;
use crate::store::MemoryStore;

const CONFIG: &str = r#"
[policy]
default = "optional"
groups = { wheel = "required" }
"#;

/// RFC 6238's SHA1 seed, `12345678901234567890`, in base32.
const RFC_SEED_BASE32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const RFC_SEED: &[u8] = b"12345678901234567890";

/// A TOTP code computed here, independently of the daemon's `totp` (RFC 6238, SHA1).
fn totp(seed: &[u8], unix_time: u64, digits: u32) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(seed).expect("any key length");
    mac.update(&(unix_time / 30).to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let word = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    format!(
        "{:0width$}",
        word % 10u32.pow(digits),
        width = digits as usize
    )
}

struct Peers {
    service: Arc<Service>,
    proxy: Daemon1Proxy<'static>,
    identity: CallerIdentity,
    // Dropping it would end the connection.
    _server: Connection,
}

fn daemon() -> Daemon {
    let config = Config::parse(CONFIG, "test").expect("config");
    let accounts = FixedAccounts::default()
        .with("alice", 1001, &["alice", "staff"])
        .with("bob", 1002, &["bob", "wheel"]);
    Daemon::new(Arc::new(Service::new(
        config,
        Arc::new(MemoryStore::default()),
        Arc::new(accounts),
        Arc::new(MemoryLog::default()),
        "testhost".into(),
    )))
}

/// Serve `daemon` on one end of a socket pair, as `as_uid` would be seen, or as the kernel
/// names this process with `None`; the proxy is on the other end.
async fn connect(daemon: Daemon, as_uid: Option<u32>) -> Peers {
    let (server_end, client_end) = UnixStream::pair().expect("socket pair");
    let client = zbus::connection::Builder::unix_stream(client_end)
        .p2p()
        .build();
    let service = daemon.service.clone();
    let server = async {
        match as_uid {
            None => daemon.serve_direct(server_end).await,
            Some(uid) => {
                let identity = CallerIdentity {
                    uid,
                    peer: Peer::Direct(uid.into()),
                };
                let impostor = Daemon {
                    direct_peer: Some(identity.clone()),
                    ..daemon
                };
                let connection = zbus::connection::Builder::unix_stream(server_end)
                    .server(zbus::Guid::generate())
                    .p2p()
                    .serve_at(OBJECT_PATH, impostor)
                    .build()
                    .await?;
                Ok((connection, identity))
            }
        }
    };
    let (server, client) = futures_lite::future::zip(server, client).await;
    let (server, identity) = server.expect("server side");
    let proxy = Daemon1Proxy::new(&client.expect("client side"))
        .await
        .expect("proxy");
    Peers {
        service,
        proxy,
        identity,
        _server: server,
    }
}

fn login() -> LoginContext {
    LoginContext {
        service: "sshd".into(),
        rhost: "192.0.2.7".into(),
        tty: "ssh".into(),
    }
}

async fn enroll_with_the_rfc_seed(proxy: &Daemon1Proxy<'_>, user: &str) {
    let enrollment = ImportedEnrollment {
        secret_base32: RFC_SEED_BASE32.into(),
        algorithm: Algorithm::Sha1.into(),
        digits: 6,
        period: 30,
        window: 0,
        last_step: 0,
        scratch_codes: Vec::new(),
        source: "google-authenticator".into(),
        last_code: String::new(),
    };
    proxy
        .import_enrollment(user, &enrollment)
        .await
        .expect("import");
}

#[test]
fn the_test_computes_codes_as_rfc_6238_does() {
    // RFC 6238 Appendix B, SHA1, T = 59 and T = 1111111109.
    assert_eq!(totp(RFC_SEED, 59, 8), "94287082");
    assert_eq!(totp(RFC_SEED, 1_111_111_109, 8), "07081804");
}

#[test]
fn the_caller_is_who_the_kernel_names() {
    zbus::block_on(async {
        let peers = connect(daemon(), None).await;
        assert_eq!(peers.identity.uid, nix::unistd::getuid().as_raw());
        assert!(matches!(peers.identity.peer, Peer::Direct(_)));
    });
}

#[test]
fn a_right_code_is_accepted_once_over_the_wire() {
    if !nix::unistd::getuid().is_root() {
        return; // Importing is for administrators; this test runs as root under CI.
    }
    zbus::block_on(async {
        let peers = connect(daemon(), None).await;
        enroll_with_the_rfc_seed(&peers.proxy, "bob").await;
        let code = totp(RFC_SEED, now(), 6);
        let reply = peers.proxy.verify("bob", &code, &login()).await;
        let reply = reply.expect("verify");
        assert_eq!(reply.outcome, VerifyOutcome::Accepted, "{reply:?}");
        assert!(!reply.backup_code_used && !reply.code_replayed);

        let again = peers.proxy.verify("bob", &code, &login()).await;
        let again = again.expect("verify again");
        assert_eq!(again.outcome, VerifyOutcome::Rejected);
        assert!(again.code_replayed, "a spent code says so: {again:?}");
    });
}

#[test]
fn a_pending_enrollment_belongs_to_its_direct_connection() {
    if !nix::unistd::getuid().is_root() {
        return; // Enrolling another user is for administrators.
    }
    zbus::block_on(async {
        let daemon = daemon();
        let first = connect(daemon.clone(), None).await;
        let second = connect(daemon, None).await;
        assert_ne!(first.identity.peer, second.identity.peer);
        let offer = first.proxy.begin_enrollment("alice", false, "").await;
        let offer = offer.expect("an offer");
        let secret = crate::secret::Secret::from_base32(&offer.secret_base32).expect("base32");
        let code = totp(secret.as_bytes(), now(), offer.digits);

        let elsewhere = second.proxy.confirm_enrollment("alice", &code).await;
        assert!(
            matches!(elsewhere, Err(Error::NoPendingEnrollment(_))),
            "{elsewhere:?}"
        );
        let codes = first.proxy.confirm_enrollment("alice", &code).await;
        assert_eq!(codes.expect("confirmed").len(), 10);
    });
}

#[test]
fn typed_errors_cross_the_wire() {
    zbus::block_on(async {
        let root = connect(daemon(), Some(0)).await;
        let unknown = root.proxy.status("nobody-here").await;
        assert!(matches!(unknown, Err(Error::NoSuchUser(_))), "{unknown:?}");
        let alice = connect(daemon(), Some(1001)).await;
        let others = alice.proxy.status("bob").await;
        assert!(matches!(others, Err(Error::AccessDenied(_))), "{others:?}");
        let admin_only = alice.proxy.reset_user("alice").await;
        assert!(
            matches!(admin_only, Err(Error::AccessDenied(_))),
            "{admin_only:?}"
        );
        let own = alice.proxy.status("alice").await.expect("one's own status");
        assert_eq!(own.user, "alice");
    });
}

#[test]
fn replies_arrive_as_the_service_made_them() {
    zbus::block_on(async {
        let peers = connect(daemon(), Some(0)).await;
        enroll_with_the_rfc_seed(&peers.proxy, "bob").await;
        let code = totp(RFC_SEED, now(), 6);
        let verified = peers.proxy.verify("bob", &code, &login()).await;
        assert_eq!(verified.expect("verify").outcome, VerifyOutcome::Accepted);

        let status = peers.proxy.status("bob").await.expect("status");
        assert_eq!(status, peers.service.status("bob", now()).expect("status"));
        assert_eq!(status.policy, Policy::Required);
        assert_eq!(status.policy_source, "group wheel");
        assert_eq!(
            (
                status.last_success_service.as_str(),
                status.last_success_rhost.as_str()
            ),
            ("sshd", "192.0.2.7")
        );

        let explained = peers.proxy.explain_policy("bob").await.expect("explain");
        assert_eq!(
            explained,
            peers.service.explain_policy("bob").expect("explain")
        );
        let plan = peers.proxy.login_plan("bob", &login()).await.expect("plan");
        assert_eq!(plan.action, LoginAction::Prompt);
        let sources = peers.proxy.throttled_sources("bob").await.expect("sources");
        assert_eq!(sources, Vec::<ThrottledSource>::new());
    });
}

/// Every `<arg>` of every method of our interface in `xml`: (method, name, type, direction).
fn interface_args(xml: &str) -> Vec<(String, Option<String>, String, String)> {
    let start = xml
        .find("<interface name=\"org.twofactor.Daemon1\">")
        .expect("our interface");
    let ours = &xml[start..];
    let ours = &ours[..ours.find("</interface>").expect("its end")];
    let attribute = |tag: &str, name: &str| {
        let marker = format!("{name}=\"");
        tag.find(&marker).map(|at| {
            let rest = &tag[at + marker.len()..];
            rest[..rest.find('"').unwrap_or(rest.len())].to_owned()
        })
    };
    let mut args = Vec::new();
    for method in ours.split("<method ").skip(1) {
        let method_name = attribute(method, "name").expect("a method has a name");
        let method = &method[..method.find("</method>").unwrap_or(method.len())];
        for arg in method.split("<arg ").skip(1) {
            let tag = &arg[..arg.find("/>").expect("an arg tag ends")];
            args.push((
                method_name.clone(),
                attribute(tag, "name"),
                attribute(tag, "type").expect("an arg has a type"),
                attribute(tag, "direction").unwrap_or_else(|| "in".into()),
            ));
        }
    }
    args
}

#[test]
fn out_args_are_the_fields_of_the_structs_and_the_xml_is_the_interface() {
    let live = zbus::block_on(async {
        let peers = connect(daemon(), Some(0)).await;
        let introspectable = fdo::IntrospectableProxy::builder(peers.proxy.inner().connection())
            .destination(twofactor_proto::BUS_NAME)
            .path(OBJECT_PATH)
            .build()
            .await
            .expect("proxy");
        introspectable.introspect().await.expect("introspect")
    });
    let live = interface_args(&live);
    let replies: [(&str, &[&str]); 8] = [
        ("LoginPlan", LoginPlan::FIELD_NAMES),
        ("Verify", VerifyReply::FIELD_NAMES),
        ("VerifyAny", VerifyAnyReply::FIELD_NAMES),
        ("Status", UserStatus::FIELD_NAMES),
        ("BeginEnrollment", EnrollmentOffer::FIELD_NAMES),
        ("ExplainPolicy", PolicyExplanation::FIELD_NAMES),
        ("BeginLoginEnrollment", LoginEnrollment::FIELD_NAMES),
        ("IssueTemporaryCode", TemporaryCode::FIELD_NAMES),
    ];
    for (method, fields) in replies {
        let out_names: Vec<String> = live
            .iter()
            .filter(|(name, _, _, direction)| name == method && direction == "out")
            .map(|(_, arg, _, _)| arg.clone().unwrap_or_default())
            .collect();
        assert_eq!(out_names, fields, "{method}'s out_args");
    }
    let xml = interface_args(include_str!(
        "../../../packaging/dbus/org.twofactor.Daemon1.xml"
    ));
    assert!(xml.len() > 60, "the XML was read: {} args", xml.len());
    assert_eq!(live, xml, "packaging/dbus/org.twofactor.Daemon1.xml");
}
