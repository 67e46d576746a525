//! Who users are: existence, uid and group names, looked up through NSS.

use std::ffi::CString;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A user known to the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    /// Primary and supplementary group names.
    pub groups: Vec<String>,
}

/// The user database, behind a trait so the logic is tested without real users.
pub trait Accounts: Send + Sync {
    /// `Ok(None)`: no such user. `Err`: the lookup itself failed (fail closed).
    fn by_name(&self, name: &str) -> Result<Option<Account>, String>;
    fn by_uid(&self, uid: u32) -> Result<Option<Account>, String>;
    /// The name of the account NSS finds for `name`, without its groups (which cost NSS far
    /// more). It can differ from `name`: case-insensitive directories answer `ALICE` with
    /// `alice`.
    fn name_of(&self, name: &str) -> Result<Option<String>, String> {
        self.by_name(name)
            .map(|account| account.map(|account| account.name))
    }
    /// Whether NSS knows a group of this name.
    fn group_exists(&self, _name: &str) -> Result<bool, String> {
        Ok(false)
    }
    /// The members of `group`, as NSS lists them: its member list, then the users whose
    /// primary group it is. At most `max` names. `Ok(None)`: no such group.
    fn group_members(&self, _group: &str, _max: usize) -> Result<Option<GroupMembers>, String> {
        Ok(None)
    }
}

/// Who is in a group, as far as NSS says. Directories that refuse enumeration (SSSD's
/// default, many LDAP servers) leave out users whose primary group it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupMembers {
    pub names: Vec<String>,
    /// The bound was reached, or the enumeration was cut short: there may be more.
    pub truncated: bool,
}

/// How long enumerating passwd may take before it is cut short.
pub const ENUMERATION_DEADLINE: Duration = Duration::from_secs(5);
/// Entries of passwd read at most while enumerating it.
pub const MAX_PASSWD_ENTRIES: usize = 100_000;

