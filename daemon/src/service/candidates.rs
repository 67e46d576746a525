//! `VerifyAny`: one answer read several ways (a `forward_pass` answer whose password may end in
//! digits), checked as one login attempt.

use twofactor_proto::{Error, LoginContext, MAX_CODE_CANDIDATES, VerifyAnyReply};
use zeroize::Zeroizing;

use super::{Caller, Service, code_digits};

impl Service {
    /// Check every candidate as one attempt: at most one failure is counted, and each kind of
    /// code is tried against the first candidate of its length only, so a caller gains no
    /// guesses by sending more.
    pub fn verify_any(
        &self,
        caller: &Caller,
        user: &str,
        candidates: &[&str],
        context: &LoginContext,
        now: u64,
    ) -> Result<VerifyAnyReply, Error> {
        if candidates.is_empty() || candidates.len() > MAX_CODE_CANDIDATES {
            return Err(Error::InvalidInput(format!(
                "give 1 to {MAX_CODE_CANDIDATES} candidate codes"
            )));
        }
        let mut digits: Vec<Zeroizing<String>> = Vec::with_capacity(candidates.len());
        for candidate in candidates {
            digits.push(code_digits(candidate)?);
        }
        self.verify_candidates(caller, user, &digits, context, now)
    }
}
