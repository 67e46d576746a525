//! `prompt_after_notices`: messages left after the last prompt of a login are followed by one
//! more prompt. sshd shows messages that come before a prompt once, folded into it, but prints
//! those after the last prompt of a successful login twice in an interactive session: as a
//! banner, and again when the session starts (auth2.c, then session.c's `display_loginmsg`).

use zeroize::Zeroizing;

use super::{ConvError, Conversation};
use crate::messages;

/// A conversation that remembers whether anything was said since the last prompt.
pub(super) struct Tracked<'a> {
    inner: &'a mut dyn Conversation,
    unprompted: bool,
}

impl<'a> Tracked<'a> {
    pub(super) fn new(inner: &'a mut dyn Conversation) -> Self {
        Self {
            inner,
            unprompted: false,
        }
    }

    /// Ends with [`messages::NOTICES_READ_PROMPT`] when messages follow the last prompt. The
    /// answer means nothing, and a failure to ask changes nothing: the login is decided.
    pub(super) fn prompt_if_unprompted(&mut self) {
        if self.unprompted {
            let _read: Result<Option<Zeroizing<String>>, ConvError> =
                self.prompt(messages::NOTICES_READ_PROMPT, true);
        }
    }
}

impl Conversation for Tracked<'_> {
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Option<Zeroizing<String>>, ConvError> {
        self.unprompted = false;
        self.inner.prompt(text, echo)
    }

    fn info(&mut self, text: &str) {
        self.unprompted = true;
        self.inner.info(text);
    }

    fn error(&mut self, text: &str) {
        self.unprompted = true;
        self.inner.error(text);
    }
}
