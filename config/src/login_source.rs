//! Where a login happens, from what PAM reports (PAM_SERVICE, PAM_TTY, PAM_RHOST) and who
//! reported it. The one definition of **console**, for every rule that depends on it
//! (enrollment at login today; throttling by source and context rules later).
//!
//! Pure: no I/O. Only a root caller's report is believed. Login programs run as root; anyone
//! else who calls the daemon chooses their own service, tty and remote host.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// PAM services of programs that log someone in at the machine itself: `login` and display
/// managers. Anything else (`sshd`, `su`, `sudo`, `runuser`, `cron`...) is not a console.
pub const CONSOLE_SERVICES: &[&str] = &[
    "login",
    "gdm-password",
    "gdm-autologin",
    "gdm-fingerprint",
    "gdm-smartcard",
    "lightdm",
    "lightdm-autologin",
    "lightdm-greeter",
    "sddm",
    "sddm-autologin",
    "sddm-greeter",
    "xdm",
    "lxdm",
    "slim",
];

/// Services that switch users inside an existing session. They take their tty from their
/// stdin, which the caller chooses (`su victim </dev/ttyS0`), so they never count as console,
/// whatever tty they report. They are not in [`CONSOLE_SERVICES`]; this list makes that a
/// checked decision rather than an accident.
pub const USER_SWITCHING_SERVICES: &[&str] = &[
    "su",
    "su-l",
    "sudo",
    "sudo-i",
    "runuser",
    "runuser-l",
    "pkexec",
    "doas",
];

/// Where failed attempts come from: the unit that throttling counts and that the daemon
/// partitions its work by. The one definition of a login's **source**.
///
/// Only a root caller's report is believed: every non-root caller, and every root report with
/// no remote host that is not the console (`su` and `sudo` inside a session), is [`Self::Local`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// A remote host given as an address: an IPv4 host (/32), or an IPv6 /64, so that one
    /// IPv6 host (which usually owns a whole /64) is one source, not 2^64 of them. An
    /// IPv4-mapped IPv6 address is its IPv4 host.
    Network(IpNet),
    /// A remote host given by name (sshd with `UseDNS yes`), lower-cased.
    HostName(String),
    /// The console, as [`LoginSource::is_console`] defines it.
    Console,
    /// Everything else.
    Local,
}

/// The IPv6 prefix that counts as one host.
pub const IPV6_SOURCE_PREFIX: u8 = 64;

impl Source {
    fn of_remote_host(rhost: &str) -> Source {
        let bare = rhost
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(rhost);
        // A zone (`fe80::1%eth0`) names the link, not the host.
        let unzoned = bare.split_once('%').map_or(bare, |(address, _)| address);
        match unzoned.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::Network(IpNet::from(IpAddr::V4(v4))),
                None => Source::Network(
                    IpNet::new(IpAddr::V6(v6), IPV6_SOURCE_PREFIX)
                        .map_or_else(|_| IpNet::from(IpAddr::V6(v6)), |net| net.trunc()),
                ),
            },
            Ok(v4) => Source::Network(IpNet::from(v4)),
            Err(_) => Source::HostName(rhost.to_ascii_lowercase()),
        }
    }

    /// Parses what [`Display`](fmt::Display) wrote (state files store sources as text).
    pub fn parse(text: &str) -> Option<Source> {
        match text {
            "console" => Some(Source::Console),
            "local" => Some(Source::Local),
            "" => None,
            _ => {
                if let Ok(net) = text.parse::<IpNet>() {
                    return Some(Source::Network(net.trunc()));
                }
                if let Ok(address) = text.parse::<IpAddr>() {
                    return Some(Source::of_remote_host(&address.to_string()));
                }
                Some(Source::HostName(text.to_ascii_lowercase()))
            }
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A host shows as its address; a /64 with its prefix.
            Source::Network(net) if net.prefix_len() == net.max_prefix_len() => {
                write!(f, "{}", net.addr())
            }
            Source::Network(net) => write!(f, "{net}"),
            Source::HostName(name) => f.write_str(name),
            Source::Console => f.write_str("console"),
            Source::Local => f.write_str("local"),
        }
    }
}

/// PAM_TTY, in one form whatever the program wrote (`/dev/tty1` and `tty1` alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Terminal {
    /// No PAM_TTY.
    None,
    /// A virtual console of the machine: `ttyN`.
    Virtual(u32),
    /// A serial or hypervisor console: `ttyS0`, `ttyUSB0`, `ttyAMA0`, `hvc0`, `console`.
    Serial(String),
    /// A local X display: `:0`, `:1.0`. (`host:0` is a remote display.)
    Display(u32),
    /// A pseudo-terminal: `pts/3`. SSH sessions, terminal emulators, `script`, anyone's pty.
    Pseudo(u32),
    /// Anything else, as given without `/dev/`: `ssh`, `cron`, `host:0`.
    Other(String),
}

fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl Terminal {
    /// Normalise a PAM_TTY value.
    pub fn parse(tty: &str) -> Terminal {
        let tty = tty.trim();
        if tty.is_empty() {
            return Terminal::None;
        }
        if let Some(display) = tty.strip_prefix(':') {
            let screenless = display.split_once('.').map_or(display, |(d, _)| d);
            if let Some(n) = number(screenless) {
                return Terminal::Display(n);
            }
            return Terminal::Other(tty.to_owned());
        }
        let name = tty.strip_prefix("/dev/").unwrap_or(tty);
        if let Some(n) = name.strip_prefix("pts/").and_then(number) {
            return Terminal::Pseudo(n);
        }
        if name == "console" {
            return Terminal::Serial(name.to_owned());
        }
        for serial in [
            "ttyS", "ttyUSB", "ttyAMA", "ttymxc", "hvc", "xvc", "ttysclp",
        ] {
            if name.strip_prefix(serial).and_then(number).is_some() {
                return Terminal::Serial(name.to_owned());
            }
        }
        if let Some(n) = name.strip_prefix("tty").and_then(number) {
            return Terminal::Virtual(n);
        }
        Terminal::Other(name.to_owned())
    }

    /// A terminal that is at the machine: a virtual console, a serial line, a local display.
    pub fn is_at_the_machine(&self) -> bool {
        matches!(
            self,
            Terminal::Virtual(_) | Terminal::Serial(_) | Terminal::Display(_)
        )
    }
}

/// One login's source, as far as it can be believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSource {
    service: String,
    terminal: Terminal,
    rhost: String,
    /// Reported by root (a login program). Otherwise nothing above is believed.
    trusted: bool,
}

impl LoginSource {
    /// What PAM reported, and whether the caller that reported it is root.
    pub fn new(service: &str, tty: &str, rhost: &str, reported_by_root: bool) -> LoginSource {
        LoginSource {
            service: service.trim().to_owned(),
            terminal: Terminal::parse(tty),
            rhost: rhost.trim().to_owned(),
            trusted: reported_by_root,
        }
    }

    /// Whether the context can be believed at all (a root caller reported it).
    pub fn is_trusted(&self) -> bool {
        self.trusted
    }

    /// The console: `login` or a display manager, at a virtual console, a serial console or
    /// a local display, with no remote host, reported by root. `su`, `sudo` and the like
    /// never are, whatever their tty.
    pub fn is_console(&self) -> bool {
        self.trusted
            && self.rhost.is_empty()
            && !USER_SWITCHING_SERVICES.contains(&self.service.as_str())
            && CONSOLE_SERVICES.contains(&self.service.as_str())
            && self.terminal.is_at_the_machine()
    }

    /// PAM_RHOST is empty, as reported by root. True of `su` inside an SSH session too: this
    /// is not "local" (see [`Self::is_console`]).
    pub fn has_no_remote_host(&self) -> bool {
        self.trusted && self.rhost.is_empty()
    }

    /// The remote host, if root reported one. `None` for untrusted reports.
    pub fn remote_host(&self) -> Option<&str> {
        (self.trusted && !self.rhost.is_empty()).then_some(self.rhost.as_str())
    }

    pub fn terminal(&self) -> &Terminal {
        &self.terminal
    }