/// Users whose primary gid is `gid`, by enumerating passwd through NSS (`getent passwd`, so
/// that the one thread-unsafe enumeration of libc runs in a process of its own). Bounded by
/// [`MAX_PASSWD_ENTRIES`], `max` matches and [`ENUMERATION_DEADLINE`]. `bool`: cut short.
fn primary_members(gid: u32, max: usize) -> Result<(Vec<String>, bool), String> {
    let mut child = Command::new("getent")
        .arg("passwd")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .env_clear()
        .spawn()
        .map_err(|error| format!("getent passwd: {error}"))?;
    let stdout = child.stdout.take().ok_or("getent passwd: no output")?;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let (done, finished) = mpsc::channel::<()>();
    // The child is reaped only below, after this watchdog is done: its pid cannot be reused.
    let watchdog = std::thread::spawn(move || {
        let timed_out = finished.recv_timeout(ENUMERATION_DEADLINE).is_err();
        if timed_out {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        timed_out
    });
    let mut names = Vec::new();
    let mut cut_short = false;
    // Bytes, not text: one entry that is not UTF-8 (a Latin-1 GECOS field) must not end the
    // list; a name that is not UTF-8 cannot be a user name here and is skipped.
    for (index, line) in BufReader::new(stdout).split(b'\n').enumerate() {
        let Ok(line) = line else {
            cut_short = true;
            break;
        };
        if index >= MAX_PASSWD_ENTRIES || names.len() >= max {
            cut_short = true;
            break;
        }
        // name:password:uid:gid:gecos:home:shell
        let mut fields = line.split(|byte| *byte == b':');
        let (Some(name), Some(_), Some(_), Some(entry_gid)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (Ok(name), Ok(entry_gid)) = (std::str::from_utf8(name), std::str::from_utf8(entry_gid))
        else {
            continue;
        };
        if entry_gid.parse::<u32>() == Ok(gid) {
            names.push(name.to_owned());
        }
    }
    let _ = done.send(());
    let timed_out = watchdog.join().unwrap_or(true);
    let _ = child.kill();
    let _ = child.wait();
    Ok((names, cut_short || timed_out))
}

/// The real user database (`getpwnam`, `getgrouplist`).
#[derive(Debug, Default)]
pub struct SystemAccounts;

fn account_of(user: nix::unistd::User) -> Result<Account, String> {
    let name_c = CString::new(user.name.clone()).map_err(|error| error.to_string())?;
    let gids = nix::unistd::getgrouplist(&name_c, user.gid)
        .map_err(|error| format!("getgrouplist({}): {error}", user.name))?;
    let mut groups = Vec::with_capacity(gids.len());
    for gid in gids {
        match nix::unistd::Group::from_gid(gid) {
            Ok(Some(group)) => groups.push(group.name),
            Ok(None) => {}
            Err(error) => return Err(format!("getgrgid({gid}): {error}")),
        }
    }
    Ok(Account {
        name: user.name,
        uid: user.uid.as_raw(),
        groups,
    })
}

/// `getpwnam(name)`, under the name its uid's first passwd entry has. An alias made with
/// `useradd -o` shares an account's uid under another name; a login by it is the same person
/// as the first name, so it is reported under that name, and [`Accounts::name_of`] callers
/// treat it as another spelling (asked for a code, refused, logged) instead of as an account
/// that is not enrolled.
fn user_by_name(name: &str) -> Result<Option<nix::unistd::User>, String> {
    let Some(mut user) =
        nix::unistd::User::from_name(name).map_err(|error| format!("getpwnam({name}): {error}"))?
    else {
        return Ok(None);
    };
    let uid = user.uid;
    let first =
        nix::unistd::User::from_uid(uid).map_err(|error| format!("getpwuid({uid}): {error}"))?;
    if let Some(first) = first {
        user.name = first.name;
    }
    Ok(Some(user))
}

impl Accounts for SystemAccounts {
    fn by_name(&self, name: &str) -> Result<Option<Account>, String> {
        user_by_name(name)?.map(account_of).transpose()
    }

    fn by_uid(&self, uid: u32) -> Result<Option<Account>, String> {
        match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
            Ok(Some(user)) => account_of(user).map(Some),
            Ok(None) => Ok(None),
            Err(error) => Err(format!("getpwuid({uid}): {error}")),
        }
    }

    fn name_of(&self, name: &str) -> Result<Option<String>, String> {
        Ok(user_by_name(name)?.map(|user| user.name))
    }

    fn group_exists(&self, name: &str) -> Result<bool, String> {
        nix::unistd::Group::from_name(name)
            .map(|group| group.is_some())
            .map_err(|error| format!("getgrnam({name}): {error}"))
    }

    fn group_members(&self, name: &str, max: usize) -> Result<Option<GroupMembers>, String> {
        let Some(group) = nix::unistd::Group::from_name(name)
            .map_err(|error| format!("getgrnam({name}): {error}"))?
        else {
            return Ok(None);
        };
        let mut names = group.mem;
        names.truncate(max);
        let (primary, cut_short) = primary_members(group.gid.as_raw(), max - names.len())?;
        let truncated = cut_short || names.len() >= max;
        names.extend(primary);
        names.sort();
        names.dedup();
        Ok(Some(GroupMembers { names, truncated }))
    }
}

#[cfg(any(test, feature = "test-doubles"))]
/// A fixed user table for tests.
#[derive(Debug, Default, Clone)]
pub struct FixedAccounts(pub Vec<Account>);

#[cfg(any(test, feature = "test-doubles"))]
impl FixedAccounts {
    pub fn with(mut self, name: &str, uid: u32, groups: &[&str]) -> FixedAccounts {
        self.0.push(Account {
            name: name.to_owned(),
            uid,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        });
        self
    }
}

#[cfg(any(test, feature = "test-doubles"))]
impl Accounts for FixedAccounts {
    fn by_name(&self, name: &str) -> Result<Option<Account>, String> {
        Ok(self.0.iter().find(|a| a.name == name).cloned())
    }

    fn by_uid(&self, uid: u32) -> Result<Option<Account>, String> {
        Ok(self.0.iter().find(|a| a.uid == uid).cloned())
    }

    fn group_exists(&self, name: &str) -> Result<bool, String> {
        Ok(self.0.iter().any(|a| a.groups.iter().any(|g| g == name)))
    }

    fn group_members(&self, group: &str, max: usize) -> Result<Option<GroupMembers>, String> {
        if !self.group_exists(group)? {
            return Ok(None);
        }
        let mut names: Vec<String> = self
            .0
            .iter()
            .filter(|a| a.groups.iter().any(|g| g == group))
            .map(|a| a.name.clone())
            .collect();
        let truncated = names.len() > max;
        names.truncate(max);
        Ok(Some(GroupMembers { names, truncated }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_found_with_its_groups() {
        let root = SystemAccounts.by_uid(0).unwrap().unwrap();
        assert_eq!(root.name, "root");
        assert!(root.groups.iter().any(|g| g == "root"), "{:?}", root.groups);
        assert_eq!(SystemAccounts.by_name("root").unwrap().unwrap().uid, 0);
    }

    #[test]
    fn group_members_include_users_whose_primary_group_it_is() {
        // root's primary group is root, and nobody lists root as a member of it.
        let root = SystemAccounts.group_members("root", 1000).unwrap().unwrap();
        assert!(root.names.iter().any(|n| n == "root"), "{root:?}");
        assert!(SystemAccounts.group_exists("root").unwrap());
        assert!(
            !SystemAccounts
                .group_exists("no-such-group-twofactor")
                .unwrap()
        );
        assert_eq!(
            SystemAccounts
                .group_members("no-such-group-twofactor", 10)
                .unwrap(),
            None
        );
        let none = SystemAccounts.group_members("root", 0).unwrap().unwrap();
        assert!(none.names.is_empty() && none.truncated, "{none:?}");
    }

    #[test]
    fn unknown_user_is_none() {
        assert_eq!(
            SystemAccounts.by_name("no-such-user-twofactor").unwrap(),
            None
        );
        assert_eq!(
            SystemAccounts.name_of("no-such-user-twofactor").unwrap(),
            None
        );
        assert_eq!(
            SystemAccounts.name_of("root").unwrap().as_deref(),
            Some("root")
        );
    }
}
