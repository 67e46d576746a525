//! Who `ListUsers` shows: every user with a record, the users the policy names, and the
//! members of its required groups as NSS lists them, so that those about to be locked out
//! (required, not enrolled) are seen before they try to log in.

use twofactor_config::Policy;
use twofactor_proto::{Error, UserStatus};

use super::Service;
use crate::log::Line;

/// Members of one required group listed at most; beyond it the list says so in the log.
/// A large directory must not make `ListUsers` hang.
pub const MAX_GROUP_MEMBERS: usize = 10_000;

impl Service {
    /// Admin: every user with a record, those named in the policy, and the members of its
    /// required groups.
    pub fn list_users(&self, now: u64) -> Result<Vec<UserStatus>, Error> {
        self.roster()?
            .iter()
            .map(|user| Ok(self.status_of(user, self.account(user)?.as_ref(), now)))
            .collect()
    }

    fn roster(&self) -> Result<Vec<String>, Error> {
        let mut users = self
            .store
            .users()
            .map_err(|error| self.store_failure("*", &error))?;
        let config = self.config();
        users.extend(config.policy.users.keys().cloned());
        let required_groups = config
            .policy
            .groups
            .iter()
            .filter(|(_, policy)| **policy == Policy::Required);
        for (group, _) in required_groups {
            // A group NSS cannot list leaves the rest of the list useful: it is logged.
            match self.accounts.group_members(group, MAX_GROUP_MEMBERS) {
                Ok(Some(members)) => {
                    if members.truncated {
                        self.log.warning(
                            Line::new("list-cut-short")
                                .field("group", group)
                                .field("listed", members.names.len())
                                .as_str(),
                        );
                    }
                    users.extend(members.names);
                }
                Ok(None) => {}
                Err(error) => self.log.warning(
                    Line::new("nss-error")
                        .field("group", group)
                        .field("error", error)
                        .as_str(),
                ),
            }
        }
        users.sort();
        users.dedup();
        users.retain(|user| twofactor_proto::is_valid_username(user));
        Ok(users)
    }
}