    /// This login's [`Source`].
    pub fn source(&self) -> Source {
        if let Some(rhost) = self.remote_host() {
            return Source::of_remote_host(rhost);
        }
        if self.is_console() {
            return Source::Console;
        }
        Source::Local
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tty_forms_are_normalised_once() {
        let table = [
            ("", Terminal::None),
            ("  ", Terminal::None),
            ("tty1", Terminal::Virtual(1)),
            ("/dev/tty1", Terminal::Virtual(1)),
            ("/dev/tty63", Terminal::Virtual(63)),
            ("ttyS0", Terminal::Serial("ttyS0".into())),
            ("/dev/ttyS0", Terminal::Serial("ttyS0".into())),
            ("/dev/ttyUSB1", Terminal::Serial("ttyUSB1".into())),
            ("ttyAMA0", Terminal::Serial("ttyAMA0".into())),
            ("hvc0", Terminal::Serial("hvc0".into())),
            ("/dev/hvc0", Terminal::Serial("hvc0".into())),
            ("/dev/console", Terminal::Serial("console".into())),
            ("console", Terminal::Serial("console".into())),
            (":0", Terminal::Display(0)),
            (":1.0", Terminal::Display(1)),
            ("pts/3", Terminal::Pseudo(3)),
            ("/dev/pts/3", Terminal::Pseudo(3)),
            ("ssh", Terminal::Other("ssh".into())),
            ("/dev/tty", Terminal::Other("tty".into())),
            ("ttyX", Terminal::Other("ttyX".into())),
            ("tty+1", Terminal::Other("tty+1".into())),
            ("localhost:10.0", Terminal::Other("localhost:10.0".into())),
            (":x", Terminal::Other(":x".into())),
            ("pts/", Terminal::Other("pts/".into())),
        ];
        for (tty, expected) in table {
            assert_eq!(Terminal::parse(tty), expected, "{tty:?}");
        }
    }

    #[test]
    fn console_is_login_or_a_display_manager_at_the_machine_reported_by_root() {
        // (service, tty, rhost, by root, console?)
        let table = [
            ("login", "/dev/tty1", "", true, true),
            ("login", "tty1", "", true, true),
            ("login", "/dev/ttyS0", "", true, true),
            ("login", "ttyS0", "", true, true),
            ("login", "/dev/console", "", true, true),
            ("login", "hvc0", "", true, true),
            ("gdm-password", ":0", "", true, true),
            ("gdm-autologin", ":1", "", true, true),
            ("lightdm", ":0", "", true, true),
            ("sddm", ":0", "", true, true),
            ("xdm", ":0", "", true, true),
            ("lxdm", ":0", "", true, true),
            // Reported by anyone but root: nothing is believed.
            ("login", "/dev/tty1", "", false, false),
            ("gdm-password", ":0", "", false, false),
            // A remote host, or a terminal that is not at the machine.
            ("login", "/dev/tty1", "192.0.2.1", true, false),
            ("login", "pts/0", "", true, false),
            ("login", "/dev/pts/0", "", true, false),
            ("login", "", "", true, false),
            ("xdm", "remote:0", "", true, false),
            ("login", "ssh", "", true, false),
            // Users switching users never count, whatever their tty.
            ("su", "", "", true, false),
            ("su", "pts/3", "", true, false),
            ("su", "/dev/ttyS0", "", true, false),
            ("su", "/dev/tty1", "", true, false),
            ("su-l", "tty1", "", true, false),
            ("sudo", "/dev/tty1", "", true, false),
            ("sudo-i", "tty1", "", true, false),
            ("runuser", "tty1", "", true, false),
            ("runuser-l", "/dev/console", "", true, false),
            // Other services.
            ("sshd", "ssh", "192.0.2.1", true, false),
            ("sshd", "/dev/tty1", "", true, false),
            ("cron", "cron", "", true, false),
            ("Login", "tty1", "", true, false),
        ];
        for (service, tty, rhost, by_root, console) in table {
            let source = LoginSource::new(service, tty, rhost, by_root);
            assert_eq!(
                source.is_console(),
                console,
                "{service} {tty:?} {rhost:?} by_root={by_root}"
            );
        }
    }

    #[test]
    fn sources_group_hosts_and_believe_only_root() {
        // (service, tty, rhost, by root, source as text)
        let table = [
            ("sshd", "ssh", "192.0.2.7", true, "192.0.2.7"),
            ("sshd", "ssh", " 192.0.2.7 ", true, "192.0.2.7"),
            ("sshd", "ssh", "::ffff:192.0.2.7", true, "192.0.2.7"),
            (
                "sshd",
                "ssh",
                "2001:db8:1:2:aaaa::1",
                true,
                "2001:db8:1:2::/64",
            ),
            (
                "sshd",
                "ssh",
                "2001:db8:1:2:ffff::9",
                true,
                "2001:db8:1:2::/64",
            ),
            (
                "sshd",
                "ssh",
                "[2001:db8:1:3::1]",
                true,
                "2001:db8:1:3::/64",
            ),
            ("sshd", "ssh", "fe80::1%eth0", true, "fe80::/64"),
            ("sshd", "ssh", "Host.Example", true, "host.example"),
            ("login", "tty1", "", true, "console"),
            ("su", "pts/1", "", true, "local"),
            ("sudo", "tty1", "", true, "local"),
            ("sshd", "ssh", "", true, "local"),
            // A non-root caller's remote host or console is never believed.
            ("sshd", "ssh", "192.0.2.7", false, "local"),
            ("login", "tty1", "", false, "local"),
        ];
        for (service, tty, rhost, by_root, expected) in table {
            let source = LoginSource::new(service, tty, rhost, by_root).source();
            assert_eq!(
                source.to_string(),
                expected,
                "{service} {tty} {rhost:?} {by_root}"
            );
            assert_eq!(
                Source::parse(&source.to_string()),
                Some(source),
                "{expected}"
            );
        }
        let a = LoginSource::new("sshd", "ssh", "2001:db8::1", true).source();
        let b = LoginSource::new("sshd", "ssh", "2001:db8::ffff:1", true).source();
        let c = LoginSource::new("sshd", "ssh", "2001:db8:0:1::1", true).source();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(Source::parse(""), None);
    }

    #[test]
    fn no_remote_host_and_the_remote_host_need_a_root_report() {
        let su_in_ssh = LoginSource::new("su", "pts/1", "", true);
        assert!(su_in_ssh.has_no_remote_host());
        assert!(!su_in_ssh.is_console());
        let claimed = LoginSource::new("login", "tty1", "", false);
        assert!(!claimed.has_no_remote_host());
        assert_eq!(claimed.remote_host(), None);
        let sshd = LoginSource::new("sshd", "ssh", "10.0.0.1", true);
        assert_eq!(sshd.remote_host(), Some("10.0.0.1"));
        assert_eq!(
            LoginSource::new("sshd", "ssh", "10.0.0.1", false).remote_host(),
            None
        );
    }

    #[test]
    fn the_lists_do_not_overlap() {
        for service in USER_SWITCHING_SERVICES {
            assert!(!CONSOLE_SERVICES.contains(service), "{service}");
        }
    }
}
