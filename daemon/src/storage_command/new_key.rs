//! `twofactord storage new-key PATH`.

use std::path::Path;
use std::process::ExitCode;

use super::{fail, require_root};

pub fn run(path: &Path) -> ExitCode {
    if let Err(status) = require_root("new-key") {
        return status;
    }
    match crate::seal::write_new_key_file(path) {
        Ok(key_id) => {
            // The key id is not secret; it tells keys apart during a rotation.
            println!("{}: new fleet key, key id {key_id}", path.display());
            ExitCode::SUCCESS
        }
        Err(error) => fail("new-key", format_args!("{}: {error}", path.display())),
    }
}
