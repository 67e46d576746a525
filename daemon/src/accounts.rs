//! Who users are: existence, uid and group names, looked up through NSS.

use std::ffi::CString;

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

impl Accounts for SystemAccounts {
    fn by_name(&self, name: &str) -> Result<Option<Account>, String> {
        match nix::unistd::User::from_name(name) {
            Ok(Some(user)) => account_of(user).map(Some),
            Ok(None) => Ok(None),
            Err(error) => Err(format!("getpwnam({name}): {error}")),
        }
    }

    fn by_uid(&self, uid: u32) -> Result<Option<Account>, String> {
        match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
            Ok(Some(user)) => account_of(user).map(Some),
            Ok(None) => Ok(None),
            Err(error) => Err(format!("getpwuid({uid}): {error}")),
        }
    }

    fn name_of(&self, name: &str) -> Result<Option<String>, String> {
        nix::unistd::User::from_name(name)
            .map(|user| user.map(|user| user.name))
            .map_err(|error| format!("getpwnam({name}): {error}"))
    }
}

/// A fixed user table for tests.
#[derive(Debug, Default, Clone)]
pub struct FixedAccounts(pub Vec<Account>);

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

impl Accounts for FixedAccounts {
    fn by_name(&self, name: &str) -> Result<Option<Account>, String> {
        Ok(self.0.iter().find(|a| a.name == name).cloned())
    }

    fn by_uid(&self, uid: u32) -> Result<Option<Account>, String> {
        Ok(self.0.iter().find(|a| a.uid == uid).cloned())
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
