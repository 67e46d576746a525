//! The doctor's output: one line per finding (`file:line: severity: message. Fix: ...`), or the
//! JSON the issue fixes: `{"findings": [...]}` and `{"user", "services": [...]}`.

use serde::Serialize;

use super::Finding;
use super::dry_run::ServiceAnswer;
use crate::error::CliError;
use crate::io::Io;

pub fn print_findings(io: &mut Io<'_>, findings: &[Finding], json: bool) -> Result<(), CliError> {
    if json {
        return crate::commands::print_json(io, &serde_json::json!({ "findings": findings }));
    }
    for finding in findings {
        let at = match finding.line {
            Some(line) => format!("{}:{line}", finding.file),
            None => finding.file.clone(),
        };
        let severity = serde_json::to_value(finding.severity)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        say!(
            io,
            "{at}: {severity}: {}. Fix: {}.",
            finding.message,
            finding.fix
        )?;
    }
    if findings.is_empty() {
        say!(io, "No problems found.")?;
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct DryRun<'a> {
    user: &'a str,
    services: &'a [ServiceAnswer],
}

pub fn print_dry_run(
    io: &mut Io<'_>,
    user: &str,
    services: &[ServiceAnswer],
    json: bool,
) -> Result<(), CliError> {
    if json {
        let value = serde_json::to_value(DryRun { user, services })
            .map_err(|error| CliError::System(format!("cannot encode the output: {error}")))?;
        return crate::commands::print_json(io, &value);
    }
    for answer in services {
        say!(
            io,
            "{}: {} asked {}: {}.",
            answer.service,
            user,
            answer.asked.as_str(),
            answer.why
        )?;
    }
    Ok(())
}
