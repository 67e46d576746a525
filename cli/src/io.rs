//! Standard input, output and error, behind one small type so that the commands can be driven
//! by tests with scripted input.
//!
//! Results go to standard output; prompts, notes and warnings go to standard error, so that
//! `twofactor backup-codes > file` captures only the codes. Answers are plain lines read from
//! standard input (not /dev/tty), echoed: codes are one-time, and tests can drive the prompts.

use std::fmt;
use std::io::{self, BufRead, Write};

use zeroize::Zeroizing;

use crate::error::CliError;
use crate::terminal::{self, Size};

/// Write a formatted line to standard output; a closed pipe becomes [`CliError::OutputClosed`].
/// For tables, codes and drawings: the line is written as it is.
macro_rules! say {
    ($io:expr) => { $io.say(format_args!("")) };
    ($io:expr, $($arg:tt)*) => { $io.say(format_args!($($arg)*)) };
}

/// Like [`say!`], for prose: wrapped to the terminal's width.
macro_rules! tell {
    ($io:expr, $($arg:tt)*) => { $io.tell(format_args!($($arg)*)) };
}

/// The streams a command uses.
pub struct Io<'a> {
    input: Box<dyn BufRead + 'a>,
    output: Box<dyn Write + 'a>,
    errors: Box<dyn Write + 'a>,
    size: Size,
}

impl fmt::Debug for Io<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Io").finish_non_exhaustive()
    }
}

/// Longest answer line kept; anything longer is not a code or a user name anyway.
const MAX_LINE: u64 = 4096;

impl<'a> Io<'a> {
    pub fn new(
        input: impl BufRead + 'a,
        output: impl Write + 'a,
        errors: impl Write + 'a,
    ) -> Io<'a> {
        Io {
            input: Box::new(input),
            output: Box::new(output),
            errors: Box::new(errors),
            size: terminal::FALLBACK,
        }
    }

    /// The process's own standard streams, and the terminal's size.
    pub fn standard() -> Io<'static> {
        Io::new(io::stdin().lock(), io::stdout().lock(), io::stderr()).with_size(terminal::size())
    }

    /// Output for a terminal of `size` (tests; [`Io::new`] assumes [`terminal::FALLBACK`]).
    pub fn with_size(mut self, size: Size) -> Io<'a> {
        self.size = size;
        self
    }

    /// The terminal's size, or [`terminal::FALLBACK`].
    pub fn size(&self) -> Size {
        self.size
    }

    /// Prose on standard output, wrapped to the terminal's width.
    pub fn tell(&mut self, text: fmt::Arguments<'_>) -> Result<(), CliError> {
        let wrapped = terminal::wrap(&text.to_string(), self.size.columns);
        self.say(format_args!("{wrapped}"))
    }

    /// One line of output.
    pub fn say(&mut self, line: fmt::Arguments<'_>) -> Result<(), CliError> {
        writeln!(self.output, "{line}")
            .and_then(|()| self.output.flush())
            .map_err(|error| CliError::from_output(&error))
    }

    /// Bytes as they are (a man page, a completion script).
    pub fn raw(&mut self, bytes: &[u8]) -> Result<(), CliError> {
        self.output
            .write_all(bytes)
            .and_then(|()| self.output.flush())
            .map_err(|error| CliError::from_output(&error))
    }

    /// A note on standard error, as one line (an error is one line that scripts and logs
    /// keep whole); errors writing it are ignored: there is nowhere to report.
    pub fn note(&mut self, line: fmt::Arguments<'_>) {
        let _ = writeln!(self.errors, "{line}");
        let _ = self.errors.flush();
    }

    /// A warning on standard error.
    pub fn warn(&mut self, line: fmt::Arguments<'_>) {
        self.note(format_args!("twofactor: warning: {line}"));
    }

    /// Ask `question` on standard error and read one line; `None` at end of input.
    pub fn ask(&mut self, question: &str) -> Result<Option<Zeroizing<String>>, CliError> {
        let _ = write!(self.errors, "{question}");
        let _ = self.errors.flush();
        let answer = self.read_line();
        if matches!(answer, Ok(None)) {
            // End the prompt's line so what follows does not run into it.
            self.note(format_args!(""));
        }
        answer
    }

    /// One line from standard input without its line ending; `None` at end of input.
    pub fn read_line(&mut self) -> Result<Option<Zeroizing<String>>, CliError> {
        let mut bytes = Zeroizing::new(Vec::new());
        let input: &mut dyn BufRead = &mut *self.input;
        let read = <&mut dyn BufRead as io::Read>::take(input, MAX_LINE)
            .read_until(b'\n', &mut bytes)
            .map_err(|error| CliError::from_input(&error))?;
        if read == 0 {
            return Ok(None);
        }
        while matches!(bytes.last(), Some(b'\n' | b'\r')) {
            bytes.pop();
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| CliError::Usage("the answer is not valid UTF-8".into()))?;
        Ok(Some(Zeroizing::new(text.trim().to_owned())))
    }
}

#[cfg(test)]
pub mod testing {
    //! Scripted streams for the commands' unit tests.

    use std::cell::RefCell;
    use std::io::Write;
    use std::rc::Rc;

    use super::Io;

    /// A shared buffer the test reads after the command wrote to it.
    #[derive(Debug, Clone, Default)]
    pub struct Captured(Rc<RefCell<Vec<u8>>>);

    impl Captured {
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.borrow()).into_owned()
        }
    }

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// An `Io` reading `input`, and the captured standard output and error.
    pub fn scripted(input: &str) -> (Io<'static>, Captured, Captured) {
        let out = Captured::default();
        let err = Captured::default();
        let io = Io::new(
            std::io::Cursor::new(input.as_bytes().to_vec()),
            out.clone(),
            err.clone(),
        );
        (io, out, err)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::scripted;
    use super::*;

    #[test]
    fn lines_lose_their_endings_and_blanks() {
        let (mut io, _, err) = scripted(" 123456\r\nyes\nlast");
        assert_eq!(io.ask("Code: ").unwrap().unwrap().as_str(), "123456");
        assert_eq!(io.read_line().unwrap().unwrap().as_str(), "yes");
        assert_eq!(io.read_line().unwrap().unwrap().as_str(), "last");
        assert!(io.read_line().unwrap().is_none());
        assert_eq!(err.text(), "Code: ");
    }

    #[test]
    fn end_of_input_ends_the_prompt_line() {
        let (mut io, _, err) = scripted("");
        assert!(io.ask("Code: ").unwrap().is_none());
        assert_eq!(err.text(), "Code: \n");
    }

    #[test]
    fn a_closed_output_is_reported_as_such() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::BrokenPipe))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut io = Io::new(io::empty(), Closed, io::sink());
        assert_eq!(say!(io, "x"), Err(CliError::OutputClosed));
    }
}
